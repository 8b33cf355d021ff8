"""Benchmark stage 4 on a synthetic stage-3 output of N tokens: time, tokens/s, peak memory.

    python3 bench/bench_dataset.py --tokens 100000000 --work-dir /tmp/bench_dataset

Writes a synthetic chunks_tokenized.json (+ ids and sequences .npy, in stage 3's format, written
with stage 3's own helpers) of about N tokens, in chunks of 64-512 tokens, 50 chunks a commit,
with snapshot chunks at the train cut-off. Then runs `dataset_builder.py` on it as a child process
(so its peak RSS is the builder's alone, from resource.getrusage(RUSAGE_CHILDREN)) and prints
its time, tokens/s and peak RSS, against the floor: reading the ids and writing them once as .npy.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.io import atomic_write
from core.splits import commit_token_counts, split_commits
from core.tokenized_chunks import FORMAT, FORMAT_VERSION, sequence_table, write_meta

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 50_000
CHUNKS_PER_COMMIT = 50


def generate(out: Path, n_tokens: int, seed: int = 0) -> Path:
    """A synthetic stage-3 output of about n_tokens tokens; returns the chunks_tokenized.json path."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(64, 513, size=n_tokens // 288 + 1)
    lengths = lengths[np.cumsum(lengths) <= n_tokens]
    n_snap = max(1, len(lengths) // 100)  # the last 1% of chunks are file snapshots
    orders = np.arange(len(lengths) - n_snap) // CHUNKS_PER_COMMIT
    diff_chunks = [{"kind": "diff", "order": int(o), "n_tokens": int(n)} for o, n in zip(orders, lengths)]
    cut = split_commits(sorted(commit_token_counts(diff_chunks).items())).train_last_order
    out.mkdir(parents=True, exist_ok=True)
    ids = rng.integers(1, VOCAB, size=int(lengths.sum()), dtype=np.uint16)
    with atomic_write(out / "chunks_tokenized.ids.npy", "wb") as f:
        np.save(f, ids)
    table = sequence_table(lengths, 512, 128)
    with atomic_write(out / "chunks_tokenized.sequences.npy", "wb") as f:
        np.save(f, table)
    counts = np.bincount(table[:, 0], minlength=len(lengths))
    firsts, offsets = np.cumsum(counts) - counts, np.cumsum(lengths) - lengths
    chunks = []
    for i, (n, off, first, count) in enumerate(zip(lengths.tolist(), offsets.tolist(), firsts.tolist(), counts.tolist())):
        snap = i >= len(orders)
        order = cut if snap else int(orders[i])
        chunks.append({"id": f"c{i}", "kind": "snapshot" if snap else "diff", "commit": f"{order:040x}",
                       "order": order, "timestamp": 1_700_000_000 + 60 * order, "path": f"src/f{i % 997}.rs",
                       "n_tokens": n, "offset": off, "first_sequence": first, "n_sequences": count})
    identity = {"name_or_path": "synthetic", "vocab_size": VOCAB, "special_tokens": {}, "separator_id": 0,
                "sha256": "0" * 64, "fallback": False}
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "tokenizer": identity, "sequence_length": 512,
            "overlap": 128, "ids_file": "chunks_tokenized.ids.npy", "ids_dtype": "uint16",
            "sequences_file": "chunks_tokenized.sequences.npy", "stats": {}}
    write_meta(out / "chunks_tokenized.json", meta, chunks)
    return out / "chunks_tokenized.json"


def floor_seconds(tokens_json: Path, out: Path) -> float:
    """Reading the ids and writing them once: the least any builder of a token file must do."""
    t0 = time.perf_counter()
    ids = np.load(tokens_json.with_name("chunks_tokenized.ids.npy"))
    with atomic_write(out / "floor.npy", "wb") as f:
        np.save(f, ids)
    (out / "floor.npy").unlink()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=100_000_000, help="synthetic corpus size in tokens")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/bench_dataset"), help="where inputs and outputs go")
    p.add_argument("--context-window", type=int, default=2048, help="passed to the builder")
    p.add_argument("--target-window", type=int, default=256, help="passed to the builder")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    tokens_json = generate(args.work_dir / "data", args.tokens)
    print(f"generated {args.tokens:,} tokens of synthetic stage-3 output in {time.perf_counter() - t0:.1f} s")
    floor = floor_seconds(tokens_json, args.work_dir)
    cmd = [sys.executable, str(ROOT / "dataset_builder.py"), "--vocab", str(tokens_json), "--no-progress",
           "--context-window", str(args.context_window), "--target-window", str(args.target_window),
           "--output-dir", str(args.work_dir / "dataset")]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
    n = int(np.load(tokens_json.with_name("chunks_tokenized.ids.npy"), mmap_mode="r").shape[0])
    print(f"dataset_builder: {n:,} tokens in {seconds:.1f} s = {n / seconds / 1e6:.1f}M tokens/s, "
          f"peak RSS {peak_mib:,.0f} MiB")
    print(f"floor (read the ids + write them once): {floor:.1f} s; builder / floor = {seconds / floor:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
