"""Benchmark stage 4's near-dedup: batched numpy MinHash/LSH against datasketch one chunk at a time.

    python3 bench/bench_near_dup.py data/*/chunks_tokenized.json    # stage 3 outputs of finished runs

For each stage 3 output, the chunks that stage 4 compares (train's diff chunks in stream order,
`dataset_builder.near_dup_candidates`) are deduplicated by `core.near_dup.near_duplicates_reference`
(datasketch's `MinHash` + `MinHashLSH`, a Python loop per chunk: what stage 4 ran before) and by
`near_duplicates` (batched, on one thread and on the default threads), the runs alternating. Prints
the agreement (the reference's drops that the batched version also drops, and every decision) and
the median seconds of each, with chunks per second and the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.near_dup import near_duplicates, near_duplicates_reference  # noqa: E402
from dataset_builder import load_stage3, near_dup_candidates, order_chunks  # noqa: E402
from core.splits import DEFAULT_RATIOS, commit_token_counts, split_commits  # noqa: E402


def candidates(path: Path) -> list:
    """The token arrays stage 4 near-dedups for `path`, with the default split ratios."""
    data = load_stage3(path)
    plan = split_commits(sorted(commit_token_counts(data.chunks).items()), DEFAULT_RATIOS)
    perm = order_chunks(data.orders, data.ranks)
    pos = near_dup_candidates(data, perm, plan.split_indices(data.orders)[perm])
    return [data.ids[o:o + n] for o, n in zip(data.offsets[perm[pos]].tolist(), data.n_tokens[perm[pos]].tolist())]


def timed(fn, chunks) -> tuple[float, list[bool]]:
    start = time.perf_counter()
    flags = fn(chunks)
    return time.perf_counter() - start, flags


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("chunks", type=Path, nargs="+", help="stage 3 outputs (chunks_tokenized.json)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are printed")
    args = p.parse_args(argv)
    runs = {"datasketch": near_duplicates_reference, "batched-1": lambda c: near_duplicates(c, workers=1),
            "batched": near_duplicates}
    print(f"{'output':<40}{'chunks':>8}{'drops':>7}{'kept':>7}{'same':>6}"
          + "".join(f"{k + ' s':>13}" for k in runs) + f"{'speed-up':>10}{'chunks/s':>10}")
    for path in args.chunks:
        chunks = candidates(path)
        seconds = {k: [] for k in runs}
        flags = {}
        for _ in range(args.rounds):
            for name, fn in runs.items():
                s, flags[name] = timed(fn, chunks)
                seconds[name].append(s)
        ref, new = flags["datasketch"], flags["batched"]
        drops = sum(ref)
        kept = sum(r and n for r, n in zip(ref, new)) / max(1, drops)
        med = {k: statistics.median(v) for k, v in seconds.items()}
        label = path.parent.name if path.name == "chunks_tokenized.json" else str(path)
        print(f"{label[-40:]:<40}{len(chunks):>8}{drops:>7}{kept:>7.1%}{str(ref == new == flags['batched-1']):>6}"
              + "".join(f"{med[k]:>13.2f}" for k in runs)
              + f"{med['datasketch'] / med['batched']:>9.1f}x{len(chunks) / med['batched']:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
