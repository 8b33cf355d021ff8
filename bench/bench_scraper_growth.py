"""Benchmark how stage 1's cost per file change grows with the history: the oldest N commits, for growing N.

    python3 bench/bench_scraper_growth.py --repo /path/to/spdlog --commits 1200 4669
    python3 bench/bench_scraper_growth.py --commits 1000 4000        # a generated one (make_bench_repo.py, 2 adds + 6 edits a commit)
    python3 bench/bench_scraper_growth.py --commits 1000 5000 20000 --adds 1 --edits 2 --rounds 1   # 2.5 min to build

Stage 1 runs in this process (`--jobs 0`, so that every parse is seen) on the oldest N commits
(`--max-commits N`) for each N, several rounds alternating the sizes. Printed per N: file changes,
CPU seconds (this process and its git children), git's part of them, CPU milliseconds per file
change, and the tree-sitter parses split into re-parses from a kept tree and parses from nothing,
with their mean source KB and CPU milliseconds. A linear stage 1 has a flat `ms/change`; where it
rises, `git s` tells whether git's part grew, and the parse columns whether the files grew (KB per
parse) or the parses got dearer. The last columns show the aggregates: authors, pairs of authors
with a file in common (they grow with the square of a busy file's authors) and the size of the
statistics file. docs/history.md ("Growth with the history") has the figures.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import scrapers.complexity as complexity  # noqa: E402
from make_bench_repo import build  # noqa: E402  (bench/ is the script's directory)
from scrapers.git_scraper_rich import ScrapeConfig, scrape  # noqa: E402

_parses: dict[bool, list[tuple[int, float]]] = {True: [], False: []}  # re-parsed? -> (bytes, CPU s)


def _counted_reparse(reparse):
    def counted(lang, content, *args, **kwargs):
        start = time.process_time()
        tree, reused = reparse(lang, content, *args, **kwargs)
        _parses[reused].append((len(content), time.process_time() - start))
        return tree, reused
    return counted


def _cpu() -> tuple[float, float]:
    """CPU seconds so far of this process and of its children (git)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run_once(repo: Path, n: int, out: Path) -> dict:
    for v in _parses.values():
        v.clear()
    start = _cpu()
    stats = scrape(ScrapeConfig(repo=str(repo), output=str(out), max_commits=n, jobs=0, progress=False))
    own, git = (b - a for a, b in zip(start, _cpu()))
    row = {"commits": stats["counts"]["commits"], "changes": stats["counts"]["file_changes"], "cpu": own + git,
           "git": git,
           "authors": len(stats["aggregates"]["authors"]), "pairs": stats["aggregates"]["collaboration_pairs"],
           "stats_kb": (out.parent / "git_history_stats.json").stat().st_size / 1024}
    for reused, name in ((True, "re-parse"), (False, "parse")):
        got = _parses[reused]
        row[name] = (len(got), sum(b for b, _ in got) / max(1, len(got)) / 1024,
                     1000 * sum(s for _, s in got) / max(1, len(got)))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=None, help="repository to measure [build one]")
    p.add_argument("--commits", type=int, nargs="+", default=[1000, 4000], help="history prefixes (oldest N commits)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; medians of the CPU figures")
    p.add_argument("--work-dir", type=Path, default=None, help="where to build and write [a temp dir]")
    p.add_argument("--adds", type=int, default=2, help="new files a commit of the history built [2]")
    p.add_argument("--edits", type=int, default=6, help="edited files a commit of the history built [6]")
    args = p.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-scraper-growth-"))
    repo = args.repo
    if repo is None:  # a few new and edited files a commit: 20k commits stay a few minutes to build
        repo = work / "repo"
        if not repo.exists():
            build(repo, max(args.commits), 0, args.adds, args.edits, Path(sysconfig.get_paths()["purelib"]))
    complexity.reparse = _counted_reparse(complexity.reparse)
    rows: dict[int, list[dict]] = {n: [] for n in args.commits}
    for _ in range(args.rounds):
        for n in args.commits:
            rows[n].append(run_once(repo, n, work / "history.jsonl"))
    print(f"{repo}: stage 1 with --jobs 0, medians of {args.rounds} rounds")
    print(f"{'commits':>8}{'changes':>9}{'CPU s':>8}{'git s':>7}{'ms/change':>11}   {'re-parses':>9}{'KB':>6}{'ms':>7}"
          f"   {'parses':>7}{'KB':>6}{'ms':>7}   {'authors':>7}{'pairs':>9}{'stats KB':>9}")
    for n, runs in rows.items():
        r = runs[0]
        cpu = statistics.median(x["cpu"] for x in runs)
        git = statistics.median(x["git"] for x in runs)
        rp = [statistics.median(x["re-parse"][k] for x in runs) for k in range(3)]
        fp = [statistics.median(x["parse"][k] for x in runs) for k in range(3)]
        print(f"{r['commits']:>8}{r['changes']:>9}{cpu:>8.1f}{git:>7.1f}{1000 * cpu / max(1, r['changes']):>11.2f}   "
              f"{rp[0]:>9.0f}{rp[1]:>6.1f}{rp[2]:>7.2f}   {fp[0]:>7.0f}{fp[1]:>6.1f}{fp[2]:>7.2f}   "
              f"{r['authors']:>7}{r['pairs']:>9}{r['stats_kb']:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
