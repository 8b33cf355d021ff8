"""Turn one parsed commit into the record the scraper writes (see docs/history.md for the fields).

    builder = RecordBuilder(git, max_diff_bytes=..., redact=True, function_complexity=True)
    record = builder.build(parse_commit(raw), missing, order, branches, tags)

Diff text is bounded per file (cut at a line end, `truncated: true`), decoded as UTF-8 with
replacement characters, and redacted, as are messages, paths and author fields; `additions`/`deletions`
always come from git's numstat, so they stay exact when the text is cut. Paths that are not
UTF-8 keep their bytes as `\\xNN`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

from scrapers.complexity import FunctionWorkers, changed_line_ranges, commit_complexity, measurable
from scrapers.git_log_stream import NULL_SHA, FileChange, MergeDetails, ParsedCommit
from core.git_runner import Git, GitError
from core.languages import HEAD_CHARS, content_may_decide, language_of
from core.parsers import widen_chars
from core.redaction import Redactor, redact
from core.settings import MAX_CHUNK_TOKENS

logger = logging.getLogger(__name__)

CHANGE_TYPES = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "copied",
                "T": "type_changed", "U": "unmerged", "X": "unknown"}


def _path(b: bytes) -> str:
    return b.decode("utf-8", "backslashreplace")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_FIRST_LINE_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+1(?:,\d+)? @@[^\n]*\n", re.M)
# a deleted file's whole old side: stage 2 decides a deleted file on its old blob
_DELETED_FILE_HUNK = re.compile(r"^@@ -1(?:,\d+)? \+0,0 @@[^\n]*\n", re.M)


def _language(path: str, diff: str) -> str:
    """The language of a file change: its name, or for a name that tells none, the file's first lines
    (modeline, shebang) where the diff shows them (a hunk from line 1 of the new side, or of the old
    side of a deleted file). The function workers decide it on the blob instead where they read it.

    >>> _language("gitk", "@@ -0,0 +1,2 @@\\n+#!/usr/bin/env python3\\n+import os\\n")
    'python'
    """
    if not content_may_decide(path):
        return language_of(path)
    m, side = _FIRST_LINE_HUNK.search(diff), ("+", " ")
    if m is None:
        m, side = _DELETED_FILE_HUNK.search(diff), ("-", " ")
    if m is None:
        return language_of(path)
    head = [l[1:] for l in diff[m.end():m.end() + HEAD_CHARS].split("\n") if l[:1] in side]
    return language_of(path, "\n".join(head) + "\n")


def _change_type(status: str) -> str:
    """`M`, `R087` or a merge's per-parent letters (`MM`: modified against both parents)."""
    letters = set(status[0] if status[0] in "RC" else status)
    return CHANGE_TYPES.get(letters.pop(), "unknown") if len(letters) == 1 else "modified"


def _blob(sha: str) -> str | None:
    return None if sha == NULL_SHA else sha


_RAW_DATE = re.compile(r"(-?\d+) (\S+)")
_OFFSET = re.compile(r"([+-])([01]\d|2[0-3])([0-5]\d)")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_raw_date(raw: str) -> tuple[int | None, str | None, str | None]:
    """`(epoch, ISO 8601, problem)` of a date as git recorded it (`"<epoch> <offset>"`).

    The ISO time is in the recorded offset; a malformed offset gives the time in UTC and a
    problem; a missing or unreadable date gives `(None, None, problem)`.

    >>> parse_raw_date("1315449530 +0200")
    (1315449530, '2011-09-08T04:38:50+02:00', None)
    >>> parse_raw_date("1315449530 +51800")
    (1315449530, '2011-09-08T02:38:50+00:00', "offset '+51800' is malformed (time given in UTC)")
    >>> parse_raw_date("-100000000 -0500")
    (-100000000, '1966-10-31T09:13:20-05:00', None)
    """
    m = _RAW_DATE.fullmatch(raw.strip())
    if m is None:
        return None, None, "missing" if not raw.strip() else f"unreadable ({raw.strip()!r})"
    epoch, offset = int(m[1]), m[2]
    tz, problem = timezone.utc, None
    o = _OFFSET.fullmatch(offset)
    if o is None:
        problem = f"offset {offset!r} is malformed (time given in UTC)"
    else:
        tz = timezone((-1 if o[1] == "-" else 1) * timedelta(hours=int(o[2]), minutes=int(o[3])))
    try:
        when = (_EPOCH + timedelta(seconds=epoch)).astimezone(tz)
    except OverflowError:
        return epoch, None, f"epoch {epoch} is out of range"
    return epoch, when.isoformat(), problem


def _raw_header_dates(git: Git, commit: str) -> dict[str, str]:
    """The `author`/`committer` dates of the commit object itself: what `%ad` cannot print (before 1970)."""
    out = git.run("cat-file", "commit", commit).decode("utf-8", "replace")
    dates = {}
    for line in out.split("\n\n", 1)[0].split("\n"):
        role, _, rest = line.partition(" ")
        if role in ("author", "committer"):
            dates[role] = rest.rpartition(">")[2].strip()
    return dates


