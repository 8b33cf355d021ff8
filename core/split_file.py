"""Stage 4's split file: its one writer and its one reader (docs/dataset.md).

    write_split(path, header, example_lines)        # dataset_builder.py, multirepo/merge.py
    header, examples = read_split(path)             # streamed dicts: reporting/export.py, multirepo/merge.py
    arrays = load_split_arrays(path)                 # checked columns + token stream: training/, pipeline/checks.py

A split file is `{"format": "gitlm-dataset", "version": 1, "tokenizer": identity, "tokens_file": ...,
"examples": [{"start", "context_length", "target_length", ...}]}`; example i is
`stream[start : start + c + t]` and its target is the last t tokens (or it carries `input_ids`
inline). The writer puts the header and `"examples":[` on the first line, then one example per
line, so a split of millions of windows is streamed, never held as millions of dicts at once.
Any other layout of the same JSON is read whole.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from core.io import UserError, atomic_write, dumps, read_json

FORMAT = "gitlm-dataset"
VERSION = 1
VERSIONS = (1,)                    # the versions the reader accepts
EXAMPLES_OPEN = ',"examples":['   # the end of a split file's first line


def write_split(path: Path, header: dict, lines: Iterator[str]) -> None:
    """`header` as one JSON object whose last key, "examples", lists one example (a JSON line) per line."""
    with atomic_write(path) as f:
        f.write(dumps(header)[:-1] + EXAMPLES_OPEN)
        for i, line in enumerate(lines):
            f.write(("\n" if i == 0 else ",\n") + line)
        f.write("\n]}\n")


def read_split(path: Path) -> tuple[dict, Iterator[dict] | None]:
    """(header, examples) of a split file; the examples streamed, None when the file has no list of them."""
    f = open(path, encoding="utf-8")
    first = f.readline().rstrip("\n")
    if not first.endswith(EXAMPLES_OPEN):
        f.close()
        data = read_json(path)
        examples = data.pop("examples", None) if isinstance(data, dict) else None
        return data, iter(examples) if isinstance(examples, list) else None
    try:
        header = json.loads(first[: -len(EXAMPLES_OPEN)] + "}")
    except json.JSONDecodeError as e:
        f.close()
        raise UserError(f"{path}: not valid JSON ({e.msg})") from None
    return header, _rows(f, path)


def _rows(f, path: Path) -> Iterator[dict]:
    with f:
        for line in f:
            line = line.strip().rstrip(",")
            if line and line != "]}":
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}: not valid JSON ({e.msg})") from None


@dataclass
class SplitArrays:
    """A split file checked and held as arrays: its examples cost three int64 columns in memory."""

    path: Path
    meta: dict                 # the file's header: everything but "examples"
    tokens: np.ndarray         # 1-D stream (memory-mapped) or the inline ids concatenated
    starts: np.ndarray         # (n,) int64 offset of each example in `tokens`
    context: np.ndarray        # (n,) int64 context length c
    target: np.ndarray         # (n,) int64 target length t


def load_split_arrays(path: str | Path) -> SplitArrays:
    """The split at `path`, checked (format, fields, lengths, token ids within the vocab); a UserError if not."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        data, rows = read_split(path)
        cols = _columns(rows)
    except (KeyError, TypeError) as e:
        raise UserError(f"{path}: an example lacks a field ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") not in VERSIONS:
        got = (data.get("format"), data.get("version")) if isinstance(data, dict) else type(data).__name__
        raise UserError(f"{path}: not a {FORMAT} split file of version {VERSIONS[-1]} (got {got}); "
                        "build it with dataset_builder.py")
    for key in ("tokenizer", "context_window", "target_window"):
        if key not in data:
            raise UserError(f"{path}: missing '{key}'")
    if cols is None:
        raise UserError(f"{path}: missing the 'examples' list")
    context, target = cols["context_length"], cols["target_length"]
    n = len(context)
    if n and (context.min() < 1 or target.min() < 1):
        raise UserError(f"{path}: every example needs context_length >= 1 and target_length >= 1")
    if cols["inline"]:
        tokens = np.concatenate(cols["inline"])
        starts = np.concatenate([[0], np.cumsum(context + target)[:-1]]).astype(np.int64)
        if len(cols["inline"]) != n or len(tokens) != int((context + target).sum()):
            raise UserError(f"{path}: an example's input_ids length differs from context_length + target_length")
    else:
        tokens_file = path.parent / data.get("tokens_file", "")
        if not data.get("tokens_file") or not tokens_file.is_file():
            raise UserError(f"{path}: token stream {tokens_file} not found")
        tokens = np.load(tokens_file, mmap_mode="r")
        starts = cols["start"]
        if n and int((starts + context + target).max()) > len(tokens):
            raise UserError(f"{path}: an example runs past the end of {tokens_file.name} ({len(tokens)} tokens)")
    if n and len(tokens) <= 1 << 24 and int(tokens.max()) >= data["tokenizer"]["vocab_size"]:  # cheap check
        raise UserError(f"{path}: token ids beyond the tokenizer's vocab_size {data['tokenizer']['vocab_size']}")
    return SplitArrays(path, data, tokens, starts, context, target)


def _columns(rows) -> dict | None:
    if rows is None:
        return None
    cols = {"start": array("q"), "context_length": array("q"), "target_length": array("q")}
    inline = []
    for row in rows:
        for key in ("context_length", "target_length"):
            cols[key].append(row[key])
        if "input_ids" in row:
            inline.append(np.asarray(row["input_ids"], dtype=np.int64))
        else:
            cols["start"].append(row["start"])
    out = {k: np.frombuffer(v, dtype=np.int64) if len(v) else np.zeros(0, np.int64) for k, v in cols.items()}
    out["inline"] = inline
    return out
