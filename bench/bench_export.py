"""Benchmark the exports (and the report) on a synthetic dataset of N tokens: time and peak RSS.

    python3 bench/bench_export.py --tokens 100000000 --work-dir /tmp/bench_export

Builds the synthetic stage-3 output of bench/bench_dataset.py (in a child process, so that this
process stays small: a child starts with its parent's peak RSS), runs dataset_builder.py on it,
then runs `python3 -m reporting.export --format hf`, `--format nanogpt` and
`python3 -m reporting.report` each as its own child process (peak RSS from os.wait4, so each
figure is that process's alone). Floors, timed in this process on the same files:
- nanogpt: read each split's token stream and write it once (the bytes the export writes);
- hf: read each split's window index and write every window's ids once as raw int32 (no labels,
  no Parquet), the least any per-example export must do.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.splits import SPLITS  # noqa: E402
from core.split_file import read_split  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def child(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of one child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: KiB


def disk_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def floor_nanogpt(dataset: Path, scratch: Path) -> float:
    t0 = time.perf_counter()
    for s in SPLITS:
        np.load(dataset / f"training_data_{s}.tokens.npy").tofile(scratch / "floor.bin")
    (scratch / "floor.bin").unlink()
    return time.perf_counter() - t0


def floor_hf(dataset: Path, scratch: Path) -> float:
    t0 = time.perf_counter()
    with open(scratch / "floor.bin", "wb") as f:
        for s in SPLITS:
            header, examples = read_split(dataset / f"training_data_{s}.json")
            stream = np.load(dataset / header["tokens_file"], mmap_mode="r")
            for ex in examples:
                start = ex["start"]
                f.write(stream[start:start + ex["context_length"] + ex["target_length"]].astype(np.int32).tobytes())
    (scratch / "floor.bin").unlink()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=100_000_000, help="synthetic corpus size in tokens")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/bench_export"), help="where inputs and outputs go")
    p.add_argument("--context-window", type=int, default=2048, help="passed to the builder")
    p.add_argument("--target-window", type=int, default=256, help="passed to the builder")
    args = p.parse_args(argv)

    run_dir = args.work_dir / "data"
    # Generated in a child: a child forked from a large parent starts with the parent's peak RSS.
    child([sys.executable, "-c", f"import sys; sys.path[:0] = {[str(ROOT), str(ROOT / 'bench')]!r}; "
           f"from pathlib import Path; from bench_dataset import generate; generate(Path({str(run_dir)!r}), {args.tokens})"])
    tokens_json = run_dir / "chunks_tokenized.json"
    seconds, cpu, rss = child([sys.executable, str(ROOT / "dataset_builder.py"), "--vocab", str(tokens_json),
                          "--no-progress", "--context-window", str(args.context_window),
                          "--target-window", str(args.target_window), "--output-dir", str(run_dir / "dataset")])
    print(f"dataset_builder: {args.tokens:,} tokens in {seconds:.1f} s ({cpu:.1f} s CPU), peak RSS {rss:,.0f} MiB")
    for fmt, floor in (("nanogpt", floor_nanogpt), ("hf", floor_hf)):
        info = run_dir / "export" / fmt / "export_info.json"
        if info.exists():
            info.unlink()  # a previous run's export would be skipped as unchanged
        seconds, cpu, rss = child([sys.executable, "-m", "reporting.export", str(run_dir), "--format", fmt,
                                   "--no-progress"])
        base = floor(run_dir / "dataset", args.work_dir)
        print(f"export {fmt}: {seconds:.1f} s ({cpu:.1f} s CPU), peak RSS {rss:,.0f} MiB, {disk_mib(run_dir / 'export' / fmt):,.0f} MiB "
              f"on disk; floor {base:.1f} s; export / floor = {seconds / base:.1f}x")
    seconds, cpu, rss = child([sys.executable, "-m", "reporting.report", str(run_dir), "--no-progress"])
    print(f"report (from the stage-3 index: synthetic data has no chunk text): {seconds:.1f} s ({cpu:.1f} s CPU), "
          f"peak RSS {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
