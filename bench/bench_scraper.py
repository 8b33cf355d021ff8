"""Benchmark the scraper against its floor (`git log -p`) and against PyDriller.

    python3 bench/bench_scraper.py [--repo PATH ...] [--commits 500] [--language rust] [--jobs N] [--skip-pydriller]

Without --repo it builds a repository with bench/make_bench_repo.py in a temporary directory,
from Python sources, or with `--language rust` from the Rust files of `--source-root` (default:
a clone of the rust-lang/log bundle in ../shared/repos). `--repo` may be given several times.
Each contender runs in its own process over the same refs (all branches, tags, HEAD); the
report gives wall seconds, CPU seconds (user + system, the process and the children it waited
for: git included), commits/s, MB/s of patch text, the wall and CPU ratios to `git log -p` in the
same run, how many times faster than PyDriller, and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from make_bench_repo import ensure_repo  # bench/ is the script's directory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scrapers.complexity import default_jobs  # noqa: E402
BUNDLES = ROOT.parent / "shared" / "repos"
REFS = ["--branches", "--remotes", "--tags", "HEAD"]

SCRAPER = """
import resource, sys
sys.path.insert(0, sys.argv[1])
from scrapers.git_scraper_rich import ScrapeConfig, scrape
jobs = None if sys.argv[5] == "default" else int(sys.argv[5])
scrape(ScrapeConfig(repo=sys.argv[2], output=sys.argv[3], progress=False, function_complexity=sys.argv[4] == "1",
                    jobs=jobs))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""

PYDRILLER = """
import sys
from pydriller import Repository
n = files = 0
for c in Repository(sys.argv[1], include_refs=True, include_remotes=True, order="reverse").traverse_commits():
    n += 1
    for m in c.modified_files:
        files += 1
        m.diff, m.added_lines, m.deleted_lines
        if sys.argv[2] == "1":  # the scraper's function complexity: changed methods and their CCN (lizard)
            [f.complexity for f in m.changed_methods]
print(n, files)
"""


