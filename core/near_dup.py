"""Near-duplicate chunks: MinHash over token shingles (datasketch), one stated Jaccard threshold.

    >>> a = np.arange(200, dtype=np.uint32); b = a.copy(); b[100] = 7
    >>> near_duplicates([a, b, np.arange(500, 700, dtype=np.uint32)])
    [False, True, False]

A chunk is a near-duplicate when an earlier chunk of the same list has an estimated Jaccard
similarity of its 5-token shingles above `threshold` (BigCode's near-deduplication uses 0.7-0.85
over word shingles); the earliest of a group is kept. The caller decides the list: stage 4 passes
the train split's diff chunks only, so dedup never moves content between splits.
"""

from __future__ import annotations

import numpy as np
from datasketch import MinHash, MinHashLSH

THRESHOLD = 0.8
NUM_PERM = 128
SHINGLE = 5
# Fixed odd multipliers: a shingle's 32-bit hash is a dot product of its token ids (wrapping uint64).
_COEFS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                   0xFF51AFD7ED558CCD], dtype=np.uint64)


def shingle_hashes(ids: np.ndarray) -> list[int]:
    """32-bit hashes of the distinct SHINGLE-token windows of `ids` (the whole array when shorter)."""
    ids = np.asarray(ids, dtype=np.uint64)
    if len(ids) < SHINGLE:
        ids = np.concatenate([ids, np.zeros(SHINGLE - len(ids), dtype=np.uint64)])
    windows = np.lib.stride_tricks.sliding_window_view(ids, SHINGLE)
    with np.errstate(over="ignore"):
        h = (windows * _COEFS).sum(axis=1, dtype=np.uint64)
    return np.unique((h >> np.uint64(32)) ^ (h & np.uint64(0xFFFFFFFF))).tolist()


def near_duplicates(chunks, threshold: float = THRESHOLD, num_perm: int = NUM_PERM) -> list[bool]:
    """For each token array in order: True when an earlier one is a near-duplicate of it."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    out = []
    for k, ids in enumerate(chunks):
        m = MinHash(num_perm=num_perm, hashfunc=int)
        m.update_batch(shingle_hashes(ids))
        dup = bool(lsh.query(m))
        if not dup:
            lsh.insert(k, m)
        out.append(dup)
    return out
