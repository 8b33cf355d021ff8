"""Benchmark the scraper against its floor (`git log -p`) and against PyDriller.

    python3 bench/bench_scraper.py [--repo PATH | --commits 500] [--skip-pydriller]

Without --repo it builds a repository with bench/make_bench_repo.py in a temporary directory.
Each contender runs in its own process over the same refs (all branches, tags, HEAD); the
report gives seconds, commits/s, MB/s of patch text, the ratio to `git log -p`, the ratio to
PyDriller and the peak RSS of the process (and its children).
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
REFS = ["--branches", "--remotes", "--tags", "HEAD"]

SCRAPER = """
import resource, sys
sys.path.insert(0, sys.argv[1])
from scrapers.git_scraper_rich import ScrapeConfig, scrape
scrape(ScrapeConfig(repo=sys.argv[2], output=sys.argv[3], progress=False, function_complexity=sys.argv[4] == "1"))
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
print(n, files)
"""


def timed(argv: list[str], **kw) -> tuple[float, int, bytes]:
    """Run `argv`; return wall seconds, peak RSS in MB of it and its children, and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, **kw)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"error: {' '.join(argv[:3])}... failed")
    return elapsed, usage.ru_maxrss // 1024, out


def git_log_floor(repo: Path) -> tuple[float, int, int]:
    """`git log -p` over the same refs, its output read through a pipe; returns seconds, RSS, bytes."""
    start = time.perf_counter()
    proc = subprocess.Popen(["git", "-C", str(repo), "log", "-p", *REFS], stdout=subprocess.PIPE)
    size = 0
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss // 1024, size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Benchmark the scraper against git log -p and PyDriller.")
    p.add_argument("--repo", type=Path, default=None, help="repository to scrape (default: build one)")
    p.add_argument("--commits", type=int, default=500, help="commits in the built repository (default: 500)")
    p.add_argument("--skip-pydriller", action="store_true", help="do not run PyDriller")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_scraper_") as tmp:
        tmp = Path(tmp)
        repo = args.repo or ensure_repo(tmp / "repo", args.commits)
        git_s, git_rss, patch_bytes = git_log_floor(repo)
        commits = int(subprocess.run(["git", "-C", str(repo), "rev-list", "--count", *REFS],
                                     capture_output=True, check=True).stdout)
        rows = [("git log -p (floor)", git_s, git_rss)]
        for label, functions in (("scraper, no function complexity", "0"), ("scraper, with function complexity", "1")):
            out = tmp / label.replace(" ", "_").replace(",", "")
            s, _, stdout = timed([sys.executable, "-c", SCRAPER, str(ROOT), str(repo), str(out / "h.jsonl"), functions])
            rows.append((label + " *", s, int(stdout.split()[-1])))
        stats = json.loads((out / "git_history_stats.json").read_text())
        pyd = None
        if args.skip_pydriller:
            print("PyDriller: skipped (--skip-pydriller)")
        else:
            try:
                import pydriller  # noqa: F401  (a benchmark-only dependency)
                pyd, rss, _ = timed([sys.executable, "-c", PYDRILLER, str(repo)])
                rows.append(("PyDriller (diffs + line counts)", pyd, rss))
            except ImportError:
                print("PyDriller: not installed, skipped (pip install pydriller)")
        mb = patch_bytes / 1e6
        print(f"repository: {commits} commits, {stats['counts']['file_changes']} file changes, "
              f"{mb:.1f} MB of `git log -p` output, {stats['counts']['merges']} merges")
        print(f"{'':36s} {'seconds':>8s} {'commits/s':>10s} {'MB/s':>7s} {'x git':>6s} {'PyDriller/x':>11s} {'RSS MB':>7s}")
        for label, s, rss in rows:
            vs_pyd = f"{pyd / s:11.1f}" if pyd else f"{'-':>11s}"
            print(f"{label:36s} {s:8.2f} {commits / s:10.0f} {mb / s:7.1f} {s / git_s:6.2f} {vs_pyd} {rss:7d}")
    print("RSS: peak of the process and its children (git's mmap of the pack counts);"
          " * the scraper's Python process alone (its git child is about the floor's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
