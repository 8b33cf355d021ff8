"""Stage 2: cut every change and the code itself into chunks within a token budget, at function/class boundaries.

    python3 semantic_chunker.py --repo PATH --commits data/NAME/git_history_rich.json \
        --output data/NAME/chunks_semantic.jsonl --max-chunk-tokens 512 --min-chunk-tokens 64

Reads stage 1's commit records (`.json` or `.jsonl`), oldest first, one commit at a time, and
writes `chunks_semantic.jsonl` (one chunk per line: diff chunks in commit order, then snapshot
chunks), `chunks_semantic.tokens.npy` (every chunk's token ids, concatenated in file order, so
stage 3 does not encode again) and `chunks_semantic.stats.json`. Field reference:
docs/chunks.md. Diff chunks first; then the train cut-off is computed from them
(`core.splits.split_commits`, the function stage 4 uses) and the files at that commit become
snapshot chunks, which belong to train.

`--workers N` (default one per CPU, at most 4): batches of commits (up to 256 early in the history,
32 at its end: `_guided_batches`), and of snapshot files, are chunked in N forked worker
processes (`core.parallel.ProcessMap`), each with its own `Chunker` (git readers, caches);
this process reads the records, writes the results in input order and drops duplicates, so the
files are the same bytes for any N. `--workers 1`: all here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import islice, starmap
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from chunking.assemble import Fitter, Piece, Section  # noqa: E402
from chunking.filters import (BlobVerdicts, FileFilter, changed_lines, is_binary_bytes, lfs_pointer_reason,  # noqa: E402
                              normalize_newlines, pin_bump)
from chunking.output import TOKEN_DTYPE, ChunkWriter  # noqa: E402
from chunking.reuse import CommitCache, Kept, commit_key, line_key, write_cache  # noqa: E402
from core.parallel import ProcessMap, usable_cpus  # noqa: E402
from core.parsers import BlobTrees, Definition, definitions_near, parser_language, widen_chars  # noqa: E402
from chunking.units import Block, parse_hunks, widen_hunks  # noqa: E402
from chunking.snapshots import TreeReader, head_commit  # noqa: E402
from core import settings  # noqa: E402
from core.config import PATH, RUN, add_flags, at_least, check_fields, from_args, key_settings, setting  # noqa: E402
from core.settings import MAX_CHUNK_TOKENS, PROGRESS, REDACT, SNAPSHOT_AT  # noqa: E402
from core.io import (UserError, count_records, iter_commit_records, jsonl_lines, parse_jsonl_line,  # noqa: E402
                     run_main, setup_logging)
from core.schema import COMMITS_SUFFIX, TOKENS_SUFFIX, companion  # noqa: E402
from core.splits import DEFAULT_RATIOS, split_commits  # noqa: E402
from core.tokenizer import DEFAULT_MODEL, encode_batch, load_tokenizer, tokenizer_identity  # noqa: E402

logger = logging.getLogger(__name__)

SUBJECT_CHARS = 120
GITLINK = "160000"  # the mode of a submodule entry
REGULAR_MODE = "100"  # the modes of regular files: 100644, 100755 (a symlink is 120000)
_WHITESPACE = re.compile(r"\s+")
_CHERRY_PICKED = re.compile(r"(?m)^\(cherry picked from commit [0-9a-f]+\)\n?")
_HEX = re.compile(r"\b[0-9a-f]{12,64}\b")
SNAPSHOT_BATCH_FILES = 64
SNAPSHOT_BATCH_CHARS = 1 << 16  # a snapshot batch ends at this many characters too, so that the workers share the files evenly
AHEAD_PER_WORKER = 3  # commit batches (or snapshot batches) in flight per worker
COMMITS_PER_BATCH = 32  # commits whose changes are measured together (one encode per round, not per commit)
MAX_COMMITS_PER_BATCH = 256  # a worker's batch early in a long history (see `_guided_batches`)
GUIDED_SHARE = 4  # a worker's batch is 1/(this x workers) of the commits left
BATCH_DIFF_CHARS = 8 << 20  # ... and ends once its commits hold this much diff text
READ_AHEAD_COMMITS = 16  # commits whose blobs git is asked for before they are chunked
MAX_SYMBOLS = 3
EXAMPLE_PATHS = 3  # paths shown per reason a file is left out (stats, report)
LEAD_SHARE = 2  # a commit's lead (commit line and message body) holds at most 1/2 of the chunk budget in tokens
NOT_UTF8_PATH = re.compile("[\udc80-\udcff]")  # the surrogate escapes of bytes that are not UTF-8


@dataclass
class ChunkConfig:
    """Stage 2's settings, each declared once (`core.config`): the flags below and the one command's come from here."""

    repo: str | None = setting(None, "the git repository (for file snapshots; not needed with --snapshot-at none)",
                               role=PATH)
    commits: str = setting("data/repo/git_history_rich.jsonl", "stage 1 output: git_history_rich.json or .jsonl",
                           role=PATH, required=True)
    output: str = setting("data/repo/chunks_semantic.jsonl",
                          "chunks_semantic.jsonl to write (tokens and stats beside it)", role=PATH, required=True)
    max_chunk_tokens: int = setting(MAX_CHUNK_TOKENS, "largest chunk, in tokens of the tokenizer")
    min_chunk_tokens: int = setting(64, "smallest chunk: smaller changes are merged with their neighbours in "
                                    "the same commit")
    tokenizer: str = setting(DEFAULT_MODEL, "tokenizer that measures chunks: hub name, directory or tokenizer.json")
    snapshot_at: str = setting("cutoff", "file snapshots at the train cut-off, at HEAD (leaks later code into "
                               "train), or none", choices=SNAPSHOT_AT)
    split_ratios: tuple[float, float, float] = setting(DEFAULT_RATIOS, "train, val, test shares, for the cut-off "
                                                       "(--train-ratio, --val-ratio, --test-ratio)", flag="")
    filter_binary: bool = setting(True, "stage 2: keep binary files (left out by default)", flag="--no-binary")
    filter_build_artifacts: bool = setting(True, "stage 2: keep build outputs and vendored trees (target/, "
                                           "node_modules/, *.o, ...; left out by default)", flag="--no-build-artifacts")
    filter_lock_files: bool = setting(True, "stage 2: keep lock files (Cargo.lock, ...; left out by default)",
                                      flag="--no-lock-files")
    filter_generated: bool = setting(True, "stage 2: keep generated or minified files (left out by default)",
                                     flag="--no-generated")
    max_file_bytes: int = setting(1_000_000, "stage 2: leave out larger file changes and files, 0: no bound",
                                  check=at_least(0, " (0: no bound)"))
    deleted_content: bool = setting(False, "stage 2: a deleted file's chunk shows its old content "
                                    "[its title line alone]")
    function_context: bool = setting(True, "stage 2: keep git's 3 context lines instead of widening a hunk to its "
                                     "enclosing function / class")
    formatting_changes: bool = setting(False, "stage 2: keep whitespace-only file changes (left out by default)",
                                       flag="--keep-formatting-changes")
    pin_bumps: bool = setting(False, "stage 2: keep YAML changes that only move version pins, CI action refs or "
                              "pre-commit revs (left out by default)", flag="--keep-pin-bumps")
    dedup: bool = setting(True, "stage 2: keep exact duplicate chunks")
    redact: bool = setting(**REDACT)
    workers: int | None = setting(None, "stage 2 processes that chunk commit batches and snapshot files; the output "
                                  "is the same for any number [one per core, at most 4; 1: none]",
                                  check=at_least(1), role=RUN, pipeline="chunk_workers")
    progress: bool = setting(**PROGRESS)

    def file_filter(self) -> FileFilter:
        return FileFilter(self.filter_binary, self.filter_build_artifacts, self.filter_lock_files,
                          self.filter_generated, self.max_file_bytes)


@dataclass
class _Counts:
    filtered: Counter = field(default_factory=Counter)
    secrets: Counter = field(default_factory=Counter)
    content: Counter = field(default_factory=Counter)  # file changes kept but changed: deleted_title_only, widened
    examples: dict = field(default_factory=dict)  # reason -> the first paths left out for it (EXAMPLE_PATHS at most)

    def leave_out(self, reason: str, path: str) -> None:
        self.filtered[reason] += 1
        # a name that is not UTF-8 (surrogate escapes) shown as stage 1 shows it: `\xNN`
        self.add_examples(reason, [path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")])

    def add_examples(self, reason: str, paths: list[str]) -> None:
        shown = self.examples.setdefault(reason, [])
        for path in paths:
            if len(shown) < EXAMPLE_PATHS and path not in shown:
                shown.append(path)

    def as_dict(self) -> dict:
        """Canonical JSON data (`chunking.reuse` keeps it per commit)."""
        return {"filtered": dict(sorted(self.filtered.items())), "secrets": dict(sorted(self.secrets.items())),
                "content": dict(sorted(self.content.items())), "examples": dict(sorted(self.examples.items()))}

    @classmethod
    def from_dict(cls, d: dict) -> "_Counts":
        return cls(Counter(d["filtered"]), Counter(d["secrets"]), Counter(d["content"]),
                   {k: list(v) for k, v in d["examples"].items()})

    def merge(self, other: "_Counts") -> None:
        self.filtered.update(other.filtered)
        self.secrets.update(other.secrets)
        self.content.update(other.content)
        for reason, paths in other.examples.items():
            self.add_examples(reason, paths)


class Chunker:
    """Everything created once per run: the tokenizer's fitter, the filters, the redactor."""

    def __init__(self, config: ChunkConfig, tok):
        self.cfg, self.tok = config, tok
        self.fitter = Fitter(tok, config.max_chunk_tokens, config.min_chunk_tokens)
        self.filter = config.file_filter()
        self.widen_chars = widen_chars(config.max_chunk_tokens)
        self.trees = BlobTrees()
        self._reader = TreeReader(config.repo).__enter__() if config.repo else None
        self.blobs = BlobVerdicts(self._reader.reader, self.filter) if self._reader is not None else None
        if config.redact:
            from core.redaction import redact
            self._redact = redact
        else:
            self._redact = None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.__exit__(None, None, None)
            self._reader = None

    def redact(self, text: str, counts: _Counts, path: str | None = None) -> str:
        if self._redact is None or not text:
            return text
        text, found = self._redact(text, path)
        counts.secrets.update(found)
        return text

    def _record_reason(self, f: dict) -> tuple[bool, str | None]:
        """(decided, reason): a file change decided on stage 1's record and its path alone, before any blob."""
        if f.get("missing_object"):
            return True, "missing_object"
        if f.get("is_binary"):
            return True, ("binary" if self.filter.binary else None)
        if f.get("not_utf8"):
            return True, "not_utf8"
        if GITLINK in (f.get("old_mode"), f.get("new_mode")):
            return True, "submodule"  # `Subproject commit <hash>`: a pointer, no content
        reason = self.filter.path_reason(f["path"])
        return reason is not None, reason

    def _judged_blob(self, f: dict, decided: bool | None = None) -> str | None:
        """The blob a file change is decided on (read through `self.blobs`), or None; `decided`: whether
        its record and path decided it (`_record_reason`), when known already."""
        if self.blobs is None or (self._record_reason(f)[0] if decided is None else decided):
            return None
        blob = f.get("old_blob") if f.get("change_type") == "deleted" else f.get("new_blob")
        return blob if isinstance(blob, str) and blob else None

    def read_ahead(self, items: Iterable[tuple[int, dict]], n: int) -> Iterator[tuple[int, dict]]:
        """`items` as they come, the blobs of each `n` of them asked of git together (one round trip)
        before the `n` before them are chunked: git reads them meanwhile, instead of one round trip per blob."""
        if self.blobs is None:
            yield from items
            return
        held: list = []
        for group in _batches(items, n):
            self.blobs.prefetch([b for _, rec in group if _valid(rec)
                                 for f in rec.get("files", []) if (b := self._judged_blob(content_side(f)))])
            yield from held
            held = group
        yield from held

    def _diff_reason(self, f: dict) -> tuple[str | None, str | None]:
        """(why a file change is left out, the blob that decided it), on its blob where the repository is at hand."""
        decided, reason = self._record_reason(f)
        blob = self._judged_blob(f, decided)
        if decided or blob is not None:
            return (reason if decided else self.blobs.reason(blob, f["path"])), blob
        diff = f.get("diff") or ""  # no repository: only the diff text can be judged
        reason = self.filter.size_reason(len(diff.encode("utf-8", "replace"))) or lfs_pointer_reason(diff, is_diff=True)
        if reason is None and self.filter.generated:
            added = "\n".join(l[1:] for l in diff.split("\n") if l[:1] == "+" and not l.startswith("+++"))
            reason = self.filter.content_reason(added)
        return reason, None

    def commit_sections(self, rec: dict, counts: _Counts) -> list[Section]:
        """One section per file change kept, the commit's lead on the first (raises on a change it
        cannot read: the caller falls back)."""
        sections = []
        for shown_change in rec.get("files") or []:
            f = content_side(shown_change)
            reason, blob = self._diff_reason(f)
            if reason is not None:
                counts.leave_out(reason, f["path"])
                continue
            shown = dict(f, path=self.redact(f["path"], counts), old_path=self.redact(f.get("old_path"), counts))
            # the blob's language, decided once with its reason (`BlobVerdicts`); stage 1's where no blob was judged
            language = self.blobs.language(blob, f["path"]) if blob is not None else f.get("language")
            if f.get("change_type") == "deleted" and not self.cfg.deleted_content:
                counts.content["deleted_title_only"] += 1
                hunks = []
            else:
                lang = parser_language(f["path"], language)
                diff = normalize_newlines(f.get("diff") or "")
                if not self.cfg.formatting_changes and formatting_only(diff):
                    counts.leave_out("formatting_only", f["path"])
                    continue
                if not self.cfg.pin_bumps and pin_bump(f["path"], diff):
                    counts.leave_out("pin_bump", f["path"])
                    continue
                hunks = parse_hunks(self.redact(diff, counts, f["path"]), lang)
                if self.cfg.function_context and self.blobs is not None and f.get("new_blob") and hunks:
                    # a merge's diff is not from its old blob (--remerge-diff): its tree is parsed afresh
                    hunks = self._widen(hunks, f, lang, "" if len(rec.get("parents") or []) > 1 else diff, counts)
            shown["change_type"] = shown_change.get("change_type")  # a type change says so in its title
            sections.append(Section(shown["path"], language, shown["change_type"], file_title(shown), hunks))
        if sections:  # redacted here, bounded in tokens by `bound_leads`
            sections[0].lead = self.redact(commit_lead(rec, self.cfg.max_chunk_tokens), counts)
        return sections

    def commit_records(self, rec: dict, sections: list[Section], pieces: list[Piece]) -> list[dict]:
        """The diff chunks of a commit from its sections' fitted pieces, its lead alone first if the
        first piece lost it."""
        first = sections[0]
        lead = first.lead
        if not (pieces and pieces[0].body.startswith(lead)):  # the first piece was cut away: the lead alone
            ids = self.fitter.encode([lead])[0]
            if len(ids) <= self.cfg.max_chunk_tokens:
                pieces.insert(0, Piece([Section(first.path, first.language, first.change_type, "", [])], lead, ids))
        return [chunk_record("diff", rec, p, "") for p in pieces]

    def bound_leads(self, leads: list[str]) -> list[str]:
        """Each commit's lead (as `commit_lead` makes it, redacted) within half the token budget, so that
        the file's title and content fit beside it: the message body cut first, then the commit line.
        The lines of all of them, then the bodies, are measured in one encode each; a lead bounded
        already comes back the same."""
        most = self.cfg.max_chunk_tokens // LEAD_SHARE
        parts = [lead.partition("\n") for lead in leads]
        lines = [line + "\n" for line, _, _ in parts]
        n_lines = map(len, self.fitter.encode(lines))
        n_bodies = iter(map(len, self.fitter.encode([body for _, _, body in parts if body])))
        out = []
        for line, n_line, (_, _, body) in zip(lines, n_lines, parts):
            n_body = next(n_bodies) if body else 0
            if n_line > most:
                out.append(cut_to_tokens(line, most, self.fitter.encode, n_line))
            else:
                out.append(line + cut_to_tokens(body, most - n_line, self.fitter.encode, n_body))
        return out

    def _widen(self, hunks: list, f: dict, lang: str | None, patch: str, counts: _Counts) -> list:
        """`hunks` widened on the new blob; `patch` is the diff from the old blob ("" when it is not:
        the new blob is then re-parsed from its path's last tree where the bytes differ, or in full)."""
        text = self.blobs.text(f["new_blob"])
        if text is None or lang is None:
            return hunks

        def near(windows: list[list[int]]) -> list:
            known = f.get("definitions")  # stage 1's, from its parse of the blob, where it asked the same rows
            if known is not None and known["language"] == lang and known["windows"] == windows:
                return [Definition(*d) for d in known["found"]]
            # one tree per blob, re-parsed from the version before
            edits = b"" if f.get("truncated") else patch.encode("utf-8", "surrogatepass")
            tree = self.trees.tree(f["new_blob"], text, lang, f.get("old_blob"), edits, f["path"])
            return definitions_near(tree, lang, windows)

        # a line the diff shows redacted differs from the blob: such a file is left as git showed it
        wide = widen_hunks(hunks, text, lang, self.widen_chars, near)
        if wide is hunks:
            return hunks
        for h in wide:  # the context lines taken from the blob are redacted like the diff
            joined = "\n".join(h.lines)
            shown = self.redact(joined, counts, f["path"])
            if shown is not joined and shown != joined:
                if shown.count("\n") != joined.count("\n"):
                    return hunks
                h.lines = shown.split("\n")
        counts.content["widened_file_changes"] += 1
        return wide

    def batch_job(self, items: Iterable[tuple[int, dict]]) -> list[tuple[dict | None, list[dict], _Counts, str | None]]:
        """(the record's `_summary`, chunks, counts, the error that made it fall back: `Type: message`) of
        each input record (None for one that is not a commit record).

        The leads, then the changes, of all the commits are measured together (one encode per round,
        not one per commit): the same chunks as commit by commit. If that fails, each commit is fitted alone,
        so that only the one that fails falls back.
        """
        out, todo = [], []
        for i, rec in items:
            if not _valid(rec):
                out.append((None, [], _Counts(), None))
                continue
            rec, local = dict(rec, order=rec.get("order", i)), _Counts()
            try:
                sections = self.commit_sections(rec, local)
            except Exception as e:  # one commit the chunker cannot handle must not stop the stage
                out.append(self._fall_back(rec, e))
                continue
            out.append((rec, [], local, None))
            if sections:
                todo.append((len(out) - 1, sections))
        try:
            for (_, sections), lead in zip(todo, self.bound_leads([s[0].lead for _, s in todo])):
                sections[0].lead = lead
            fitted = self.fitter.merge_many("", self.fitter.fit_many("", [s for _, s in todo]))
        except Exception:
            fitted = [None] * len(todo)
        for (k, sections), pieces in zip(todo, fitted):
            rec, _, local, _ = out[k]
            try:
                if pieces is None:
                    sections[0].lead = self.bound_leads([sections[0].lead])[0]
                    pieces = self.fitter.merge("", self.fitter.fit("", sections))
                out[k] = (rec, self.commit_records(rec, sections, pieces), local, None)
            except Exception as e:
                out[k] = self._fall_back(rec, e)
        return [(rec and _summary(rec), chunks, local, error) for rec, chunks, local, error in out]

    def _fall_back(self, rec: dict, error: Exception) -> tuple[dict, list[dict], _Counts, str]:
        local = _Counts()  # what the failed attempt counted is not kept
        return rec, [self.fallback_chunk(rec, local)], local, f"{type(error).__name__}: {error}"

    def fallback_chunk(self, rec: dict, counts: _Counts) -> dict:
        """One raw `commit` chunk: message and diffs, cut at a line end to fit the budget."""
        parts = [commit_line(rec), rec.get("message") or "", "\n"]
        for f in rec.get("files") or []:
            parts.append(f"{file_title(f)}\n{f.get('diff') or ''}\n")
        text = self.redact("".join(parts), counts)
        text = text[:self.cfg.max_chunk_tokens * 12]
        ids = encode_batch(self.tok, [text])[0]
        while len(ids) > self.cfg.max_chunk_tokens:
            cut = int(len(text) * self.cfg.max_chunk_tokens / len(ids) * 0.95)
            text = text[:text.rfind("\n", 0, cut) + 1 or cut]
            ids = encode_batch(self.tok, [text])[0]
        files = rec.get("files") or [{}]
        piece = Piece([Section(files[0].get("path", ""), files[0].get("language"), None, "", [])], text, ids)
        return chunk_record("commit", rec, piece, "")

    def snapshot_chunks(self, repo: str, commit: str, meta: dict, counts: _Counts, kept: Counter,
                        pool: ProcessMap | None = None) -> Iterable[dict]:
        """Chunks of every text file at `commit`, after the same filters and redaction as the diffs; the
        files are read here and fitted here or in `pool`'s workers."""
        prefix = f"snapshot {meta['date']}\n"
        flt = self.filter

        def keep(path: str, size: int) -> bool:
            reason = flt.path_reason(path) or flt.size_reason(size)
            if reason:
                counts.leave_out(reason, self.redact(path, _Counts()))
            return reason is None

        def batches() -> Iterator[list[tuple[str, str, str]]]:  # (path, text, language) of up to SNAPSHOT_BATCH_FILES files
            batch: list[tuple[str, str, str]] = []
            chars = 0
            with TreeReader(repo) as tree:
                for path, size, data in tree.files(commit, keep):
                    reason = ("non_utf8_path" if NOT_UTF8_PATH.search(path)
                              else "not_a_file" if size == 0 and data is None
                              else "missing_object" if data is None
                              else "binary" if is_binary_bytes(data) else None)
                    text = None
                    if reason is None:
                        try:
                            text = normalize_newlines(data.decode("utf-8"))
                        except UnicodeDecodeError:
                            reason = "not_utf8"
                    if reason is None:
                        decision = flt.judge(path, text)
                        reason = decision.reason
                    if reason is not None:
                        counts.leave_out(reason, self.redact(path, _Counts()))
                        continue
                    if not text.strip():
                        counts.leave_out("empty", self.redact(path, _Counts()))
                        continue
                    kept["files"] += 1
                    batch.append((path, text, decision.language))
                    chars += len(text)
                    if len(batch) >= SNAPSHOT_BATCH_FILES or chars >= SNAPSHOT_BATCH_CHARS:
                        yield batch
                        batch, chars = [], 0
            yield batch

        jobs = ((prefix, batch, meta) for batch in batches())
        for chunks, local in (starmap(self._snapshot_batch, jobs) if pool is None else
                              pool.map(_worker_snapshots, jobs, AHEAD_PER_WORKER * pool.workers)):
            counts.secrets.update(local.secrets)
            yield from chunks

    def _snapshot_batch(self, prefix: str, files: list[tuple[str, str, str]], meta: dict) -> tuple[list[dict], _Counts]:
        local = _Counts()
        sections = []
        for path, text, lang in files:
            shown = self.redact(path, local)  # a secret in a file name reaches the chunk header
            sections.append(Section(shown, lang, None, f"file {shown}",
                                    [Block.whole_file(self.redact(text, local, path), parser_language(path, lang))]))
        pieces = self.fitter.merge(prefix, self.fitter.fit(prefix, sections))
        return [chunk_record("snapshot", meta["record"], p, prefix) for p in pieces], local


