"""A corpus of ordinary code with planted secrets and harmless look-alikes, built at run time.

    from secrets_corpus import build_corpus, versions, named_values
    corpus = build_corpus()        # corpus.files: [(path, text)], corpus.planted: [(kind, value, path)]
    versions(corpus, path)         # that file's history: each secret added, added again, as context, ...

87 planted secrets of all the redactor's 55 kinds in 76 files, the look-alikes a scanner trips on
(`SECRET_KEY = 'dev'`, hashes, UUIDs, `${VAR}`) and 120 lines of typed code in 8 languages made
from templates (`corpus.typed`: fields, parameters, properties, generic types, references, type
paths, Python type hints). Used by tests/test_redaction.py and tests/test_secrets.py (every planted
secret redacted in files, diffs, a commit message, paths and branch names; no look-alike touched)
and by bench/bench_redaction.py (recall, false alarms and time against detect-secrets). Every
secret is generated from a seeded random source in the shape its issuer uses, so this file holds
none. `corpus.clean` is the same corpus without the planted secrets: anything flagged there is a
false alarm.
"""

from __future__ import annotations

import base64
import itertools
import random
import re
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
    typed: list[tuple[str, str]] = field(default_factory=list)          # (path, line of typed code): stays too
    parts: dict[str, list[str]] = field(default_factory=dict)           # path -> its pieces of text, in order

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


# Typed code whose names are secret words: fields, parameters, properties, generic types, references,
# type paths and Python type hints, in 8 languages; a secret scanner must leave every one as written.
_TYPES = [("secret_key", "AtomicU64"), ("signing_key", "SigningKey"), ("api_key", "ApiKeyV2"),
          ("private_key", "Ed25519PrivateKey"), ("access_token", "OAuth2AccessToken"), ("refresh_token", "RefreshToken"),
          ("client_secret", "OAuth2ClientSecret"), ("password", "Argon2Hash"), ("auth_token", "Base64String"),
          ("session_token", "Uint8Array"), ("next_token", "Sha256Digest"), ("master_key", "X509Certificate")]
_TYPED_TEMPLATES = {
    "src/keys.rs": ["    {s}: {T},", "    pub {s}: Option<{T}>,", "fn sign({s}: &crypto::{T}, msg: &[u8]) -> Vec<u8> {{",
                    "    let {s}: Arc<{T}> = Arc::new({T}::default());", "    {s}: &'a mut keys::{T},"],
    "src/keys.ts": ["  {c}: {T};", "  readonly {c}?: {T};", "  constructor(private {c}: {T}) {{}}",
                    "export function sign({c}: {T}): Promise<{T}> {{", "  const {c}: {T} = await load{T}();"],
    "src/Keys.kt": ["    val {c}: {T}?", "    private var {c}: {T}? = null", "fun verify({c}: {T}): Boolean {{",
                    "    lateinit var {c}: {T}", "    val {c}: Map<String, {T}> = emptyMap()"],
    "src/Keys.java": ["    private final {T} {c};", "    public {T} get{C}() {{ return {c}; }}",
                      "    public void set{C}({T} {c}) {{", "        this.{c} = {c};", "    private List<{T}> {c}s;"],
    "keys/keys.go": ["	{C} {T}", "	{c} *crypto.{T}", "func New({c} crypto.{T}) *Client {{",
                     "	{C} {T} `json:\"{s}\"`", "	{c} := crypto.New{T}()"],
    "app/keys.py": ["    {s}: {T}", "def sign(self, {s}: {T}) -> bytes:", "    {s}: Optional[{T}] = None",
                    "    {s}: {T} = field(default_factory={T})", "    {s}: list[crypto.{T}]"],
    "src/Keys.cs": ["    public {T} {C} {{ get; set; }}", "    private readonly {T} _{c};", "    public void Sign({T} {c})",
                    "        _{c} = {c};", "    public IReadOnlyList<{T}> {C}s => _{c}s;"],
    "src/Keys.swift": ["    let {c}: {T}", "    var {c}: {T}?", "    func sign({c}: {T}) throws -> Data {{",
                       "    private(set) var {c}: [{T}] = []", "    let {c}: Crypto.{T}"],
}


def typed_lookalikes() -> list[tuple[str, str]]:
    """(path, line) for every template and three (name, type) pairs each: 120 lines in 8 languages."""
    out = []
    pairs = itertools.cycle(_TYPES)
    for path, templates in _TYPED_TEMPLATES.items():
        for template in templates:
            for _ in range(3):
                s, t = next(pairs)
                c = s.split("_")[0] + "".join(w.title() for w in s.split("_")[1:])
                out.append((path, template.format(s=s, c=c, C=c[0].upper() + c[1:], T=t)))
    return out


