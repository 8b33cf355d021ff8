"""The chronological cut-off between train, val and test: one function, used by stages 2 and 4.

Stage 2 calls it on its diff chunks to know the train cut-off commit (where file snapshots are
taken); stage 4 calls it on the same counts to assign every commit to a split. Both count a
commit's tokens as the sum over its diff/commit chunks of `n_tokens + 1` (the +1 is the
separator stage 4 puts after each chunk), so both get the same answer. Snapshot chunks are left
out of the count: they sit at the cut-off and must not move it.

    >>> plan = split_commits([(0, 50), (1, 30), (2, 10), (3, 10)], (0.85, 0.10, 0.05))
    >>> plan.train_last_order, plan.val_last_order
    (1, 2)
    >>> [plan.split_of(o) for o in range(4)]
    ['train', 'train', 'val', 'test']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = (0.85, 0.10, 0.05)
RATIO_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """Commits with `order <= train_last_order` are train, then val up to `val_last_order`, then test.

    `val_last_order == train_last_order` means an empty val split; `val_last_order` at or past the
    last commit means an empty test split.
    """

    train_last_order: int
    val_last_order: int

    def split_of(self, order: int) -> str:
        return SPLITS[int(self.split_indices(order))]

    def split_indices(self, orders):
        """The index into SPLITS of each commit order (one or an array of them): the one assignment rule.

        >>> SplitPlan(2, 4).split_indices(np.arange(6)).tolist(), SplitPlan(2, 2).split_of(3)
        ([0, 0, 0, 1, 1, 2], 'test')
        """
        return np.searchsorted([self.train_last_order, self.val_last_order], orders, side="left")


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """The (train, val, test) ratios made to sum to exactly 1; ValueError on a bad triple.

    Each must be finite and at least 0, train above 0, and they must already sum to 1 (within
    RATIO_TOLERANCE): ratios are never rescaled without a word.
    """
    if len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios) or ratios[0] <= 0:
        raise ValueError(f"split ratios must be three finite non-negative numbers with train > 0, got {list(ratios)}")
    total = float(sum(ratios))
    if abs(total - 1) > RATIO_TOLERANCE:
        raise ValueError(f"split ratios (train, val, test) must sum to 1, got {' + '.join(map(str, ratios))} = {total:g}")
    return ratios[0] / total, ratios[1] / total, ratios[2] / total


def commit_token_counts(chunks: Iterable[dict]) -> dict[int, int]:
    """Per commit order, the stream tokens its diff/commit chunks take (n_tokens + 1 separator)."""
    counts: dict[int, int] = {}
    for chunk in chunks:
        if chunk.get("kind") == "snapshot":
            continue
        counts[chunk["order"]] = counts.get(chunk["order"], 0) + int(chunk["n_tokens"]) + 1
    return counts


def split_commits(commit_tokens: Iterable[tuple[int, int]], ratios: Sequence[float] = DEFAULT_RATIOS) -> SplitPlan:
    """Cut a chronological list of (commit order, tokens) into train / val / test by token share.

    Each boundary falls on the commit boundary nearest to its target share of all tokens (ties
    go to the earlier commit). A split whose ratio is above zero gets at least one commit with
    tokens whenever there are enough such commits; commits without tokens do not count.
    """
    r_train, r_val, r_test = check_ratios(ratios)
    items = sorted((int(o), int(t)) for o, t in commit_tokens if t > 0)
    if not items:
        raise ValueError("no commit has any tokens to split")
    orders = [o for o, _ in items]
    cum, running = [], 0
    for _, t in items:
        running += t
        cum.append(running)
    n, total = len(items), running

    def nearest(target: float, lo: int, hi: int) -> int:
        """Index k in [lo, hi] whose inclusive prefix sum is nearest to target."""
        best = lo
        for k in range(lo, hi + 1):
            if abs(cum[k] - target) < abs(cum[best] - target):
                best = k
        return best

    # Reserve room for the later splits that want commits, as far as the commit count allows.
    last = n - 1
    want_val, want_test = r_val > 0, r_test > 0
    i = nearest(r_train * total, 0, max(0, last - want_val - want_test))
    if not want_test:
        j = last
    elif not want_val:
        j = i
    else:
        lo = min(i + 1, last)
        j = nearest((r_train + r_val) * total, lo, max(lo, last - 1))
    return SplitPlan(train_last_order=orders[i], val_last_order=orders[j])