def formatting_only(diff: str) -> bool:
    """True when a diff removes and adds the same text once whitespace is ignored (as `git diff -w` would show nothing).

    >>> formatting_only("@@ -1 +1,2 @@\\n-x=f(a,b)\\n+x = f(a,\\n+      b)\\n")
    True
    """
    removed, added = changed_lines(diff)
    if not removed or not added:
        return False
    return _WHITESPACE.sub("", "".join(removed)) == _WHITESPACE.sub("", "".join(added))


def commit_lead(rec: dict, max_tokens: int) -> str:
    """What a commit says once, before its first file: `commit DATE SUBJECT` and the message body
    (cut at `max_tokens` characters; `Chunker.lead` then bounds the whole in tokens)."""
    body = (rec.get("message") or "").partition("\n\n")[2]
    body = _HEX.sub("<hash>", _CHERRY_PICKED.sub("", body)).strip()  # no random hex in the text
    if len(body) > max_tokens:
        body = body[:max_tokens] + "..."
    return commit_line(rec) + (body + "\n" if body else "")


def cut_to_tokens(text: str, budget: int, encode, n: int | None = None) -> str:
    """`text` (lines, the last ending in a newline, or "") cut to at most `budget` tokens as `encode` counts
    them (`n`: its tokens, when measured already), an ellipsis where it was cut ("" when not even that
    fits): a tiny vocabulary spends a token on a character or two, so a character cap alone does not
    bound the tokens."""
    if not text:
        return text
    n, keep, out = len(encode([text])[0]) if n is None else n, len(text), text
    while n > budget:
        if keep == 0:
            return ""
        keep = min(keep - 1, int(keep * budget / n * 0.9))
        out = text[:keep].rstrip() + "...\n"
        n = len(encode([out])[0])
    return out


