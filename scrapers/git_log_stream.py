"""Read a repository's history through one `git log` stream and cut it into commits as it arrives.

    git = Git(Path("repo"));  hashes = list_commits(git, ["--branches"])
    for order, raw, missing in stream_commits(git, hashes, merges): parse_commit(raw)

One `git log --no-walk=unsorted --stdin` process prints every commit in the given order with its
header (NUL-separated fields), `--raw` entries (NUL-terminated, `-z`) and the patch; a merge
gets `--remerge-diff` (git >= 2.36: what the merge changed against git's own automatic merge,
conflict markers included; `--cc` on older git). Merge bases come from one `git rev-list
--parents` walk and the sides' changed files from one `git diff-tree --stdin` (`merge_details`). Records are
cut at the marker `\\0\\x01<next hash>`, so memory holds one commit at a time. Added and deleted
lines are counted in the patch itself (what `--numstat` prints, without git diffing twice).

Damaged repositories: `git log -p` dies at the first blob it cannot read. When the stream fails,
the commits from the failure on are taken one by one with `git diff-tree`: a commit whose blobs
are missing (found with `git rev-list --missing=print`) is diffed only over its readable paths and
its unreadable file changes are returned separately; then the stream restarts after it.
"""

from __future__ import annotations

import heapq
import logging
import mmap
import os
import queue
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Collection, Iterator

from core.git_runner import Git, GitError, first_error_line, missing_objects

logger = logging.getLogger(__name__)

HEADER_FIELDS = ("hash", "parents", "author_name", "author_email", "author_date",
                 "committer_name", "committer_email", "committer_date", "message")
# Dates as git recorded them (`--date=raw`: "<epoch> <offset>"), turned into ISO by commit_record.
_PLACEHOLDERS = ("%H", "%P", "%an", "%ae", "%ad", "%cn", "%ce", "%cd", "%B")
MARK = b"\0\x01"
FORMAT = "--format=%x00%x01" + "%x00".join(_PLACEHOLDERS) + "%x00"
DATE_RAW = "--date=raw"
# The diff every commit gets: renames, root against the empty tree; the merge option is added to it.
DIFF_OPTIONS = ["--root", "-r", "--no-abbrev", "--raw", "-p", "-z", "--no-color", "--no-ext-diff",
                "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/", "--no-relative"]
REMERGE_DIFF = "--remerge-diff"  # git >= 2.36
COMBINED_DIFF = "--cc"
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
class MergeDetails:
    base: str | None  # what `git merge-base` (`--octopus` for three or more parents) prints first
    both_sides_changed: list[bytes]  # paths changed between the base and at least two parents


def merge_details(git: Git, hashes: list[str]) -> dict[str, MergeDetails]:
    """Merge base and conflict candidates of every merge among `hashes`, from two git processes.

    One `git rev-list --parents` walk gives the ancestry, and the merge bases are found in it as
    `git merge-base` finds them (painting down from both parents, newest first); one `git diff-tree
    --stdin` then lists the paths each parent changed since the base.
    """
    if not hashes:
        return {}
    out = git.run("rev-list", "--topo-order", "--parents", "--timestamp", "--stdin",
                  input="".join(h + "\n" for h in hashes).encode())
    parents: dict[str, list[str]] = {}
    order: list[str] = []
    stamp: dict[str, int] = {}
    for line in out.decode().splitlines():  # children before parents
        ts, commit, *ps = line.split()
        parents[commit] = ps
        order.append(commit)
        stamp[commit] = int(ts)
    generation: dict[str, int] = {}
    for commit in reversed(order):
        generation[commit] = 1 + max((generation.get(p, 0) for p in parents[commit]), default=0)
    graph = _Ancestry(parents, generation, stamp)
    merges = [h for h in hashes if len(parents.get(h, ())) > 1]
    bases = {m: graph.octopus_base(parents[m]) for m in merges}
    requests = [(m, p) for m in merges if bases[m] is not None for p in parents[m]]
    changed: dict[str, dict[bytes, int]] = {m: {} for m in merges}
    if requests:
        # `<parent> <base>`: the parent diffed against the base as if that were its parent;
        # `--always` prints the header of an empty diff too, so records and requests pair up.
        listing = git.run("diff-tree", "--stdin", "--always", "-r", "--name-only", "-z", "--no-renames",
                          "--format=%x01%H", input="".join(f"{p} {bases[m]}\n" for m, p in requests).encode())
        records = listing.split(b"\x01")[1:]
        if len(records) != len(requests):
            raise GitError(f"git diff-tree --stdin gave {len(records)} diffs for {len(requests)} requests")
        for (m, _), record in zip(requests, records):
            counts = changed[m]
            for path in record.split(b"\0")[1:]:
                path = path.lstrip(b"\n")
                if path:
                    counts[path] = counts.get(path, 0) + 1
    return {m: MergeDetails(bases[m], sorted(p for p, k in changed[m].items() if k > 1)) for m in merges}


