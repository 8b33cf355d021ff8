"""The numbers behind the dataset report, gathered in one streaming pass over a run's outputs.

    from reporting.collect import collect
    facts = collect(Path("data/NAME"))      # facts.manifest, facts.timeline, facts.top_commits, ...

Reads the manifest (`dataset/dataset_stats.json`), stage 1's and stage 2's stats, and streams
`chunks_semantic.jsonl` one chunk at a time (or, when stage 2 fell back to raw commits and that
file is not what stage 3 read, stage 3's chunk index). Every chunk is placed in its split with
`core.splits.SplitPlan` built from the manifest's cut-off, and counted as the dataset counts it:
`n_tokens + 1` stream tokens (the separator), so every per-split total equals the manifest's.
Memory grows with the number of commits, files and days, not with tokens or chunks.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from core.io import UserError, iter_jsonl, read_json
from core.schema import (CHUNKS, DATASET_DIR, HISTORY_STATS, MANIFEST, SPLIT_CHUNKS_SUFFIX, STATS_SUFFIX, TOKENIZED,
                         companion, split_file)
from core.splits import SPLITS, SplitPlan
from core.tokenizer import encode_batch, load_tokenizer, recorded_backend
from core.tokenized_chunks import load_tokenized

logger = logging.getLogger(__name__)

WEEKLY_BELOW_DAYS = 183      # a history shorter than this is drawn per week, else per month
HEADER_BATCH = 2048          # distinct chunk headers encoded per tokenizer call
TITLE_LINE = re.compile(r"^file [^\n]*", re.MULTILINE)   # a line that may be a chunk's `file PATH ...` title


@dataclass
class CommitTokens:
    tokens: int
    order: int
    timestamp: int
    split: str
    subject: str


@dataclass
class Facts:
    """Everything the report shows; manifest-derived parts are read, the rest counted here."""

    out_dir: Path
    manifest: dict
    chunk_stats: dict | None           # chunks_semantic.stats.json (None: stage 2 fell back)
    history_stats: dict | None         # git_history_stats.json
    source: str                        # the file the per-chunk figures were streamed from
    split_tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    split_chunks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    header_tokens: dict[str, int] | None = None   # None: no chunk text to measure (index source)
    day_tokens: dict[str, list[int]] = field(default_factory=dict)   # "YYYY-MM-DD" -> per split
    chunk_lengths: Counter = field(default_factory=Counter)          # n_tokens -> chunks
    commits: dict[str, CommitTokens] = field(default_factory=dict)
    files: dict[str, list[int]] = field(default_factory=dict)        # path -> tokens per split

    @property
    def repository(self) -> str:
        return (self.history_stats or {}).get("repository") or self.out_dir.name

    def timeline(self) -> tuple[str, list[tuple[str, list[int]]]]:
        """("week" | "month", [(bucket label, tokens per split)]) in time order, every bucket in range."""
        if not self.day_tokens:
            return "month", []
        days = sorted(dt.date.fromisoformat(d) for d in self.day_tokens)
        weekly = (days[-1] - days[0]).days < WEEKLY_BELOW_DAYS
        step = "week" if weekly else "month"
        buckets: dict[str, list[int]] = {}
        cur = _bucket_start(days[0], weekly)
        while cur <= days[-1]:  # empty buckets too, so the time axis is even
            buckets[_bucket_label(cur, weekly)] = [0, 0, 0]
            cur = cur + dt.timedelta(days=7) if weekly else (cur.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        for day, tokens in self.day_tokens.items():
            row = buckets[_bucket_label(_bucket_start(dt.date.fromisoformat(day), weekly), weekly)]
            for s in range(3):
                row[s] += tokens[s]
        return step, list(buckets.items())

    def bucket_of(self, timestamp: int, step: str) -> str:
        day = _day(timestamp)
        return _bucket_label(_bucket_start(day, step == "week"), step == "week")


def _day(timestamp: int) -> dt.date:
    return dt.datetime.fromtimestamp(int(timestamp), dt.timezone.utc).date()


def _bucket_start(day: dt.date, weekly: bool) -> dt.date:
    return day - dt.timedelta(days=day.weekday()) if weekly else day.replace(day=1)


def _bucket_label(start: dt.date, weekly: bool) -> str:
    return start.isoformat() if weekly else start.strftime("%Y-%m")


def header_text(chunk: dict) -> str:
    """A chunk's header: its first line (commit or snapshot line) and its `file PATH ...` titles.

    Body lines of a diff start with ' ', '+', '-', '@' or '\\', so a title is unambiguous there;
    in a snapshot a title is `file ` followed by one of the chunk's own paths.
    """
    text = chunk.get("text") or ""
    first, _, rest = text.partition("\n")
    titles = tuple(f"file {p}" for p in (chunk.get("paths") or [chunk.get("path")]) if p)
    lines = [first + "\n"] + [line + "\n" for line in TITLE_LINE.findall(rest) if titles and line.startswith(titles)]
    return "".join(lines)


def _uses_stage2_file(out_dir: Path, manifest: dict, chunk_stats: dict | None) -> bool:
    """Whether stage 3 read chunks_semantic.jsonl (not raw commits after a stage-2 fallback)."""
    if chunk_stats is None or not (out_dir / CHUNKS).is_file():
        return False
    read = manifest["input"]["chunks"] + manifest["input"]["skipped_chunks"]
    return sum(chunk_stats.get("chunks", {}).values()) == read


def _index_chunks(out_dir: Path) -> Iterator[dict]:
    """Stage 3's chunk index (no text): the source when chunks_semantic.jsonl is not what it read."""
    yield from load_tokenized(out_dir / TOKENIZED).chunks