def run_measured(argv: list[str], timeout: float | None = None) -> tuple[float, float, int, bytes] | None:
    """Run `argv`: wall seconds, CPU seconds (user + system, with the children it waited for), peak RSS MB, stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out)
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return None
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"error: {' '.join(argv[:3])}... failed")
        out.seek(0)
        return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, out.read()


def git_log_floor(repo: Path) -> tuple[float, float, int, int]:
    """`git log -p` over the same refs, its output read through a pipe: seconds, CPU seconds, RSS, bytes."""
    start = time.perf_counter()
    proc = subprocess.Popen(["git", "-C", str(repo), "log", "-p", *REFS], stdout=subprocess.PIPE)
    size = 0
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, size


def bench(repo: Path, tmp: Path, pydriller: bool, pydriller_timeout: float, pydriller_methods: bool,
          jobs: int | None) -> None:
    git_s, git_cpu, git_rss, patch_bytes = git_log_floor(repo)
    commits = int(subprocess.run(["git", "-C", str(repo), "rev-list", "--count", *REFS],
                                 capture_output=True, check=True).stdout)
    rows = [("git log -p (floor)", git_s, git_cpu, git_rss)]
    out = tmp
    for label, functions in (("scraper, no function complexity", "0"), ("scraper, with function complexity", "1")):
        out = tmp / label.replace(" ", "_").replace(",", "")
        s, cpu, _, stdout = run_measured([sys.executable, "-c", SCRAPER, str(ROOT), str(repo), str(out / "h.jsonl"),
                                          functions, "default" if jobs is None else str(jobs)])
        rows.append((label + " *", s, cpu, int(stdout.split()[-1])))
    stats = json.loads((out / "git_history_stats.json").read_text())
    pyd: dict[str, float] = {}  # "0": diffs and line counts, "1": with changed methods' CCN
    if not pydriller:
        print("PyDriller: skipped (--skip-pydriller)")
    else:
        try:
            import pydriller as _  # noqa: F401  (a benchmark-only dependency)
            for label, methods in (("PyDriller (diffs + line counts)", "0"), ("PyDriller + changed methods' CCN", "1")):
                if methods == "1" and not pydriller_methods:
                    continue
                got = run_measured([sys.executable, "-c", PYDRILLER, str(repo), methods], timeout=pydriller_timeout)
                if got is None:
                    print(f"{label}: stopped after {pydriller_timeout:.0f} s (--pydriller-timeout)")
                    continue
                pyd[methods] = got[0]
                rows.append((label, got[0], got[1], got[2]))
        except ImportError:
            print("PyDriller: not installed, skipped (pip install pydriller)")
    mb = patch_bytes / 1e6
    c = stats["counts"]
    print(f"{repo.name}: {commits} commits, {c['file_changes']} file changes, {mb:.1f} MB of `git log -p` "
          f"output, {c['merges']} merges, {c.get('functions_measured', 0)} functions measured")
    print(f"{'':36s} {'seconds':>8s} {'cpu s':>7s} {'commits/s':>10s} {'MB/s':>7s} {'x git':>6s} {'cpu x git':>9s} "
          f"{'PyDriller/x':>11s} {'PyD+CCN/x':>9s} {'RSS MB':>7s}")
    for label, s, cpu, rss in rows:
        vs = [f"{pyd[k] / s:{w}.1f}" if k in pyd else f"{'-':>{w}s}" for k, w in (("0", 11), ("1", 9))]
        print(f"{label:36s} {s:8.2f} {cpu:7.2f} {commits / s:10.0f} {mb / s:7.1f} {s / git_s:6.2f} "
              f"{cpu / git_cpu:9.2f} {vs[0]} {vs[1]} {rss:7d}")


def rust_sources(tmp: Path) -> Path:
    """A clone of the rust-lang/log bundle: the Rust files a generated Rust-heavy history is made of."""
    bundle = BUNDLES / "log.bundle"
    if not bundle.exists():
        sys.exit(f"error: {bundle} not found: pass --source-root DIR with Rust sources")
    subprocess.run(["git", "clone", "-q", str(bundle), str(tmp / "rust-sources")], check=True)
    return tmp / "rust-sources"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Benchmark the scraper against git log -p and PyDriller.")
    p.add_argument("--repo", type=Path, action="append", default=[],
                   help="repository to scrape (repeatable; default: build one)")
    p.add_argument("--commits", type=int, default=500, help="commits in the built repository (default: 500)")
    p.add_argument("--language", default="python", help="sources of the built repository: python or rust, ...")
    p.add_argument("--source-root", type=Path, default=None,
                   help="where the built repository's sources come from (default: site-packages for python, "
                        "the log bundle in ../shared/repos for rust)")
    p.add_argument("--jobs", type=int, default=None,
                   help="the scraper's --jobs (function complexity worker processes; default: the scraper's default)")
    p.add_argument("--skip-pydriller", action="store_true", help="do not run PyDriller")
    p.add_argument("--pydriller-timeout", type=float, default=600, help="give PyDriller up after this many seconds")
    p.add_argument("--pydriller-methods", action="store_true",
                   help="also time PyDriller measuring changed methods (lizard), the work of function complexity")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_scraper_") as tmp:
        tmp = Path(tmp)
        repos = args.repo
        if not repos:
            source_root = args.source_root or (rust_sources(tmp) if args.language == "rust" else None)
            repos = [ensure_repo(tmp / f"{args.language}-repo", args.commits, args.language, source_root)]
        for i, repo in enumerate(repos):
            bench(repo, tmp / f"run{i}", not args.skip_pydriller, args.pydriller_timeout, args.pydriller_methods,
                  args.jobs)
    jobs = default_jobs() if args.jobs is None else args.jobs
    print(f"CPU: user + system of the process and the children it waited for (git and {jobs} function worker(s) "
          f"included; {len(os.sched_getaffinity(0))} CPUs). RSS: peak of the process and its children; * the "
          "scraper's Python process alone (its git child is about the floor's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