class _Ancestry:
    """Merge bases in a commit graph, as git computes them (`paint_down_to_common`)."""

    def __init__(self, parents: dict[str, list[str]], generation: dict[str, int], stamp: dict[str, int]):
        self.parents, self.generation, self.stamp = parents, generation, stamp

    def _key(self, commit: str) -> tuple[int, int, str]:
        return -self.generation.get(commit, 0), -self.stamp.get(commit, 0), commit

    def merge_bases(self, a: str, b: str) -> list[str]:
        """The best common ancestors of `a` and `b`, newest first."""
        if a == b:
            return [a]
        flags = {a: 1, b: 2}
        queue = [self._key(a), self._key(b)]
        heapq.heapify(queue)
        pending = {a, b}  # queued commits that are not stale: the walk ends when there are none
        found: list[str] = []
        while pending:
            commit = heapq.heappop(queue)[2]
            pending.discard(commit)
            f = flags[commit]
            if f == 3:  # reached from both sides, and not below a common ancestor already found
                found.append(commit)
                flags[commit] = f = 7
            for p in self.parents.get(commit, ()):
                if flags.get(p, 0) & f != f:
                    flags[p] = now = flags.get(p, 0) | f
                    if now & 4:
                        pending.discard(p)
                    else:
                        pending.add(p)
                    heapq.heappush(queue, self._key(p))
        return [c for c in found if not any(c != o and self._reaches(o, c) for o in found)]

    def _reaches(self, start: str, target: str) -> bool:
        """Whether `target` is an ancestor of `start` (generations bound the walk)."""
        floor = self.generation.get(target, 0)
        seen, stack = {start}, [start]
        while stack:
            for p in self.parents.get(stack.pop(), ()):
                if p == target:
                    return True
                if p not in seen and self.generation.get(p, 0) > floor:
                    seen.add(p)
                    stack.append(p)
        return False

    def octopus_base(self, heads: list[str]) -> str | None:
        """`git merge-base --octopus`: bases of the first two heads, then of those and each next head."""
        bases = [heads[0]]
        for head in heads[1:]:
            bases = list(dict.fromkeys(b for c in bases for b in self.merge_bases(c, head)))
            if not bases:
                return None
        return bases[0]


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
    conflicts: list[bytes] = field(default_factory=list)  # paths of `remerge CONFLICT` notes (merges)


def merge_diff_option(git: Git) -> str:
    """`--remerge-diff` where git has it (2.36 and later), else `--cc`, said once in the log."""
    out = git.run("version").decode()
    m = re.search(r"(\d+)\.(\d+)", out)
    if m is not None and (int(m.group(1)), int(m.group(2))) >= (2, 36):
        return REMERGE_DIFF
    logger.warning("%s: merges are recorded as combined diffs (--cc); git 2.36 or later records what "
                   "each merge changed (--remerge-diff)", out.strip())
    return COMBINED_DIFF


