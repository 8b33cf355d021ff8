"""Secret redaction: the one module that every text read from a repository goes through.

    from core.redaction import redact, Redactor
    clean, counts = redact(text, path="deploy/.env")      # counts: kind -> number replaced
    r = Redactor();  clean = r(text, "diffs", path);  r.kinds, r.fields   # for a stage's stats

Each secret becomes a typed placeholder such as `<SECRET_AWS_KEY>`. What is and is not
redacted, and why: docs/secrets.md. Three families of rules:
- fixed-shape credentials found anywhere (private key blocks, cloud and service tokens: see `_SHAPED`);
- credentials in URLs (`scheme://user:pass@host`, the password may hold `@`) and in
  `Authorization`/`Bearer` headers;
- values assigned to secret-like names (`password`, `token`, `api_key`, `client_secret`, ...)
  when the value looks like a credential (`_credential`), never code, templates or placeholders.

    >>> redact('aws_key = "AKIAIOSFODNN7EXAMPLE"\\nSECRET_KEY = "dev"')
    ('aws_key = "<SECRET_AWS_KEY>"\\nSECRET_KEY = "dev"', {'AWS_KEY': 1})

Speed: each rule first looks for a cheap literal (`in`, `str.find` on the lowercased text) and
runs its regex only where one occurs, so clean code costs a few fast scans.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from typing import Callable

__all__ = ["redact", "add_counts", "count_placeholders", "KINDS", "Redactor"]

_Repl = Callable[[re.Match[str]], "str | None"]


def _placeholder(kind: str) -> str:
    return f"<SECRET_{kind}>"


# An AWS key id, and the 40-character secret key when it follows on the same line (the console's
# `credentials.csv`: `AKIA...,wJalr...`).
_AWS_KEY = re.compile(r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
                      r"(?:(?P<sep>[\"']?[ \t]*[,;:|=][ \t]*[\"']?|[ \t]+)(?P<sec>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=]))?")

# --- fixed-shape credentials: (kind, literals that gate the regex or None, regex) ----------------
# A match is replaced whole, or only its group "v" when the regex has one; a match right after a
# letter or digit is part of a longer word and stays (`_` may precede: `v1_ghp_...` in a tag name).
# A regex that starts with a literal is scanned for as fast as `in` would; the others are gated by
# literals.
_PEM = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_SHAPED: list[tuple[str, tuple[str, ...] | None, re.Pattern[str]]] = [
    # the lookahead wants key material next (after blanks, a JSON `\n`, quotes, a diff's `+`/`-`, `Version:`
    # header lines), so code that merely names the header stays; each part of it can match one way
    # only, so it takes linear time
    ("PRIVATE_KEY", None, re.compile(
        _PEM + r"(?=(?:[\s+\-\"']|\\n)*(?:[A-Z][A-Za-z-]+:[^\n]*\n(?:[\s+\-\"']|\\n)*)*[A-Za-z0-9+/]{32})[\s\S]*?"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)")),
    ("AWS_KEY", None, _AWS_KEY),
    ("GITHUB_TOKEN", None, re.compile(
        r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})")),
    ("GITLAB_TOKEN", None, re.compile(
        r"gl(?:pat|dt|rt|ptt|soat|cbt)-[A-Za-z0-9_\-]{20,}")),
    ("SLACK_TOKEN", None, re.compile(r"xox[baprse]-[A-Za-z0-9-]{10,}")),
    ("SLACK_WEBHOOK", None, re.compile(
        r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{16,}")),
    ("STRIPE_KEY", ("k_live_", "k_test_"), re.compile(r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("GOOGLE_API_KEY", None, re.compile(r"AIza[0-9A-Za-z_\-]{35}")),
    ("GOOGLE_OAUTH_SECRET", None, re.compile(r"GOCSPX-[A-Za-z0-9_\-]{28}")),
    ("AZURE_STORAGE_KEY", ("ccountKey", "ccessKey="), re.compile(
        r"(?i:AccountKey|SharedAccessKey)\s*=\s*(?P<v>[A-Za-z0-9+/]{40,}={0,2})")),
    ("AZURE_CLIENT_SECRET", ("Q~",), re.compile(r"[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}")),
    ("JWT", None, re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("NPM_TOKEN", None, re.compile(r"npm_[A-Za-z0-9]{36}")),
    ("PYPI_TOKEN", None, re.compile(r"pypi-AgE[A-Za-z0-9_-]{50,}")),
    ("OPENAI_KEY", None, re.compile(
        r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})")),
    ("ANTHROPIC_KEY", None, re.compile(r"sk-ant-[a-z]+\d\d-[A-Za-z0-9_-]{80,}")),
    ("HUGGINGFACE_TOKEN", None, re.compile(r"hf_[A-Za-z]{34,}")),
    ("SENDGRID_KEY", None, re.compile(r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")),
    ("TWILIO_KEY", None, re.compile(r"SK[0-9a-f]{32}(?![A-Za-z0-9])")),
    ("SHOPIFY_TOKEN", None, re.compile(r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}")),
    ("DIGITALOCEAN_TOKEN", None, re.compile(r"do[por]_v1_[a-f0-9]{64}")),
]

_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _glued(m: re.Match[str]) -> bool:
    """The match continues a longer word (`xghp_...`, not `\\nghp_...`): not a token of its own."""
    i, s = m.start(), m.string
    return i > 0 and s[i] in _WORD_CHARS and s[i - 1] in _WORD_CHARS and not (i > 1 and s[i - 2] == "\\")


# `aws_secret_access_key = wJalr...`: 40 base64 characters under an AWS secret name, whatever they look like
_AWS_SECRET = re.compile(r"(?i)[A-Za-z0-9_.-]*?aws_?secret_?(?:access_?)?key[\"']?\s*(?:=>|:=|[:=])\s*[\"']?"
                         r"(?P<v>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])")

# `scheme://user:pass@host`: the authority up to its last `@` (a password may hold `@` and `:`)
_URL_CREDS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?P<v>[^\s/?#@'\"<>\\:]*:[^\s/?#'\"<>\\]*)@(?=[A-Za-z0-9\[])")
_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")

# `Authorization: Bearer X`, `"Authorization": "token X"`, `-H 'Authorization: Basic X'`, `Bearer X`
_AUTH = re.compile(r"(?i)(?:(?:proxy-)?authorization[\"']?\s*[:=,]\s*[\"']?(?:(?P<scheme>bearer|basic|token|digest|api-?key)\s+)?"
                   r"|bearer\s+)(?P<v>[A-Za-z0-9._~+/=-]{8,})")

# --- values assigned to secret-like names, in code, config and env files --------------------------
# a name ending in a secret word, an optional closing quote, a separator, a quoted or bare value
_ASSIGN = re.compile(
    r"(?i)(?P<key>[A-Za-z0-9_.-]*?(?P<word>password|passwd|passphrase|pwd|_pass|secret|token|credentials?|"
    r"apikey|(?:api|secret|private|access|auth|signing|encryption|master|client)[_-]?key))"
    r"(?P<sep>[\"']?[ \t]*(?::[ \t]*[A-Za-z_][A-Za-z0-9_.\[\], |]*?(?==))?(?:=>|:=|[:=])(?!=)[ \t]*)"
    r"(?:(?P<q>[\"'`])(?P<qval>[^\"'`\n]+)(?P=q)|(?P<bare>[^\s\"'`,;()\[\]{}<>\\]+)(?P<after>[(.\[]?))")
_XML_ASSIGN = re.compile(r"(?i)(?P<key>[A-Za-z0-9_.-]*?(?P<word>password|passwd|secret|token|apikey|api[_-]?key))>"
                         r"(?P<v>[^<\n]+)</")
_ASSIGN_FOLLOW = re.compile(r"[A-Za-z0-9_.-]*[\"']?[ \t]*(?:=>|:=|[:=]|>)(?!=)")  # rest of the name, a separator
_ASSIGN_NEEDLES = ("pass", "pwd", "secret", "token", "key", "credential")
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_LINE_HEAD = re.compile(r"[+\- ]?[ \t]*(?:(?:export|ENV|set|-)[ \t]+)?[\"']?")  # diff marker, `export`, YAML list
_LINE_TAIL = re.compile(r"[\"']?[ \t]*(?:[ \t]#.*)?\r?(?:\n|\Z)")
_ENV_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")  # `new_password`, `os.environ`

# File names whose bare values are literals (`.env`, YAML, `.properties`, ini/toml, rc files)
_CONFIG_SUFFIXES = (".env", ".properties", ".yml", ".yaml", ".ini", ".cfg", ".conf", ".toml", ".tfvars",
                    "rc", ".netrc", ".pypirc", ".htpasswd", ".cnf")
_CONFIG_NAMES = frozenset({"credentials", "config", "dockerfile", "containerfile", "procfile"})

KINDS = ("AWS_SECRET",) + tuple(k for k, _, _ in _SHAPED) + (
    "URL_CREDENTIALS", "AUTH_HEADER", "PASSWORD", "TOKEN", "API_KEY", "SECRET")

# --- what a value must look like to be redacted ---------------------------------------------------
# Words that example and test values are made of: a value that is only these words (and short
# numbers), like `testkey`, `development key`, `my-secret-key`, `changeme`, is a placeholder.
_PLACEHOLDER_WORDS = frozenset("""
a an the my your our this that it me to here is not no none null nil empty blank unset
dev devel develop development test tests testing tester demo debug local localhost example examples
sample default defaults foo bar baz qux quux dummy fake mock stub placeholder changeme change replace
insert put enter set secret secrets key keys password passwords passwd pass pwd token tokens api app
application access auth private public client server service session cookie csrf jwt bearer signing
encryption hash salt value string str bytes required optional todo fixme admin root user username guest
login db database postgres mysql redis prod production staging stage super very insecure unsafe
secure shh sekrit hidden xyz abc abcd qwerty letmein hello world random new old wrong bad invalid
valid correct other another some flask django web site
""".split())
_TEMPLATE = re.compile(r"\$\{|\{\{|\{%|%\(|%s|\{\d*\}|#\{|\$\(|^[$%<{\[(*:/~]|^@[\w.-]+@\Z|\benv(?:iron)?\b|getenv|"
                       r"secrets\.|vault:", re.I)
_WORDS = re.compile(r"[a-z]+|[0-9]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_WORD = re.compile(r"(?:[a-z]{1,12}|[A-Z][a-z]{0,11}|[A-Z]{1,12}|[a-z]+(?:[A-Z][a-z]+)+|(?:[A-Z][a-z]+){2,})\Z")
_CAMEL_IDENT = re.compile(r"[A-Za-z][a-z]+(?:[_.\-]?[A-Z]?[a-z]+)*\Z")  # accessToken, session_key, SecretKeyBase


def _segments(word: str) -> bool:
    """True when `word` (lowercase letters) is a concatenation of placeholder words: `testkey`."""
    if len(word) > 48:
        return False
    ok = [True] + [False] * len(word)
    for i in range(1, len(word) + 1):
        ok[i] = any(ok[j] and word[j:i] in _PLACEHOLDER_WORDS for j in range(max(0, i - 12), i))
    return ok[-1]


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _harmless(value: str) -> bool:
    """Short, repetitive, a template or reference, a UUID (an id), one word (`ferret`, `dataStoreQuery`:
    letters only, up to 12 in one case or camel case), or only placeholder words and short numbers."""
    if len(value) < 6 or len(set(value)) <= 2 or _TEMPLATE.search(value) or _UUID.match(value) or _WORD.match(value):
        return True
    parts = _WORDS.findall(value.lower())
    return all(_segments(p) if p.isalpha() else len(p) <= 6 for p in parts)


def _random_looking(value: str) -> bool:
    """A token, not a word: 8+ characters, no spaces, not an identifier, and letters with digits,
    or mixed case from 12 characters, or 20+ characters of 3.5+ bits of entropy per character."""
    if len(value) < 8 or any(c.isspace() for c in value):
        return False
    entropy = _entropy(value)
    if _CAMEL_IDENT.match(value):  # words: only a long run of random lowercase letters counts
        return value.isalpha() and value.islower() and len(value) >= 20 and entropy >= 3.5
    digit = any(c.isdigit() for c in value)
    alpha = any(c.isalpha() for c in value)
    mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
    return ((digit and alpha and entropy >= 2.5) or (mixed and len(value) >= 12 and entropy >= 3.0)
            or (len(value) >= 20 and entropy >= 3.5))


def _credential(value: str, kind: str) -> bool:
    """Does a value assigned to a name of this kind look like a real credential?

    Passwords: anything that is not harmless (`hunter2`, `correcthorsebatterystaple`). Tokens,
    keys and secrets: not harmless and random-looking (`dev`, `development key`, `accessToken` stay).
    """
    if _harmless(value):
        return False
    return kind == "PASSWORD" or _random_looking(value)


def _basic_password(value: str) -> str | None:
    """The password inside a Basic credential (`dG9iaTpmZXJyZXQ=` -> `ferret`); None if it does not decode."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[-1] if decoded.isprintable() else None


