"""Where formats put secrets: diffs (markers, hunk headers), key material without its BEGIN line,
`.netrc`, docker `config.json`, Kubernetes Secrets. Used by `core.redaction.redact`.

    prefixes, contents = split_diff(diff)              # each line's marker, and the content to scan
    text = key_bodies(text, key_file, folded, bump)    # bump(kind): counts one, returns its placeholder
    text = formats(text, netrc, bump)
"""

from __future__ import annotations

import base64
import re
from typing import Callable

from core.secret_rules import PREFIXES
from core.secret_values import basic_password, credential, harmless, keep_outside, placeholder, random_looking

# --- formats that say where their credentials are --------------------------------------------------
# `.netrc`: `machine h login u password X` (found anywhere), and any `password X` line in a netrc
_NETRC_LINE = re.compile(r"machine[ \t]+\S+\s+(?:login[ \t]+\S+\s+)?password[ \t]+(?P<v>\S+)")
_NETRC_PASSWORD = re.compile(r"(?m)^[ \t]*(?:machine[ \t]+\S+[ \t]+|login[ \t]+\S+[ \t]+|default[ \t]+)*"
                             r"password[ \t]+(?P<v>\S+)")
NETRC_NAMES = frozenset({".netrc", "_netrc", "netrc"})
# docker `config.json` / `.dockerconfigjson`: `"auth": base64(user:password)`
_DOCKER_AUTH = re.compile(r"\"auth\"[ \t]*:[ \t]*\"(?P<v>[A-Za-z0-9+/]{6,}={0,2})\"")
# a Kubernetes Secret: every value of its `data:` (base64) and `stringData:` maps
_K8S_KIND = re.compile(r"(?m)^[ \t]*kind:[ \t]*[\"']?Secret[\"']?[ \t]*\r?$")
_K8S_MAP = re.compile(r"(?m)^(?P<i>[ \t]*)(?:data|stringData):[ \t]*\r?\n"
                      r"(?P<body>(?:(?P=i)[ \t]+\S.*(?:\n|\Z))+)")
_K8S_ENTRY = re.compile(r"(?m)^[ \t]+[\"']?[A-Za-z0-9_.-]+[\"']?:[ \t]+[\"']?(?P<v>[^\s\"'#]+)")


# Files that hold a key: their base64 lines are key material, whatever the hunk shows of them
_KEY_SUFFIXES = (".pem", ".key", ".p8", ".asc", ".ppk", ".gpg")
_KEY_PREFIXES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk")
# PEM, PGP armor and OpenSSH bodies: lines of 64 (70 for OpenSSH) base64 characters, the last one shorter
_KEY_LINE = re.compile(r"(?m)^(?P<head>[+\- ]?[ \t]*)(?:[A-Za-z0-9+/]{64}|[A-Za-z0-9+/]{70})[ \t]*\r?$")
_KEY_GATE = re.compile(r"\n[+\- ]?[ \t]*[A-Za-z0-9+/]{64}")  # led by a literal: scanned faster than `^`
_KEY_TAIL = re.compile(r"[+\- ]?[ \t]*(?:[A-Za-z0-9+/]{1,76}={0,2}|=[A-Za-z0-9+/]{4})[ \t]*\r?(?:\n|\Z)")
_KEY_FILE_LINE = re.compile(r"(?m)^(?P<head>[+\- ]?[ \t]*)[A-Za-z0-9+/]{16,76}={0,2}[ \t]*\r?$")


def is_key_path(path: str | None) -> bool:
    """Files that hold a private key: `*.pem`, `*.key`, `*.asc`, `id_rsa` ... (not `id_rsa.pub`)."""
    if not path:
        return False
    name = path.rsplit("/", 1)[-1].lower()
    return name.endswith(_KEY_SUFFIXES) or (name.startswith(_KEY_PREFIXES) and not name.endswith(".pub"))


GONE = "\x00<gone>"  # a line folded into the placeholder of the line above (a key across diff lines)


def split_diff(text: str) -> tuple[list[str], list[str]]:
    """Each line's diff marker (`+`, `-`, ` `; two of them in a merge's combined diff) and its content.
    Header lines (`diff --git`, `+++ b/x`) are content whole, a hunk header's function context is content.

    >>> split_diff("--- a/x\\n+++ b/x\\n@@ -1 +1 @@ def f():\\n-a\\n+b")
    (['', '', '@@ -1 +1 @@ ', '-', '+'], ['--- a/x', '+++ b/x', 'def f():', 'a', 'b'])
    """
    lines = text.split("\n")
    if text.startswith("@@@") or "\n@@@" in text:
        return _split_combined(lines)
    first = 0 if text.startswith("@@") else text[:text.find("\n@@") + 1].count("\n")
    # two passes in comprehensions (this runs on every diff): a marker, or what `_other` says
    body = [line[:1] if line[:1] in _MARKS else _other(line) for line in lines[first:]]
    return [""] * first + body, lines[:first] + [line[len(p):] for line, p in zip(lines[first:], body)]


_MARKS = frozenset("+- ")


