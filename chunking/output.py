"""Write chunk records and their token ids as they come; drop exact duplicates; count what was written.

    with ChunkWriter("data/x/chunks_semantic.jsonl", dedup=True) as out:
        out.write_commit(chunks)          # yields the chunks actually written
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

    def _write(self, chunks: Iterable[dict]) -> Iterator[dict]:
        for index, chunk in enumerate(chunks):
            if self.dedup:
                digest = normalized_digest(chunk["text"])
                if digest in self.seen:
                    self.duplicates += 1
                    self.duplicate_tokens += chunk["n_tokens"]
                    continue
                self.seen.add(digest)
            ids = chunk.pop("_ids")
            line = chunk.pop("_line", None)  # a chunk of the last run, written again as it was (`chunking.reuse`)
            if chunk["id"] is None:  # else a chunk of the last run
                key = "\0".join((chunk["kind"], chunk["commit"], str(index), chunk["text"]))
                chunk["id"] = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]
            line = line or dumps(chunk) + "\n"
            self._jsonl.write(line)
            self.n_bytes += len(line.encode("utf-8", "surrogatepass"))
            self._ids.write(np.asarray(ids, dtype=TOKEN_DTYPE))
            self.n_ids += len(ids)
            self.chunks[chunk["kind"]] += 1
            self.tokens[chunk["kind"]] += chunk["n_tokens"]
            category = category_of(chunk["path"], chunk.get("language")) if chunk["path"] else "unknown"
            self.by_order_category[chunk["order"], category] += chunk["n_tokens"]
            count_placeholders(chunk["text"], self.placeholders)
            if chunk["n_tokens"] < self.min_tokens:
                self.under_min[chunk["kind"]] += 1
            yield chunk

    def write_commit(self, chunks: list[dict]) -> Iterator[dict]:
        """Write one commit's chunks (ids count positions within the commit); yield those kept."""
        return self._write(chunks)

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