def _assign_kind(word: str) -> str:
    w = word.lower()
    if "pass" in w or w == "pwd":
        return "PASSWORD"
    if w == "token":
        return "TOKEN"
    if "api" in w:
        return "API_KEY"
    return "SECRET"


def is_config_path(path: str | None) -> bool:
    """Files whose unquoted values are literals: `.env*`, YAML, `.properties`, ini/toml, rc files."""
    if not path:
        return False
    name = path.rsplit("/", 1)[-1].lower()
    return name.startswith(".env") or name.endswith(_CONFIG_SUFFIXES) or name in _CONFIG_NAMES \
        or name.startswith(("docker-compose", "compose."))


def _bare_is_literal(text: str, m: re.Match[str], config: bool) -> bool:
    """An unquoted value is a literal in a config file, or when the assignment is a whole line in
    env (`KEY=value`) or YAML (`key: value`) form; in code it is one only if it is no identifier."""
    if m.group("after"):  # `token = make_token(...)`, `password = os.environ[...]`
        return False
    value, sep = m.group("bare"), m.group("sep")
    if config:
        return True
    if sep == ":":  # `Password:x` in code is no assignment (YAML and JSON put a space or a quote)
        return False
    start = text.rfind("\n", 0, m.start()) + 1
    if _LINE_HEAD.fullmatch(text, start, m.start()) and _LINE_TAIL.match(text, m.end()):
        if sep == "=" and _ENV_KEY.fullmatch(m.group("key")):
            return True
        if sep.startswith(":") and sep[1:].strip() == "" and len(sep) > 1:
            return True
    return not _IDENTIFIER.fullmatch(value)