def commit_date(rec: dict) -> str:
    stamp = rec.get("committed_at") or rec.get("authored_at") or ""
    return stamp[:10]


def commit_line(rec: dict) -> str:
    subject = (rec.get("subject") or "").replace("\n", " ")
    if len(subject) > SUBJECT_CHARS:
        subject = subject[:SUBJECT_CHARS] + "..."
    return f"commit {commit_date(rec)} {subject}\n"


def file_title(f: dict) -> str:
    change = f.get("change_type") or "modified"
    old = f.get("old_path")
    moved = f" from {old}" if old and old != f["path"] else ""
    cut = " [diff truncated]" if f.get("truncated") else ""
    return f"file {f['path']} ({change}{moved}){cut}"


def chunk_record(kind: str, rec: dict, piece: Piece, prefix: str) -> dict:
    symbols = []
    for s in piece.sections:
        symbols.extend(n for n in s.symbols() if n not in symbols)
    first = piece.sections[0]
    text = prefix + piece.body
    return {
        "id": None,  # set by the writer: depends on the position within the commit
        "kind": kind,
        "commit": rec["hash"],
        "short_hash": rec["hash"][:12],
        "timestamp": rec.get("timestamp"),
        "order": rec["order"],
        "path": first.path,
        "paths": list(dict.fromkeys(s.path for s in piece.sections)),
        "language": first.language,
        "change_type": first.change_type,
        "symbol": ", ".join(symbols[:MAX_SYMBOLS]) + (", ..." if len(symbols) > MAX_SYMBOLS else "") or None,
        "text": text,
        "n_tokens": len(piece.ids),
        "_ids": np.asarray(piece.ids, dtype=TOKEN_DTYPE),  # from a worker: pickled as bytes, held in 4 bytes an id
    }