def _other(line: str) -> str:
    """The prefix of a line in a hunk that has no `+`/`-`/` ` marker: a hunk header up to its
    function context, `\\ No newline at end of file` whole, anything else none."""
    if line.startswith("@@"):
        end = line.find(" @@", 2)
        return line[:end + 4] if end >= 0 else line
    return line if line.startswith("\\") else ""


def _split_combined(lines: list[str]) -> tuple[list[str], list[str]]:
    """`split_diff` for a merge's combined diff (`@@@`, two markers a line), line by line."""
    prefixes, contents = [], []
    width = 0
    for line in lines:
        if line.startswith("@@"):
            width = len(line) - len(line.lstrip("@")) - 1
            end = line.find(" " + "@" * (width + 1), width + 1)
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
            if line.startswith("\\") or not line:
                prefixes.append(line)
                contents.append("")
                continue
            width = 0
        prefixes.append("")
        contents.append(line)
    return prefixes, contents


def is_diff(text: str) -> bool:
    """A diff, or the lines of hunks without their header (every line starts with a marker: the hunks
    stage 2 widens with context lines from the file)."""
    return (text.startswith(("diff --git", "@@")) or "\n@@ -" in text or "\n@@@ -" in text
            or (text[:1] in _MARKS and _UNMARKED.search(text) is None))


_UNMARKED = re.compile(r"\n[^+\- \\\n]")  # a line that starts with no diff marker


_TAIL = re.compile(r"[A-Za-z0-9_+/=.\-]{8,}\Z")
_OPEN_VALUE = re.compile(r"(?i)(?:password|passwd|passphrase|secret|token|api_?key|private_?key|access_?key)"
                         r"[\"']?[ \t]*(?:=>|:=|[:=])[ \t]*[\"'`](?P<v>[^\"'`\n]{6,})\Z")


def cut_tail(context: str, counts: dict[str, int]) -> str:
    """git cuts a hunk header's function context at 80 bytes, perhaps inside a secret, too short now
    for its rule: a cut run that starts like a provider's token, or a quoted value under a secret name
    left open, is replaced (`SECRET`)."""
    if len(context.encode("utf-8", "surrogatepass")) < 79:
        return context
    m = _TAIL.search(context)
    start = None
    if m is not None:
        run = m.group(0)
        at = next((i for i in range(len(run))
                   if run.startswith(PREFIXES, i) and (i == 0 or not run[i - 1].isalnum())), None)
        start = m.start() + at if at is not None and random_looking(run[at:]) else None
    if start is None and (m := _OPEN_VALUE.search(context)) is not None and not harmless(m.group("v")):
        start = m.start("v")
    if start is None:
        return context
    counts["SECRET"] = counts.get("SECRET", 0) + 1
    return context[:start] + placeholder("SECRET")


def key_bodies(text: str, key_file: bool, folded: bool, bump: Callable[[str], str]) -> str:
    """Replace key material standing without its BEGIN line: runs of two or more full-width base64
    lines (one or more lines of base64 in a key file), not under a certificate's or public key's BEGIN."""
    if not key_file and _KEY_GATE.search(text) is None and _KEY_LINE.match(text) is None:
        return text
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
            folds = ("\n" + GONE) * (n - 1) if folded else ""
            out += (text[last:m.start()], m.group("head"), bump("PRIVATE_KEY"), folds)
            last = end
        m = pattern.search(text, end)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _mixed(line: str) -> bool:
    """Key material: upper and lower case letters and digits (not a row of `A`s or a hex dump)."""
    return any(c.isupper() for c in line) and any(c.islower() for c in line) and any(c.isdigit() for c in line)


def formats(text: str, netrc: bool, bump: Callable[[str], str]) -> str:
    """Credentials where a format puts them: `.netrc` passwords, docker `"auth"`, a Kubernetes Secret's data."""
    def password(m: re.Match[str]) -> str:
        return keep_outside(m, "v", bump("PASSWORD")) if credential(m.group("v"), "PASSWORD") else m.group(0)

    if "password" in text:
        if netrc:
            text = _NETRC_PASSWORD.sub(password, text)
        elif "machine" in text:
            text = _NETRC_LINE.sub(password, text)
    if '"auth"' in text:
        def docker(m: re.Match[str]) -> str:
            decoded = basic_password(m.group("v"))  # `user:password` -> `password`
            whole = base64.b64decode(m.group("v") + "=" * (-len(m.group("v")) % 4), validate=False)
            ok = decoded is not None and b":" in whole and credential(decoded, "PASSWORD")
            return keep_outside(m, "v", bump("DOCKER_AUTH")) if ok else m.group(0)
        text = _DOCKER_AUTH.sub(docker, text)
    if "Secret" in text and "kind:" in text and _K8S_KIND.search(text):
        def entry(m: re.Match[str]) -> str:
            value = m.group("v")
            shown = basic_password(value) if value.endswith("=") or len(value) % 4 == 0 else value
            return m.group(0) if harmless(shown or value) else keep_outside(m, "v", bump("K8S_SECRET"))

        def block(m: re.Match[str]) -> str:
            body = _K8S_ENTRY.sub(entry, m.group("body"))
            return m.group(0)[:m.start("body") - m.start()] + body
        text = _K8S_MAP.sub(block, text)
    return text