def commit_dates(git: Git, header: dict[str, str]) -> dict:
    """The record's date fields from the raw dates in `header`; problems are listed, never raised.

    A date git cannot print is read from the commit object; a missing committer date falls back
    to the author date (and the other way round), and both missing to the epoch.
    """
    raw = {"author": header["author_date"], "committer": header["committer_date"]}
    if not raw["author"] or not raw["committer"]:
        try:
            raw.update(_raw_header_dates(git, header["hash"]))
        except GitError as e:
            logger.warning("commit %s: cannot read its raw dates (%s)", header["hash"][:12], e)
    parsed = {role: parse_raw_date(raw[role]) for role in raw}
    problems = [f"{role} date {p[2]}" for role, p in parsed.items() if p[2]]
    fields = {}
    for role, other in (("author", "committer"), ("committer", "author")):
        epoch, iso, _ = parsed[role]
        if iso is None:
            epoch, iso, _ = parsed[other]
        if iso is None:
            epoch, iso = 0, _EPOCH.isoformat()
        fields[role] = (epoch, iso)
    return {"authored_at": fields["author"][1], "committed_at": fields["committer"][1],
            "timestamp": fields["committer"][0], "author_date_raw": raw["author"],
            "committer_date_raw": raw["committer"], "date_problems": problems}


