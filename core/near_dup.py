"""Near-duplicate chunks: MinHash over token shingles, LSH banding, one stated Jaccard threshold.

    >>> a = np.arange(200, dtype=np.uint32); b = a.copy(); b[100] = 7
    >>> near_duplicates([a, b, np.arange(500, 700, dtype=np.uint32)])
    [False, True, False]

A chunk is a near-duplicate when an earlier chunk of the same list has an estimated Jaccard
similarity of its 5-token shingles above `threshold` (BigCode's near-deduplication uses 0.7-0.85
over word shingles); the earliest of a group is kept. The caller decides the list: stage 4 passes
the train split's diff chunks only, so dedup never moves content between splits.

The signatures are datasketch's (`MinHash(num_perm, hashfunc=int)`, its default "affine32"
permutations, seed 1) and the banding is `MinHashLSH(threshold, num_perm)`'s, so the decisions
are datasketch's (tests compare them; datasketch itself, and the SciPy it imports, are needed
only for that), but computed for many chunks at once in numpy: one
multiply-add per permutation over all the shingles of a batch and one `minimum.reduceat` per
chunk boundary, instead of a Python loop and a few small arrays per chunk. numpy releases the
GIL in those loops, so batches are hashed on `workers` threads while the banding (a dict look-up
per band, in order) stays in one.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from core.parallel import usable_cpus

THRESHOLD = 0.8
NUM_PERM = 128
SHINGLE = 5
BATCH_SHINGLES = 1 << 20  # shingles hashed per batch: ~4 MB per permutation pass, cache-sized
# Fixed odd multipliers: a shingle's 32-bit hash is a dot product of its token ids (wrapping uint64).
_COEFS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                   0xFF51AFD7ED558CCD], dtype=np.uint64)


def _window_hashes(ids: np.ndarray) -> np.ndarray:
    """uint32 hash of every SHINGLE-token window of `ids` (uint64, at least SHINGLE long)."""
    with np.errstate(over="ignore"):
        h = ids[:len(ids) - SHINGLE + 1] * _COEFS[0]
        for j in range(1, SHINGLE):
            h += ids[j:len(ids) - SHINGLE + 1 + j] * _COEFS[j]
    return ((h >> np.uint64(32)) ^ (h & np.uint64(0xFFFFFFFF))).astype(np.uint32)


def shingle_hashes(ids: np.ndarray) -> list[int]:
    """32-bit hashes of the distinct SHINGLE-token windows of `ids` (the whole array when shorter)."""
    ids = np.asarray(ids, dtype=np.uint64)
    if len(ids) < SHINGLE:
        ids = np.concatenate([ids, np.zeros(SHINGLE - len(ids), dtype=np.uint64)])
    return np.unique(_window_hashes(ids)).tolist()


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix of an input hash), wrapping uint32."""
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


@lru_cache(maxsize=4)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) that datasketch's `MinHashLSH` picks for `threshold` and `num_perm`: the least
    equally weighted sum of the false positive and false negative probabilities (areas under the
    banding's S-curve either side of the threshold). The curve is a polynomial of degree <= num_perm,
    so Gauss-Legendre with num_perm / 2 + 1 points integrates it exactly (datasketch calls SciPy's `quad`).
    """
    x, w = np.polynomial.legendre.leggauss(num_perm // 2 + 1)

    def area(f, lo: float, hi: float) -> float:
        s = (hi - lo) / 2 * x + (hi + lo) / 2
        return float((hi - lo) / 2 * (w * f(s)).sum())

    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            error = 0.5 * area(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold) \
                + 0.5 * area(lambda s: (1 - s ** r) ** b, threshold, 1.0)
            if error < best:
                best, opt = error, (b, r)
    return opt


@lru_cache(maxsize=4)
def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's permutation parameters (a, b) for `num_perm` ("affine32": odd a, both uint32),
    drawn as it draws them: `a = 2 * randint(2^31) + 1`, then `b = randint(2^32)`, from `RandomState(seed)`."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    return a, gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)


def signatures(chunks: list[np.ndarray], num_perm: int = NUM_PERM, used: int | None = None) -> np.ndarray:
    """(len(chunks), used) uint32 MinHash signatures: for each permutation k < `used` (all by default),
    the least `a_k * fmix32(h) + b_k` over the chunk's shingle hashes h. Row i equals datasketch's
    `MinHash(num_perm, hashfunc=int)` updated with `shingle_hashes(chunks[i])`, its first `used` values."""
    a, b = permutations(num_perm)
    used = num_perm if used is None else used
    lens = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    if (lens < SHINGLE).any():  # a short chunk is one window, padded with zeros
        chunks = [c if len(c) >= SHINGLE else np.concatenate([c, np.zeros(SHINGLE - len(c), dtype=c.dtype)])
                  for c in chunks]
        lens = np.maximum(lens, SHINGLE)
    ends = np.cumsum(lens)
    h = _window_hashes(np.concatenate(chunks).astype(np.uint64)) if len(chunks) else np.zeros(0, np.uint32)
    valid = np.ones(len(h), dtype=bool)
    for j in range(1, SHINGLE):  # windows that would run into the next chunk
        cross = ends - SHINGLE + j
        valid[cross[cross < len(h)]] = False
    hv = _fmix32(h[valid])
    bounds = ends - lens - (SHINGLE - 1) * np.arange(len(chunks))
    out = np.empty((len(chunks), used), dtype=np.uint32)
    phv = np.empty_like(hv)
    for k in range(used):  # one permutation at a time over the whole batch: stays in cache
        np.multiply(hv, a[k], out=phv)
        phv += b[k]
        out[:, k] = np.minimum.reduceat(phv, bounds) if len(hv) else 0
    return out


def _batches(chunks: Iterable[np.ndarray]) -> Iterator[list[np.ndarray]]:
    batch, size = [], 0
    for c in chunks:
        batch.append(np.asarray(c))
        size += max(len(c), SHINGLE)
        if size >= BATCH_SHINGLES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class SignatureCache:
    """Signatures kept between runs in one `.npy` file, found by the content of the token ids they were
    computed from: a rerun hashes only the chunks it has not seen, and the decisions are the same as
    without it. A key is a hash of the ids' bytes and of the signature's parameters, so a row is reused
    only for the same ids under the same permutations and shingles.

        cache = SignatureCache(path)
        near_duplicates(chunks, cache=cache)   # reads what it finds, records every chunk's row
        cache.save()                           # the rows of this run's chunks, in their order
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.known: dict[bytes, np.ndarray] = {}
        self.rows: list[tuple[list[bytes], np.ndarray]] = []  # this run's (keys, signatures) by batch
        try:
            table = np.load(self.path)
            keys = table["key"].tobytes()
            sigs = table["signature"]
        except (OSError, ValueError, KeyError, IndexError):  # none yet, or not such a table: nothing known
            return
        self.known = {keys[i * _KEY_BYTES:(i + 1) * _KEY_BYTES]: sigs[i] for i in range(len(table))}

    @staticmethod
    def key(ids: np.ndarray, num_perm: int, used: int) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(ids).tobytes(), digest_size=_KEY_BYTES,
                               person=f"{num_perm}/{used}/{SHINGLE}/{ids.dtype.str}".encode()).digest()

    def signatures(self, batch: list[np.ndarray], num_perm: int, used: int) -> tuple[list[bytes], np.ndarray]:
        """(keys, `signatures(batch)`), computing only the rows not known."""
        keys = [self.key(c, num_perm, used) for c in batch]
        sig = np.empty((len(batch), used), dtype=np.uint32)
        missing = []
        for i, row in enumerate(map(self.known.get, keys)):
            if row is None or row.shape != (used,):
                missing.append(i)
            else:
                sig[i] = row
        if missing:
            sig[missing] = signatures([batch[i] for i in missing], num_perm, used)
        return keys, sig

    def save(self) -> None:
        """Write this run's rows (only: chunks that left the run leave the file), atomically."""
        from core.io import atomic_write

        width = self.rows[0][1].shape[1] if self.rows else 0
        table = np.empty(sum(len(k) for k, _ in self.rows),
                         dtype=[("key", "u1", (_KEY_BYTES,)), ("signature", "<u4", (width,))])
        at = 0
        for keys, sig in self.rows:
            table["key"][at:at + len(keys)] = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, _KEY_BYTES)
            table["signature"][at:at + len(keys)] = sig
            at += len(keys)
        with atomic_write(self.path, "wb") as f:
            np.save(f, table)