def _summary(rec: dict) -> dict:
    """What the writing process needs of a chunked commit record: not its diffs (a worker sends it back)."""
    return {"hash": rec["hash"], "order": rec["order"], "timestamp": rec.get("timestamp"), "date": commit_date(rec),
            "files": len(rec.get("files") or []), "key": commit_key(rec)}


def default_workers() -> int:
    """Processes for stage 2: one per CPU, at most 4 (the main process only reads, pickles and writes)."""
    return max(1, min(4, usable_cpus()))


def _check(config: ChunkConfig) -> None:
    check_fields(config)
    settings.chunk_bounds(config.max_chunk_tokens, config.min_chunk_tokens)
    settings.snapshot_at(config.snapshot_at)
    settings.ratios(config.split_ratios)
    if config.snapshot_at != "none" and not config.repo:
        raise UserError("file snapshots need --repo (or --snapshot-at none)")


def _guided_batches(items: Iterable[tuple[int, dict]], total: int | None, workers: int) -> Iterator[list]:
    """`items` (index, record) in lists for `workers` processes: each 1/(GUIDED_SHARE x workers) of the
    commits left of `total` (an estimate; None: unknown), from COMMITS_PER_BATCH to MAX_COMMITS_PER_BATCH
    commits, and ended early at BATCH_DIFF_CHARS characters of diff (so that the batches in flight
    stay bounded in memory whatever the commits hold).

    Long runs of consecutive commits early: a file changed again in the same worker is re-parsed from
    its tree by the diff, one whose last version went to the other worker costs about a whole parse.
    Short ones at the end, so that the workers finish together.

    >>> small, big = {"files": [{"diff": "+x\\n"}]}, {"files": [{"diff": "+" * BATCH_DIFF_CHARS}]}
    >>> [len(b) for b in _guided_batches(enumerate([small] * 300), 300, 2)]
    [37, 32, 32, 32, 32, 32, 32, 32, 32, 7]
    >>> [len(b) for b in _guided_batches(enumerate([small, big, small, big, big]), None, 2)]
    [2, 2, 1]
    """
    it, left = iter(items), total or 0
    while True:
        want = min(MAX_COMMITS_PER_BATCH, max(COMMITS_PER_BATCH, left // (GUIDED_SHARE * workers)))
        batch, chars = [], 0
        for item in it:
            batch.append(item)
            chars += _diff_chars(item[1])
            if len(batch) >= want or chars >= BATCH_DIFF_CHARS:
                break
        if not batch:
            return
        left -= len(batch)
        yield batch


def _diff_chars(rec) -> int:
    """Characters of diff a commit record holds (0 for a record that is not one: it is reported later)."""
    files = rec.get("files") if isinstance(rec, dict) else None
    if not isinstance(files, list):
        return 0
    return sum(len(d) for f in files if isinstance(f, dict) and isinstance(d := f.get("diff"), str))


def _batches(items: Iterable, n: int) -> Iterator[list]:
    """`items` in lists of `n` (the last one shorter)."""
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def content_side(f: dict) -> dict:
    """A type change (symlink <-> file) as the change of its regular file's content, other changes as they are.

    Git shows a type change as two diffs under one path, the old entry deleted and the new one created,
    and stage 1 keeps both in the change's `diff`. The regular file's diff is kept: a symlink that
    becomes a file is the file added, a file that becomes a symlink is the file deleted (the link's
    target is a path, not content).

    >>> f = {"change_type": "type_changed", "old_mode": "120000", "new_mode": "100644", "old_blob": "a",
    ...      "new_blob": "b",
    ...      "diff": "diff --git a/x b/x\\n@@ -1 +0,0 @@\\n-y\\ndiff --git a/x b/x\\n@@ -0,0 +1 @@\\n+z\\n"}
    >>> g = content_side(f)
    >>> g["change_type"], g["old_blob"], g["diff"]
    ('added', None, 'diff --git a/x b/x\\n@@ -0,0 +1 @@\\n+z\\n')
    """
    if f.get("change_type") != "type_changed":
        return f
    diff = f.get("diff") or ""
    cut = diff.find("\ndiff --git ") + 1
    if cut == 0:  # one side only (cut by --max-diff-bytes): as it is
        return f
    if str(f.get("new_mode")).startswith(REGULAR_MODE):
        return dict(f, change_type="added", diff=diff[cut:], old_blob=None)
    if str(f.get("old_mode")).startswith(REGULAR_MODE):
        return dict(f, change_type="deleted", diff=diff[:cut], new_blob=None)
    return f


def _valid(rec) -> bool:
    return (isinstance(rec, dict) and isinstance(rec.get("hash"), str) and isinstance(rec.get("files", []), list)
            and all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in rec.get("files", [])))


def run(config: ChunkConfig, tokenizer=None, commits: Iterable[dict] | None = None,
        identity: dict | None = None, incremental: bool = False, run_info: dict | None = None) -> dict:
    """Write the chunks, their token ids, the stats and the per-commit index; return the stats.

    `tokenizer` and its `identity` come resolved from the orchestrator; by default the
    tokenizer is loaded from `config.tokenizer` and identified by that name. `incremental`: chunk
    only the commits the last run's output lacks (`chunking.reuse`). `run_info`, when given, is filled
    with what this run did: `commits_chunked`, `commits_kept`, `full_because` (why nothing was kept).
    """
    from tqdm import tqdm

    _check(config)
    tok = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer)
    identity = identity or tokenizer_identity(tok, source=config.tokenizer)
    workers = default_workers() if config.workers is None else config.workers
    if config.repo:
        TreeReader(config.repo)  # a bad --repo: its one-line error here, not a worker's failed start
    output = Path(config.output)
    files = {"index": companion(output, COMMITS_SUFFIX), "tokens": companion(output, TOKENS_SUFFIX)}
    header = {"settings": {k: list(v) if isinstance(v, tuple) else v for k, v in key_settings(config).items()
                           if k not in ("split_ratios", "snapshot_at")}, "tokenizer": identity["sha256"]}
    cache, hits, why, todo = (_reuse_plan(config, header, files) if incremental and commits is None
                              else (None, {}, "the commits were handed in" if incremental else None, None))
    pool = ProcessMap(workers, _start_worker, (config, tok), "a stage 2 worker process") if workers > 1 else None
    records = commits if commits is not None else iter_commit_records(config.commits)
    counts, snap_counts = _Counts(), _Counts()
    token_counts: Counter = Counter()
    metas: dict[int, dict] = {}
    entries: list[dict] = []
    stats = {"commits": 0, "bad_records": 0, "file_changes_chunked": 0, "fallback_commits": 0, "fallback_hashes": []}
    # the workers are forked before this process opens its git pipes (Chunker), so that none holds them
    with pool or contextlib.nullcontext(), contextlib.closing(Chunker(config, tok)) as chunker, \
            ChunkWriter(config.output, dedup=config.dedup, min_tokens=config.min_chunk_tokens) as out:
        if todo is not None:  # the records not kept, read already
            items = iter(tqdm(todo, desc="chunking commits", unit="commit", disable=not config.progress))
        else:
            items = ((i, rec) for i, rec in enumerate(tqdm(records, desc="chunking commits", unit="commit",
                                                           disable=not config.progress)) if i not in hits)
        if pool is None:
            batches = map(chunker.batch_job, _batches(chunker.read_ahead(items, READ_AHEAD_COMMITS), COMMITS_PER_BATCH))
        else:
            total = (None if commits is not None else len(todo) if todo is not None
                     else count_records(config.commits) - len(hits))
            batches = pool.map(_worker_batch, _guided_batches(items, total, workers), AHEAD_PER_WORKER * workers)
        jobs = (job for batch in batches for job in batch)
        for i, (rec, chunks, local, error, dropped) in enumerate(_with_kept(jobs, cache, hits)):
            if rec is None:
                stats["bad_records"] += 1
                logger.warning("commit record %d is not a commit record; skipped", i)
                continue
            stats["commits"] += 1
            metas[rec["order"]] = {"hash": rec["hash"], "timestamp": rec["timestamp"], "date": rec["date"]}
            if error is None:
                stats["file_changes_chunked"] += rec["files"] - sum(local.filtered.values())
            else:
                logger.warning("commit %s: chunking failed (%s); kept as one raw chunk", rec["hash"][:12], error)
                stats["fallback_commits"] += 1
                stats["fallback_hashes"].append(rec["hash"])
            counts.merge(local)
            at, before = [out.n_bytes, 0, out.n_ids], (out.duplicates, out.duplicate_tokens)
            rows = list(out.write_kept(chunks.rows, chunks.lines, chunks.ids, rec["order"]) if isinstance(chunks, Kept)
                        else out.write_commit(chunks))
            at[1] = len(rows)
            if rows:  # its own chunks (no snapshot among them), each n_tokens + 1 separator, as commit_token_counts
                token_counts[rec["order"]] += sum(row[2] + 1 for row in rows)
            out.duplicates, out.duplicate_tokens = out.duplicates + dropped[0], out.duplicate_tokens + dropped[1]
            entries.append({"hash": rec["hash"], "key": rec["key"], "timestamp": rec["timestamp"], "date": rec["date"],
                            "files": rec["files"], "error": error, "counts": local.as_dict(), "at": at,
                            "dropped": [out.duplicates - before[0], out.duplicate_tokens - before[1]], "chunks": rows})
        if cache is not None:
            cache.close()
        if not metas:
            raise UserError(f"{config.commits}: no commit records")
        plan = None
        if token_counts:
            plan = split_commits(token_counts.items(), config.split_ratios)
        stats["cutoff"] = None if plan is None else {
            "train_last_order": plan.train_last_order, "val_last_order": plan.val_last_order,
            "commit": metas[plan.train_last_order]["hash"], "ratios": list(config.split_ratios)}
        stats.update(_snapshots(config, chunker, out, plan, metas, snap_counts, pool))
    stats.update(out.stats())
    stats.update({
        "diff_filtered": dict(sorted(counts.filtered.items())),
        "diff_filtered_examples": dict(sorted(counts.examples.items())),
        "diff_content": dict(sorted(counts.content.items())),
        "secrets_redacted": {"diffs": dict(sorted(counts.secrets.items())),
                             "snapshots": dict(sorted(snap_counts.secrets.items()))},
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()
                     if k not in ("repo", "commits", "output", "progress", "tokenizer", "workers")},
        "tokenizer": identity,
    })
    stats["quality"] = quality_section(stats, out.by_order_category, plan)
    out.write_stats(stats)
    write_cache(files["index"], header, entries, output, files["tokens"])
    if run_info is not None:
        run_info.update(commits_chunked=stats["commits"] - len(hits), commits_kept=len(hits), full_because=why)
    return stats


