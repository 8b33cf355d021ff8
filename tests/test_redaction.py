"""Secret redaction: one planted example of each kind is replaced; ordinary code is left alone."""

from __future__ import annotations

import pytest

from scrapers.redaction import KINDS, add_counts, redact

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
    ('  "secret": "very-secret-1",', '  "secret": "<SECRET_SECRET>",', "SECRET"),
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
    assert {kind for _, _, kind in PLANTED} == set(KINDS)


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