_KEY_BYTES = 16


def near_duplicates(chunks: Iterable[np.ndarray], threshold: float = THRESHOLD, num_perm: int = NUM_PERM,
                    workers: int | None = None, cache: SignatureCache | None = None) -> list[bool]:
    """For each token array in order: True when an earlier kept one shares an LSH band with it
    (datasketch's `MinHashLSH.query` against the chunks inserted before it; a duplicate is not inserted).
    `workers` threads hash the batches (default: one per CPU, at most 4); the answer is the same for any.
    `cache`: signatures found there are not computed again, and every chunk's is recorded in it."""
    if workers is None:
        workers = min(4, usable_cpus())
    n_bands, rows = lsh_params(threshold, num_perm)
    used = n_bands * rows  # datasketch's bands read only the first b * r values of a signature
    tables: list[set[bytes]] = [set() for _ in range(n_bands)]
    out: list[bool] = []

    def sign(batch: list[np.ndarray]) -> tuple[list[bytes] | None, np.ndarray]:
        return cache.signatures(batch, num_perm, used) if cache is not None \
            else (None, signatures(batch, num_perm, used))

    def decide(keys_sig: tuple[list[bytes] | None, np.ndarray]) -> None:
        keys, sig = keys_sig
        if cache is not None:  # here, in chunk order, whatever order the threads finish in
            cache.rows.append((keys, sig))
        buf, w = sig.tobytes(), rows * sig.itemsize  # one bytes object per batch, sliced per band
        for o in range(0, len(buf), used * sig.itemsize):
            bands = [buf[o + i * w:o + (i + 1) * w] for i in range(n_bands)]
            dup = any(k in t for k, t in zip(bands, tables))
            if not dup:
                for k, t in zip(bands, tables):
                    t.add(k)
            out.append(dup)

    if workers <= 1:
        for batch in _batches(chunks):
            decide(sign(batch))
        return out
    with ThreadPoolExecutor(workers) as pool:
        pending = []
        for batch in _batches(chunks):
            pending.append(pool.submit(sign, batch))
            if len(pending) > workers:
                decide(pending.pop(0).result())
        for f in pending:
            decide(f.result())
    return out


def near_duplicates_reference(chunks: Iterable[np.ndarray], threshold: float = THRESHOLD,
                              num_perm: int = NUM_PERM) -> list[bool]:
    """`near_duplicates` the slow, plain way, one datasketch `MinHash` and LSH query per chunk: the
    definition the batched version is checked against (tests/test_near_dup.py, bench/bench_near_dup.py)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    out = []
    for k, ids in enumerate(chunks):
        m = MinHash(num_perm=num_perm, hashfunc=int, scheme="affine32")
        m.update_batch(shingle_hashes(ids))
        dup = bool(lsh.query(m))
        if not dup:
            lsh.insert(k, m)
        out.append(dup)
    return out
