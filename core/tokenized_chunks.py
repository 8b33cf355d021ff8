"""The chunks_tokenized format of stage 3: the sequence arithmetic, the writer's pieces, the reader.

    from core.tokenized_chunks import load_tokenized
    tc = load_tokenized("data/NAME/chunks_tokenized.json")
    tc.tokenizer["sha256"], len(tc), tc.chunk_tokens(0), tc.chunks[0]["order"]

Written by tokenizers_/file_snapshot_tokenizer.py, read by stage 4 and the orchestrator's checks.
Field reference: docs/tokens.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io import UserError, atomic_write, dumps, read_json
from core.settings import sequence_windows

FORMAT = "chunks_tokenized"
FORMAT_VERSION = 1


def sequence_table(n_tokens: np.ndarray, sequence_length: int, overlap: int) -> np.ndarray:
    """Windows of every chunk: (n, 3) int64 rows (chunk index, start inside the chunk, length).

    Windows start every `sequence_length - overlap` tokens inside a chunk, the last one ends at the
    chunk's end, and none crosses into the next chunk. An empty chunk has no window. Every window
    but the first of its chunk repeats exactly `overlap` tokens of the one before it.

    >>> sequence_table(np.array([10, 0, 3]), 4, 1).tolist()
    [[0, 0, 4], [0, 3, 4], [0, 6, 4], [2, 0, 3]]
    """
    sequence_windows(sequence_length, overlap)
    n = np.asarray(n_tokens, dtype=np.int64)
    stride = sequence_length - overlap
    counts = np.where(n > 0, 1 + (np.maximum(n - sequence_length, 0) + stride - 1) // stride, 0)
    chunk = np.repeat(np.arange(len(n), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    start = (np.arange(len(chunk), dtype=np.int64) - first[chunk]) * stride
    length = np.minimum(sequence_length, n[chunk] - start)
    return np.stack([chunk, start, length], axis=1).reshape(-1, 3)


@dataclass
class TokenizedChunks:
    """Stage 3's output, with the two arrays memory-mapped.

    `meta` is chunks_tokenized.json (`meta["tokenizer"]`, `meta["chunks"]`, `meta["stats"]`, ...);
    `ids` holds every chunk's tokens once, concatenated in input order; `sequences` is the
    (n, 3) table of `sequence_table`.
    """

    path: Path
    meta: dict
    ids: np.ndarray
    sequences: np.ndarray

    @property
    def chunks(self) -> list[dict]:
        return self.meta["chunks"]

    @property
    def tokenizer(self) -> dict:
        return self.meta["tokenizer"]

    @property
    def tokenizer_dir(self) -> Path:
        """The saved tokenizer, loadable with `core.tokenizer.load_tokenizer` offline."""
        return self.path.parent / self.meta["tokenizer"]["files"]

    def __len__(self) -> int:
        return len(self.meta["chunks"])

    def chunk_tokens(self, i: int) -> np.ndarray:
        """Chunk i's token ids, each once (a view into the memory-mapped ids)."""
        c = self.meta["chunks"][i]
        return self.ids[c["offset"]:c["offset"] + c["n_tokens"]]

    def chunk_sequences(self, i: int) -> np.ndarray:
        """Chunk i's rows of the sequences table."""
        c = self.meta["chunks"][i]
        return self.sequences[c["first_sequence"]:c["first_sequence"] + c["n_sequences"]]

    def sequence_tokens(self, j: int) -> np.ndarray:
        """The ids of sequence j (with the tokens it shares with the sequence before it)."""
        chunk, start, length = (int(v) for v in self.sequences[j])
        offset = self.meta["chunks"][chunk]["offset"]
        return self.ids[offset + start:offset + start + length]

    def chunk_from_sequences(self, i: int) -> np.ndarray:
        """Chunk i rebuilt from its sequences, the overlapped duplicates dropped."""
        stream, parts, covered = self.chunk_tokens(i), [], 0
        for _, start, length in self.chunk_sequences(i).tolist():
            parts.append(stream[max(covered, start):start + length])  # drop what the last window had
            covered = start + length
        return np.concatenate(parts) if parts else stream[:0]


def load_tokenized(path: str | os.PathLike) -> TokenizedChunks:
    """Open chunks_tokenized.json and its arrays; a wrong format or a mismatch is a UserError."""
    path = Path(path)
    meta = read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a {FORMAT} file (written by tokenizers_/file_snapshot_tokenizer.py)")
    if meta.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: {FORMAT} version {meta.get('version')}, this code reads version "
                        f"{FORMAT_VERSION}; rerun stage 3")
    try:
        ids = np.load(path.parent / meta["ids_file"], mmap_mode="r")
        sequences = np.load(path.parent / meta["sequences_file"], mmap_mode="r")
        chunks = meta["chunks"]
        matches = (ids.ndim == 1 and len(ids) == sum(c["n_tokens"] for c in chunks)
                   and sequences.shape[1:] == (3,) and len(sequences) == sum(c["n_sequences"] for c in chunks))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: cannot read it or its arrays ({type(e).__name__}: {e}); rerun stage 3") from None
    if not matches:
        raise UserError(f"{path}: its .npy arrays do not match its chunk list; rerun stage 3")
    return TokenizedChunks(path, meta, ids, sequences)


def write_meta(path: Path, meta: dict, chunks: list[dict]) -> None:
    """JSON with one top-level key per line and one chunk per line: readable, diffable, streamable."""
    with atomic_write(path) as f:
        f.write("{\n")
        for key, value in meta.items():
            f.write(f"{dumps(key)}: {dumps(value)},\n")
        f.write('"chunks": [')
        for i, c in enumerate(chunks):
            f.write(("\n" if i == 0 else ",\n") + dumps(c))
        f.write("\n]}\n")