def stream_commits(git: Git, hashes: list[str], merges: Collection[str] = (), merge_diff: str = REMERGE_DIFF
                   ) -> Iterator[tuple[int, bytes, list[FileChange]]]:
    """Yield `(index, raw_output, unreadable_file_changes)` for each of `hashes`, in order.

    `merges` are the merge commits among them (`merge_details`' keys), `merge_diff` how they are
    diffed: `REMERGE_DIFF` or, for git before 2.36, `COMBINED_DIFF` (in the one stream).

    The remerge diffs come from more `git log`s that run beside the first, newest merge first:
    `git log` forgets a commit's parents once it has shown it, so a merge shown after its own
    ancestors would be redone without a merge base (add/add conflicts everywhere). The merges are
    cut into runs of growing size, oldest run first (`_MergeSpools`), so that the first merges do
    not wait for git to redo the last ones.
    """
    if merge_diff != REMERGE_DIFF or not merges:
        yield from _stream_all(git, hashes, [*DIFF_OPTIONS, merge_diff])
        return
    merges = set(merges)
    spool = _MergeSpools(git, [h for h in hashes if h in merges], [*DIFF_OPTIONS, merge_diff])
    try:
        plain = _stream_all(git, [h for h in hashes if h not in merges], [*DIFF_OPTIONS, COMBINED_DIFF])
        for i, h in enumerate(hashes):
            if h in merges:
                yield (i, *spool.get(h))
            else:
                yield (i, *next(plain)[1:])
    finally:
        spool.close()


def _stream_all(git: Git, hashes: list[str], options: list[str]) -> Iterator[tuple[int, bytes, list[FileChange]]]:
    """One `git log` stream over `hashes`, restarted after a commit whose objects are missing."""
    start = 0
    while start < len(hashes):
        done, error = yield from _stream_from(git, hashes, start, options)
        if error is None:
            return
        # The record at `done` is incomplete or unconfirmed: walk on one commit at a time until
        # the one with missing objects, then stream again after it.
        for k in range(done, len(hashes)):
            raw, missing = _single_commit(git, hashes[k], error, options)
            yield k, raw, missing
            if missing:
                break
        start = k + 1


class _MergeSpools:
    """The merges (oldest first) in runs of 32, 64, 128, ... merges, each a `_MergeSpool` of its own.

    Run k+1's git starts when run k is first read, so that git redoes the next merges while
    these are used; a run is closed (its file deleted) once a later run is read.
    """

    FIRST_RUN = 32

    def __init__(self, git: Git, merges: list[str], options: list[str]):
        self.git, self.options = git, options
        self.runs: list[list[str]] = []
        start, size = 0, self.FIRST_RUN
        while start < len(merges):
            self.runs.append(merges[start:start + size])
            start, size = start + size, size * 2
        self.run_of = {h: k for k, run in enumerate(self.runs) for h in run}
        self.spools: dict[int, _MergeSpool] = {}
        self._start(0)

    def _start(self, k: int) -> None:
        if k < len(self.runs) and k not in self.spools:
            self.spools[k] = _MergeSpool(self.git, self.runs[k][::-1], self.options)  # newest first

    def get(self, merge: str) -> tuple[bytes, list[FileChange]]:
        k = self.run_of[merge]
        self._start(k)
        self._start(k + 1)
        for done in [j for j in self.spools if j < k]:
            self.spools.pop(done).close()
        return self.spools[k].get(merge)

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()


