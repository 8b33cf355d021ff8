"""What stage 2 keeps of its last run: each commit's chunks, found again by the commit's content.

    cache = CommitCache.open(path, header, chunks, tokens)      # None, and why, when nothing can be kept
    entry = cache.entries[commit_hash]                          # if entry["key"] == commit_key(record)
    summary, kept, counts, error, dropped = cache.replay(entry, order)   # kept: Kept (rows, lines, ids)

`chunks_semantic.commits.jsonl`, written beside the chunks by every run: a header (the settings the
diff chunks depend on, the tokenizer's sha256, the sha256 of the chunks and token files it indexes),
then one line per commit record, in order: its hash, `key` (a hash of the record without `order`,
`branches` and `tags`, which change when commits are added and which no chunk text shows), what
chunking it counted, its fall-back error, the chunks exact-duplicate removal dropped from it (count,
tokens), where its kept chunks are (`at`: byte offset and chunk count in the chunks file, offset
in the token ids) and a row per kept chunk (`chunks`: its duplicate digest, kind, token count,
category and secret placeholders). A commit whose record is unchanged is then not chunked again:
its kept chunks' lines are read back unparsed (only their `order` set anew), with their token ids,
and written through the same duplicate removal as new ones, by their rows.

Chunks dropped as duplicates are not kept, so the earlier run is used only when every commit it
chunked is still there, unchanged and in the same order among themselves (a new commit may come
between them): then what it dropped would be dropped again, because the chunk it repeated comes
before it still. The cut-off-dependent part (file snapshots, the statistics by split) is redone.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io import dumps, sha256_file

FORMAT = 2  # of the index: 2 added each kept chunk's row (`chunks`)
VOLATILE = ("order", "branches", "tags")  # record fields that change with new commits and reach no chunk's text


def commit_key(record: dict) -> str:
    """A hash of what a commit's chunks are made from: its record without VOLATILE."""
    kept = {k: v for k, v in record.items() if k not in VOLATILE}
    return _key(dumps(kept))


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


_LIST_END = re.compile(r'\](?=,"|\})')  # a list's end: a `]` inside a string is never followed by an unescaped quote


def line_key(line: str) -> tuple[str, int] | None:
    """(`commit_key`, `order`) of the record on a line of stage 1's `.jsonl`, read from the text without
    parsing it: the line with its VOLATILE fields cut out is what `dumps` writes for the record without
    them. None when the line is not laid out as stage 1 writes it. A line `dumps` did not write gives
    another key than its parsed record would, so its commit is chunked again: never a wrong reuse."""
    text = line.rstrip("\n")
    order_at = text.find(',"order":')
    order_end = text.find(",", order_at + 9)
    branches_at = text.find(',"branches":[', order_end)
    tags_at = text.find('],"tags":[', branches_at)
    end = _LIST_END.search(text, tags_at + 10) if min(order_at, order_end, branches_at, tags_at) >= 0 else None
    order = text[order_at + 9:order_end]
    if end is None or not order.isdigit():
        return None
    return _key(text[:order_at] + text[order_end:branches_at] + text[end.end():]), int(order)


class CommitCache:
    """The last run's per-commit lines, with its chunks file and token ids to read kept chunks from."""

    def __init__(self, entries: dict[str, dict], chunks: Path, tokens: Path):
        self.entries = entries  # commit hash -> entry, each with its index in the last run ("n")
        self.chunks = open(chunks, "rb")
        self.ids = np.load(tokens, mmap_mode="r")

    @classmethod
    def open(cls, path: Path, header: dict, chunks: Path, tokens: Path) -> tuple["CommitCache | None", str | None]:
        """The cache at `path` when it was written with `header` and for these very files, else (None, why)."""
        try:
            with open(path, encoding="utf-8") as f:
                last = json.loads(f.readline())
                if last.get("format") != FORMAT:
                    return None, f"{path.name} was written by another version"
                if {k: last.get(k) for k in header} != header:
                    return None, "the settings or the tokenizer changed"
                if (sha256_file(chunks), sha256_file(tokens)) != (last["chunks_sha256"], last["tokens_sha256"]):
                    return None, "the chunks are not those the last run wrote"
                entries = {}
                for n, line in enumerate(f):
                    entry = json.loads(line)
                    entry["n"] = n
                    entries[entry["hash"]] = entry
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None, f"no readable {path.name} from the last run"
        return cls(entries, chunks, tokens), None

    def close(self) -> None:
        self.chunks.close()

    def replay(self, entry: dict, order: int) -> tuple[dict, "Kept", dict, str | None, list[int]]:
        """(summary, the kept chunks as `Kept`, counts, error, [chunks, tokens] dropped): their lines are read,
        not parsed, and given the commit's `order` now."""
        offset, count, ids_at = entry["at"]
        self.chunks.seek(offset)
        lines = [with_order(self.chunks.readline().decode("utf-8"), order) for _ in range(count)]
        rows = entry["chunks"]
        ids = np.asarray(self.ids[ids_at:ids_at + sum(row[2] for row in rows)])
        summary = {"hash": entry["hash"], "order": order, "timestamp": entry["timestamp"], "date": entry["date"],
                   "files": entry["files"], "key": entry["key"]}
        return summary, Kept(rows, lines, ids), entry["counts"], entry["error"], entry["dropped"]


@dataclass
class Kept:
    """A kept commit's chunks as the last run wrote them: a row each (`ChunkWriter.write_commit`'s: digest,
    kind, n_tokens, category, secret placeholders), its line, and all their token ids in one array."""

    rows: list[list]
    lines: list[str]
    ids: np.ndarray


def with_order(line: str, order: int) -> str:
    """A chunk line (`dumps` of a chunk record, its `order` the first key after `id`, `kind`, `commit`,
    `short_hash` and `timestamp`, whose values hold no such text) with its `order` set to `order`, as
    `dumps` writes it."""
    at = line.index(',"order":') + 9
    end = line.index(",", at)
    return line if line[at:end] == str(order) else f"{line[:at]}{order}{line[end:]}"


def write_cache(path: Path, header: dict, entries: list[dict], chunks: Path, tokens: Path) -> None:
    """The header (with the sha256 of the files the entries index) and one line per commit."""
    from core.io import atomic_write

    head = {"format": FORMAT, **header, "chunks_sha256": sha256_file(chunks), "tokens_sha256": sha256_file(tokens)}
    with atomic_write(path) as f:
        f.write(dumps(head) + "\n")
        for entry in entries:
            f.write(dumps(entry) + "\n")
