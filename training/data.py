"""Read stage 4's split files and cut them into padded batches, in a seeded order per epoch.

    split = load_split("data/x/dataset/training_data_train.json")
    for idx in epoch_batches(len(split), batch_size=8, seed=42, epoch=0):
        batch = split.batch(idx, loss_on="target")     # input_ids, attention_mask, position_ids, labels

A split file is `{"format": "gitlm-dataset", "version": 1, "tokenizer": identity, "tokens_file": ...,
"examples": [{"start", "context_length", "target_length", ...}]}` (docs/dataset.md); example i is
`stream[start : start + c + t]` and its target is the last t tokens. The token stream is opened
with `np.load(mmap_mode="r")`, so a split of any size costs only its example index in memory.
Examples may instead carry `input_ids` inline (c + t ids).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.io import UserError
from core.split_file import SplitArrays, load_split_arrays

logger = logging.getLogger(__name__)

@dataclass
class Split(SplitArrays):
    """The checked split (`core.split_file.SplitArrays`) with its tokenizer's pad id, cut into batches."""

    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def identity(self) -> dict:
        return self.meta["tokenizer"]

    @property
    def tokenizer_dir(self) -> Path | None:
        rel = self.meta.get("tokenizer_dir")
        return (self.path.parent / rel) if rel else None

    def limit_context(self, n: int) -> None:
        """Keep only the last `n` context tokens of every example (the targets are unchanged)."""
        cut = np.maximum(self.context - n, 0)
        self.starts, self.context = self.starts + cut, self.context - cut

    @property
    def longest(self) -> int:
        """Tokens in the longest example (context + target)."""
        return int((self.context + self.target).max()) if len(self) else 0

    def batch(self, idx, loss_on: str = "target", transform=None) -> dict[str, torch.Tensor]:
        """Left-pad the examples `idx` to their longest; labels -100 on pads (and on context for 'target').

        Returns int64 tensors of shape (B, T), plus `n_target` (tokens that carry the loss) and
        `max_target` (the longest target window, for computing only the logits that are needed).
        `transform(i, ids) -> ids` rewrites example i's tokens first (fill-in-the-middle); a
        rewritten row keeps its target length (the last tokens) and may be shorter.
        """
        idx = np.asarray(idx, dtype=np.int64)
        rows = [self.tokens[int(self.starts[i]):int(self.starts[i] + self.context[i] + self.target[i])] for i in idx]
        if transform is not None:
            rows = [transform(int(i), np.asarray(r, dtype=np.int64)) for i, r in zip(idx, rows)]
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        targets = np.minimum(self.target[idx], lengths)
        width = int(lengths.max())
        ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        labels = np.full((len(idx), width), -100, dtype=np.int64)
        for row, (r, n, t) in enumerate(zip(rows, lengths, targets)):
            ids[row, width - n:] = r
            mask[row, width - n:] = 1
            first_label = width - int(t) if loss_on == "target" else width - n
            labels[row, first_label:] = ids[row, first_label:]
        positions = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)  # real tokens count from 0
        padded = bool((mask == 0).any())
        return {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask) if padded else None,
            "position_ids": torch.from_numpy(positions),
            "labels": torch.from_numpy(labels),
            "n_target": int((labels[:, 1:] != -100).sum()),
            "n_tokens": int(mask.sum()),
            "max_target": int(targets.max()) if loss_on == "target" else 0,
        }


def _pad_id(identity: dict) -> int:
    pad = identity.get("special_tokens", {}).get("pad_token")
    return int(pad["id"]) if pad and pad.get("id") is not None else int(identity["separator_id"])


def load_split(path: str | Path) -> Split:
    """The split at `path`, read and checked by the one split-file reader (`core.split_file`)."""
    a = load_split_arrays(path)
    logger.debug("%s: %d examples", a.path, len(a.starts))
    return Split(a.path, a.meta, a.tokens, a.starts, a.context, a.target, _pad_id(a.meta["tokenizer"]))


def sibling_split(train_path: str | Path, name: str) -> Path | None:
    """training_data_train.json -> training_data_{name}.json beside it, if that file exists."""
    train_path = Path(train_path)
    if not train_path.name.endswith("_train.json"):
        return None
    p = train_path.with_name(train_path.name[: -len("_train.json")] + f"_{name}.json")
    return p if p.is_file() else None


def eval_indices(n: int, max_examples: int, seed: int) -> np.ndarray:
    """A seeded random subset of `max_examples` of `n` examples (all when 0 or more), sorted.

    It depends on (n, max_examples, seed) only, so every process count evaluates the same examples.

    >>> eval_indices(10, 3, seed=0).tolist() == eval_indices(10, 3, seed=0).tolist()
    True
    """
    if max_examples <= 0 or max_examples >= n:
        return np.arange(n)
    g = torch.Generator().manual_seed(seed)
    return np.sort(torch.randperm(n, generator=g)[:max_examples].numpy())


def shard_batches(indices: np.ndarray, batch_size: int, rank: int = 0, world: int = 1) -> list[np.ndarray]:
    """This rank's batches of `indices`: every `world`-th one from `rank`; the ranks together cover all."""
    mine = indices[rank::world]
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]


@dataclass
class ChunkMap:
    """Which chunk each token of a split's stream comes from (stage 4's `chunks_file`)."""

    starts: np.ndarray          # (m,) first token of each chunk in the split's token file, ascending
    rows: list[dict]            # per chunk: id, kind, commit, path, language, category, n_tokens

    def chunk_of(self, positions: np.ndarray) -> np.ndarray:
        """Index into `rows` of the chunk holding each token position (a chunk's separator included)."""
        return np.searchsorted(self.starts, positions, side="right") - 1


def load_chunk_map(split: Split) -> ChunkMap | None:
    """The split's chunk map, or None when the split file names none (built before it existed)."""
    name = split.meta.get("chunks_file")
    if not name:
        return None
    path = split.path.parent / name
    if not path.is_file():
        raise UserError(f"{split.path}: chunk map {path} not found")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return ChunkMap(np.array([r["start"] for r in rows], dtype=np.int64), rows)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                  shuffle: bool = True) -> list[np.ndarray]:
    """This rank's micro-batches of example indices for one epoch: a seeded shuffle, sharded by rank.

    The order depends only on (seed, epoch), so a resumed run sees the same batches. The tail
    that does not divide by `world` is dropped so every rank runs the same number of batches.
    """
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g).numpy()
    else:
        order = np.arange(n)
    order = order[: n - n % world][rank::world]
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def non_overlapping(split: Split) -> np.ndarray:
    """Indices of examples whose windows do not overlap, taken greedily in stream order.

    With the loss on every token (`loss_on: all`), overlapping windows would make a token a
    prediction target several times an epoch; these windows make each one a target once.
    """
    keep, end = [], -1
    for i in np.argsort(split.starts, kind="stable"):
        if split.starts[i] >= end:
            keep.append(i)
            end = int(split.starts[i] + split.context[i] + split.target[i])
    return np.asarray(keep, dtype=np.int64)