def _reuse_plan(config: ChunkConfig, header: dict, files: dict[str, Path]
                ) -> tuple[CommitCache | None, dict, str | None, list | None]:
    """(the last run's cache, position -> its entry for each commit kept, why none is kept, the other
    records as (position, record) when they are few: so that the records are read once): a commit is
    kept when its record is unchanged, and only if every commit of the last run is, in the same order."""
    cache, why = CommitCache.open(files["index"], header, Path(config.output), files["tokens"])
    if cache is None:
        return None, {}, why, None
    hits: dict[int, dict] = {}
    todo: list | None = []
    chars = 0
    for i, rec in enumerate(_records_or_hits(config.commits, cache, hits)):
        if rec is None:  # kept, found from its line alone
            continue
        entry = cache.entries.get(rec.get("hash")) if _valid(rec) else None
        if entry is not None and entry["key"] == commit_key(rec):
            hits[i] = {**entry, "order": rec.get("order", i)}
        elif todo is not None:
            chars += _diff_chars(rec)
            if chars < BATCH_DIFF_CHARS * 8:
                todo.append((i, rec))
            else:  # too many to hold: read again, batch by batch
                todo = None
    last = [e["n"] for _, e in sorted(hits.items())]
    if len(hits) != len(cache.entries) or last != sorted(last):
        cache.close()
        return None, {}, "commits chunked before are gone, changed or in another order", None
    logger.info("chunk: %d commits kept from the last run", len(hits))
    return cache, hits, None, todo


