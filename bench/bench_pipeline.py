"""Benchmark the whole pipeline against its floor: `git log -p` plus one raw `encode_batch`.

    python3 bench/bench_pipeline.py                      # builds a repository with bench/make_bench_repo.py
    python3 bench/bench_pipeline.py --repo PATH          # or measures yours

The floor is what no implementation can avoid: reading the history once (`git log -p` over the
same refs) and tokenizing the chunk texts once (the Rust tokenizer's `encode_batch_fast`), both
timed here, on this machine, in this run. The pipeline runs offline with the fallback tokenizer
(trained on a sample of the history), every stage forced. Prints each stage's time and share,
the floor and the ratio, and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from make_bench_repo import ensure_repo  # noqa: E402  (bench/ is the script's directory)


def git_log_seconds(repo: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(["git", "-C", str(repo), "log", "-p", "--branches", "--remotes", "--tags", "HEAD",
                             "--no-color", "--topo-order"],
                            stdout=subprocess.PIPE)
    size = 0
    while block := proc.stdout.read(1 << 20):
        size += len(block)
    proc.wait()
    return time.perf_counter() - start, size


def encode_seconds(chunks: Path, tokenizer_dir: Path) -> tuple[float, int]:
    from tokenizers import Tokenizer

    texts = [json.loads(line)["text"] for line in open(chunks, encoding="utf-8")]
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    start = time.perf_counter()
    n = sum(len(e.ids) for e in tok.encode_batch_fast(texts, add_special_tokens=False))
    return time.perf_counter() - start, n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=None, help="repository to measure [build one]")
    p.add_argument("--commits", type=int, default=600, help="commits of the generated repository")
    p.add_argument("--work-dir", type=Path, default=None, help="where to build and write [a temp dir]")
    args = p.parse_args(argv)

    from comprehensive_pipeline import parse_args
    from pipeline.orchestrator import Pipeline
    from core.io import setup_logging
    from pipeline.state import OutputLock

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    repo = args.repo or ensure_repo(work / "repo", args.commits)
    out = work / "out"
    cfg = parse_args(["--repo", str(repo), "--output-dir", str(out), "--model", "bench/offline-fallback",
                      "--force", "--no-progress"])
    setup_logging()
    git_s, git_bytes = git_log_seconds(repo)
    with OutputLock(out):
        pipeline = Pipeline(cfg, repo.resolve(), out)
        start = time.perf_counter()
        pipeline.run()
        total = time.perf_counter() - start
    enc_s, n_tokens = encode_seconds(out / "chunks_semantic.jsonl", out / "tokenizer")
    floor = git_s + enc_s
    print(f"\nrepository: {repo}  ({git_bytes / 1e6:.0f} MB of `git log -p`, {n_tokens:,} chunk tokens)")
    print(f"{'stage':<14}{'seconds':>9}{'share':>8}")
    for r in pipeline.reports:
        print(f"{r.stage.strip():<14}{r.seconds:>9.2f}{r.seconds / total:>8.0%}")
    print(f"{'pipeline':<14}{total:>9.2f}")
    print(f"floor: git log -p {git_s:.2f}s + encode_batch {enc_s:.2f}s = {floor:.2f}s")
    print(f"ratio: pipeline / floor = {total / floor:.2f}x")
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(f"peak RSS: {peak / 1024:.0f} MB (this process or its largest child)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
