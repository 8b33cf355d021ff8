"""Cut a sequence of lines into pieces within a token budget, preferring clean boundaries.

    >>> pack([3, 3, 3, 9, 1], 6)
    [(0, 2), (2, 3), (3, 4), (4, 5)]
    >>> split_rows([2, 2, 2, 2, 2, 2], {3}, 7)
    [(0, 3), (3, 6)]

Sizes are token estimates (characters times the text's tokens-per-character ratio); the caller
measures every piece exactly afterwards and splits again with a smaller target when an
estimate was short, so these functions only need to be close, not exact.
"""

from __future__ import annotations

from typing import Iterable, Sequence


def pack(sizes: Sequence[float], target: float) -> list[tuple[int, int]]:
    """Greedily group consecutive items into [start, end) ranges whose sizes sum to at most `target`.

    An item larger than `target` stands alone (the caller splits it further).
    """
    groups, start, total = [], 0, 0.0
    for i, size in enumerate(sizes):
        if i > start and total + size > target:
            groups.append((start, i))
            start, total = i, 0.0
        total += size
    if start < len(sizes):
        groups.append((start, len(sizes)))
    return groups


def split_rows(line_sizes: Sequence[float], boundaries: Iterable[int], target: float) -> list[tuple[int, int]]:
    """Cut lines into [start, end) ranges within `target`: at boundary rows first, at any line if needed.

    Segments run from one boundary row to the next; segments are packed together; a segment over
    the target is packed line by line. A single line over the target is a range of its own.
    """
    n = len(line_sizes)
    cuts = sorted({0, n, *(b for b in boundaries if 0 < b < n)})
    segments = list(zip(cuts, cuts[1:]))
    seg_sizes = [sum(line_sizes[a:b]) for a, b in segments]
    out = []
    for g0, g1 in pack(seg_sizes, target):
        a, b = segments[g0][0], segments[g1 - 1][1]
        if g1 - g0 == 1 and seg_sizes[g0] > target:
            out.extend((a + s, a + e) for s, e in pack(line_sizes[a:b], target))
        else:
            out.append((a, b))
    return out


def cut_text(text: str, n_parts: int) -> list[str]:
    """Cut one over-long line into `n_parts` pieces of near-equal length (the only mid-line cut)."""
    step = -(-len(text) // max(1, n_parts))
    return [text[i:i + step] for i in range(0, len(text), step)] or [""]
