"""What a value must look like to be a credential, whatever rule found it.

    >>> credential("hunter2", "PASSWORD"), credential("development key", "SECRET")
    (True, False)
    >>> credential("9f8e7d6c5b4a3928", "TOKEN"), credential("refreshed-token-123", "TOKEN")
    (True, False)

A value is harmless when it is short, repetitive, a template or reference, a UUID, one word, or made
only of the words example values are made of (`dev`, `testkey`, `my-secret-key`); a token, key or
secret must also look random. docs/secrets.md gives the reasons.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter


def placeholder(kind: str) -> str:
    return f"<SECRET_{kind}>"


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


def harmless(value: str) -> bool:
    """Short, repetitive, a template or reference, a UUID (an id), one word (`ferret`, `dataStoreQuery`:
    letters only, up to 12 in one case or camel case), or only placeholder words and short numbers."""
    if len(value) < 6 or len(set(value)) <= 2 or _TEMPLATE.search(value) or _UUID.match(value) or _WORD.match(value):
        return True
    parts = _WORDS.findall(value.lower())
    return all(_segments(p) if p.isalpha() else len(p) <= 6 for p in parts)


# words (each with a vowel) and short numbers joined by `-`, `_` or `.`: `refreshed-token-123` names a value
_WORDY = re.compile(r"(?=[a-z]{3})[b-df-hj-np-tv-z]*[aeiouy][a-z]*"
                    r"(?:[-_.](?:[b-df-hj-np-tv-z]*[aeiouy][a-z]*|\d{1,6}))+")


def random_looking(value: str) -> bool:
    """A token, not a word: 8+ characters, no spaces, not an identifier, not words joined by `-_.`, and
    letters with digits, or mixed case from 12 characters, or 20+ characters of 3.5+ bits of entropy per
    character."""
    if len(value) < 8 or any(c.isspace() for c in value) or _WORDY.fullmatch(value.lower()):
        return False
    entropy = _entropy(value)
    if _CAMEL_IDENT.match(value):  # words: only a long run of random lowercase letters counts
        return value.isalpha() and value.islower() and len(value) >= 20 and entropy >= 3.5
    digit = any(c.isdigit() for c in value)
    alpha = any(c.isalpha() for c in value)
    mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
    return ((digit and alpha and entropy >= 2.5) or (mixed and len(value) >= 12 and entropy >= 3.0)
            or (len(value) >= 20 and entropy >= 3.5))


def credential(value: str, kind: str) -> bool:
    """Does a value assigned to a name of this kind look like a real credential?

    Passwords: anything that is not harmless (`hunter2`, `correcthorsebatterystaple`). Tokens,
    keys and secrets: not harmless and random-looking (`dev`, `development key`, `accessToken` stay).
    """
    if harmless(value):
        return False
    return kind == "PASSWORD" or random_looking(value)


def basic_password(value: str) -> str | None:
    """The password inside a Basic credential (`dG9iaTpmZXJyZXQ=` -> `ferret`); None if it does not decode."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[-1] if decoded.isprintable() else None


def keep_outside(m: re.Match[str], group: str, placeholder: str) -> str:
    """The match with only `group` replaced by the placeholder."""
    s, e = m.span(group)
    return m.group(0)[:s - m.start()] + placeholder + m.group(0)[e - m.start():]
