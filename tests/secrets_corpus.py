"""A corpus of ordinary code with planted secrets and harmless look-alikes, built at run time.

    from secrets_corpus import build_corpus
    corpus = build_corpus()        # corpus.files: [(path, text)], corpus.planted: [(kind, value)]

Used by tests/test_redaction.py (every planted secret redacted, no look-alike touched) and by
bench/bench_redaction.py (recall, false alarms and time against detect-secrets). Every secret is
generated from a seeded random source in the shape its issuer uses, so this file holds none.
`clean_files()` is the same corpus without the planted secrets: anything flagged there is a
false alarm.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UPPER + LOWER + DIGITS
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"


@dataclass
class Corpus:
    files: list[tuple[str, str]] = field(default_factory=list)          # (path, text with secrets)
    clean: list[tuple[str, str]] = field(default_factory=list)          # (path, text without them)
    planted: list[tuple[str, str, str]] = field(default_factory=list)   # (kind, value, path)
    lookalikes: list[str] = field(default_factory=list)                 # lines that must stay as written

    @property
    def kinds(self) -> set[str]:
        return {k for k, _, _ in self.planted}


class _Gen:
    def __init__(self, seed: int):
        self.rnd = random.Random(seed)

    def s(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rnd.choice(alphabet) for _ in range(n))

    def pem(self, label: str, lines: int = 6) -> str:
        body = "\n".join(self.s(64, B64) for _ in range(lines))
        return f"-----BEGIN {label}-----\n{body}\n{self.s(20, B64)}==\n-----END {label}-----"


# Ordinary code around the secrets, with the look-alikes a secret scanner trips on.
_APP = '''import os
from flask import Flask

app = Flask(__name__)
app.config.from_mapping(
    SECRET_KEY="dev",
    DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"),
)
app.secret_key = 'development key'
'''
_LOOKALIKES = [
    "SECRET_KEY = 'dev'",
    'app.config["SECRET_KEY"] = "testkey"',
    "app.secret_key = 'devkey'",
    'SECRET_KEY="testing"',
    "    SECRET_KEY = 'default'",
    'password = "test"',
    'api_key = "foo"',
    "ADMIN_PASSWORD=changeme",
    "API_TOKEN=xxx",
    'api_key = "<your-key>"',
    'password = "${DB_PASSWORD}"',
    'token = os.environ["GITHUB_TOKEN"]',
    'secret = os.environ.get("APP_SECRET")',
    "password = getpass.getpass()",
    'csrf_token = "csrfToken"',
    'TOKEN_HEADER = "Authorization"',
    'headers = {"Authorization": f"Bearer {token}"}',
    "DATABASE_URL = 'postgresql://user:password@localhost/test'",
    'redis_url = "redis://:${REDIS_PASSWORD}@cache:6379/0"',
    'if line.startswith("-----BEGIN RSA PRIVATE KEY-----"):',
    "max_tokens = 4096",
    'token_type = "bearer"',
    "    # the Bearer token goes in the Authorization header",
    'commit = "3f786850e387550fdab836ed7e6dc881de23001b"',
    'digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"',
    'request_id = "123e4567-e89b-12d3-a456-426614174000"',
    'ICON = "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAABHNCSVQICAgIfAhkiAAAAAlwSFlzAAAO"',
    'password_field = "password"',
    'secret_key: str = "my-secret-key"',
    "password: str",
    "private_key = load_pem_private_key(data, password=None)",
    'client_secret = "your-client-secret"',
    'auth_token = "super-secret-token"',
    "pwd = os.getcwd()",
]


def build_corpus(seed: int = 11) -> Corpus:
    """The corpus: 20+ files of ordinary code, 30+ planted secrets of 20+ kinds, the look-alikes."""
    g = _Gen(seed)
    c = Corpus(lookalikes=list(_LOOKALIKES))
    files: dict[str, list[tuple[str | None, str, str | None]]] = {}  # path -> [(kind, text, value)]

    def code(path: str, text: str) -> None:
        files.setdefault(path, []).append((None, text, None))

    def plant(path: str, kind: str, value: str, template: str = "{}") -> None:
        files.setdefault(path, []).append((kind, template.format(value), value))

    code("app/__init__.py", _APP)
    code("app/lookalikes.py", "\n".join(_LOOKALIKES) + "\n")
    code("app/views.py", "def index():\n    return render_template('index.html', user=g.user)\n")
    # cloud keys
    aws_id, aws_secret = "AKIA" + g.s(16, UPPER + DIGITS), g.s(40, B64)
    plant("app/settings.py", "AWS_KEY", aws_id, 'AWS_ACCESS_KEY_ID = "{}"\n')
    code("app/settings.py", "DEBUG = False\nALLOWED_HOSTS = ['example.com']\n")
    plant("deploy/aws_credentials", "AWS_SECRET", g.s(40, B64), "[default]\naws_access_key_id = AKIAEXAMPLE\n"
          "aws_secret_access_key = {}\n")
    csv_id, csv_secret = "AKIA" + g.s(16, UPPER + DIGITS), g.s(40, B64)
    code("deploy/credentials.csv", "User name,Password,Access key ID,Secret access key,Console login link\n")
    plant("deploy/credentials.csv", "AWS_KEY", csv_id, "deploy-bot,,{},")
    plant("deploy/credentials.csv", "AWS_SECRET", csv_secret, "{},https://123456789012.signin.aws.amazon.com/console\n")
    sa_key = g.pem("PRIVATE KEY").replace("\n", "\\n")
    code("deploy/service-account.json", '{\n  "type": "service_account",\n  "project_id": "demo-project",\n')
    plant("deploy/service-account.json", "PRIVATE_KEY", sa_key, '  "private_key": "{}\\n",\n')
    plant("deploy/service-account.json", "GOOGLE_OAUTH_SECRET", "GOCSPX-" + g.s(28, ALNUM + "-_"),
          '  "client_secret": "{}",\n')
    code("deploy/service-account.json", '  "token_uri": "https://oauth2.googleapis.com/token"\n}\n')
    plant("web/maps.js", "GOOGLE_API_KEY", "AIza" + g.s(35, ALNUM + "-_"), "const MAPS_KEY = '{}';\n")
    code("web/maps.js", "export function loadMap(el) {\n  return new google.maps.Map(el, { zoom: 4 });\n}\n")
    plant("deploy/azure.env", "AZURE_STORAGE_KEY", g.s(86, B64) + "==",
          "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=demo;AccountKey={};"
          "EndpointSuffix=core.windows.net\n")
    plant("deploy/azure.env", "AZURE_CLIENT_SECRET", g.s(3) + "8Q~" + g.s(34, ALNUM + "_-"), "AZURE_CLIENT_SECRET={}\n")
    # services
    plant("tools/release.py", "GITHUB_TOKEN", "ghp_" + g.s(36), 'GH_TOKEN = "{}"\n')
    plant("tools/release.py", "GITHUB_TOKEN", "github_pat_" + g.s(22) + "_" + g.s(59), "# fine-grained: {}\n")
    code("tools/release.py", "def publish(version):\n    run(['git', 'tag', version])\n")
    plant(".gitlab-ci.yml", "GITLAB_TOKEN", "glpat-" + g.s(20), "variables:\n  CI_PUSH_TOKEN: {}\n")
    plant("ops/notify.py", "SLACK_TOKEN", "xoxb-" + g.s(12, DIGITS) + "-" + g.s(24), 'client = WebClient(token="{}")\n')
    plant("ops/notify.py", "SLACK_WEBHOOK", "hooks.slack.com/services/T" + g.s(8, UPPER + DIGITS) + "/B"
          + g.s(8, UPPER + DIGITS) + "/" + g.s(24), 'WEBHOOK = "https://{}"\n')
    plant("billing/stripe_client.rb", "STRIPE_KEY", "sk_live_" + g.s(24), "Stripe.api_key = '{}'\n")
    plant("web/session.ts", "JWT", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" + g.s(40, ALNUM + "-_") + "." + g.s(43, ALNUM + "-_"),
          "const demoSession = '{}';\n")
    plant(".npmrc", "NPM_TOKEN", "npm_" + g.s(36), "//registry.npmjs.org/:_authToken={}\n")
    plant(".pypirc", "PYPI_TOKEN", "pypi-AgEIcHlwaS5vcmc" + g.s(70, ALNUM + "-_"),
          "[pypi]\nusername = __token__\npassword = {}\n")
    plant("ml/client.py", "OPENAI_KEY", "sk-proj-" + g.s(48, ALNUM + "-_"), 'openai.api_key = "{}"\n')
    plant("ml/client.py", "HUGGINGFACE_TOKEN", "hf_" + g.s(34, UPPER + LOWER), 'login(token="{}")\n')
    plant("ml/client.py", "ANTHROPIC_KEY", "sk-ant-api03-" + g.s(93, ALNUM + "-_") + "AA", 'CLAUDE = "{}"\n')
    plant("shop/sync.py", "SHOPIFY_TOKEN", "shpat_" + g.s(32, HEX), 'session = shopify.Session(shop, "2024-01", "{}")\n')
    plant("infra/main.tf", "DIGITALOCEAN_TOKEN", "dop_v1_" + g.s(64, HEX), 'provider "digitalocean" {{\n  token = "{}"\n}}\n')
    plant("ops/mail.py", "SENDGRID_KEY", "SG." + g.s(22) + "." + g.s(43), "sg = SendGridAPIClient('{}')\n")
    plant("ops/sms.py", "TWILIO_KEY", "SK" + g.s(32, HEX), 'TWILIO_API_KEY_SID = "{}"\n')
    # private keys of each PEM kind
    for label in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY",
                  "ENCRYPTED PRIVATE KEY", "PRIVATE KEY"):
        plant(f"keys/{label.split()[0].lower()}.pem", "PRIVATE_KEY", g.pem(label), "{}\n")
    plant("keys/release.asc", "PRIVATE_KEY", g.pem("PGP PRIVATE KEY BLOCK").replace("-----\n", "-----\nVersion: GnuPG v2\n\n", 1),
          "{}\n")
    # credentials in URLs
    plant("app/db.py", "URL_CREDENTIALS", "app_rw:" + g.s(16), 'DATABASE_URL = "postgres://{}@db.internal:5432/app"\n')
    plant("app/db.py", "URL_CREDENTIALS", "root:" + g.s(14), 'MYSQL_URL = "mysql://{}@10.0.0.7/shop"\n')
    plant("app/db.py", "URL_CREDENTIALS", "svc:" + g.s(18), 'MONGO = "mongodb+srv://{}@cluster0.mongodb.net/db"\n')
    plant("scripts/fetch.sh", "URL_CREDENTIALS", "deploy:P@ss" + g.s(10) + "!", "curl -fsS https://{}@artifacts.example.com/pkg.tgz\n")
    # headers
    plant("scripts/fetch.sh", "AUTH_HEADER", g.s(32, HEX), 'curl -H "Authorization: Bearer {}" https://api.example.com\n')
    plant("app/api.py", "AUTH_HEADER", g.s(40, ALNUM), 'HEADERS = {{"Authorization": "Bearer {}"}}\n')
    # values assigned to secret-like names
    plant("app/settings.py", "SECRET", g.s(64, HEX), 'SECRET_KEY = "{}"\n')
    plant("app/oauth.py", "SECRET", g.s(32, ALNUM), 'CLIENT_SECRET = "{}"\n')
    plant("app/oauth.py", "API_KEY", g.s(28, ALNUM), 'api_key = "{}"\n')
    plant("config/app.yaml", "TOKEN", g.s(30, ALNUM), "service:\n  token: {}\n")
    plant("config/app.yaml", "PASSWORD", "hunter2" + g.s(4, DIGITS), "database:\n  password: {}\n")
    # unquoted letters-only passwords in .env, docker-compose YAML, .properties; an XML one
    plant(".env", "PASSWORD", "correcthorsebatterystaple", "ADMIN_PASSWORD={}\n")
    plant("docker-compose.yml", "PASSWORD", "batterystaplecorrecthorse",
          "services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD={}\n")
    plant("docker-compose.yml", "PASSWORD", "staplehorsecorrectbattery", "      ADMIN_PASSWORD: {}\n")
    plant("src/main/resources/application.properties", "PASSWORD", "horsestaplebatterycorrect",
          "spring.datasource.password={}\n")
    plant("maven/settings.xml", "PASSWORD", g.s(14), "<server><id>repo</id><password>{}</password></server>\n")

    for path, parts in files.items():
        c.files.append((path, "".join(text for _, text, _ in parts)))
        c.clean.append((path, "".join(text for kind, text, _ in parts if kind is None)))
        c.planted += [(kind, value, path) for kind, _, value in parts if kind is not None]
    return c
