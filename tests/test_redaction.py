"""Secret redaction: one planted example of each kind is replaced; ordinary code is left alone."""

from __future__ import annotations

import base64
import difflib
import sys
from pathlib import Path

import pytest

from core.redaction import KINDS, Redactor, add_counts, redact
from core.secret_rules import SHAPED
from secrets_corpus import build_corpus, named_values, versions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

# Built by concatenation so this file itself does not look like it leaks anything.
GH = "ghp_" + "A1b2C3d4E5" * 4
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n+MIIEpAIBAAKCAQEA" + "Qk3x" * 12 + "\n+" + "Zz9y" * 16
       + "\n-----END RSA PRIVATE KEY-----")
JWT = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".SflKxwRJSMeKKF2QT4fwpMeJf36P"

PLANTED = [
    (f"key = '''\n{PEM}\n'''\n", "key = '''\n<SECRET_PRIVATE_KEY>\n'''\n", "PRIVATE_KEY"),
    ('aws_access_key_id = "AKIA' + "IOSFODNN7EXAMPLE" + '"', 'aws_access_key_id = "<SECRET_AWS_KEY>"', "AWS_KEY"),
    ("aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "aws_secret_access_key = <SECRET_AWS_SECRET>", "AWS_SECRET"),
    ("git push https://bot:Tr0ub4dor@example.com", "git push https://<SECRET_URL_CREDENTIALS>@example.com",
     "URL_CREDENTIALS"),
    (f"remote = {GH}", "remote = <SECRET_GITHUB_TOKEN>", "GITHUB_TOKEN"),
    ("ci: glpat-" + "abcdefghij0123456789", "ci: <SECRET_GITLAB_TOKEN>", "GITLAB_TOKEN"),
    ("hook xoxb-" + "1234567890-abcdefABCDEF", "hook <SECRET_SLACK_TOKEN>", "SLACK_TOKEN"),
    ("stripe.api = sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "stripe.api = <SECRET_STRIPE_KEY>", "STRIPE_KEY"),
    ("maps AIza" + "SyD-1234567890abcdefghijklmnopqrstu", "maps <SECRET_GOOGLE_API_KEY>", "GOOGLE_API_KEY"),
    (f"Authorization: Bearer {JWT}", "Authorization: Bearer <SECRET_JWT>", "JWT"),
    ('password = "hunter2"', 'password = "<SECRET_PASSWORD>"', "PASSWORD"),
    ("DB_PASSWORD=s3cr3t-value", "DB_PASSWORD=<SECRET_PASSWORD>", "PASSWORD"),
    ("API_KEY=abc123def456", "API_KEY=<SECRET_API_KEY>", "API_KEY"),
    ('  "secret": "s3cr3t-Value-91",', '  "secret": "<SECRET_SECRET>",', "SECRET"),
    ("auth:\n  token: a1b2c3d4e5f6", "auth:\n  token: <SECRET_TOKEN>", "TOKEN"),
    ("DATABASE_URL=postgres://app:pa55word@db.internal:5432/prod",
     "DATABASE_URL=postgres://<SECRET_URL_CREDENTIALS>@db.internal:5432/prod", "URL_CREDENTIALS"),
]


@pytest.mark.parametrize("text,expected,kind", PLANTED, ids=[f"{k}-{i}" for i, (_, _, k) in enumerate(PLANTED)])
def test_planted_secret_is_replaced(text, expected, kind):
    out, counts = redact(text)
    assert out == expected
    assert counts == {kind: 1}


def test_every_kind_has_a_planted_example():
    assert {kind for _, _, kind in PLANTED} | build_corpus().kinds == set(KINDS)


NEGATIVES = [
    "password = get_password()",
    "token = None",
    "self.token = token",
    "f(token=my_token)",
    'password = os.environ["DB_PASSWORD"]',
    "token: ${{ secrets.GITHUB_TOKEN }}",
    'password: str = "abc"',
    "max_tokens = 100",
    'if token == "eof":',
    "tokens = tokenize(text)",
    'api_key = "<your key here>"',
    'if line.startswith("-----BEGIN RSA PRIVATE KEY-----"):\n    pass',
    "see http://localhost:8080/path and mail me@example.com",
    "secret_key = settings.SECRET_KEY",
    'password = ""',
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_code_is_left_alone(text):
    assert redact(text) == (text, {})


def test_redaction_inside_a_diff_and_counts_add_up():
    diff = ("@@ -1,2 +1,3 @@\n import os\n-password = os.getenv('PW')\n+password = 'correct-horse-1'\n"
            f"+GITHUB = '{GH}'\n")
    out, counts = redact(diff)
    assert "correct-horse-1" not in out and GH not in out
    assert "-password = os.getenv('PW')" in out
    assert counts == {"PASSWORD": 1, "GITHUB_TOKEN": 1}
    total = {"PASSWORD": 2}
    assert add_counts(total, counts) == {"PASSWORD": 3, "GITHUB_TOKEN": 1}


def test_redaction_is_idempotent():
    text = "\n".join(t for t, _, _ in PLANTED)
    once, _ = redact(text)
    assert redact(once) == (once, {})
    for path, text in build_corpus().files:  # stage 2 redacts stage 1's redacted text again
        once, _ = redact(text, path)
        assert redact(once, path) == (once, {}), path


# --- the leaks of issue 11, each a test ------------------------------------------------------------
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"


def test_every_secret_after_an_aws_secret_is_still_found():
    # the replaced AWS secret shortens the text; later rules must search the new text
    text = f"aws_secret_access_key = {AWS_SECRET}\npassword = \"hunter2xyz\"\ntoken: 9b8c7d6e5f4a3b2c1d0e\n"
    out, counts = redact(text)
    assert out == "aws_secret_access_key = <SECRET_AWS_SECRET>\npassword = \"<SECRET_PASSWORD>\"\ntoken: <SECRET_TOKEN>\n"
    assert counts == {"AWS_SECRET": 1, "PASSWORD": 1, "TOKEN": 1}


LETTERS = "correcthorse" + "batterystaple"


@pytest.mark.parametrize("path,text", [
    (".env", f"ADMIN_PASSWORD={LETTERS}\n"),
    ("deploy/prod.env", f"export ADMIN_PASSWORD={LETTERS}\n"),
    ("docker-compose.yml", f"services:\n  db:\n    environment:\n      - ADMIN_PASSWORD={LETTERS}\n"),
    ("docker-compose.yml", f"    environment:\n      ADMIN_PASSWORD: {LETTERS}\n"),
    ("src/main/resources/application.properties", f"spring.datasource.password={LETTERS}\n"),
    ("app.properties", f"admin.password = {LETTERS}\n"),
    (None, f"ADMIN_PASSWORD={LETTERS}\n"),  # env form: a whole line, upper-case name, no spaces
    (None, f"+  admin_password: {LETTERS}\n"),  # YAML form inside a diff
])
def test_unquoted_letters_only_password_in_config(path, text):
    out, counts = redact(text, path)
    assert LETTERS not in out and counts == {"PASSWORD": 1}


def test_private_key_removed_in_a_diff():
    removed = "\n".join("-" + line for line in PEM.splitlines())
    out, counts = redact(f"@@ -1,4 +0,0 @@\n{removed}\n")
    assert "Zz9y" not in out and counts == {"PRIVATE_KEY": 1}


def test_annotated_assignments():
    assert redact('password: str = "hunter2xyz"') == ('password: str = "<SECRET_PASSWORD>"', {"PASSWORD": 1})
    text = 'token: Optional[str] | None = "9f8e7d6c5b4a39281706"'
    assert redact(text) == ('token: Optional[str] | None = "<SECRET_TOKEN>"', {"TOKEN": 1})


@pytest.mark.parametrize("text", [
    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: " + "Ab: " * 60 + "\n!",  # was exponential
    "password: a" + " " * 20000 + "!",  # was quadratic
    "http://" + "a:" * 20000 + " ",
])
def test_pathological_inputs_end_and_are_left_alone(text):
    assert redact(text) == (text, {})


def test_letters_only_bare_name_in_code_is_a_variable():
    assert redact(f"password = {LETTERS}\n", "app/db.py") == (f"password = {LETTERS}\n", {})


def test_aws_secret_in_the_console_credentials_csv():
    key_id = "AKIA" + "Q3EGWX7ZPLMN4RTY"
    text = f"User name,Password,Access key ID,Secret access key,Console login link\nbot,,{key_id},{AWS_SECRET},https://x\n"
    out, counts = redact(text, "credentials.csv")
    assert key_id not in out and AWS_SECRET not in out
    assert counts == {"AWS_KEY": 1, "AWS_SECRET": 1}
    out, counts = redact(f"Access key ID,Secret access key\n{key_id},{AWS_SECRET}\n")
    assert out == "Access key ID,Secret access key\n<SECRET_AWS_KEY>,<SECRET_AWS_SECRET>\n"


@pytest.mark.parametrize("text", [
    '"Authorization": "Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0"',
    "curl -H 'Authorization: token 9f8e7d6c5b4a39281706f5e4d3c2b1a0' https://api.example.com",
    "Authorization: Basic " + "dXNlcjpzM2NyM3RwYXNz",
    'headers["Proxy-Authorization"] = "Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0"',
])
def test_authorization_headers(text):
    out, counts = redact(text)
    assert "9f8e7d6c5b4a3928" not in out and "dXNlcjpzM2NyM3RwYXNz" not in out
    assert counts == {"AUTH_HEADER": 1}


@pytest.mark.parametrize("url,kept", [
    ("https://deploy:P@ss" + "w0rd!x@example.com/repo.git", "@example.com/repo.git"),
    ("postgres://app:s3cr@t:x" + "9Lq@db.internal:5432/prod", "@db.internal:5432/prod"),
    ("redis://:Zq8" + "rT5vW2@cache:6379/0", "@cache:6379/0"),
])
def test_url_password_holding_at_signs(url, kept):
    out, counts = redact(f"git clone {url}")
    assert out == "git clone " + url.split("://")[0] + "://<SECRET_URL_CREDENTIALS>" + kept
    assert counts == {"URL_CREDENTIALS": 1}


@pytest.mark.parametrize("text", [
    "keys/" + GH + ".txt",  # a file path
    "release-" + GH,  # a tag name
    "v1_" + GH,
    "Dev Bot <" + GH + "@users.noreply.github.com>",  # an author field
])
def test_tokens_in_paths_ref_names_and_author_fields(text):
    out, counts = redact(text)
    assert GH not in out and counts == {"GITHUB_TOKEN": 1}


def test_several_secrets_of_different_kinds_in_one_text():
    key_id = "AKIA" + "Q3EGWX7ZPLMN4RTY"
    text = (f"# deploy notes\nAWS_ACCESS_KEY_ID={key_id}\naws_secret_access_key = {AWS_SECRET}\n"
            f"DB_PASSWORD=\"hunter2xyz\"\ncurl -H 'Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0' "
            f"https://ops:p@ss{LETTERS}@ci.example.com/\nGH={GH}\n{PEM}\njwt = {JWT}\n"
            f"ADMIN_PASSWORD={LETTERS}\nSECRET_KEY = 'dev'\n")
    out, counts = redact(text)
    for value in (key_id, AWS_SECRET, "hunter2xyz", "9f8e7d6c5b4a3928", LETTERS, GH, "Zz9y" * 4, JWT[:20]):
        assert value not in out
    assert counts == {"AWS_KEY": 1, "AWS_SECRET": 1, "PASSWORD": 2, "AUTH_HEADER": 1, "URL_CREDENTIALS": 1,
                      "GITHUB_TOKEN": 1, "PRIVATE_KEY": 1, "JWT": 1}
    assert out.endswith("SECRET_KEY = 'dev'\n")


# --- precision: what is not a secret stays as written ----------------------------------------------
FLASK_LOOKALIKES = [
    "SECRET_KEY = 'dev'", "app.config['SECRET_KEY'] = 'testkey'", "app.secret_key = 'development key'",
    "SECRET_KEY='testing'", "app.secret_key = 'devkey'", "SECRET_KEY = 'default'", "api_key = 'foo'",
    'password = "test"', "PASSWORD=changeme", "API_TOKEN=xxx", "api_key = '<your-key>'", 'password = "${DB_PASSWORD}"',
    "token = os.environ['GITHUB_TOKEN']", "secret_key: str = 'my-secret-key'", 'csrf_token = "csrfToken"',
    "password = 'secret123'", "client_secret = 'your-client-secret'",
    # seen in the real histories of click, express and cJSON
    'assert out == "Password:\\ninterrupted\\n"', '.expect(\'{"username":"tobi","password":"ferret"}\')',
    ".set('Authorization', 'Basic dG9iaTpmZXJyZXQ=')", '"dataStorePassword": "dataStoreTestQuery",',
    '"Host: 127.0.0.1\\r\\nPostman-Token: 768c7149-c3fb-f704-71a2-63918d9195b2\\r\\nAccept: */*"',
    # issue 23's review of the bundles: ky's test/hooks.ts
    "response.json({error: {code: 'TOKEN_REFRESH', newToken: 'refreshed-token-123'}});",
]


@pytest.mark.parametrize("text", FLASK_LOOKALIKES)
def test_placeholders_and_dictionary_words_are_left_alone(text):
    assert redact(text) == (text, {})


def _pieces(value: str) -> list[str]:
    """The lines of a value that are secret: 8+ characters, not a key's armor (`-----END ...`, `Version: x`)."""
    return [p for p in value.replace("\\n", "\n").splitlines()
            if len(p) >= 8 and not p.startswith("-----") and ": " not in p] or [value]


def _leaked(out: str, planted: list[tuple[str, str, str]]) -> list[str]:
    return [f"{kind} ({path})" for kind, value, path in planted if any(p in out for p in _pieces(value))]


def test_corpus_every_planted_secret_found_no_lookalike_touched():
    corpus = build_corpus()
    assert len(corpus.planted) >= 80 and len(corpus.kinds) >= 40 and corpus.kinds == set(KINDS)
    for path, text in corpus.files:
        out, _ = redact(text, path)
        assert not _leaked(out, [p for p in corpus.planted if p[2] == path])
    for path, text in corpus.clean:
        assert redact(text, path) == (text, {}), f"false alarm in {path}"
    for line in corpus.lookalikes:
        assert redact(line) == (line, {})


def _diff(old: str, new: str) -> str:
    return "\n".join(difflib.unified_diff(old.splitlines(), new.splitlines(), "a/x", "b/x", lineterm="")) + "\n"


def test_corpus_in_diffs_messages_paths_and_branch_names():
    corpus = build_corpus()
    for path in corpus.parts:
        planted = [p for p in corpus.planted if p[2] == path]
        history = ["", *versions(corpus, path), ""]  # added, added again, changed around each, deleted
        prefixes = set()
        for old, new in zip(history, history[1:]):
            diff = _diff(old, new)
            out, _ = redact(diff, path)
            assert not _leaked(out, planted), (path, diff)
            assert out == redact(out, path)[0]  # stage 2 redacts stage 1's output again
            prefixes |= {line[:1] for line in diff.splitlines()[3:] if any(p in line for v in planted for p in _pieces(v[1]))}
        assert not planted or prefixes >= {"+", "-", " "}, path
    message = "Rotate the credentials\n\n" + "".join(t for path in corpus.parts for t in corpus.parts[path])
    out, _ = redact(message)
    assert not _leaked(out, corpus.planted)
    named = named_values(corpus, {k: r for k, _, r in SHAPED if "v" not in r.groupindex and k != "PRIVATE_KEY"})
    assert len({k for k, _ in named}) >= 30
    for kind, value in named:
        for text in (f"keys/{value}.txt", f"fix/{value}", f"Dev Bot <{value}@users.noreply.github.com>"):
            out, counts = redact(text)
            assert value not in out and counts == {kind: 1}, text


def test_corpus_typed_code_left_as_written_in_files_and_diffs():
    corpus = build_corpus()
    assert len(corpus.typed) >= 100 and len({p.rsplit(".", 1)[1] for p, _ in corpus.typed}) >= 8
    for path, line in corpus.typed:
        assert redact(line + "\n", path) == (line + "\n", {}), line
        for prefix in "+- ":
            diff = f"@@ -1 +1 @@\n{prefix}{line}\n"
            assert redact(diff, path) == (diff, {}), line
        assert redact(line) == (line, {}), line  # without a path too


def test_redactor_counts_per_kind_and_field():
    r = Redactor()
    assert r(f"tag-{GH}", "refs") == "tag-<SECRET_GITHUB_TOKEN>"
    assert r('password = "hunter2xyz"', "diffs") == 'password = "<SECRET_PASSWORD>"'
    assert r("nothing here", "messages") == "nothing here"
    assert r.stats() == {"kinds": {"GITHUB_TOKEN": 1, "PASSWORD": 1}, "fields": {"diffs": 1, "refs": 1}}
    assert Redactor(enabled=False)(GH, "refs") == GH


def test_benchmark_against_detect_secrets_runs(capsys):
    pytest.importorskip("detect_secrets")
    import bench_redaction

    assert bench_redaction.main(["--repeat", "1"]) == 0
    out = capsys.readouterr().out
    n = len(build_corpus().planted)
    ours = next(line for line in out.splitlines() if line.startswith("ours "))
    assert ours.split()[1:3] == [f"{n}/{n}", "0"]  # every planted secret found, no false alarm
    assert "detect-secrets false alarms:" in out


# --- the leaks of issue 23, each a test -------------------------------------------------------------
PW = "Xk29" + "fLq8Zt"
KEY_LINES = ["MIIEpAIBAAKCAQEA" + "Qk3x7Lp2" * 6, "Zz9yB4nM" * 8, "Ab12Cd34" * 8, "Pq7Rs8Tu" * 8, "wX3yZ9" + "a=="]


@pytest.mark.parametrize("text,path", [
    (f"+https://bob:{PW}@github.com\n", None),  # the reproduction
    (f"@@ -0,0 +1 @@\n+postgres://app:{PW}@db/x\n", "deploy/db.txt"),
    (f"@@ -1,2 +1,2 @@\n-https://ci:{PW}@github.com\n+https://ci:other@github.com\n", ".git-credentials"),
    (f"@@ -1 +1 @@\n-flask==2.0\n+git+https://ci:{PW}@git.example.com/lib.git#egg=lib\n", "requirements.txt"),
    (f"diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n@@ -0,0 +1 @@\n"
     f"+https://u:{PW}@host.example.com/x\n\\ No newline at end of file\n", "link"),
    (f"@@ -3,3 +3,3 @@ def f():\n     url = 'https://u:{PW}@example.com'\n-    a = 1\n+    a = 2\n", "app.py"),
])
def test_url_credentials_at_the_start_of_a_diff_line(text, path):
    out, counts = redact(text, path)
    assert PW not in out and counts == {"URL_CREDENTIALS": 1}
    assert out.count("\n") == text.count("\n") and "<SECRET_URL_CREDENTIALS>@" in out


def test_private_key_hunk_without_its_begin_line():
    # one middle line of a committed key changed: context, `-` and `+` lines of key material only
    hunk = (f"@@ -2,5 +2,5 @@\n {KEY_LINES[0]}\n {KEY_LINES[1]}\n-{KEY_LINES[2]}\n+{KEY_LINES[3]}\n"
            f" {KEY_LINES[4]}\n")
    for path in ("deploy/id_rsa", "notes/backup.txt"):
        out, counts = redact(hunk, path)
        assert not any(line[:12] in out for line in KEY_LINES), path
        assert counts == {"PRIVATE_KEY": 1} and out.startswith("@@ -2,5 +2,5 @@\n <SECRET_PRIVATE_KEY>")
    # one changed line alone, in a file whose other versions held a key (the Redactor remembers)
    r = Redactor()
    r("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(KEY_LINES) + "\n-----END RSA PRIVATE KEY-----\n", "snapshots", "k/x")
    assert r(f"@@ -3 +3 @@\n-{KEY_LINES[2]}\n+{KEY_LINES[3]}\n", "diffs", "k/x").count("<SECRET_PRIVATE_KEY>") == 1


def test_certificate_and_base64_data_are_not_key_bodies():
    cert = "-----BEGIN CERTIFICATE-----\n" + "\n".join(KEY_LINES) + "\n-----END CERTIFICATE-----\n"
    assert redact(cert, "tests/ca.crt") == (cert, {})
    assert redact("@@ -1,2 +1,2 @@\n-" + "A" * 64 + "\n+" + "0f" * 32 + "\n", "x.txt")[1] == {}


@pytest.mark.parametrize("path,text", [
    (".netrc", f"machine api.example.com login bob password {PW}\n"),
    (".netrc", f"machine api.example.com\n  login bob\n  password {PW}\n"),
    ("ci/setup.sh", f"echo 'machine github.com login ci password {PW}' > ~/.netrc\n"),
])
def test_netrc_passwords(path, text):
    out, counts = redact(text, path)
    assert PW not in out and counts == {"PASSWORD": 1}


def test_docker_config_auth():
    auth = base64.b64encode(f"deploy:{PW}".encode()).decode()
    for path in (".docker/config.json", "k8s/pull-secret.json"):
        text = '{"auths": {"registry.example.com": {"auth": "' + auth + '"}}}\n'
        out, counts = redact(text, path)
        assert auth not in out and counts == {"DOCKER_AUTH": 1}
    harmless = base64.b64encode(b"user:password").decode()
    assert redact('{"auth": "' + harmless + '"}')[1] == {}


def test_kubernetes_secret_data():
    value = base64.b64encode(PW.encode()).decode()
    text = (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  db-pass: {value}\n"
            f"  user: {base64.b64encode(b'admin').decode()}\nstringData:\n  extra: {PW}\n")
    out, counts = redact(text, "k8s/db-secret.yaml")
    assert value not in out and PW not in out and counts == {"K8S_SECRET": 2}
    assert "user: YWRtaW4=" in out  # `admin`: a word


@pytest.mark.parametrize("kind,value", [
    ("MAILGUN_KEY", "key-" + "9f3b2c1d0e4a5b6c" * 2),
    ("DISCORD_TOKEN", "MTA4NjE1NzM5NDc0NjI0NjI3Mg" + ".GxYz1a." + "Kp9Lm2Nq4Rs6Tu8Vw0XyZ1aB3cD5eF7gH9i"),
    ("TELEGRAM_BOT_TOKEN", "5432109876" + ":AA" + "Fq8Zx2Lm4Np6Rs8Tu0Vw2Xy4Za6Bc8De0"),
])
def test_provider_tokens_under_ordinary_names(kind, value):
    out, counts = redact(f'client = Client("{value}")\nconfig.mail = "{value}"\n', "app/mail.py")
    assert value not in out and counts == {kind: 2}


TYPED = [  # (path, line): issue 23's rewritten lines, and their kin
    ("src/ids.rs", "    next_token: AtomicU64,"),
    ("src/sign.rs", "    signing_key: &crypto::SigningKey,"),
    ("src/sign.rs", "fn verify(secret_key: &crypto_suite::SecretKey, msg: &[u8]) -> bool {"),
    ("src/api.rs", "    api_key: ApiKeyV2,"),
    ("src/keys.ts", "  secretKey: Uint8Array;"),
    ("src/keys.ts", "  apiKey: Base64String;"),
    ("src/oauth.ts", "  clientSecret: OAuth2ClientSecret;"),
    ("src/Keys.kt", "    val privateKey: ECPrivateKey?"),
    ("src/Auth.kt", "    private var refreshToken: RefreshToken? = null"),
]


@pytest.mark.parametrize("path,line", TYPED)
def test_typed_code_is_left_as_written(path, line):
    assert redact(line + "\n", path) == (line + "\n", {})
    assert redact(f"@@ -1 +1 @@\n-{line}\n+{line}\n", path)[1] == {}  # in a diff
    assert redact(line) == (line, {})  # without a path


def test_hunk_header_function_context_is_scanned():
    # git repeats the line above a hunk after `@@`: a key line, a netrc line, a token cut at 80 bytes
    hunk = f"@@ -7,2 +7,3 @@ {KEY_LINES[1]}\n {KEY_LINES[2]}\n+{KEY_LINES[3]}\n -----END RSA PRIVATE KEY-----\n"
    out, counts = redact(hunk, "keys/a.pem")
    assert not any(line[:12] in out for line in KEY_LINES[1:4]) and counts == {"PRIVATE_KEY": 1}
    out, counts = redact(f"@@ -1 +1 @@ machine h login u password {PW}\n-a\n+b\n", ".netrc")
    assert PW not in out and counts == {"PASSWORD": 1}
    cut = ('def publish_release_to_the_package_index(): GH_TOKEN = "' + GH)[:80]  # as git cuts it: `ghp_` + 20
    out, counts = redact(f"@@ -3 +3 @@ {cut}\n-a\n+b\n")
    assert cut[-20:] not in out and counts == {"SECRET": 1}
    assert redact("@@ -3 +3 @@ def publish(version):\n-a\n+b\n")[1] == {}
    cut = ("def connect_to_the_production_database_server(): password = 'Tr0ub4dor&3x" + PW)[:80]
    out, counts = redact(f"@@ -3 +3 @@ {cut}\n-a\n+b\n")
    assert "Tr0ub4dor" not in out and counts == {"SECRET": 1}
    # a go.sum hash cut there is no secret (seen in cobra's history)
    go_sum = "github.com/inconshreveable/mousetrap v1.1.0 h1:wN+x4NVGpMsO7ErUn/mUI3vEoE" + "6Jt13X2"
    assert redact(f"@@ -4,8 +4,8 @@ {go_sum}\n-a\n+b\n", "go.sum")[1] == {}


@pytest.mark.parametrize("path,text,kinds", [
    ("infra/main.tf", "  password = var.db_password\n  token    = local.ci_token\n", {}),
    ("infra/prod.tfvars", 'db_password = "Tf9xQ2mLp4Zr8w"\n', {"PASSWORD": 1}),
    ("deploy.sh", f"export API_TOKEN={PW}\nTOKEN=$(cat /run/secrets/token)\n", {"TOKEN": 1}),
    ("src/db.py", f'dsn = "host=db user=app password={PW}"\npassword = hunter2\n', {"PASSWORD": 1}),
])
def test_values_as_each_format_defines_them(path, text, kinds):
    out, counts = redact(text, path)
    assert counts == kinds and PW not in out


def test_hunk_lines_without_their_header():
    # stage 2 widens hunks with context lines from the file and redacts them joined, without `@@`
    lines = f" {KEY_LINES[0]}\n {KEY_LINES[1]}\n-{KEY_LINES[2]}\n+{KEY_LINES[3]}"
    out, counts = redact(lines, "notes/backup.txt")
    assert not any(line[:12] in out for line in KEY_LINES[:4]) and counts == {"PRIVATE_KEY": 1}
    secret = (" apiVersion: v1\n kind: Secret\n data:\n-  db-pass: " + base64.b64encode(PW.encode()).decode()
              + "\n+  db-pass: " + base64.b64encode(PW[::-1].encode()).decode() + "\n")
    out, counts = redact(secret, "k8s/secret.yaml")
    assert counts == {"K8S_SECRET": 2} and out.count("\n") == secret.count("\n")
    assert redact("- a list\n- of words\n", "notes.md") == ("- a list\n- of words\n", {})
