"""Benchmark the multi-repository mode: the real repositories with 1, 2, ... workers.

    python3 bench/bench_multi_repo.py                          # ../shared/repos bundles, 1 and 2 workers
    python3 bench/bench_multi_repo.py --workers 1 2 4 --max-commits 0 --repos-dir DIR
    python3 bench/bench_multi_repo.py --baseline /tmp/base       # unchanged reruns against another checkout

Clones every bundle of `../shared/repos/` into a temp directory (or reads `--repos-dir`), then
builds one dataset from all of them once per worker count, each time from nothing and in a fresh
process (`--workers 1`: one after another in that process, without Ray; more: Ray started
locally with that many CPUs). The fallback tokenizer is used (offline), trained on every
repository's train period. Prints per worker count the wall time (Ray start-up included), the
speed-up over one worker, repositories per hour per worker, and the peak RSS of each worker
process; then the floor: `git log -p` over the same commits, one repository after another.

Then the unchanged rerun: the command (`python3 comprehensive_pipeline.py`, a fresh process, so
Python's start and imports are included) run again `--rerun-rounds` times on the dataset built with
the largest worker count; median and rounds, with the load average before and after. With
`--baseline DIR` (another checkout of the project, e.g. `git worktree add /tmp/base main`), that
checkout's command builds the same dataset in its own directory first, and its reruns alternate
with this checkout's, round by round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BUNDLES = ROOT.parent / "shared" / "repos"


def clone_bundles(dest: Path) -> list[Path]:
    if not BUNDLES.is_dir():
        sys.exit(f"no bundles at {BUNDLES}: give --repos-dir")
    repos = []
    for bundle in sorted(BUNDLES.glob("*.bundle")):
        repo = dest / bundle.stem
        if not repo.exists():
            subprocess.run(["git", "clone", "-q", str(bundle), str(repo)], check=True)
        repos.append(repo)
    return repos


def git_log_seconds(repos: list[Path], max_commits: int) -> float:
    """The floor: every repository's commits (the oldest `max_commits`, as the scraper takes them) read
    once with their diffs by one `git log -p` each, one repository after another."""
    start = time.perf_counter()
    for repo in repos:
        hashes = subprocess.run(["git", "-C", str(repo), "rev-list", "--all", "--topo-order", "--reverse"],
                                capture_output=True, text=True, check=True).stdout.split()
        hashes = hashes[:max_commits] if max_commits else hashes
        subprocess.run(["git", "-C", str(repo), "log", "-p", "--no-color", "--no-walk=unsorted", "--stdin"],
                       input="\n".join(hashes), text=True, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def command(root: Path, repos: list[Path], out: Path, workers: int, limit: list[str]) -> list[str]:
    """The multi-repository command of checkout `root` (the fallback tokenizer, offline), as a user types it."""
    return [sys.executable, str(root / "comprehensive_pipeline.py"), *[a for r in repos for a in ("--repo", str(r))],
            "--output-dir", str(out), "--workers", str(workers), "--model", "bench/offline-fallback", "--no-progress",
            *limit]


def unchanged_reruns(runs: dict[str, list[str]], rounds: int, env: dict) -> dict[str, list[float]]:
    """Wall seconds of each command in `runs` (label -> command on a finished dataset), `rounds` times,
    the labels alternating within each round."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, cmd in runs.items():
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            times[label].append(time.perf_counter() - start)
            if proc.returncode:
                sys.exit(f"unchanged rerun ({label}) failed:\n{proc.stderr[-3000:]}")
            if " built " in proc.stdout or "FAILED" in proc.stdout:
                sys.exit(f"unchanged rerun ({label}) rebuilt a repository:\n{proc.stdout[-3000:]}")
    return times


