"""Secret redaction: the one module that every text read from a repository goes through.

    from scrapers.redaction import redact, Redactor
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

from scrapers.languages import category_of
from scrapers.secret_rules import HEROKU_NAMED, PREFIXES, SHAPED

__all__ = ["redact", "add_counts", "count_placeholders", "KINDS", "Redactor"]

_Repl = Callable[[re.Match[str]], "str | None"]


def _placeholder(kind: str) -> str:
    return f"<SECRET_{kind}>"


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
_URL_CREDS = re.compile(r"[0-9+.\-]*[A-Za-z][A-Za-z0-9+.-]*://(?P<v>[^\s/?#@'\"<>\\:]*:[^\s/?#'\"<>\\]*)@(?=[A-Za-z0-9\[])")
_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")

# `Authorization: Bearer X`, `"Authorization": "token X"`, `-H 'Authorization: Basic X'`, `Bearer X`
_AUTH = re.compile(r"(?i)(?:(?:proxy-)?authorization[\"']?\s*[:=,]\s*[\"']?(?:(?P<scheme>bearer|basic|token|digest|api-?key)\s+)?"
                   r"|bearer\s+)(?P<v>[A-Za-z0-9._~+/=-]{8,})")

# --- formats that say where their credentials are --------------------------------------------------
# `.netrc`: `machine h login u password X` (found anywhere), and any `password X` line in a netrc
_NETRC_LINE = re.compile(r"machine[ \t]+\S+\s+(?:login[ \t]+\S+\s+)?password[ \t]+(?P<v>\S+)")
_NETRC_PASSWORD = re.compile(r"(?m)^[ \t]*(?:machine[ \t]+\S+[ \t]+|login[ \t]+\S+[ \t]+|default[ \t]+)*"
                             r"password[ \t]+(?P<v>\S+)")
_NETRC_NAMES = frozenset({".netrc", "_netrc", "netrc"})
# docker `config.json` / `.dockerconfigjson`: `"auth": base64(user:password)`
_DOCKER_AUTH = re.compile(r"\"auth\"[ \t]*:[ \t]*\"(?P<v>[A-Za-z0-9+/]{6,}={0,2})\"")
# a Kubernetes Secret: every value of its `data:` (base64) and `stringData:` maps
_K8S_KIND = re.compile(r"(?m)^[ \t]*kind:[ \t]*[\"']?Secret[\"']?[ \t]*\r?$")
_K8S_MAP = re.compile(r"(?m)^(?P<i>[ \t]*)(?P<which>data|stringData):[ \t]*\r?\n(?P<body>(?:(?P=i)[ \t]+\S.*(?:\n|\Z))+)")
_K8S_ENTRY = re.compile(r"(?m)^[ \t]+[\"']?[A-Za-z0-9_.-]+[\"']?:[ \t]+[\"']?(?P<v>[^\s\"'#]+)")

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
_CONFIG_SUFFIXES = (".env", ".properties", ".yml", ".yaml", ".ini", ".cfg", ".conf", ".toml", ".tfvars", ".tf",
                    ".hcl", "rc", ".netrc", ".pypirc", ".htpasswd", ".cnf", ".sh", ".bash", ".zsh", ".ksh", ".mk",
                    ".ps1", ".bat", ".cmd", ".git-credentials", ".envrc")
_CONFIG_NAMES = frozenset({"credentials", "config", "dockerfile", "containerfile", "procfile", "_netrc", "netrc",
                           "makefile", "gnumakefile", "pip.conf", "pip.ini", ".git-credentials"})
# Files that hold a key: their base64 lines are key material, whatever the hunk shows of them
_KEY_SUFFIXES = (".pem", ".key", ".p8", ".asc", ".ppk", ".gpg")
_KEY_PREFIXES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk")
# PEM, PGP armor and OpenSSH bodies: lines of 64 (70 for OpenSSH) base64 characters, the last one shorter
_KEY_LINE = re.compile(r"(?m)^(?P<head>[+\- ]?[ \t]*)(?:[A-Za-z0-9+/]{64}|[A-Za-z0-9+/]{70})[ \t]*\r?$")
_KEY_TAIL = re.compile(r"[+\- ]?[ \t]*(?:[A-Za-z0-9+/]{1,76}={0,2}|=[A-Za-z0-9+/]{4})[ \t]*\r?(?:\n|\Z)")
_KEY_FILE_LINE = re.compile(r"(?m)^(?P<head>[+\- ]?[ \t]*)[A-Za-z0-9+/]{16,76}={0,2}[ \t]*\r?$")

KINDS = ("AWS_SECRET",) + tuple(k for k, _, _ in _SHAPED) + (
    "URL_CREDENTIALS", "AUTH_HEADER", "DOCKER_AUTH", "K8S_SECRET", "PASSWORD", "TOKEN", "API_KEY", "SECRET")

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


def is_key_path(path: str | None) -> bool:
    """Files that hold a private key: `*.pem`, `*.key`, `*.asc`, `id_rsa` ... (not `id_rsa.pub`)."""
    if not path:
        return False
    name = path.rsplit("/", 1)[-1].lower()
    return name.endswith(_KEY_SUFFIXES) or (name.startswith(_KEY_PREFIXES) and not name.endswith(".pub"))


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


def _keep_outside(m: re.Match[str], group: str, placeholder: str) -> str:
    """The match with only `group` replaced by the placeholder."""
    s, e = m.span(group)
    return m.group(0)[:s - m.start()] + placeholder + m.group(0)[e - m.start():]


_GONE = "\x00<gone>"  # a line folded into the placeholder of the line above (a key across diff lines)


def _split_diff(text: str) -> tuple[list[str], list[str]]:
    """Each line's diff marker (`+`, `-`, ` `; two of them in a merge's combined diff) and its content.
    Header lines (`diff --git`, `+++ b/x`) are content whole, a hunk header's function context is content.

    >>> _split_diff("--- a/x\\n+++ b/x\\n@@ -1 +1 @@ def f():\\n-a\\n+b")
    (['', '', '@@ -1 +1 @@ ', '-', '+'], ['--- a/x', '+++ b/x', 'def f():', 'a', 'b'])
    """
    prefixes, contents = [], []
    width = 0
    for line in text.split("\n"):
        if line.startswith("@@"):
            width = len(line) - len(line.lstrip("@")) - 1
            end = line.find(" " + "@" * (width + 1), width + 1)  # `@@ -1 +1 @@ def f():`: the context is content
            if end >= 0:
                end += width + 3
                prefixes.append(line[:end])
                contents.append(line[end:])
                continue
        elif width > 0:
            head = line[:width]
            if len(head) == width and not head.strip("+- "):
                prefixes.append(head)
                contents.append(line[width:])
                continue
            if line.startswith("\\") or not line:  # `\ No newline at end of file`
                prefixes.append(line)
                contents.append("")
                continue
            width = 0
        prefixes.append("")
        contents.append(line)
    return prefixes, contents


def _is_diff(text: str) -> bool:
    return text.startswith(("diff --git", "@@")) or "\n@@ -" in text or "\n@@@ -" in text


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
    netrc = bool(path) and path.rsplit("/", 1)[-1].lower() in _NETRC_NAMES
    if not _is_diff(text):
        return _redact(text, fmt, key_file, netrc, False)
    prefixes, contents = _split_diff(text)
    out, counts = _redact("\n".join(contents), fmt, key_file, netrc, True)
    lines = out.split("\n")
    if len(lines) != len(prefixes):  # cannot happen: every replacement keeps its lines
        return _redact(text, fmt, key_file, netrc, False)
    return "\n".join(p + (_cut_tail(line, counts) if p.startswith("@@") else line)
                     for p, line in zip(prefixes, lines) if line != _GONE), counts


_TAIL = re.compile(r"[A-Za-z0-9_+/=.\-]{8,}\Z")
_OPEN_VALUE = re.compile(r"(?i)(?:password|passwd|passphrase|secret|token|api_?key|private_?key|access_?key)"
                         r"[\"']?[ \t]*(?:=>|:=|[:=])[ \t]*[\"'`](?P<v>[^\"'`\n]{6,})\Z")


def _cut_tail(context: str, counts: dict[str, int]) -> str:
    """git cuts a hunk header's function context at 80 bytes, perhaps inside a secret, too short now
    for its rule: a cut run that starts like a provider's token, or a quoted value under a secret name
    left open, is replaced (`SECRET`)."""
    if len(context.encode("utf-8", "surrogatepass")) < 79:
        return context
    m = _TAIL.search(context)
    start = None
    if m is not None:
        run = m.group(0)
        at = next((i for i in range(len(run)) if run.startswith(PREFIXES, i) and (i == 0 or not run[i - 1].isalnum())), None)
        start = m.start() + at if at is not None and _random_looking(run[at:]) else None
    if start is None and (m := _OPEN_VALUE.search(context)) is not None and not _harmless(m.group("v")):
        start = m.start("v")
    if start is None:
        return context
    counts["SECRET"] = counts.get("SECRET", 0) + 1
    return context[:start] + _placeholder("SECRET")


def _key_bodies(text: str, key_file: bool, folded: bool, bump: Callable[[str], str]) -> str:
    """Replace key material standing without its BEGIN line: runs of two or more full-width base64
    lines (one or more lines of base64 in a key file), not under a certificate's or public key's BEGIN."""
    pattern = _KEY_FILE_LINE if key_file else _KEY_LINE
    out: list[str] = []
    last = 0
    m = pattern.search(text)
    while m:
        end, n, mixed = m.end(), 1, _mixed(m.group(0))
        while end < len(text) and (nxt := pattern.match(text, end + 1)) is not None:
            end, n, mixed = nxt.end(), n + 1, mixed and _mixed(nxt.group(0))
        if end < len(text) and (tail := _KEY_TAIL.match(text, end + 1)) is not None \
                and len(tail.group(0).strip()) >= 4:
            end, n = end + 1 + len(tail.group(0).rstrip("\r\n")), n + 1
        begin = text.rfind("-----BEGIN ", 0, m.start())
        public = begin >= 0 and "PRIVATE" not in text[begin:begin + 64]
        if n >= (1 if key_file else 2) and mixed and not public:
            out += (text[last:m.start()], m.group("head"), bump("PRIVATE_KEY"), ("\n" + _GONE) * (n - 1) if folded else "")
            last = end
        m = pattern.search(text, end)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _mixed(line: str) -> bool:
    """Key material: upper and lower case letters and digits (not a row of `A`s or a hex dump)."""
    return any(c.isupper() for c in line) and any(c.islower() for c in line) and any(c.isdigit() for c in line)


def _redact(text: str, fmt: str, key_file: bool, netrc: bool, folded: bool) -> tuple[str, dict[str, int]]:
    """`redact` on one text; `folded`: the text is a diff's content, whose lines a multi-line
    secret keeps (the placeholder, then `_GONE` lines)."""
    counts: dict[str, int] = {}

    def bump(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return _placeholder(kind)

    def whole_or_v(kind: str) -> _Repl:
        def repl(m: re.Match[str]) -> str:
            if _glued(m):
                return m.group(0)
            if "v" in m.re.groupindex:
                return _keep_outside(m, "v", bump(kind))
            return bump(kind) + ("\n" + _GONE) * m.group(0).count("\n") if folded else bump(kind)
        return repl

    def aws(m: re.Match[str]) -> str:
        if _glued(m):
            return m.group(0)
        key = bump("AWS_KEY")
        return key if m.group("sec") is None else key + m.group("sep") + bump("AWS_SECRET")

    for kind, literals, pattern in _SHAPED:  # one fast scan each; the replacing only where one matched
        if (literals is None or any(lit in text for lit in literals)) and pattern.search(text):
            text = pattern.sub(aws if kind == "AWS_KEY" else whole_or_v(kind), text)
    text = _key_bodies(text, key_file, folded, bump)

    low = _lower(text)
    if "aws" in low:
        text = _sub_at(text, _starts(low, ("aws",), _KEY_CHARS), lambda i: _AWS_SECRET.match(text, i),
                       lambda m: _keep_outside(m, "v", bump("AWS_SECRET")))
    if "heroku" in low:
        text = HEROKU_NAMED.sub(lambda m: _keep_outside(m, "v", bump("HEROKU_KEY")), text)

    if "://" in text and "@" in text:
        def url(m: re.Match[str]) -> str | None:
            password = m.group("v").split(":", 1)[1]
            return _keep_outside(m, "v", bump("URL_CREDENTIALS")) if _credential(password, "PASSWORD") else None
        text = _sub_at(text, _starts(text, ("://",), _SCHEME_CHARS), lambda i: _URL_CREDS.match(text, i), url)

    text = _formats(text, netrc, bump)
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
        if bare is not None and not _bare_is_literal(text, m, fmt):
            return None
        value = bare if bare is not None else m.group("qval")
        if not _credential(value, kind):
            return None
        return _keep_outside(m, "bare" if bare is not None else "qval", bump(kind))

    text = _sub_at(text, _starts(low, _ASSIGN_NEEDLES, _KEY_CHARS, _ASSIGN_FOLLOW), assign_match, assign)
    return text, counts


def _formats(text: str, netrc: bool, bump: Callable[[str], str]) -> str:
    """Credentials where a format puts them: `.netrc` passwords, docker `"auth"`, a Kubernetes Secret's data."""
    def password(m: re.Match[str]) -> str:
        return _keep_outside(m, "v", bump("PASSWORD")) if _credential(m.group("v"), "PASSWORD") else m.group(0)

    if "password" in text:
        if netrc:
            text = _NETRC_PASSWORD.sub(password, text)
        elif "machine" in text:
            text = _NETRC_LINE.sub(password, text)
    if '"auth"' in text:
        def docker(m: re.Match[str]) -> str:
            decoded = _basic_password(m.group("v"))  # `user:password` -> `password`
            whole = base64.b64decode(m.group("v") + "=" * (-len(m.group("v")) % 4), validate=False)
            ok = decoded is not None and b":" in whole and _credential(decoded, "PASSWORD")
            return _keep_outside(m, "v", bump("DOCKER_AUTH")) if ok else m.group(0)
        text = _DOCKER_AUTH.sub(docker, text)
    if "Secret" in text and "kind:" in text and _K8S_KIND.search(text):
        def entry(m: re.Match[str]) -> str:
            value = m.group("v")
            shown = _basic_password(value) if value.endswith("=") or len(value) % 4 == 0 else value
            return m.group(0) if _harmless(shown or value) else _keep_outside(m, "v", bump("K8S_SECRET"))

        def block(m: re.Match[str]) -> str:
            body = _K8S_ENTRY.sub(entry, m.group("body"))
            return m.group(0)[:m.start("body") - m.start()] + body
        text = _K8S_MAP.sub(block, text)
    return text


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