def _starts(hay: str, needles: tuple[str, ...], word_chars: frozenset[str],
            follow: re.Pattern[str] | None = None) -> list[int]:
    """Sorted start positions of the words (runs of `word_chars`) around each needle occurrence;
    with `follow`, only occurrences where `follow` matches right after the needle count."""
    starts = set()
    for needle in needles:
        i = hay.find(needle)
        while i != -1:
            if follow is None or follow.match(hay, i + len(needle)):
                j = i
                while j > 0 and hay[j - 1] in word_chars:
                    j -= 1
                starts.add(j)
            i = hay.find(needle, i + len(needle))
    return sorted(starts)


def _lower(text: str) -> str:
    """A lowercased copy with the same length, so positions found in it hold in `text`."""
    low = text.lower()
    return low if len(low) == len(text) else "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _sub_at(text: str, starts: list[int], match: Callable[[int], re.Match[str] | None], repl: _Repl) -> str:
    """Replace the match found at each of `starts` (non-overlapping); `repl` None keeps a match."""
    out: list[str] = []
    last = 0
    for start in starts:
        if start < last:
            continue
        m = match(start)
        if m is None:
            continue
        replacement = repl(m)
        if replacement is None:
            continue
        out += (text[last:start], replacement)
        last = m.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _keep_outside(m: re.Match[str], group: str, placeholder: str) -> str:
    """The match with only `group` replaced by the placeholder."""
    s, e = m.span(group)
    return m.group(0)[:s - m.start()] + placeholder + m.group(0)[e - m.start():]