def _records_or_hits(commits: str, cache: CommitCache, hits: dict[int, dict]) -> Iterator[dict | None]:
    """The commit records of `commits`, in order; for a stage 1 `.jsonl`, a line whose key (`line_key`) is
    the one `cache` holds for its commit is not parsed: it goes into `hits` (by position) and None is
    yielded in its place. Parsing and re-serializing every record for its key was most of a rerun's reading."""
    if Path(commits).suffix != ".jsonl":
        yield from iter_commit_records(commits)
        return
    for i, (lineno, line) in enumerate(jsonl_lines(commits)):
        entry = cache.entries.get(line[9:line.find('"', 9)]) if line.startswith('{"hash":"') else None
        known = line_key(line) if entry is not None else None
        if known is not None and known[0] == entry["key"]:
            hits[i] = {**entry, "order": known[1]}
            yield None
        else:
            yield parse_jsonl_line(commits, lineno, line)


def _with_kept(jobs: Iterator, cache: CommitCache | None, hits: dict[int, dict]) -> Iterator[tuple]:
    """`jobs`' results (for the commits not in `hits`) and the kept commits' (from `cache`), in commit
    order, each with the chunks and tokens dropped from it earlier as duplicates."""
    if not hits:
        yield from ((*job, [0, 0]) for job in jobs)
        return
    position = 0
    for job in jobs:
        while position in hits:
            yield _kept(cache, hits[position])
            position += 1
        yield (*job, [0, 0])
        position += 1
    while position in hits:
        yield _kept(cache, hits[position])
        position += 1


