"""Read a repository's history through one `git log` stream and cut it into commits as it arrives.

    git = Git(Path("repo"));  hashes = list_commits(git, ["--branches"])
    for order, raw, missing in stream_commits(git, hashes): parse_commit(raw)

One `git log --no-walk=unsorted --stdin` process prints every commit in the given order with its
header (NUL-separated fields), `--raw` entries (NUL-terminated, `-z`) and the patch. Records are
cut at the marker `\\0\\x01<next hash>`, so memory holds one commit at a time. Added and deleted
lines are counted in the patch itself (what `--numstat` prints, without git diffing twice).

Damaged repositories: `git log -p` dies at the first blob it cannot read. When the stream fails,
the commits from the failure on are taken one by one with `git diff-tree`: a commit whose blobs
are missing (found with `git rev-list --missing=print`) is diffed only over its readable paths and
its unreadable file changes are returned separately; then the stream restarts after it.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from scrapers.git_runner import Git, GitError, first_error_line, missing_objects

logger = logging.getLogger(__name__)

HEADER_FIELDS = ("hash", "parents", "author_name", "author_email", "author_date",
                 "committer_name", "committer_email", "committer_date", "message")
# Dates as git recorded them (`--date=raw`: "<epoch> <offset>"), turned into ISO by commit_record.
_PLACEHOLDERS = ("%H", "%P", "%an", "%ae", "%ad", "%cn", "%ce", "%cd", "%B")
MARK = b"\0\x01"
FORMAT = "--format=%x00%x01" + "%x00".join(_PLACEHOLDERS) + "%x00"
DATE_RAW = "--date=raw"
# The diff every commit gets: renames, merges as combined diffs, root against the empty tree.
DIFF_OPTIONS = ["--root", "-r", "--cc", "--no-abbrev", "--raw", "-p", "-z", "--no-color", "--no-ext-diff",
                "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/", "--no-relative"]
NULL_SHA = "0" * 40
READ_SIZE = 1 << 20


def list_commits(git: Git, revs: list[str], since: str | None = None, until: str | None = None,
                 max_commits: int | None = None) -> list[str]:
    """Hashes oldest first: parents before children, ties by committer time (`--date-order`)."""
    args = ["rev-list", "--date-order", "--reverse"]
    args += [f"--since={since}"] if since else []
    args += [f"--until={until}"] if until else []
    hashes = git.run(*args, *revs, "--").decode().split()
    return hashes[:max_commits] if max_commits is not None else hashes


@dataclass(slots=True)
class FileChange:
    """One changed path as git printed it (bytes: paths may not be UTF-8)."""
    status: str
    path: bytes
    old_path: bytes | None
    modes: list[str]
    blobs: list[str]  # old blob(s) first (one per parent in a merge), new blob last
    additions: int = 0
    deletions: int = 0
    binary: bool = False
    patch: bytes = b""
    missing_object: bool = False


@dataclass(slots=True)
class ParsedCommit:
    header: dict[str, str]
    files: list[FileChange] = field(default_factory=list)
    combined: bool = False  # a merge, diffed as `--cc`
    patch_mismatch: bool = False  # patch sections did not line up with the raw entries


def stream_commits(git: Git, hashes: list[str]) -> Iterator[tuple[int, bytes, list[FileChange]]]:
    """Yield `(index, raw_output, unreadable_file_changes)` for each of `hashes`, in order."""
    start = 0
    while start < len(hashes):
        done, error = yield from _stream_from(git, hashes, start)
        if error is None:
            return
        # The record at `done` is incomplete or unconfirmed: walk on one commit at a time until
        # the one with missing objects, then stream again after it.
        for k in range(done, len(hashes)):
            raw, missing = _single_commit(git, hashes[k], error)
            yield k, raw, missing
            if missing:
                break
        start = k + 1


def _stream_from(git: Git, hashes: list[str], start: int):
    """Stream `hashes[start:]`; return `(first index not yielded, git's error or None)`."""
    args = ["log", "--no-walk=unsorted", "--stdin", "--no-notes", "-M", FORMAT, DATE_RAW, *DIFF_OPTIONS]
    with tempfile.TemporaryFile() as err:
        proc = git.popen(args, stderr=err)
        try:
            proc.stdin.write("".join(h + "\n" for h in hashes[start:]).encode())
            proc.stdin.close()
            i = start
            buf = bytearray()
            head = scan_from = 0  # buf[head:] is the current record's start and what follows
            marker = MARK + hashes[i + 1].encode() if i + 1 < len(hashes) else None
            for chunk in _read_ahead(proc.stdout):
                if head:  # drop the records already yielded before growing the buffer
                    del buf[:head]
                    scan_from -= head
                    head = 0
                buf += chunk
                while marker is not None:
                    pos = buf.find(marker, scan_from)
                    if pos < 0:
                        scan_from = max(head, len(buf) - len(marker))
                        break
                    yield i, bytes(buf[head:pos]), []
                    head = pos
                    i += 1
                    scan_from = pos + len(marker)
                    marker = MARK + hashes[i + 1].encode() if i + 1 < len(hashes) else None
            del buf[:head]
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if rc == 0 and buf.startswith(MARK + hashes[i].encode()):
            yield i, bytes(buf), []
            return len(hashes), None
        err.seek(0)
        message = first_error_line(err.read()) or f"git log exited with {rc}"
        logger.warning("git log stopped at commit %d of %d (%s); reading on commit by commit",
                       i + 1, len(hashes), message)
        return i, message


def _read_ahead(stream, depth: int = 16) -> Iterator[bytes]:
    """Chunks of `stream`, read by a thread up to `depth` MiB ahead: git keeps writing while we parse."""
    chunks: queue.Queue[bytes] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            while not stop.is_set() and (chunk := stream.read1(READ_SIZE)):
                chunks.put(chunk)
        finally:
            chunks.put(b"")

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        while chunk := chunks.get():
            yield chunk
    finally:
        stop.set()
        while thread.is_alive():  # a consumer that stopped early: unblock the pump's put
            try:
                chunks.get(timeout=0.1)
            except queue.Empty:
                pass


def _single_commit(git: Git, commit: str, stream_error: str) -> tuple[bytes, list[FileChange]]:
    """One commit with `git diff-tree`, leaving out (and returning) file changes with missing blobs."""
    listing = git.run("diff-tree", "--no-commit-id", "-r", "--root", "-c", "--raw", "-z", "--no-renames", commit)
    entries = _parse_meta(listing.split(b"\0"))[0]
    parents = git.run("log", "-1", "--format=%P", commit).decode().split()  # as a shallow clone sees them
    missing_blobs = missing_objects(git, [commit, *parents]) if entries else set()
    missing = [fc for fc in entries if missing_blobs.intersection(fc.blobs)]
    for fc in missing:
        fc.missing_object = True
    if not missing:
        try:
            return git.run("diff-tree", "--always", "-M", FORMAT, DATE_RAW, *DIFF_OPTIONS, commit), []
        except GitError as e:
            raise GitError(f"commit {commit}: {e} (while streaming: {stream_error})") from None
    readable = [":(literal)" + fc.path.decode("utf-8", "surrogateescape") for fc in entries if not fc.missing_object]
    if readable:
        raw = git.run("diff-tree", "--always", "--no-renames", FORMAT, DATE_RAW, *DIFF_OPTIONS, commit,
                      "--", *readable)
    else:
        raw = git.run("diff-tree", "--always", "-s", FORMAT, DATE_RAW, commit)
    logger.warning("commit %s: %d file change(s) with missing objects", commit[:12], len(missing))
    return raw, missing


def parse_commit(raw: bytes) -> ParsedCommit:
    """Split one record into its header fields, its file changes and their patch sections."""
    fields = raw[len(MARK):].split(b"\0", len(HEADER_FIELDS))
    header = {name: value.decode("utf-8", "replace") for name, value in zip(HEADER_FIELDS, fields)}
    rest = fields[len(HEADER_FIELDS)] if len(fields) > len(HEADER_FIELDS) else b""
    rest = rest.lstrip(b"\0\n")
    cut = 0 if rest.startswith(b"diff --") else rest.find(b"\0\0diff --")
    meta, patch = (rest, b"") if cut < 0 else (rest[:cut], rest[cut + 2 if cut else 0:])
    files, combined = _parse_meta(meta.split(b"\0"))
    commit = ParsedCommit(header, files, combined)
    if patch:
        commit.patch_mismatch = not _attach_patches(files, patch, combined)
    return commit


def _parse_meta(tokens: list[bytes]) -> tuple[list[FileChange], bool]:
    """Parse `-z` raw entries: `:` for a commit with one parent, `::` for a combined (merge) diff."""
    files: list[FileChange] = []
    combined = False
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.startswith(b"::"):
            combined = True
            parts = tok[2:].decode().split()
            k = (len(parts) - 1) // 2
            files.append(FileChange(parts[-1], tokens[i + 1], None, parts[:k], parts[k:2 * k]))
            i += 2
        elif tok.startswith(b":"):
            old_mode, new_mode, old_blob, new_blob, status = tok[1:].decode().split()
            if status[0] in "RC":
                files.append(FileChange(status[0], tokens[i + 2], tokens[i + 1], [old_mode, new_mode],
                                        [old_blob, new_blob]))
                i += 3
            else:
                files.append(FileChange(status, tokens[i + 1], None, [old_mode, new_mode], [old_blob, new_blob]))
                i += 2
        else:
            i += 1
    return files, combined


def count_lines(section: bytes) -> tuple[int, int] | None:
    """`(added, deleted)` lines of one patch section as `--numstat` counts them; None if binary.

    In a combined diff the first column (the first parent) decides, as git's numstat does.
    """
    hunks = section.find(b"\n@@")
    if hunks < 0:
        return None if b"\nBinary files " in section else (0, 0)
    body = section[hunks:]
    return body.count(b"\n+"), body.count(b"\n-")


def _attach_patches(files: list[FileChange], patch: bytes, combined: bool) -> bool:
    """Give each file change its `diff --git`/`diff --cc` section; False if they do not line up."""
    bounds = [0]
    pos = patch.find(b"\ndiff --")
    while pos >= 0:
        bounds.append(pos + 1)
        pos = patch.find(b"\ndiff --", pos + 1)
    bounds.append(len(patch))
    sections = [patch[a:b] for a, b in zip(bounds, bounds[1:])]
    if combined:  # `--cc` leaves out files whose merge took one side whole: match by path
        by_path = {fc.path: fc for fc in files}
        for sec in sections:
            fc = by_path.get(_cc_path(sec))
            if fc is None:
                return False
            _take(fc, sec)
        return True
    k = 0
    for fc in files:
        if k >= len(sections):
            return False
        _take(fc, sections[k])
        k += 1
        # a type change (file <-> symlink) prints as a deletion and a creation under one header
        if fc.status == "T" and k < len(sections) and _first_line(sections[k]) == _first_line(fc.patch):
            _take(fc, sections[k])
            k += 1
    return k == len(sections)


def _take(fc: FileChange, section: bytes) -> None:
    """Append a patch section to a file change and add its line counts."""
    counts = count_lines(section)
    if counts is None:
        fc.binary = True
    else:
        fc.additions += counts[0]
        fc.deletions += counts[1]
    fc.patch += section


def _first_line(section: bytes) -> bytes:
    return section[:section.find(b"\n")]


def _cc_path(section: bytes) -> bytes:
    """The path in a `diff --cc <path>` header, C-unquoted when git quoted it."""
    name = _first_line(section)[len(b"diff --cc "):]
    if not name.startswith(b'"'):
        return name
    return unquote_c(name[1:-1])


def unquote_c(s: bytes) -> bytes:
    r"""Undo git's C-style path quoting: `\t`, `\n`, `\"`, `\\` and octal `\303\251`."""
    out = bytearray()
    i = 0
    simple = {ord("t"): 9, ord("n"): 10, ord("r"): 13, ord('"'): 34, ord("\\"): 92, ord("a"): 7,
              ord("b"): 8, ord("f"): 12, ord("v"): 11}
    while i < len(s):
        c = s[i]
        if c == 92 and i + 1 < len(s):
            nxt = s[i + 1]
            if 48 <= nxt <= 55:
                out.append(int(s[i + 1:i + 4], 8))
                i += 4
                continue
            out.append(simple.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)