def one_run(argv: list[str]) -> None:
    """Child process: one multi-repository build; prints its timings as one JSON line."""
    from comprehensive_pipeline import parse_args
    from multirepo.runner import build_multi
    from core.io import setup_logging

    cfg = parse_args(argv)
    setup_logging()
    start = time.perf_counter()
    _, results, manifest, _ = build_multi(cfg)
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "repos": [{k: r[k] for k in ("name", "seconds", "peak_rss_mb", "pid", "error", "stages")}
                                for r in results],
                      "tokens": sum(s["tokens"] for s in manifest["splits"].values())}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repos-dir", type=Path, default=None, help="directory of repositories [clone the bundles]")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure [1 2]")
    p.add_argument("--max-commits", type=int, default=400, help="commits read per repository, 0 for all [400]")
    p.add_argument("--work-dir", type=Path, default=None, help="where to clone and write [a temp dir]")
    p.add_argument("--rerun-rounds", type=int, default=3, help="unchanged reruns timed, 0 for none [3]")
    p.add_argument("--baseline", type=Path, default=None,
                   help="another checkout whose unchanged reruns alternate with this one's [none]")
    p.add_argument("--one-run", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one_run is not None:
        one_run(args.one_run)
        return 0

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-multi-"))
    repos = sorted(d for d in args.repos_dir.iterdir() if (d / ".git").exists()) if args.repos_dir \
        else clone_bundles(work / "repos")
    limit = ["--max-commits", str(args.max_commits)] if args.max_commits else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    runs = {}
    for n in args.workers:
        cmd = [sys.executable, __file__, "--one-run", *command(ROOT, repos, work / f"out-{n}", n, limit)[2:], "--force"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if proc.returncode:
            sys.exit(f"{n} workers failed:\n{proc.stderr[-3000:]}")
        runs[n] = {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall": wall}

    print(f"\n{len(repos)} repositories ({', '.join(r.name for r in repos)}), "
          f"{'all' if not args.max_commits else f'at most {args.max_commits}'} commits each, "
          f"{os.cpu_count()} CPUs on this machine")
    base = runs[args.workers[0]]["wall"]  # speed-up over the first worker count measured
    print(f"{'workers':>7}{'wall s':>9}{'build s':>9}{'speed-up':>10}{'repos/h/worker':>16}  "
          "peak RSS per worker process (MB)")
    for n, r in runs.items():
        peaks: dict[int, float] = {}
        for rep in r["repos"]:
            peaks[rep["pid"]] = max(peaks.get(rep["pid"], 0.0), rep["peak_rss_mb"] or 0.0)
        per_hour = len(repos) / r["wall"] * 3600 / n
        print(f"{n:>7}{r['wall']:>9.1f}{r['seconds']:>9.1f}{base / r['wall']:>10.2f}{per_hour:>16.0f}  "
              + ", ".join(f"{v:.0f}" for v in sorted(peaks.values(), reverse=True)))
    print("per repository (seconds at the largest worker count): "
          + ", ".join(f"{rep['name']} {rep['seconds']:.1f}" for rep in runs[args.workers[-1]]["repos"]))
    stage_s: dict[str, float] = {}
    for rep in runs[args.workers[0]]["repos"]:
        for stage, _, seconds in rep["stages"]:
            stage_s[stage] = stage_s.get(stage, 0.0) + seconds
    total = sum(stage_s.values())
    print(f"where a task's time goes ({args.workers[0]} worker, all repositories): "
          + ", ".join(f"{k} {v:.1f}s ({v / total:.0%})" for k, v in stage_s.items()))
    floor = git_log_seconds(repos, args.max_commits)
    best = min(r["wall"] for r in runs.values())
    print(f"floor: git log -p over the same commits, one repository after another: {floor:.2f}s; "
          f"best wall / floor = {best / floor:.1f}x; {runs[args.workers[-1]]['tokens']:,} tokens in the dataset")
    if args.rerun_rounds:
        n = args.workers[-1]
        reruns = {"this checkout": command(ROOT, repos, work / f"out-{n}", n, limit)}
        if args.baseline:
            baseline = command(args.baseline.resolve(), repos, work / f"out-{n}-baseline", n, limit)
            if subprocess.run(baseline, capture_output=True, env=env).returncode:
                sys.exit(f"the baseline's build failed: {' '.join(baseline)}")
            reruns = {"baseline": baseline, **reruns}
        load = os.getloadavg()[0]
        times = unchanged_reruns(reruns, args.rerun_rounds, env)
        rounds = {label: ", ".join(f"{x:.2f}" for x in t) for label, t in times.items()}
        print(f"unchanged rerun, {n} workers, median of {args.rerun_rounds} (load average {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}): "
              + "; ".join(f"{label} {statistics.median(t):.2f}s ({rounds[label]})" for label, t in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
