"""Write chunk records and their token ids as they come; drop exact duplicates; count what was written.

    with ChunkWriter("data/x/chunks_semantic.jsonl", dedup=True) as out:
        rows = list(out.write_commit(chunks))   # a row per chunk actually written (kept for reruns)
        out.write_kept(rows, lines, ids, order)  # a kept commit's chunks again, from the last run's rows
    out.write_stats(stats)                # adds the counters and the sha256 of the .jsonl

Token ids stream into `chunks_semantic.tokens.npy` (1-D uint32, in file order; `core.io.NpyStream`
writes its length into the header at the end); it, then the `.jsonl`, then the stats are renamed
into place, so a killed run leaves no file half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from core.io import NpyStream, atomic_write, dumps, sha256_file, write_json
from core.schema import STATS_SUFFIX, TOKENS_SUFFIX, companion
from core.languages import category_of
from core.redaction import count_placeholders

TOKEN_DTYPE = np.dtype("<u4")  # the ids in chunks_semantic.tokens.npy (and a chunk's `_ids` on its way there)


def normalized_digest(text: str) -> bytes:
    """Duplicate key: the text after its first line (commit/snapshot line), trailing spaces ignored.

    >>> normalized_digest("commit a\\nx = 1  \\ny\\t\\n") == normalized_digest("commit b\\nx = 1\\ny\\n")
    True
    """
    body = text.split("\n", 1)[1] if "\n" in text else text
    norm = "\n".join([line.rstrip() for line in body.split("\n")])  # str.rstrip strips what re's \s matches
    return hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class ChunkWriter:
    def __init__(self, output: str | os.PathLike, dedup: bool = True, min_tokens: int = 0):
        self.path = Path(output)
        self.tokens_path = companion(self.path, TOKENS_SUFFIX)
        self.stats_path = companion(self.path, STATS_SUFFIX)
        self.dedup = dedup
        self.min_tokens = min_tokens
        self.seen: set[bytes] = set()
        self.chunks: Counter = Counter()
        self.tokens: Counter = Counter()
        self.under_min: Counter = Counter()
        self.placeholders: Counter = Counter()  # secret placeholders in the chunks written, per kind
        self.duplicates = 0
        self.duplicate_tokens = 0
        self.by_order_category: Counter = Counter()  # (commit order, category of the chunk's path) -> tokens written
        self.n_ids = 0
        self.n_bytes = 0  # of the .jsonl written so far

    def __enter__(self) -> "ChunkWriter":
        self._stack = contextlib.ExitStack()
        self._jsonl = self._stack.enter_context(atomic_write(self.path))
        self._ids = self._stack.enter_context(NpyStream(self.tokens_path, TOKEN_DTYPE))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stack.__exit__(exc_type, exc, tb)

    def _write(self, chunks: Iterable[dict]) -> Iterator[list]:
        """Write each chunk unless it is a duplicate; yield each written one's `Kept` row."""
        for index, chunk in enumerate(chunks):
            digest = normalized_digest(chunk["text"]) if self.dedup else None
            if self._duplicate(digest, chunk["n_tokens"]):
                continue
            ids = chunk.pop("_ids")
            key = "\0".join((chunk["kind"], chunk["commit"], str(index), chunk["text"]))
            chunk["id"] = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]
            category = category_of(chunk["path"], chunk.get("language")) if chunk["path"] else "unknown"
            row = [digest.hex() if digest else None, chunk["kind"], chunk["n_tokens"], category,
                   list(count_placeholders(chunk["text"], Counter()).elements())]
            self._put(dumps(chunk) + "\n", np.asarray(ids, dtype=TOKEN_DTYPE), row, chunk["order"])
            yield row

    def _duplicate(self, digest: bytes | None, n_tokens: int) -> bool:
        """Whether a chunk with this digest was written already (then counted as dropped); else remember it."""
        if digest is None:  # no dedup
            return False
        if digest in self.seen:
            self.duplicates += 1
            self.duplicate_tokens += n_tokens
            return True
        self.seen.add(digest)
        return False

    def _put(self, line: str, ids: np.ndarray, row: list, order: int) -> None:
        _, kind, n_tokens, category, placeholders = row
        self._jsonl.write(line)
        self.n_bytes += len(line.encode("utf-8", "surrogatepass"))
        self._ids.write(ids)
        self.n_ids += len(ids)
        self.chunks[kind] += 1
        self.tokens[kind] += n_tokens
        self.by_order_category[order, category] += n_tokens
        self.placeholders.update(placeholders)
        if n_tokens < self.min_tokens:
            self.under_min[kind] += 1

    def write_commit(self, chunks: list[dict]) -> Iterator[list]:
        """Write one commit's chunks (ids count positions within the commit); yield the `Kept` row of each
        written (`[digest hex or None, kind, n_tokens, category, secret placeholders]`: what a rerun that
        keeps the commit needs of it, `chunking.reuse`)."""
        return self._write(chunks)

    def write_kept(self, rows: list[list], lines: list[str], ids: np.ndarray, order: int) -> Iterator[list]:
        """Write again a commit's chunks of the last run (`chunking.reuse.CommitCache.replay`): its lines and
        ids as they were, found by their rows without parsing a line; yield the row of each written."""
        at = 0
        for row, line in zip(rows, lines):
            n_tokens = row[2]
            ids_of = ids[at:at + n_tokens]
            at += n_tokens
            if self._duplicate(bytes.fromhex(row[0]) if row[0] is not None else None, n_tokens):
                continue
            self._put(line, ids_of, row, order)
            yield row

    def write_snapshots(self, chunks: Iterable[dict]) -> None:
        for _ in self._write(chunks):
            pass

    def stats(self) -> dict:
        return {"chunks": dict(sorted(self.chunks.items())), "tokens": dict(sorted(self.tokens.items())),
                "chunks_under_min": dict(sorted(self.under_min.items())),
                "secret_placeholders": dict(sorted(self.placeholders.items())),
                "duplicates_dropped": self.duplicates, "duplicate_tokens_dropped": self.duplicate_tokens,
                "dedup": self.dedup,
                "token_ids": self.n_ids, "tokens_file": self.tokens_path.name}

    def write_stats(self, stats: dict) -> None:
        stats["chunks_sha256"] = sha256_file(self.path)
        write_json(self.stats_path, stats)