def build_corpus(seed: int = 11) -> Corpus:
    """The corpus: 60+ files of ordinary code, 80+ planted secrets of 50+ kinds, the look-alikes."""
    g = _Gen(seed)
    c = Corpus(lookalikes=list(_LOOKALIKES), typed=typed_lookalikes())
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

    # the kinds of issue 23: provider shapes under ordinary names, and formats that say where credentials are
    plant("ops/mail.py", "MAILGUN_KEY", "key-" + g.s(32, HEX), 'mg = Mailgun("mg.example.com", "{}")\n')
    plant("ops/mail.py", "MAILCHIMP_KEY", g.s(32, HEX) + "-us" + g.s(2, "123456789"), 'chimp = Client("{}")\n')
    plant("bot/discord.py", "DISCORD_TOKEN", "MT" + g.s(24) + "." + g.s(6, ALNUM + "_-") + "." + g.s(38, ALNUM + "_-"),
          'bot.run("{}")\n')
    plant("bot/discord.py", "DISCORD_WEBHOOK", g.s(68, ALNUM + "_-"),
          'HOOK = "https://discord.com/api/webhooks/1100223344556677889/{}"\n')
    plant("bot/telegram.py", "TELEGRAM_BOT_TOKEN", g.s(1, "123456789") + g.s(9, DIGITS) + ":AA" + g.s(33, ALNUM + "_-"),
          'updater = Updater("{}")\n')
    plant("ops/slack_app.py", "SLACK_TOKEN", "xapp-1-A" + g.s(10, UPPER + DIGITS) + "-" + g.s(13, DIGITS) + "-" + g.s(64, HEX),
          'handler = SocketModeHandler(app, "{}")\n')
    plant("billing/square.rb", "SQUARE_TOKEN", "EAAA" + g.s(60, ALNUM + "_-"), "client = Square::Client.new(access_token: '{}')\n")
    plant("billing/square.rb", "SQUARE_TOKEN", "sq0csp-" + g.s(43, ALNUM + "_-"), "OAUTH = '{}'\n")
    plant("cloud/aliyun.go", "ALIBABA_KEY", "LTAI" + g.s(20), 'const accessKeyID = "{}"\n')
    plant("cloud/release.sh", "RUBYGEMS_TOKEN", "rubygems_" + g.s(48, HEX), "export GEM_HOST_API_KEY={}\n")
    plant("cloud/release.sh", "DOCKERHUB_TOKEN", "dckr_pat_" + g.s(27, ALNUM + "_-"), 'echo "{}" | docker login -u ci --password-stdin\n')
    plant("ml/groq.ts", "GROQ_KEY", "gsk_" + g.s(52), "const groq = new Groq({{ apiKey: '{}' }});\n")
    plant("deploy/heroku.env", "HEROKU_KEY", "HRKU-AA" + g.s(58, ALNUM + "_-"), "HEROKU_OAUTH={}\n")
    plant("deploy/heroku.env", "HEROKU_KEY", "%s-%s-%s-%s-%s" % (g.s(8, HEX), g.s(4, HEX), g.s(4, HEX), g.s(4, HEX), g.s(12, HEX)),
          "HEROKU_API_KEY={}\n")
    plant("data/databricks.cfg", "DATABRICKS_TOKEN", "dapi" + g.s(32, HEX), "[DEFAULT]\nhost = https://adb-1.azuredatabricks.net\nt = {}\n")
    plant("tools/jira.py", "ATLASSIAN_TOKEN", "ATATT3xFfGF0" + g.s(180, ALNUM + "_-") + "=" + g.s(8, HEX), 'JIRA = ("me@example.com", "{}")\n')
    plant("web/sentry.js", "SENTRY_DSN", g.s(32, HEX), "Sentry.init({{ dsn: 'https://{}@o450123.ingest.sentry.io/5512345' }});\n")
    plant("web/sentry.js", "SENTRY_TOKEN", "sntrys_" + g.s(120, ALNUM + "_"), "// upload with {}\n")
    plant("infra/vault.hcl", "VAULT_TOKEN", "hvs." + g.s(90, ALNUM + "_-"), 'vault_token = "{}"\n')
    plant("ops/newrelic.yml", "NEWRELIC_KEY", "NRAK-" + g.s(27, UPPER + DIGITS), "common:\n  license: {}\n")
    plant("tools/postman.sh", "POSTMAN_KEY", "PMAK-" + g.s(24, HEX) + "-" + g.s(34, HEX), "curl -H 'X-Api-Key: {}' https://api.getpostman.com/me\n")
    plant("tools/linear.ts", "LINEAR_KEY", "lin_api_" + g.s(40), "const linear = new LinearClient({{ auth: '{}' }});\n")
    plant("ops/grafana.py", "GRAFANA_TOKEN", "glsa_" + g.s(32) + "_" + g.s(8, HEX), 'grafana = GrafanaApi(("{}"))\n')
    plant("ops/doppler.sh", "DOPPLER_TOKEN", "dp.pt." + g.s(43), "doppler configure set token {}\n")
    plant("infra/Pulumi.prod.yaml", "PULUMI_TOKEN", "pul-" + g.s(40, HEX), "config:\n  ci:access: {}\n")
    plant("db/planetscale.go", "PLANETSCALE_TOKEN", "pscale_tkn_" + g.s(43, ALNUM + "_"), 'db, _ := Open("{}")\n')
    plant("db/supabase.ts", "SUPABASE_TOKEN", "sbp_" + g.s(40, HEX), "const mgmt = createClient('{}');\n")
    plant("keys/backup.age", "AGE_KEY", "AGE-SECRET-KEY-1" + g.s(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
          "# created: 2024-01-01T00:00:00Z\n{}\n")
    plant("app/bitbucket.py", "GITLAB_TOKEN", "glrt-" + g.s(20, ALNUM + "_-"), 'RUNNER = "{}"\n')
    # a key pasted without its BEGIN and END lines
    plant("notes/key-fragment.txt", "PRIVATE_KEY", "\n".join(g.s(64, B64) for _ in range(4)), "{}\n")
    # formats that say where their credentials are
    plant(".netrc", "PASSWORD", g.s(18), "machine api.example.com login deploy password {}\n")
    plant("ci/netrc", "PASSWORD", g.s(16), "machine git.example.com\n  login ci\n  password {}\n")
    docker = "ci-bot:" + g.s(20)
    code(".docker/config.json", '{\n  "auths": {\n    "ghcr.io": {\n')
    plant(".docker/config.json", "DOCKER_AUTH", base64.b64encode(docker.encode()).decode(), '      "auth": "{}"\n')
    code(".docker/config.json", "    }\n  }\n}\n")
    k8s = base64.b64encode(g.s(24).encode()).decode()
    code("k8s/db-secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n")
    plant("k8s/db-secret.yaml", "K8S_SECRET", k8s, "data:\n  db-password: {}\n")
    plant("infra/prod.tfvars", "PASSWORD", "Tf" + g.s(14), 'db_password = "{}"\n')
    plant("pip.conf", "URL_CREDENTIALS", "ci:" + g.s(16), "[global]\nindex-url = https://{}@pypi.example.com/simple\n")
    plant(".git-credentials", "URL_CREDENTIALS", "bob:" + g.s(20), "https://{}@github.com\n")
    plant("requirements.txt", "URL_CREDENTIALS", "ci:" + g.s(18), "flask==3.0\ngit+https://{}@git.example.com/lib.git#egg=lib\n")
    plant(".npmrc", "TOKEN", base64.b64encode(("ci:" + g.s(16)).encode()).decode(), "_auth={}\n")
    for path, line in typed_lookalikes():
        code(path, line + "\n")

    for path, parts in files.items():
        c.files.append((path, "".join(text for _, text, _ in parts)))
        c.clean.append((path, "".join(text for kind, text, _ in parts if kind is None)))
        c.planted += [(kind, value, path) for kind, _, value in parts if kind is not None]
        c.parts[path] = [text for _, text, _ in parts]
    return c


FILLER = "".join(f"# filler line {i}\n" for i in range(8))  # more than two hunks' context apart


def versions(corpus: Corpus, path: str) -> list[str]:
    """A file's history that shows each of its secrets in every place a diff can: added (`+` lines),
    added again below 8 filler lines (the first copy as context), then a line added before and after each
    piece in both copies (the secrets as context lines, in two hunks), after which the file is deleted (`-`)."""
    whole = "".join(corpus.parts[path])
    marked = ""
    for p in corpus.parts[path]:  # a marker line wherever a line begins or ends between pieces
        marked += ("# rev 2\n" if marked.endswith("\n") or not marked else "") + p
    marked += "# rev 2\n" if marked.endswith("\n") else ""
    return [whole, whole + FILLER + whole, marked + FILLER + marked]


_REF_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+=-]*(?:\.[A-Za-z0-9_+=-]+)*")


def named_values(corpus: Corpus, shaped: dict[str, "re.Pattern[str]"]) -> list[tuple[str, str]]:
    """(kind, value) of the planted secrets that name themselves (the whole value has its kind's shape in
    `shaped`, a provider's prefix, not a value known by its place) and can be a file or branch name:
    those a path or a ref can leak."""
    return [(k, v) for k, v, _ in corpus.planted
            if k in shaped and shaped[k].fullmatch(v) and _REF_SAFE.fullmatch(v) and len(v) < 200]