class RecordBuilder:
    def __init__(self, git: Git, max_diff_bytes: int, redact: bool, function_complexity: bool,
                 merges: dict[str, MergeDetails] | None = None, jobs: int = 0,
                 max_chars: int = widen_chars(MAX_CHUNK_TOKENS)):
        self.git = git
        self.merges = merges or {}  # merge hash -> base and conflict candidates (`merge_details`)
        self.max_diff_bytes = max_diff_bytes
        self.redact = Redactor(redact)  # every text of a record goes through it; counts per kind and field
        # `jobs` processes, or 0: here; `max_chars`: stage 2's widening reach (`complexity.definitions_for`)
        self.workers = FunctionWorkers(git, jobs, max_chars) if function_complexity else None
        self.prefetched: dict[str, list] = {}  # commit -> the workers' ticket for its files
        self.counts: Counter = Counter()

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()

    def build(self, commit: ParsedCommit, missing: list[FileChange], order: int,
              branches: list[str], tags: list[str]) -> dict:
        h = commit.header
        parents = h["parents"].split()
        message = self.redact(h["message"].rstrip("\n"), "messages")
        functions, languages, definitions = self._functions(commit) if self.workers is not None else ([], {}, {})
        files = [self._file(fc, languages.get(k), definitions.get(k)) for k, fc in enumerate(commit.files + missing)]
        if functions:  # the paths as the record shows them (redacted)
            shown = {_path(fc.path): f["path"] for fc, f in zip(commit.files, files)}
            for fn in functions:
                fn["path"] = shown.get(fn["path"], fn["path"])
        complexity = commit_complexity([(f["additions"], f["deletions"]) for f in files])
        complexity["functions"] = functions
        ccns = [fn["cyclomatic_complexity"] for fn in functions]
        complexity["max_function_ccn"] = max(ccns, default=0)
        complexity["mean_function_ccn"] = round(sum(ccns) / len(ccns), 3) if ccns else 0.0
        is_merge = len(parents) > 1
        dates = commit_dates(self.git, h)
        if dates["date_problems"]:
            logger.warning("commit %s: %s", h["hash"][:12], "; ".join(dates["date_problems"]))
        c = self.counts
        c["malformed_dates"] += bool(dates["date_problems"])
        c["commits"] += 1
        c["merges"] += is_merge
        c["empty_commits"] += not files
        c["file_changes"] += len(files)
        c["patch_mismatch"] += commit.patch_mismatch
        c["functions_measured"] += len(functions)
        if commit.patch_mismatch:
            logger.warning("commit %s: patch sections did not line up with the file list", h["hash"][:12])
        return {
            "hash": h["hash"],
            "short_hash": h["hash"][:7],
            "order": order,
            "parents": parents,
            "author": {"name": self.redact(h["author_name"], "authors"), "email": self.redact(h["author_email"], "authors")},
            "committer": {"name": self.redact(h["committer_name"], "authors"),
                          "email": self.redact(h["committer_email"], "authors")},
            **dates,
            "subject": message.split("\n\n", 1)[0].replace("\n", " ").strip(),
            "message": message,
            "branches": branches,
            "tags": tags,
            "is_merge": is_merge,
            "merge": self._merge(h["hash"], parents, commit) if is_merge else None,
            "files": files,
            "complexity": complexity,
        }

    def _file(self, fc: FileChange, language: str | None = None, definitions: dict | None = None) -> dict:
        """The record of a file change; `language`: its blob's where the function workers read it;
        `definitions`: what stage 2 needs of its new blob's tree (`complexity.definitions_for`)."""
        patch = fc.patch
        truncated = len(patch) > self.max_diff_bytes
        if truncated:
            cut = patch.rfind(b"\n", 0, self.max_diff_bytes)
            patch = patch[:cut + 1 if cut >= 0 else self.max_diff_bytes]
        is_binary = fc.binary
        c = self.counts
        c["binary"] += is_binary
        c["truncated"] += truncated
        c["missing_objects"] += fc.missing_object
        c["diff_bytes"] += len(fc.patch)
        text = patch.decode("utf-8", "replace")
        # content in latin-1 or another encoding (the hunks, not the header's path): marked and counted
        not_utf8 = "\ufffd" in text and not _is_utf8(patch[max(patch.find(b"\n@@"), 0):])
        c["not_utf8_diffs"] += not_utf8
        path = _path(fc.path)
        return {
            "path": self.redact(path, "paths"),
            "old_path": self.redact(_path(fc.old_path), "paths") if fc.old_path is not None else None,
            "change_type": _change_type(fc.status),
            "language": language or _language(path, text),
            "additions": fc.additions,
            "deletions": fc.deletions,
            "is_binary": is_binary,
            "diff": self.redact(text, "diffs", path),
            "not_utf8": not_utf8,
            "truncated": truncated,
            "old_mode": None if fc.modes[0] == "000000" else fc.modes[0],
            "new_mode": None if fc.modes[-1] == "000000" else fc.modes[-1],
            "old_blob": _blob(fc.blobs[0]),
            "new_blob": _blob(fc.blobs[-1]),
            "missing_object": fc.missing_object,
            "definitions": definitions if definitions is None or self._shown(definitions, path) else None,
        }

    def _shown(self, definitions: dict, path: str) -> bool:
        """Whether the names of `definitions` can be shown as they are: no secret in them (a test's title
        is a string); the record does not show them redacted, stage 2 then parses the blob itself."""
        return not self.redact.enabled or not redact("\n".join(name for _, _, name, _ in definitions["found"]), path)[1]

    def prefetch(self, commit: ParsedCommit) -> None:
        """Hand this commit's files to the function workers, before `build` needs their functions."""
        if self.workers is None:
            return
        items, positions = [], []
        for k, fc, path, ranges in self._wanted(commit.files):
            old = fc.blobs[0] if len(fc.blobs) == 2 and fc.blobs[0] != NULL_SHA else None
            patch = fc.patch if old is not None else b""  # a new file's patch (all of it) is not sent
            items.append((path, fc.blobs[-1], ranges, old, patch))
            positions.append(k)
        self.prefetched[commit.header["hash"]] = (self.workers.submit(items), positions)

    def _wanted(self, changes: list[FileChange]) -> list[tuple[int, FileChange, str, list[tuple[int, int]] | None]]:
        """The readable, text new files of a commit that are parseable or whose content may decide their
        language (with their positions), with their changed line ranges ([]: the language only)."""
        wanted = []
        for k, fc in enumerate(changes):
            new_blob = fc.blobs[-1]
            if new_blob == NULL_SHA or fc.binary or fc.modes[-1] not in ("100644", "100755"):
                continue
            path = _path(fc.path)
            decides = content_may_decide(path)
            if not (decides or measurable(path)):
                continue
            ranges = None if fc.status == "A" else changed_line_ranges(fc.patch)
            if ranges != [] or decides:  # else a rename or mode change without a changed line
                wanted.append((k, fc, path, ranges if measurable(path) else []))
        return wanted

    def _functions(self, commit: ParsedCommit) -> tuple[list[dict], dict[int, str], dict[int, dict]]:
        """Changed functions (with CCN) of the commit's readable, text, parseable new files, the
        languages their blobs decided (a `.h` header that shows C++) and the definitions stage 2 needs
        of them, by position in `commit.files`."""
        if commit.header["hash"] not in self.prefetched:
            self.prefetch(commit)
        assert self.workers is not None
        ticket, positions = self.prefetched.pop(commit.header["hash"])
        results = self.workers.result(ticket)
        return ([f for found, _, _ in results for f in found],
                {k: lang for k, (_, lang, _) in zip(positions, results) if lang is not None},
                {k: defs for k, (_, _, defs) in zip(positions, results) if defs is not None})

    def _merge(self, commit: str, parents: list[str], parsed: ParsedCommit) -> dict:
        """Merge base, the files both sides changed since it, and the conflicts the merge resolved."""
        details = self.merges.get(commit)
        if details is None or details.base is None:  # unrelated histories, or parents cut off by a shallow clone
            self.counts["merges_without_base"] += 1
        self.counts["clean_merges"] += not parsed.files and not parsed.conflicts
        self.counts["octopus_merges"] += len(parents) > 2
        return {
            "parents": parents,
            "merge_base": details.base if details is not None else None,
            "both_sides_changed": [self.redact(_path(p), "paths") for p in details.both_sides_changed]
            if details is not None else [],
            "resolved_files": [self.redact(_path(p), "paths")
                               for p in (parsed.conflicts if not parsed.combined else [fc.path for fc in parsed.files])],
        }