def _kept(cache: CommitCache, entry: dict) -> tuple:
    summary, chunks, counts, error, dropped = cache.replay(entry, entry["order"])
    return summary, chunks, _Counts.from_dict(counts), error, dropped


_worker: Chunker | None = None  # in a worker process: its own chunker (git readers, caches, tokenizer)


def _start_worker(config: ChunkConfig, tok) -> None:
    global _worker
    from multiprocessing.util import Finalize

    _worker = Chunker(config, tok)
    Finalize(_worker, _worker.close, exitpriority=1)  # its git processes end with it


def _worker_snapshots(job: tuple[str, list[tuple[str, str, str]], dict]) -> tuple[list[dict], _Counts]:
    assert _worker is not None
    return _worker._snapshot_batch(*job)


def _worker_batch(items: list[tuple[int, dict]]) -> list:
    """`Chunker.batch_job` in a worker, its blobs asked of git ahead within the batch (a blob asked
    must be read by the process that asked)."""
    assert _worker is not None
    return _worker.batch_job(_worker.read_ahead(items, READ_AHEAD_COMMITS))


def quality_section(stats: dict, by_order_category: Counter, plan) -> dict:
    """What the chunks are made of: tokens per split by category (as written here, before stage 4's
    near-duplicates), the exact-duplicate share, and every file change or file left out, by reason."""
    by_split: dict[str, Counter] = {s: Counter() for s in ("train", "val", "test")}
    for (order, cat), n in by_order_category.items():
        split = ("train" if plan is None or order <= plan.train_last_order
                 else "val" if order <= plan.val_last_order else "test")
        by_split[split][cat] += n
    written = sum(stats["tokens"].values())
    dropped = stats["duplicate_tokens_dropped"]
    return {"tokens_by_category": {s: dict(c.most_common()) for s, c in by_split.items()},
            "exact_duplicate_share": round(dropped / max(1, dropped + written), 6),
            "excluded_by_reason": dict(sorted((Counter(stats["diff_filtered"]) +
                                               Counter(stats.get("snapshot_filtered") or {})).items())),
            "excluded_examples": _examples(stats["diff_filtered_examples"], stats.get("snapshot_filtered_examples") or {}),
            "deleted_title_only": stats["diff_content"].get("deleted_title_only", 0)}


