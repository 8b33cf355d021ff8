"""Secret redaction: the one module that every text read from a repository goes through.

    from core.redaction import redact, Redactor
    clean, counts = redact(text, path="deploy/.env")      # counts: kind -> number replaced
    r = Redactor();  clean = r(text, "diffs", path);  r.kinds, r.fields   # for a stage's stats

Each secret becomes a typed placeholder such as `<SECRET_AWS_KEY>`. What is and is not
redacted, and why: docs/secrets.md. The rules:
- fixed-shape credentials found anywhere (private key blocks, cloud and service tokens:
  `scrapers/secret_rules.py`), and key material without its BEGIN line (`scrapers/secret_formats.py`);
- credentials in URLs (`scheme://user:pass@host`, the password may hold `@`) and in
  `Authorization`/`Bearer` headers; where formats put them (`.netrc`, docker `"auth"`, Kubernetes Secrets);
- values assigned to secret-like names (`password`, `token`, `api_key`, `client_secret`, ...) when the
  value looks like a credential (`scrapers/secret_values.py`), never code, templates or placeholders.
  Which values are literals depends on the file: in a config format every value; in code only
  literals (`next_token: AtomicU64` and `signing_key: &crypto::SigningKey` are code).
A diff is scanned line by line without its `+`/`-`/` ` markers, and each placeholder goes back in its line.

    >>> redact('aws_key = "AKIAIOSFODNN7EXAMPLE"\\nSECRET_KEY = "dev"')
    ('aws_key = "<SECRET_AWS_KEY>"\\nSECRET_KEY = "dev"', {'AWS_KEY': 1})

Speed: each rule first looks for a cheap literal (`in`, `str.find` on the lowercased text) and
runs its regex only where one occurs, so clean code costs a few fast scans.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Callable

from core.languages import category_of
from core.secret_formats import GONE, NETRC_NAMES, cut_tail, formats, is_diff, is_key_path, key_bodies, split_diff
from core.secret_rules import HEROKU_NAMED, SHAPED
from core.secret_values import basic_password, credential, keep_outside, placeholder

__all__ = ["redact", "add_counts", "count_placeholders", "KINDS", "Redactor"]

_Repl = Callable[[re.Match[str]], "str | None"]


# An AWS key id, and the 40-character secret key when it follows on the same line (the console's
# `credentials.csv`: `AKIA...,wJalr...`).
_AWS_KEY = re.compile(r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"
                      r"(?:(?P<sep>[\"']?[ \t]*[,;:|=][ \t]*[\"']?|[ \t]+)(?P<sec>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=]))?")

# The fixed shapes (scrapers/secret_rules.py), with the AWS key id after the private keys: it has its own
# replacement, which also takes the 40-character secret that follows it.
_SHAPED = SHAPED[:1] + [("AWS_KEY", None, _AWS_KEY)] + SHAPED[1:]

_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _glued(m: re.Match[str]) -> bool:
    """The match continues a longer word (`xghp_...`, not `\\nghp_...`): not a token of its own."""
    i, s = m.start(), m.string
    return i > 0 and s[i] in _WORD_CHARS and s[i - 1] in _WORD_CHARS and not (i > 1 and s[i - 2] == "\\")


# `aws_secret_access_key = wJalr...`: 40 base64 characters under an AWS secret name, whatever they look like
_AWS_SECRET = re.compile(r"(?i)[A-Za-z0-9_.-]*?aws_?secret_?(?:access_?)?key[\"']?\s*(?:=>|:=|[:=])\s*[\"']?"
                         r"(?P<v>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])")

# `scheme://user:pass@host`: the authority up to its last `@` (a password may hold `@` and `:`); the scheme
# is the run of letters before `://`, so a `+`, `-` or digit before it (a diff's marker) stays outside
_URL_CREDS = re.compile(r"[0-9+.\-]*[A-Za-z][A-Za-z0-9+.-]*://"
                        r"(?P<v>[^\s/?#@'\"<>\\:]*:[^\s/?#'\"<>\\]*)@(?=[A-Za-z0-9\[])")
_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")

# `Authorization: Bearer X`, `"Authorization": "token X"`, `-H 'Authorization: Basic X'`, `Bearer X`
_AUTH = re.compile(r"(?i)(?:(?:proxy-)?authorization[\"']?\s*[:=,]\s*[\"']?(?:(?P<scheme>bearer|basic|token|digest|api-?key)\s+)?"
                   r"|bearer\s+)(?P<v>[A-Za-z0-9._~+/=-]{8,})")

# --- values assigned to secret-like names, in code, config and env files --------------------------
# a name ending in a secret word, an optional closing quote, a separator (`=`, `:`, `=>`, `:=`, or a type
# annotation then `=`: `name: &str =`, `name: Optional[str] =`), a quoted (`b"..."` too) or bare value
_ASSIGN = re.compile(
    r"(?i)(?P<key>[A-Za-z0-9_.-]*?(?P<word>password|passwd|passphrase|pwd|_pass|secret|token|credentials?|_auth|"
    r"apikey|(?:api|secret|private|access|auth|signing|encryption|master|client)[_-]?key))"
    r"(?P<sep>[\"']?[ \t]*(?::[ \t]*[A-Za-z_&*][A-Za-z0-9_.\[\], |<>?&*:]*?(?==))?(?:=>|:=|[:=])(?!=)[ \t]*)"
    r"(?:[bBrRuU]{0,2}(?P<q>[\"'`])(?P<qval>[^\"'`\n]+)(?P=q)|(?P<bare>[^\s\"'`,;()\[\]{}<>\\]+)(?P<after>[(.\[]?))")
_XML_ASSIGN = re.compile(r"(?i)(?P<key>[A-Za-z0-9_.-]*?(?P<word>password|passwd|secret|token|apikey|api[_-]?key))>"
                         r"(?P<v>[^<\n]+)</")
_ASSIGN_FOLLOW = re.compile(r"[A-Za-z0-9_.-]*[\"']?[ \t]*(?:=>|:=|[:=]|>)(?!=)")  # rest of the name, a separator
_ASSIGN_NEEDLES = ("pass", "pwd", "secret", "token", "key", "credential", "_auth")
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_LINE_HEAD = re.compile(r"[+\- ]?[ \t]*(?:(?:export|ENV|set|-)[ \t]+)?[\"']?")  # diff marker, `export`, YAML list
_LINE_TAIL = re.compile(r"[\"']?[ \t]*(?:[ \t]#.*)?\r?(?:\n|\Z)")
_ENV_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")  # `new_password`, `os.environ`
# in code, a name, a reference or a type path is no value: `key`, `&crypto::SigningKey`, `self.key2`, `opts->key`
_CODE_REF = re.compile(r"[&*!~]*(?:[A-Za-z_$][A-Za-z0-9_$]*(?:::|\.|->))*[A-Za-z_$][A-Za-z0-9_$]*[?!]*")
# a type's name: capitalized words, acronyms and numbers (`AtomicU64`, `Ed25519Key`, `OAuth2ClientSecret`); a
# token has lower-case letters after a digit or alone between capitals (`Ab3xK9qLm2Zt`)
_TYPE_NAME = re.compile(r"[&*]*(?:[A-Za-z_][A-Za-z0-9_]*::)*(?=[A-Z])(?:[A-Z][a-z]+|[A-Z]+(?![a-z])|\d{1,5})+[?!]?")

# File names whose bare values are literals: settings formats (`.env`, YAML, `.properties`, ini/toml, rc
# files, Terraform variables, pip/npm/PyPI settings, netrc) and the shell-like files that set them
# (not Terraform's `.tf`: a bare value there is a reference, `password = var.db_password`)
_CONFIG_SUFFIXES = (".env", ".properties", ".yml", ".yaml", ".ini", ".cfg", ".conf", ".toml", ".tfvars",
                    "rc", ".netrc", ".pypirc", ".htpasswd", ".cnf", ".sh", ".bash", ".zsh", ".ksh", ".mk",
                    ".ps1", ".bat", ".cmd", ".git-credentials", ".envrc")
_CONFIG_NAMES = frozenset({"credentials", "config", "dockerfile", "containerfile", "procfile", "_netrc", "netrc",
                           "makefile", "gnumakefile", "pip.conf", "pip.ini", ".git-credentials"})

KINDS = ("AWS_SECRET",) + tuple(k for k, _, _ in _SHAPED) + (
    "URL_CREDENTIALS", "AUTH_HEADER", "DOCKER_AUTH", "K8S_SECRET", "PASSWORD", "TOKEN", "API_KEY", "SECRET")


def _assign_kind(word: str) -> str:
    w = word.lower()
    if "pass" in w or w == "pwd":
        return "PASSWORD"
    if w in ("token", "_auth"):
        return "TOKEN"
    if "api" in w:
        return "API_KEY"
    return "SECRET"


def is_config_path(path: str | None) -> bool:
    """Files whose unquoted values are literals: `.env*`, YAML, `.properties`, ini/toml, rc files,
    Terraform variables, netrc, pip/npm/PyPI settings, and shell-like files (`.sh`, Dockerfile, Makefile)."""
    if not path:
        return False
    name = path.rsplit("/", 1)[-1].lower()
    return name.startswith(".env") or name.endswith(_CONFIG_SUFFIXES) or name in _CONFIG_NAMES \
        or name.startswith(("docker-compose", "compose."))


@functools.lru_cache(maxsize=8192)  # the same paths come again in every commit that changes them
def text_format(path: str | None) -> str:
    """How the text at `path` holds values: "config" (a bare value is a literal), "code" (only literals
    are values: `name: Type` and references are code), or "text" (unknown: prose, messages, no path).

    >>> text_format("deploy/.env"), text_format("src/lib.rs"), text_format("README.md"), text_format(None)
    ('config', 'code', 'text', 'text')
    """
    if not path:
        return "text"
    if is_config_path(path):
        return "config"
    # by the file's language (its name alone: a test directory makes no YAML file code)
    return "code" if category_of(path.rsplit("/", 1)[-1]) in ("code", "tests") else "text"


def _in_string(text: str, pos: int) -> bool:
    """Is `pos` inside a quoted string on its line (an odd number of quotes before it)?"""
    line = text[text.rfind("\n", 0, pos) + 1:pos]
    return line.count('"') % 2 == 1 or line.count("'") % 2 == 1


def _bare_is_literal(text: str, m: re.Match[str], fmt: str) -> bool:
    """Is an unquoted value a literal? In a config file, yes. In code, never after `:` (`name: Type`,
    a field, a parameter, an object key holding a variable), and after `=` only inside a string or
    when it is no name, reference or type path. Elsewhere (prose, messages, unknown files), when the
    assignment is a whole line in env (`KEY=value`) or YAML (`key: value`, not a type's name) form,
    or when it is no identifier."""
    if m.group("after"):  # `token = make_token(...)`, `password = os.environ[...]`
        return False
    value, sep = m.group("bare"), m.group("sep")
    if fmt == "config":
        return True
    colon = sep.rstrip().endswith(":") and not sep.rstrip().endswith(":=")
    if fmt == "code":
        if colon:
            return False
        return _in_string(text, m.start()) or not _CODE_REF.fullmatch(value)
    if sep == ":":  # `Password:x` in code is no assignment (YAML and JSON put a space or a quote)
        return False
    start = text.rfind("\n", 0, m.start()) + 1
    if _LINE_HEAD.fullmatch(text, start, m.start()) and _LINE_TAIL.match(text, m.end()):
        if sep == "=" and _ENV_KEY.fullmatch(m.group("key")):
            return True
        if sep.strip() == "=" and "." in m.group("key") and "." not in value and "_" not in value:
            return True  # `spring.datasource.password=x`: a `.properties` line
        if colon and len(sep) > 1:
            return not _TYPE_NAME.fullmatch(value)
    if colon:  # `next_token: AtomicU64,` `signing_key: &crypto::SigningKey,`: a field or parameter
        return False
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


def redact(text: str, path: str | None = None, key_file: bool = False) -> tuple[str, dict[str, int]]:
    """Return `text` with every secret replaced by `<SECRET_KIND>`, and the counts per kind.

    `path`, when the text is a file's content or diff, tells config files (whose unquoted values
    are literals) from code (where only literals are values) and says whether the file holds a
    key (`key_file` says so too: a file whose other versions held one). A diff is scanned line by
    line without its markers, and each placeholder put back inside its line.

    >>> redact("db = postgres://admin:s3cr3t@db.example.com/app")
    ('db = postgres://<SECRET_URL_CREDENTIALS>@db.example.com/app', {'URL_CREDENTIALS': 1})
    >>> redact("password = get_password()")
    ('password = get_password()', {})
    >>> redact("@@ -1 +1 @@\\n-old\\n+https://bob:Xk29fLq8Zt@github.com")[0]
    '@@ -1 +1 @@\\n-old\\n+https://<SECRET_URL_CREDENTIALS>@github.com'
    """
    fmt = text_format(path)
    key_file = key_file or is_key_path(path)
    netrc = bool(path) and path.rsplit("/", 1)[-1].lower() in NETRC_NAMES
    if not is_diff(text):
        return _redact(text, fmt, key_file, netrc, False)
    prefixes, contents = split_diff(text)
    out, counts = _redact("\n".join(contents), fmt, key_file, netrc, True)
    lines = out.split("\n")
    if len(lines) != len(prefixes):  # cannot happen: every replacement keeps its lines
        return _redact(text, fmt, key_file, netrc, False)
    for i in [i for i, p in enumerate(prefixes) if p[:2] == "@@"]:  # git cut a hunk header's context at 80
        lines[i] = cut_tail(lines[i], counts)                          # bytes: a secret's start may end it
    if not counts:
        return text, counts
    return "\n".join(p + line for p, line in zip(prefixes, lines) if line != GONE), counts


def _redact(text: str, fmt: str, key_file: bool, netrc: bool, folded: bool) -> tuple[str, dict[str, int]]:
    """`redact` on one text; `folded`: the text is a diff's content, whose lines a multi-line
    secret keeps (the placeholder, then `GONE` lines). The passes run in order: shaped tokens, key
    bodies, named keys, URL credentials, formats, auth headers, assignments."""
    counts: dict[str, int] = {}

    def bump(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return placeholder(kind)

    text = _shaped(text, folded, bump)
    text = key_bodies(text, key_file, folded, bump)
    text = _named_keys(text, bump)
    text = _url_credentials(text, bump)
    text = formats(text, netrc, bump)
    text = _auth_headers(text, bump)
    return _assignments(text, fmt, bump), counts


def _shaped(text: str, folded: bool, bump: Callable[[str], str]) -> str:
    """Tokens known by their shape (`_SHAPED`): one fast scan each, the replacing only where one matched."""
    def whole_or_v(kind: str) -> _Repl:
        def repl(m: re.Match[str]) -> str:
            if _glued(m):
                return m.group(0)
            if "v" in m.re.groupindex:
                return keep_outside(m, "v", bump(kind))
            return bump(kind) + ("\n" + GONE) * m.group(0).count("\n") if folded else bump(kind)
        return repl

    def aws(m: re.Match[str]) -> str:
        if _glued(m):
            return m.group(0)
        key = bump("AWS_KEY")
        return key if m.group("sec") is None else key + m.group("sep") + bump("AWS_SECRET")

    for kind, gate, pattern in _SHAPED:
        if (gate is None or (gate.search(text) if isinstance(gate, re.Pattern) else any(g in text for g in gate))) \
                and pattern.search(text):
            text = pattern.sub(aws if kind == "AWS_KEY" else whole_or_v(kind), text)
    return text


def _named_keys(text: str, bump: Callable[[str], str]) -> str:
    """AWS secrets and Heroku keys, known by the name standing before them."""
    low = _lower(text)
    if "aws" in low:
        text = _sub_at(text, _starts(low, ("aws",), _KEY_CHARS), lambda i: _AWS_SECRET.match(text, i),
                       lambda m: keep_outside(m, "v", bump("AWS_SECRET")))
    if "heroku" in low:
        text = HEROKU_NAMED.sub(lambda m: keep_outside(m, "v", bump("HEROKU_KEY")), text)
    return text


def _url_credentials(text: str, bump: Callable[[str], str]) -> str:
    """The password of `scheme://user:password@host`, where it looks like a credential."""
    if "://" not in text or "@" not in text:
        return text

    def url(m: re.Match[str]) -> str | None:
        password = m.group("v").split(":", 1)[1]
        return keep_outside(m, "v", bump("URL_CREDENTIALS")) if credential(password, "PASSWORD") else None
    return _sub_at(text, _starts(text, ("://",), _SCHEME_CHARS), lambda i: _URL_CREDS.match(text, i), url)


def _auth_headers(text: str, bump: Callable[[str], str]) -> str:
    """`Authorization:` / `Bearer` values; a Basic header is judged by the password it encodes."""
    low = _lower(text)
    if "bearer" not in low and "authorization" not in low:
        return text

    def auth(m: re.Match[str]) -> str | None:
        value = m.group("v")
        if (m.group("scheme") or "").lower() == "basic":  # base64 of `user:password`: judge the password
            value = basic_password(value)
            ok = value is None or credential(value, "PASSWORD")
        else:
            ok = credential(value, "TOKEN")
        return keep_outside(m, "v", bump("AUTH_HEADER")) if ok else None
    return _sub_at(text, _starts(low, ("bearer", "authorization"), _KEY_CHARS), lambda i: _AUTH.match(text, i), auth)


def _assignments(text: str, fmt: str, bump: Callable[[str], str]) -> str:
    """Values assigned to secret-named keys (`password = "..."`, `<password>...</password>`), where
    the value is a literal that looks like a credential of that kind."""
    def assign_match(i: int) -> re.Match[str] | None:
        m = _ASSIGN.match(text, i)
        if m is None and i > 0 and text[i - 1] == "<":
            m = _XML_ASSIGN.match(text, i)
        return m

    def assign(m: re.Match[str]) -> str | None:
        kind = _assign_kind(m.group("word"))
        if "v" in m.re.groupindex:  # <password>value</password>
            return keep_outside(m, "v", bump(kind)) if credential(m.group("v").strip(), kind) else None
        bare = m.group("bare")
        if bare is not None and not _bare_is_literal(text, m, fmt):
            return None
        value = bare if bare is not None else m.group("qval")
        if not credential(value, kind):
            return None
        return keep_outside(m, "bare" if bare is not None else "qval", bump(kind))

    return _sub_at(text, _starts(_lower(text), _ASSIGN_NEEDLES, _KEY_CHARS, _ASSIGN_FOLLOW), assign_match, assign)


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
        self._key_paths: set[str] = set()  # files that held a private key: any later hunk of them may show key lines

    def __call__(self, text: str, field: str, path: str | None = None) -> str:
        if not self.enabled or not text:
            return text
        key_file = path in self._key_paths
        if len(text) <= self.SHORT and not key_file:
            key = (text, path)
            done = self._done.get(key)
            if done is None:
                done = redact(text, path)
                if len(self._done) < self.KEPT:
                    self._done[key] = done
            text, counts = done
        else:
            text, counts = redact(text, path, key_file)
        if counts:
            if "PRIVATE_KEY" in counts and path:
                self._key_paths.add(path)
            add_counts(self.kinds, counts)
            self.fields[field] = self.fields.get(field, 0) + sum(counts.values())
        return text

    def add(self, other: "Redactor") -> None:
        add_counts(self.kinds, other.kinds)
        add_counts(self.fields, other.fields)

    def stats(self) -> dict:
        return {"kinds": dict(sorted(self.kinds.items())), "fields": dict(sorted(self.fields.items()))}
