"""Batched MinHash/LSH near-dedup against datasketch's one-chunk-at-a-time definition."""

from __future__ import annotations

import numpy as np
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from core import near_dup
from core.near_dup import near_duplicates, near_duplicates_reference, shingle_hashes, signatures


def _edited_copies(seed: int, n: int) -> list[np.ndarray]:
    """Random chunks (1 to 600 tokens, a few under the shingle length), a third followed by a copy with
    0-5 tokens changed: pairs from identical through near to different."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c = rng.integers(0, 2000, rng.integers(1, 600)).astype(np.uint32)
        out.append(c)
        if rng.random() < 0.35:
            d = c.copy()
            d[rng.integers(0, len(d), rng.integers(0, 6))] = rng.integers(0, 2000)
            out.append(d)
    return out


def test_parameters_are_datasketchs():
    for num_perm in (16, 128):
        a, b = near_dup.permutations(num_perm)
        ref_a, ref_b = MinHash(num_perm=num_perm, hashfunc=int, scheme="affine32").permutations
        assert np.array_equal(a, ref_a) and np.array_equal(b, ref_b)
        for threshold in (0.3, 0.5, 0.8, 0.9):
            assert near_dup.lsh_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_signatures_are_datasketch_minhashes():
    chunks = _edited_copies(1, 60) + [np.zeros(0, np.uint32), np.array([3, 1], np.uint32)]
    sig = signatures(chunks)
    assert sig.shape == (len(chunks), near_dup.NUM_PERM)
    for c, row in zip(chunks, sig):
        m = MinHash(num_perm=near_dup.NUM_PERM, hashfunc=int, scheme="affine32")
        m.update_batch(shingle_hashes(c))
        assert np.array_equal(m.hashvalues, row)


def test_same_decisions_as_datasketch_in_any_batching(monkeypatch):
    chunks = _edited_copies(2, 700)
    expected = near_duplicates_reference(chunks)
    assert 50 < sum(expected) < len(chunks) // 2  # the case is not trivial either way
    assert near_duplicates(chunks, workers=1) == expected
    monkeypatch.setattr(near_dup, "BATCH_SHINGLES", 1000)  # many batches, decided in order across threads
    assert near_duplicates(iter(chunks), workers=3) == expected
    assert near_duplicates(chunks, threshold=0.5) == near_duplicates_reference(chunks, threshold=0.5)


def test_nothing_to_compare():
    assert near_duplicates([]) == []
    assert near_duplicates([np.zeros(0, np.uint32)] * 2) == [False, True]


def test_kept_signatures_give_the_same_decisions_and_are_read_not_recomputed(tmp_path, monkeypatch):
    """A rerun's cache holds the last run's rows: its decisions are the reference's; a row it holds is
    used as it is (a doctored row changes the decision), under the same parameters only."""
    from core.near_dup import SignatureCache

    monkeypatch.setattr(near_dup, "BATCH_SHINGLES", 1000)  # rows recorded across many batches and threads
    chunks = _edited_copies(3, 300)
    expected = near_duplicates_reference(chunks)
    path = tmp_path / "signatures.npy"
    first = SignatureCache(path)
    assert near_duplicates(chunks[:200], workers=3, cache=first) == expected[:200]
    first.save()
    again = SignatureCache(path)
    assert len(again.known) == len({again.key(c, near_dup.NUM_PERM, 117) for c in chunks[:200]})
    assert near_duplicates(chunks, workers=3, cache=again) == expected  # 100 chunks more: computed
    again.save()
    fresh = SignatureCache(tmp_path / "fresh.npy")
    assert near_duplicates(chunks, workers=1, cache=fresh) == expected
    fresh.save()
    assert (tmp_path / "fresh.npy").read_bytes() == path.read_bytes()  # as a run without the last one's writes it
    unique = next(i for i, dup in enumerate(expected) if not dup and i > 0)
    doctored = SignatureCache(path)
    doctored.known[doctored.key(chunks[unique], near_dup.NUM_PERM, 117)] = signatures(chunks[:1], used=117)[0]
    assert near_duplicates(chunks, workers=1, cache=doctored)[unique] is True  # its row was read, not computed
    other = SignatureCache(path)  # other parameters: other keys, nothing found
    assert near_duplicates(chunks, threshold=0.5, cache=other) == near_duplicates_reference(chunks, threshold=0.5)