class _MergeSpool:
    """A `git log` of some merges, newest first, written to a temporary file while the main stream runs."""

    def __init__(self, git: Git, merges: list[str], options: list[str]):
        self.git, self.merges, self.options = git, merges, options
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        args = ["log", "--no-walk=unsorted", "--stdin", "--no-notes", "-M", FORMAT, DATE_RAW, *options]
        self.proc = subprocess.Popen(git.argv(args), stdin=subprocess.PIPE, stdout=self.out, stderr=self.err,
                                     env=git.env)
        try:  # git reads all of stdin before it writes: no deadlock
            self.proc.stdin.write("".join(h + "\n" for h in merges).encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # git died early: _index reports its error
        self.spans: dict[str, tuple[int, int]] | None = None
        self.error: str | None = None

    def _index(self) -> None:
        """Where each merge's record lies in the file; a failed run's last record is not trusted."""
        rc = self.proc.wait()
        self.spans = {}
        size = self.out.seek(0, os.SEEK_END)
        if size:
            with mmap.mmap(self.out.fileno(), 0, access=mmap.ACCESS_READ) as data:
                starts = []
                for h in self.merges:
                    pos = data.find(MARK + h.encode(), starts[-1] if starts else 0)
                    if pos < 0:
                        break
                    starts.append(pos)
                ends = starts[1:] + [size]
                if rc != 0 and starts:
                    starts.pop()
                self.spans = {h: (a, b) for h, a, b in zip(self.merges, starts, ends)}
        if rc != 0:
            self.err.seek(0)
            self.error = first_error_line(self.err.read()) or f"git log exited with {rc}"
            logger.warning("git log of the merges stopped (%s); reading the rest one by one", self.error)

    def get(self, merge: str) -> tuple[bytes, list[FileChange]]:
        if self.spans is None:
            self._index()
        span = self.spans.get(merge)
        if span is None:
            return _single_commit(self.git, merge, self.error or "no record", self.options)
        self.out.seek(span[0])
        return self.out.read(span[1] - span[0]), []

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()


def _stream_from(git: Git, hashes: list[str], start: int, options: list[str]):
    """Stream `hashes[start:]`; return `(first index not yielded, git's error or None)`."""
    args = ["log", "--no-walk=unsorted", "--stdin", "--no-notes", "-M", FORMAT, DATE_RAW, *options]
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


def _single_commit(git: Git, commit: str, stream_error: str, options: list[str]) -> tuple[bytes, list[FileChange]]:
    """One commit alone, leaving out (and returning) file changes with missing blobs.

    (`git diff-tree` has no `--remerge-diff`, and a merge with missing blobs cannot be redone: such a
    merge gets `--cc` over its readable paths.)
    """
    listing = git.run("diff-tree", "--no-commit-id", "-r", "--root", "-c", "--raw", "-z", "--no-renames", commit)
    entries = _parse_meta(listing.split(b"\0"))[0]
    parents = git.run("log", "-1", "--format=%P", commit).decode().split()  # as a shallow clone sees them
    missing_blobs = missing_objects(git, [commit, *parents]) if entries else set()
    missing = [fc for fc in entries if missing_blobs.intersection(fc.blobs)]
    for fc in missing:
        fc.missing_object = True
    if not missing:
        try:
            return git.run("log", "--no-walk", "--no-notes", "-M", FORMAT, DATE_RAW, *options, commit), []
        except GitError as e:
            raise GitError(f"commit {commit}: {e} (while streaming: {stream_error})") from None
    readable = [":(literal)" + fc.path.decode("utf-8", "surrogateescape") for fc in entries if not fc.missing_object]
    if readable:
        raw = git.run("diff-tree", "--always", "--no-renames", FORMAT, DATE_RAW, *DIFF_OPTIONS, COMBINED_DIFF,
                      commit, "--", *readable)
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
        commit.patch_mismatch = not _attach_patches(files, patch, combined, commit.conflicts)
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


def _attach_patches(files: list[FileChange], patch: bytes, combined: bool, conflicts: list[bytes]) -> bool:
    """Give each file change its `diff --git`/`diff --cc` section; False if they do not line up.

    A merge's remerge diff also has notes of conflicts that the merge resolved: a section with
    `remerge CONFLICT` lines, with a file change (the resolution) or, when the merge kept git's
    own result, alone. Their paths go to `conflicts`.
    """
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
    for sec in sections:
        noted = b"\nremerge CONFLICT" in sec
        if noted and _note_only(sec):
            conflicts.append(_git_path(sec))
            continue
        if k > 0 and files[k - 1].status == "T" and _first_line(sec) == _first_line(files[k - 1].patch):
            _take(files[k - 1], sec)  # a type change (file <-> symlink): a deletion and a creation, one header
            continue
        if k >= len(files):
            return False
        _take(files[k], sec)
        if noted:
            conflicts.append(files[k].path)
        k += 1
    return k == len(files)


def _note_only(section: bytes) -> bool:
    """A remerge diff section with no change: its header and `remerge ...` lines only."""
    return all(line.startswith(b"remerge ") for line in section.rstrip(b"\n").split(b"\n")[1:])


def _git_path(section: bytes) -> bytes:
    """The new path in a `diff --git a/<old> b/<new>` header (C-unquoted when git quoted it)."""
    names = _first_line(section)[len(b"diff --git "):]
    if names.endswith(b'"'):
        return unquote_c(names[names.rindex(b' "b/') + 4:-1])
    n = (len(names) - 5) // 2  # `a/X b/X`: the same path twice
    if names[2:2 + n] == names[5 + n:]:
        return names[5 + n:]
    return names[names.rindex(b" b/") + 3:]


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
