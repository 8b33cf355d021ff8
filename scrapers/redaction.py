"""Secret redaction: one function that every stage reading repository text calls.

    from scrapers.redaction import redact
    clean, counts = redact(text)

Each secret becomes a typed placeholder, e.g. `<SECRET_AWS_KEY>`, and `counts` says how many of
each kind were replaced. Only literal values are redacted: `password = get_password()` or
`token = None` stay as they are, `password = "hunter2"` becomes `password = "<SECRET_PASSWORD>"`.

    >>> redact('aws_key = "AKIAIOSFODNN7EXAMPLE"\\ntoken = None')
    ('aws_key = "<SECRET_AWS_KEY>"\\ntoken = None', {'AWS_KEY': 1})

Speed: each rule first looks for a cheap literal (a regex with a literal prefix, or `str.find` in
the lowercased text), and its full regex only runs where one occurs: clean code costs about ten
fast scans.
"""

from __future__ import annotations

import re
from typing import Callable

__all__ = ["redact", "add_counts", "KINDS"]


def _placeholder(kind: str) -> str:
    return f"<SECRET_{kind}>"


# Values that are code or templates, not secrets: skipped by the config-assignment rule.
_NOT_LITERAL_START = ("$", "{", "<", "%", "(", "[", "*")
_KEYWORDS = frozenset({"none", "null", "nil", "true", "false", "undefined", "empty", "required",
                       "optional", "string", "str", "bytes", "int", "changeme", "redacted", "xxx",
                       "xxxx", "xxxxxxxx", "password", "secret", "token", "your_token", "todo"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")

# --- fixed-shape secrets: (kind, gate, regex); the whole match becomes the placeholder ----------
# The gate is a regex with a literal prefix (a fast scan); the full regex only runs when it hits.
_SHAPED: list[tuple[str, re.Pattern[str], re.Pattern[str]]] = [
    ("PRIVATE_KEY", re.compile("PRIVATE KEY-----"), re.compile(
        # the lookahead wants key material after the header, so code that merely names the header stays
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?=[\s\S]{0,80}?[A-Za-z0-9+/]{32})[\s\S]*?"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)")),
    ("AWS_KEY", re.compile("A[KS]IA"), re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("GITHUB_TOKEN", re.compile("gh(?:[pousr]_|ithub_pat_)"), re.compile(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b")),
    ("GITLAB_TOKEN", re.compile("glpat-"), re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}")),
    ("SLACK_TOKEN", re.compile("xox[baprs]-"), re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}")),
    ("STRIPE_KEY", re.compile("k_(?:live|test)_"), re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("GOOGLE_API_KEY", re.compile("AIza"), re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("JWT", re.compile("eyJ"), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
]

# The rules below are matched only at candidate positions: the start of the identifier around
# each occurrence of a cheap literal (found with `str.find`), so clean text costs a few scans.
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_SCHEME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")

# --- AWS secret access key in config: `aws_secret_access_key = wJalr...` (40 base64 chars) ---------
_AWS_SECRET = re.compile(r"(?i)([A-Za-z0-9_.-]*?aws_?secret_?(?:access_?)?key[\"']?\s*(?:=>|:=|[:=])\s*[\"']?)"
                         r"([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])")
_AWS_NEEDLES = ("aws", "AWS", "Aws")  # on text whose lowercase changes length; else "aws" on the lowercase

# --- credentials inside URLs: scheme://user:pass@host -> scheme://<SECRET_URL_CREDENTIALS>@host ---
_URL_CREDS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^\s/:@'\"<>]+):([^\s/@'\"<>]+)@")

# --- passwords / tokens / secrets / API keys assigned in config, env and source files -----------
# a key ending in a secret word, optional closing quote, separator, then a quoted or bare value.
_ASSIGN = re.compile(
    r"(?i)(?P<key>[A-Za-z0-9_.-]*?(?P<word>password|passwd|pwd|_pass|secret|token|"
    r"apikey|(?:api|secret|private|access|auth|signing|encryption|master|client)[_-]?key))"
    r"(?P<sep>[\"']?\s*(?:=>|:=|[:=])(?!=)[ \t]*)"
    r"(?:(?P<q>[\"'])(?P<qval>[^\"'\n]{3,})(?P=q)|(?P<bare>[^\s\"'#,;()\[\]{}<>]{4,})(?P<after>[(.\[]?))")
_ASSIGN_FOLLOW = re.compile(r"[A-Za-z0-9_.-]*[\"']?\s*(?:=>|:=|[:=])(?!=)")  # the rest of the key, a separator
_ASSIGN_LOWER = ("pass", "pwd", "secret", "token", "key")
_ASSIGN_NEEDLES = _ASSIGN_LOWER + ("PASS", "PWD", "SECRET", "TOKEN", "KEY", "Pass", "Pwd", "Secret", "Token", "Key")

KINDS = tuple(k for k, _, _ in _SHAPED) + ("AWS_SECRET", "URL_CREDENTIALS", "PASSWORD", "TOKEN",
                                             "API_KEY", "SECRET")


def _assign_kind(word: str) -> str:
    w = word.lower()
    if "pass" in w or w == "pwd":
        return "PASSWORD"
    if w == "token":
        return "TOKEN"
    if "api" in w:
        return "API_KEY"
    return "SECRET"


def _is_literal(value: str, bare: bool, after: str) -> bool:
    """True when `value` looks like a secret literal rather than code, a template or a keyword."""
    if value.startswith(_NOT_LITERAL_START) or value.lower() in _KEYWORDS:
        return False
    if not bare:
        return True
    # A bare value followed by `(`, `.` or `[` is a call or attribute access; a bare identifier
    # without digits (`None`, `os.environ`, `my_token`) is code. `hunter2`, `abc123XYZ` are not.
    if after or (_IDENTIFIER.match(value) and not any(c.isdigit() for c in value)):
        return False
    return True


def _starts(text: str, needles: tuple[str, ...], word_chars: frozenset[str],
            follow: re.Pattern[str] | None = None) -> list[int]:
    """Sorted start positions of the words (runs of `word_chars`) around each needle occurrence.

    `text` may be the lowercased copy of the text the positions are used on (same length).
    With `follow`, only occurrences where `follow` matches right after the needle count.
    """
    starts = set()
    for needle in needles:
        i = text.find(needle)
        while i != -1:
            if follow is None or follow.match(text, i + len(needle)):
                j = i
                while j > 0 and text[j - 1] in word_chars:
                    j -= 1
                starts.add(j)
            i = text.find(needle, i + len(needle))
    return sorted(starts)


def _sub_at(text: str, pattern: re.Pattern[str], starts: list[int],
            repl: Callable[[re.Match[str]], str | None]) -> str:
    """Replace `pattern` matched at each of `starts` (non-overlapping); `repl` None keeps a match."""
    out: list[str] = []
    last = 0
    for start in starts:
        if start < last:
            continue
        m = pattern.match(text, start)
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


def redact(text: str) -> tuple[str, dict[str, int]]:
    """Return `text` with every secret replaced by `<SECRET_KIND>`, and the counts per kind.

    >>> redact("db = postgres://admin:s3cr3t@db.example.com/app")
    ('db = postgres://<SECRET_URL_CREDENTIALS>@db.example.com/app', {'URL_CREDENTIALS': 1})
    >>> redact("password = get_password()")
    ('password = get_password()', {})
    """
    counts: dict[str, int] = {}

    def bump(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return _placeholder(kind)

    for kind, gate, pattern in _SHAPED:
        if gate.search(text):
            text = pattern.sub(lambda m, k=kind: bump(k), text)

    # Key words are found in the lowercased text (one copy, then a few fast scans); positions
    # carry over when lowercasing kept the length, as it does for ASCII.
    low = text.lower()
    same = len(low) == len(text)
    hay, aws, words = (low, ("aws",), _ASSIGN_LOWER) if same else (text, _AWS_NEEDLES, _ASSIGN_NEEDLES)
    redacted = _sub_at(text, _AWS_SECRET, _starts(hay, aws, _KEY_CHARS), lambda m: m.group(1) + bump("AWS_SECRET"))
    if redacted is not text:
        text, hay, words = redacted, text, _ASSIGN_NEEDLES

    def url(m: re.Match[str]) -> str | None:
        if m.group(3).startswith(_NOT_LITERAL_START):
            return None
        return m.group(1) + bump("URL_CREDENTIALS") + "@"
    if "://" in text and "@" in text:
        redacted = _sub_at(text, _URL_CREDS, _starts(text, ("://",), _SCHEME_CHARS), url)
        if redacted is not text:
            text, hay, words = redacted, redacted, _ASSIGN_NEEDLES

    def assign(m: re.Match[str]) -> str | None:
        bare = m.group("bare")
        value = bare if bare is not None else m.group("qval")
        if not _is_literal(value, bare is not None, m.group("after") or ""):
            return None
        placeholder = bump(_assign_kind(m.group("word")))
        if bare is not None:
            return m.group("key") + m.group("sep") + placeholder + m.group("after")
        q = m.group("q")
        return m.group("key") + m.group("sep") + q + placeholder + q
    text = _sub_at(text, _ASSIGN, _starts(hay, words, _KEY_CHARS, _ASSIGN_FOLLOW), assign)

    return text, counts


def add_counts(total: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    """Add `counts` into `total` in place and return it (for stage statistics)."""
    for kind, n in counts.items():
        total[kind] = total.get(kind, 0) + n
    return total