def redact(text: str, path: str | None = None) -> tuple[str, dict[str, int]]:
    """Return `text` with every secret replaced by `<SECRET_KIND>`, and the counts per kind.

    `path`, when the text is a file's content or diff, tells config files (whose unquoted
    values are literals) from code.

    >>> redact("db = postgres://admin:s3cr3t@db.example.com/app")
    ('db = postgres://<SECRET_URL_CREDENTIALS>@db.example.com/app', {'URL_CREDENTIALS': 1})
    >>> redact("password = get_password()")
    ('password = get_password()', {})
    """
    counts: dict[str, int] = {}

    def bump(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return _placeholder(kind)

    def whole_or_v(kind: str) -> _Repl:
        def repl(m: re.Match[str]) -> str:
            if _glued(m):
                return m.group(0)
            return _keep_outside(m, "v", bump(kind)) if "v" in m.re.groupindex else bump(kind)
        return repl

    def aws(m: re.Match[str]) -> str:
        if _glued(m):
            return m.group(0)
        key = bump("AWS_KEY")
        return key if m.group("sec") is None else key + m.group("sep") + bump("AWS_SECRET")

    for kind, literals, pattern in _SHAPED:  # one fast scan each; the replacing only where one matched
        if (literals is None or any(lit in text for lit in literals)) and pattern.search(text):
            text = pattern.sub(aws if kind == "AWS_KEY" else whole_or_v(kind), text)

    low = _lower(text)
    if "aws" in low:
        text = _sub_at(text, _starts(low, ("aws",), _KEY_CHARS), lambda i: _AWS_SECRET.match(text, i),
                       lambda m: _keep_outside(m, "v", bump("AWS_SECRET")))

    if "://" in text and "@" in text:
        def url(m: re.Match[str]) -> str | None:
            password = m.group("v").split(":", 1)[1]
            return _keep_outside(m, "v", bump("URL_CREDENTIALS")) if _credential(password, "PASSWORD") else None
        text = _sub_at(text, _starts(text, ("://",), _SCHEME_CHARS), lambda i: _URL_CREDS.match(text, i), url)

    low = _lower(text)  # again: every rule above may have changed the text
    if "bearer" in low or "authorization" in low:
        def auth(m: re.Match[str]) -> str | None:
            value = m.group("v")
            if (m.group("scheme") or "").lower() == "basic":  # base64 of `user:password`: judge the password
                value = _basic_password(value)
                ok = value is None or _credential(value, "PASSWORD")
            else:
                ok = _credential(value, "TOKEN")
            return _keep_outside(m, "v", bump("AUTH_HEADER")) if ok else None
        text = _sub_at(text, _starts(low, ("bearer", "authorization"), _KEY_CHARS), lambda i: _AUTH.match(text, i), auth)
        low = _lower(text)

    config = is_config_path(path)

    def assign_match(i: int) -> re.Match[str] | None:
        m = _ASSIGN.match(text, i)
        if m is None and i > 0 and text[i - 1] == "<":
            m = _XML_ASSIGN.match(text, i)
        return m

    def assign(m: re.Match[str]) -> str | None:
        kind = _assign_kind(m.group("word"))
        if "v" in m.re.groupindex:  # <password>value</password>
            return _keep_outside(m, "v", bump(kind)) if _credential(m.group("v").strip(), kind) else None
        bare = m.group("bare")
        if bare is not None and not _bare_is_literal(text, m, config):
            return None
        value = bare if bare is not None else m.group("qval")
        if not _credential(value, kind):
            return None
        return _keep_outside(m, "bare" if bare is not None else "qval", bump(kind))

    text = _sub_at(text, _starts(low, _ASSIGN_NEEDLES, _KEY_CHARS, _ASSIGN_FOLLOW), assign_match, assign)
    return text, counts


def add_counts(total: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    """Add `counts` into `total` in place and return it (for stage statistics)."""
    for kind, n in counts.items():
        total[kind] = total.get(kind, 0) + n
    return total


_PLACEHOLDER = re.compile(r"<SECRET_([A-Z_]+)>")


def count_placeholders(text: str, total: Counter) -> Counter:
    """Add the placeholders in `text` to `total`, per kind (what redaction removed from an output)."""
    if "<SECRET_" in text:
        total.update(_PLACEHOLDER.findall(text))
    return total


class Redactor:
    """Redacts texts for one stage and keeps its statistics: secrets per kind and per field.

        r = Redactor(enabled=True);  clean = r(text, "paths");  r.kinds  # {'GITHUB_TOKEN': 1}
    """

    SHORT = 256  # texts up to this long (names, e-mails, paths, subjects) are redacted once each ...
    KEPT = 100_000  # ... the first this many of them: they come again and again

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.kinds: dict[str, int] = {}
        self.fields: dict[str, int] = {}
        self._done: dict[tuple[str, str | None], tuple[str, dict[str, int]]] = {}

    def __call__(self, text: str, field: str, path: str | None = None) -> str:
        if not self.enabled or not text:
            return text
        if len(text) <= self.SHORT:
            key = (text, path)
            done = self._done.get(key)
            if done is None:
                done = redact(text, path)
                if len(self._done) < self.KEPT:
                    self._done[key] = done
            text, counts = done
        else:
            text, counts = redact(text, path)
        if counts:
            add_counts(self.kinds, counts)
            self.fields[field] = self.fields.get(field, 0) + sum(counts.values())
        return text

    def add(self, other: "Redactor") -> None:
        add_counts(self.kinds, other.kinds)
        add_counts(self.fields, other.fields)

    def stats(self) -> dict:
        return {"kinds": dict(sorted(self.kinds.items())), "fields": dict(sorted(self.fields.items()))}
