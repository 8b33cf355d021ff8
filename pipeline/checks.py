"""Checks of each stage's output, run by comprehensive_pipeline.py before the next stage starts.

Each check reads what the stage wrote with the reader the next stage uses (`load_tokenized`,
the split-file reader the trainer uses, `core.split_file`), checks the record keys of `core.schema`, and raises `StageCheckFailed`
(a UserError: one line, exit 2) naming the file and what is wrong. Each returns a few counts
for the run summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.io import JSON_COMMITS_CLOSE, JSON_COMMITS_OPEN, UserError, iter_jsonl, read_json
from core.schema import CHUNK_KEYS, COMMIT_KEYS, FILE_KEYS, MANIFEST, split_file
from core.split_file import load_split_arrays
from core.splits import SPLITS
from core.tokenized_chunks import load_tokenized

class StageCheckFailed(UserError):
    pass


def _fail(stage: str, path: Path, what: str) -> None:
    raise StageCheckFailed(f"stage {stage} output check failed: {path}: {what}")


def check_history(jsonl: Path, json_path: Path) -> dict:
    """Every commit has the documented keys, orders run 0..n-1, a file change's `definitions` (when
    there are) read as stage 2 reads them, and the .json holds the same commits."""
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
            if f.get("definitions") is not None and not _definitions_read(f["definitions"]):
                _fail("1 (scrape)", jsonl, f"the definitions of {f['path']} in commit {record['hash']} are not "
                      "{language, windows: [[first, last]], found: [[start, end, name, lead]]}")
        n += 1
        n_files += len(record["files"])
    if n == 0:
        _fail("1 (scrape)", jsonl, "no commits")
    why = _not_a_copy(jsonl, json_path)
    if why:
        _fail("1 (scrape)", json_path, why)
    return {"commits": n, "file_changes": n_files}


def _not_a_copy(jsonl: Path, json_path: Path) -> str | None:
    """Why the .json does not hold the .jsonl's commits, each on its line as `write_history_json` copies
    them, or None: compared as text, so the .json is not parsed a second time."""
    with open(jsonl, encoding="utf-8") as a, open(json_path, encoding="utf-8") as b:
        if b.readline().rstrip("\n") != JSON_COMMITS_OPEN:
            return "it does not open with the commit list"
        for n, line in enumerate(line for line in a if line.strip()):
            if b.readline().rstrip("\n").removesuffix(",") != line.rstrip("\n"):
                return f"its commit {n} is not the .jsonl's"
        if b.readline().rstrip("\n") != JSON_COMMITS_CLOSE:
            return "it holds more commits than the .jsonl, or its commit list does not end"
    return None


def _definitions_read(definitions) -> bool:
    """Whether stage 2 can read a file change's `definitions` (`semantic_chunker.Chunker._widen`)."""
    try:
        return (isinstance(definitions["language"], str)
                and all(isinstance(a, int) and isinstance(b, int) for a, b in definitions["windows"])
                and all(isinstance(a, int) and isinstance(b, int) and isinstance(name, str) and isinstance(lead, int)
                        for a, b, name, lead in definitions["found"]))
    except (KeyError, TypeError, ValueError):
        return False


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


def _read(stage: str, path: Path, reader):
    """`reader(path)`, its UserError reported as this stage's check failure."""
    try:
        return reader(path)
    except UserError as e:
        raise StageCheckFailed(f"stage {stage} output check failed: {e}") from None


def check_tokenized(path: Path) -> dict:
    """The tokenized file reads as stage 4 reads it, has tokens, and its ids are below the vocab size."""
    tc = _read("3 (tokenize)", path, load_tokenized)
    vocab_size = tc.tokenizer["vocab_size"]
    if not tc.chunks or tc.ids.size == 0:
        _fail("3 (tokenize)", path, "no tokens")
    _check_ids("3 (tokenize)", path, tc.ids, vocab_size)
    return {"chunks": len(tc.chunks), "tokens": int(tc.ids.size), "sequences": int(len(tc.sequences)),
            "vocab_size": vocab_size}


def check_dataset(dataset_dir: Path) -> dict:
    """Split files read as the trainer reads them (streamed), ids are in the vocab, and splits follow in time."""
    manifest = read_json(dataset_dir / MANIFEST)
    vocab_size = manifest["tokenizer"]["vocab_size"]
    counts, last_order = {}, -1
    for split in SPLITS:
        path = dataset_dir / split_file(split)
        data = _read("4 (dataset)", path, load_split_arrays)
        info = manifest["splits"][split]
        if len(data.starts) != info["examples"]:
            _fail("4 (dataset)", path, f"{len(data.starts)} examples, the manifest says {info['examples']}")
        if split == "train" and not len(data.starts):
            _fail("4 (dataset)", path, "no training examples: the repository is too small for one window")
        _check_ids("4 (dataset)", path, data.tokens, vocab_size)
        if len(data.starts):
            if info["first_order"] <= last_order:
                _fail("4 (dataset)", path, f"{split} starts at commit order {info['first_order']}, "
                      f"not after the previous split's last commit ({last_order})")
            last_order = info["last_order"]
        counts[split] = {"examples": len(data.starts), "tokens": info["tokens"]}
    return counts