def _examples(*by_reason: dict) -> dict:
    """The example paths of each reason, diffs' first."""
    both = _Counts()
    for examples in by_reason:
        for reason, paths in examples.items():
            both.add_examples(reason, paths)
    return dict(sorted(both.examples.items()))


def _snapshots(config: ChunkConfig, chunker: Chunker, out, plan, metas: dict, counts: _Counts,
               pool: ProcessMap | None) -> dict:
    """Write the snapshot chunks; return what the stats say about them."""
    info = {"snapshot_at": config.snapshot_at, "snapshot_commit": None, "snapshot_leak": None,
            "snapshot_filtered": {}, "snapshot_filtered_examples": {}, "snapshot_files": 0}
    if config.snapshot_at == "none":
        return info
    if plan is None:
        logger.warning("no diff chunks: no train cut-off, so no file snapshots")
        return info
    cut = metas[plan.train_last_order]
    if config.snapshot_at == "head":
        commit = head_commit(config.repo)
        later = [o for o, m in metas.items() if o > plan.train_last_order]
        if commit != cut["hash"] and later:
            info["snapshot_leak"] = (f"snapshots are taken at HEAD {commit[:12]}, after the train cut-off "
                                     f"{cut['hash'][:12]} (order {plan.train_last_order}); code first added in the "
                                     f"val/test commits (orders {min(later)}..{max(later)}) is in train snapshot chunks")
            logger.warning(info["snapshot_leak"])
    else:
        commit = cut["hash"]
    meta = {"date": cut["date"],
            "record": {"hash": commit, "timestamp": cut["timestamp"], "order": plan.train_last_order}}
    kept: Counter = Counter()
    out.write_snapshots(chunker.snapshot_chunks(config.repo, commit, meta, counts, kept, pool))
    info.update(snapshot_commit=commit, snapshot_filtered=dict(sorted(counts.filtered.items())),
                snapshot_filtered_examples=dict(sorted(counts.examples.items())),
                snapshot_files=kept["files"])
    return info


def parse_args(argv=None):
    import argparse

    p = argparse.ArgumentParser(description="Stage 2: semantic chunks of every change and of the code at the train cut-off.")
    add_flags(p, ChunkConfig)
    settings.add_ratio_flags(p, "for the cut-off (same flags as stage 4)")
    p.add_argument("--split-ratios", type=float, nargs=3, default=None, metavar=("TRAIN", "VAL", "TEST"),
                   help="deprecated: --train-ratio, --val-ratio, --test-ratio")
    p.add_argument("--stats", action="store_true", help="print the stats JSON on stdout when done")
    p.add_argument("--incremental", action="store_true",
                   help="chunk only the commits the existing output lacks (same settings and tokenizer, "
                        "written by this version)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    ratios = (args.train_ratio, args.val_ratio, args.test_ratio)
    if args.split_ratios is not None:
        logger.warning("--split-ratios is deprecated: use --train-ratio, --val-ratio, --test-ratio")
        ratios = tuple(args.split_ratios)
    config = from_args(ChunkConfig, args, split_ratios=ratios)

    def go() -> int:
        stats = run(config, incremental=args.incremental)
        if args.stats:
            print(json.dumps(stats, indent=2, ensure_ascii=False))
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
