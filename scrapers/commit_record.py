"""Turn one parsed commit into the record the scraper writes (see docs/history.md for the fields).

    builder = RecordBuilder(git, max_diff_bytes=..., redact=True, function_complexity=True)
    record = builder.build(parse_commit(raw), missing, order, branches, tags)

Diff text is bounded per file (cut at a line end, `truncated: true`), decoded as UTF-8 with
replacement characters, and redacted; `additions`/`deletions` always come from git's numstat,
so they stay exact when the text is cut. Paths that are not UTF-8 keep their bytes as `\\xNN`.
"""

from __future__ import annotations

import logging
from collections import Counter

from scrapers.complexity import BlobReader, FunctionMeter, changed_line_ranges, commit_complexity, measurable
from scrapers.git_log_stream import NULL_SHA, FileChange, Git, MergeDetails, ParsedCommit
from scrapers.languages import language_of
from scrapers.redaction import add_counts, redact

logger = logging.getLogger(__name__)

CHANGE_TYPES = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "copied",
                "T": "type_changed", "U": "unmerged", "X": "unknown"}


def _path(b: bytes) -> str:
    return b.decode("utf-8", "backslashreplace")


def _change_type(status: str) -> str:
    """`M`, `R087` or a merge's per-parent letters (`MM`: modified against both parents)."""
    letters = set(status[0] if status[0] in "RC" else status)
    return CHANGE_TYPES.get(letters.pop(), "unknown") if len(letters) == 1 else "modified"


def _blob(sha: str) -> str | None:
    return None if sha == NULL_SHA else sha


class RecordBuilder:
    def __init__(self, git: Git, max_diff_bytes: int, redact: bool, function_complexity: bool,
                 merges: dict[str, MergeDetails] | None = None):
        self.git = git
        self.merges = merges or {}  # merge hash -> base and conflict candidates (`merge_details`)
        self.max_diff_bytes = max_diff_bytes
        self.redact = redact
        self.blobs = BlobReader(git) if function_complexity else None
        self.meter = FunctionMeter()
        self.prefetched: dict[str, tuple[list, list[str]]] = {}  # commit -> (files to measure, blobs asked for)
        self.counts: Counter = Counter()
        self.secrets: dict[str, int] = {}

    def close(self) -> None:
        if self.blobs is not None:
            self.blobs.close()

    def _text(self, text: str) -> str:
        if not self.redact:
            return text
        text, counts = redact(text)
        add_counts(self.secrets, counts)
        return text

    def build(self, commit: ParsedCommit, missing: list[FileChange], order: int,
              branches: list[str], tags: list[str]) -> dict:
        h = commit.header
        parents = h["parents"].split()
        message = self._text(h["message"].rstrip("\n"))
        files = [self._file(fc) for fc in commit.files + missing]
        functions = self._functions(commit) if self.blobs is not None else []
        complexity = commit_complexity([(f["additions"], f["deletions"]) for f in files])
        complexity["functions"] = functions
        ccns = [fn["cyclomatic_complexity"] for fn in functions]
        complexity["max_function_ccn"] = max(ccns, default=0)
        complexity["mean_function_ccn"] = round(sum(ccns) / len(ccns), 3) if ccns else 0.0
        is_merge = len(parents) > 1
        c = self.counts
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
            "author": {"name": h["author_name"], "email": h["author_email"]},
            "committer": {"name": h["committer_name"], "email": h["committer_email"]},
            "authored_at": h["authored_at"],
            "committed_at": h["committed_at"],
            "timestamp": int(h["timestamp"]),
            "subject": message.split("\n\n", 1)[0].replace("\n", " ").strip(),
            "message": message,
            "branches": branches,
            "tags": tags,
            "is_merge": is_merge,
            "merge": self._merge(h["hash"], parents, commit) if is_merge else None,
            "files": files,
            "complexity": complexity,
        }

    def _file(self, fc: FileChange) -> dict:
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
        path = _path(fc.path)
        return {
            "path": path,
            "old_path": _path(fc.old_path) if fc.old_path is not None else None,
            "change_type": _change_type(fc.status),
            "language": language_of(path),
            "additions": fc.additions,
            "deletions": fc.deletions,
            "is_binary": is_binary,
            "diff": self._text(patch.decode("utf-8", "replace")),
            "truncated": truncated,
            "old_mode": None if fc.modes[0] == "000000" else fc.modes[0],
            "new_mode": None if fc.modes[-1] == "000000" else fc.modes[-1],
            "old_blob": _blob(fc.blobs[0]),
            "new_blob": _blob(fc.blobs[-1]),
            "missing_object": fc.missing_object,
        }

    def prefetch(self, commit: ParsedCommit) -> None:
        """Ask git for the blobs this commit's functions will need, before `build` measures them."""
        if self.blobs is None:
            return
        wanted = self._wanted(commit.files)
        blobs = list(dict.fromkeys(fc.blobs[-1] for fc, path, _ in wanted if self.meter.needs(path, fc.blobs[-1])))
        self.blobs.request(blobs)
        self.prefetched[commit.header["hash"]] = (wanted, blobs)

    def _wanted(self, changes: list[FileChange]) -> list[tuple[FileChange, str, list[tuple[int, int]] | None]]:
        """The readable, text, parseable new files of a commit, with their changed line ranges."""
        wanted = []
        for fc in changes:
            new_blob = fc.blobs[-1]
            if new_blob == NULL_SHA or fc.binary or fc.modes[-1] not in ("100644", "100755"):
                continue
            path = _path(fc.path)
            if not measurable(path):
                continue
            ranges = None if fc.status == "A" else changed_line_ranges(fc.patch)
            if ranges != []:  # else a rename or mode change without a changed line
                wanted.append((fc, path, ranges))
        return wanted

    def _functions(self, commit: ParsedCommit) -> list[dict]:
        """Changed functions (with CCN) of the commit's readable, text, parseable new files."""
        if commit.header["hash"] not in self.prefetched:
            self.prefetch(commit)
        wanted, requested = self.prefetched.pop(commit.header["hash"])
        contents = {blob: self.blobs.get(blob) for blob in requested}
        out: list[dict] = []
        for fc, path, ranges in wanted:
            old = fc.blobs[0] if len(fc.blobs) == 2 and fc.blobs[0] != NULL_SHA else None
            out += self.meter.changed_functions(path, fc.blobs[-1], lambda b: contents[b] if b in contents
                                                else self.blobs.read(b), ranges, old, fc.patch)
        self.counts["function_blobs_parsed"] = self.meter.parsed
        return out

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
            "both_sides_changed": [_path(p) for p in details.both_sides_changed] if details is not None else [],
            "resolved_files": [_path(p) for p in parsed.conflicts] if not parsed.combined
            else [_path(fc.path) for fc in parsed.files],
        }