def _tokenizer(dataset_dir: Path, manifest: dict):
    """The run's tokenizer (its saved copy, else its name), or None when it cannot be loaded: only
    its Rust tokenizer when the saved copy is the one the manifest identifies (headers are only encoded)."""
    spec = str(dataset_dir / manifest["tokenizer_dir"]) if manifest.get("tokenizer_dir") \
        else manifest["tokenizer"]["name_or_path"]
    backend = recorded_backend(spec, manifest["tokenizer"])
    if backend is not None:
        return backend
    try:
        return load_tokenizer(spec)
    except UserError as e:
        logger.warning("report: header share not measured: %s", e)
        return None


def _train_kept(dataset_dir: Path, manifest: dict) -> set | None:
    """The ids in train's chunk map when stage 4 left near-duplicates out of train, else None (all kept)."""
    near = (manifest.get("quality") or {}).get("near_duplicates") or {}
    if not near.get("chunks"):
        return None
    return {r["id"] for r in iter_jsonl(dataset_dir / split_file("train", SPLIT_CHUNKS_SUFFIX))}


def _optional_json(path: Path) -> dict | None:
    return read_json(path) if path.is_file() else None


def collect(out_dir: str | Path, progress: bool = False) -> Facts:
    """Read the manifest and stats of the run in `out_dir` and stream its chunks once."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    manifest_path = out_dir / DATASET_DIR / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{out_dir}: no dataset/dataset_stats.json; run the pipeline (stage 4) first")
    manifest = read_json(manifest_path)
    chunk_stats = _optional_json(companion(out_dir / CHUNKS, STATS_SUFFIX))
    use_text = _uses_stage2_file(out_dir, manifest, chunk_stats)
    facts = Facts(out_dir, manifest, chunk_stats if use_text else None,
                  _optional_json(out_dir / HISTORY_STATS),
                  source=CHUNKS if use_text else TOKENIZED)
    plan = SplitPlan(**manifest["cutoff"])
    tok = _tokenizer(manifest_path.parent, manifest) if use_text else None
    if tok is not None:
        facts.header_tokens = dict.fromkeys(SPLITS, 0)
    chunks = iter_jsonl(out_dir / CHUNKS) if use_text else _index_chunks(out_dir)
    # Headers waiting for one batched encode, each once with its chunks per split: a commit's chunks of
    # one file, next to each other in the file, share their header.
    pending: dict[str, list[int]] = {}

    def flush() -> None:
        for counts, ids in zip(pending.values(), encode_batch(tok, list(pending))):
            for split, k in zip(SPLITS, counts):
                facts.header_tokens[split] += k * len(ids)
        pending.clear()

    train_kept = _train_kept(manifest_path.parent, manifest)
    # Once per commit order and per timestamp, not per chunk: a commit's chunks share both.
    split_of = functools.lru_cache(maxsize=None)(plan.split_of)
    day_of = functools.lru_cache(maxsize=None)(lambda timestamp: _day(timestamp).isoformat())
    for c in tqdm(chunks, unit="chunk", desc="report", disable=not progress, mininterval=1.0):
        split, n = split_of(int(c["order"])), int(c["n_tokens"])
        if train_kept is not None and split == "train" and c.get("id") not in train_kept:
            continue  # a near-duplicate stage 4 left out of train
        s = SPLITS.index(split)
        facts.split_tokens[split] += n + 1
        facts.split_chunks[split] += 1
        facts.chunk_lengths[n] += 1
        facts.day_tokens.setdefault(day_of(c["timestamp"]), [0, 0, 0])[s] += n + 1
        if c["kind"] != "snapshot":  # snapshots are files at the cut-off, not a commit's change
            entry = facts.commits.get(c["commit"])
            if entry is None:
                entry = facts.commits[c["commit"]] = CommitTokens(0, int(c["order"]), int(c["timestamp"]), split, "")
            if not entry.subject:  # `commit DATE SUBJECT` opens a commit's first chunk (an exact duplicate may be gone)
                first = (c.get("text") or "").partition("\n")[0]
                entry.subject = first.split(" ", 2)[2] if first.startswith("commit ") and first.count(" ") >= 2 else ""
            entry.tokens += n + 1
        if c.get("path"):
            facts.files.setdefault(c["path"], [0, 0, 0])[s] += n + 1
        if tok is not None:
            pending.setdefault(header_text(c), [0, 0, 0])[s] += 1
            if len(pending) >= HEADER_BATCH:
                flush()
    if pending:
        flush()
    mismatch = {s: (facts.split_tokens[s], manifest["splits"][s]["tokens"]) for s in SPLITS
                if facts.split_tokens[s] != manifest["splits"][s]["tokens"]}
    if mismatch:
        raise UserError(f"{out_dir}: {facts.source} does not match the dataset (tokens per split, counted vs "
                        f"manifest: {mismatch}); rerun the pipeline so that every stage is current")
    return facts
