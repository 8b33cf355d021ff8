"""Checks of each stage's output, run by comprehensive_pipeline.py before the next stage starts.

Each check reads what the stage wrote, as the next stage will, and raises `StageCheckFailed`
(a UserError: one line, exit 2) naming the file and what is wrong. Each returns a few counts
for the run summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.io import UserError, iter_commit_records, iter_jsonl, read_json
from pipeline.splits import SPLITS

COMMIT_KEYS = ("hash", "short_hash", "parents", "author", "committer", "authored_at", "committed_at",
               "timestamp", "subject", "message", "branches", "tags", "files", "is_merge", "order")
FILE_KEYS = ("path", "old_path", "change_type", "language", "additions", "deletions", "is_binary", "diff", "truncated")
CHUNK_KEYS = ("id", "kind", "commit", "timestamp", "order", "path", "language", "symbol", "text", "n_tokens")
EXAMPLE_KEYS = ("context_length", "target_length", "first_commit", "last_commit")


class StageCheckFailed(UserError):
    pass


def _fail(stage: str, path: Path, what: str) -> None:
    raise StageCheckFailed(f"stage {stage} output check failed: {path}: {what}")


def check_history(jsonl: Path, json_path: Path) -> dict:
    """Every commit has the documented keys, orders run 0..n-1, and the .json holds the same commits."""
    n = n_files = 0
    for record in iter_jsonl(jsonl):
        missing = [k for k in COMMIT_KEYS if k not in record]
        if missing:
            _fail("1 (scrape)", jsonl, f"commit {record.get('hash', '?')} lacks {', '.join(missing)}")
        if record["order"] != n:
            _fail("1 (scrape)", jsonl, f"commit {record['hash']} has order {record['order']}, expected {n}")
        for f in record["files"]:
            missing = [k for k in FILE_KEYS if k not in f]
            if missing:
                _fail("1 (scrape)", jsonl, f"a file of commit {record['hash']} lacks {', '.join(missing)}")
        n += 1
        n_files += len(record["files"])
    if n == 0:
        _fail("1 (scrape)", jsonl, "no commits")
    n_json = sum(1 for _ in iter_commit_records(json_path))
    if n_json != n:
        _fail("1 (scrape)", json_path, f"{n_json} commits, but the .jsonl has {n}")
    return {"commits": n, "file_changes": n_files}


def check_chunks(path: Path) -> dict:
    """Chunks have the documented keys, are in chronological order, and are not empty."""
    n, tokens, last_order = 0, 0, -1
    kinds: dict[str, int] = {}
    for record in iter_jsonl(path):
        missing = [k for k in CHUNK_KEYS if k not in record]
        if missing:
            _fail("2 (chunk)", path, f"chunk {record.get('id', '?')} lacks {', '.join(missing)}")
        if record["kind"] != "snapshot" and record["order"] < last_order:
            _fail("2 (chunk)", path, f"chunk {record['id']} is out of chronological order")
        last_order = max(last_order, record["order"])
        kinds[record["kind"]] = kinds.get(record["kind"], 0) + 1
        tokens += record["n_tokens"]
        n += 1
    if n == 0:
        _fail("2 (chunk)", path, "no chunks: the history has no text file changes that pass the filters")
    return {"chunks": n, "tokens": tokens, "kinds": dict(sorted(kinds.items()))}


def _check_ids(stage: str, path: Path, ids: np.ndarray, vocab_size: int) -> None:
    if ids.size and int(ids.max()) >= vocab_size:
        _fail(stage, path, f"token id {int(ids.max())} is not below the vocab size {vocab_size}")


def check_tokenized(path: Path) -> dict:
    """The tokenized file parses, its ids are below the vocab size, and sequences cover every chunk."""
    meta = read_json(path)
    vocab_size = meta["tokenizer"]["vocab_size"]
    ids = np.load(path.parent / meta["ids_file"], mmap_mode="r")
    seqs = np.load(path.parent / meta["sequences_file"], mmap_mode="r")
    if not meta["chunks"] or ids.size == 0:
        _fail("3 (tokenize)", path, "no tokens")
    _check_ids("3 (tokenize)", path, ids, vocab_size)
    if sum(c["n_tokens"] for c in meta["chunks"]) != ids.size:
        _fail("3 (tokenize)", path, "chunk token counts do not add up to the ids file")
    return {"chunks": len(meta["chunks"]), "tokens": int(ids.size), "sequences": int(len(seqs)),
            "vocab_size": vocab_size}


def check_dataset(dataset_dir: Path) -> dict:
    """Split files parse, windows lie inside their streams, ids are in the vocab, and splits follow in time."""
    manifest = read_json(dataset_dir / "dataset_stats.json")
    vocab_size = manifest["tokenizer"]["vocab_size"]
    counts, last_order = {}, -1
    for split in SPLITS:
        path = dataset_dir / f"training_data_{split}.json"
        data = read_json(path)
        examples = data["examples"]
        info = manifest["splits"][split]
        if len(examples) != info["examples"]:
            _fail("4 (dataset)", path, f"{len(examples)} examples, the manifest says {info['examples']}")
        if split == "train" and not examples:
            _fail("4 (dataset)", path, "no training examples: the repository is too small for one window")
        for e in examples[:1] + examples[-1:]:
            missing = [k for k in EXAMPLE_KEYS if k not in e]
            if missing:
                _fail("4 (dataset)", path, f"an example lacks {', '.join(missing)}")
        if data.get("tokens_file"):
            stream = np.load(dataset_dir / data["tokens_file"], mmap_mode="r")
            _check_ids("4 (dataset)", path, stream, vocab_size)
            if examples and "start" in examples[-1]:
                e = examples[-1]
                if e["start"] + e["context_length"] + e["target_length"] > stream.size:
                    _fail("4 (dataset)", path, "an example reaches past the end of its token stream")
        if examples:
            if info["first_order"] <= last_order:
                _fail("4 (dataset)", path, f"{split} starts at commit order {info['first_order']}, "
                      f"not after the previous split's last commit ({last_order})")
            last_order = info["last_order"]
        counts[split] = {"examples": len(examples), "tokens": info["tokens"]}
    return counts
