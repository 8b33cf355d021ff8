"""The whole pipeline on each real repository in ../shared/repos, with its summary and its floor.

    python3 bench/bench_real_repos.py                           # all five bundles
    python3 bench/bench_real_repos.py --only log cobra --max-commits 500

Each bundle is cloned into a temporary directory (local, seconds), then `comprehensive_pipeline`
runs on it offline (the fallback tokenizer, trained on the repository), every stage forced; its
own summary is printed, then one table: commits, time, the floor (`git log -p` over the same refs,
timed in the same run) and the ratio, and what the odd-history rules counted (malformed dates,
missing objects, non-UTF-8 diffs, LFS pointers, snapshot files filtered out for any reason), and the
share of Python diff chunks that open on a def, class or decorator (`bench_chunker.definition_openings`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_chunker import definition_openings, format_openings  # noqa: E402  (bench/ is the script's directory)
from bench_pipeline import git_log_seconds  # noqa: E402

BUNDLES = ROOT.parent / "shared" / "repos"
NAMES = ("click", "express", "cobra", "log", "cJSON")


def run_one(bundle: Path, work: Path, max_commits: int | None) -> dict:
    from comprehensive_pipeline import parse_args
    from pipeline.orchestrator import run_pipeline
    from core.io import read_json

    repo, out = work / bundle.stem, work / f"out-{bundle.stem}"
    subprocess.run(["git", "clone", "-q", str(bundle), str(repo)], check=True)
    git_s, _ = git_log_seconds(repo)
    argv = ["--repo", str(repo), "--output-dir", str(out), "--model", "bench/offline-fallback", "--force",
            "--no-progress"] + (["--max-commits", str(max_commits)] if max_commits else [])
    print(f"\n===== {bundle.stem} =====", flush=True)
    start = time.perf_counter()
    run_pipeline(parse_args(argv))
    seconds = time.perf_counter() - start
    history, chunks = read_json(out / "git_history_stats.json"), read_json(out / "chunks_semantic.stats.json")
    openings = definition_openings(out / "chunks_semantic.jsonl", chunks["cutoff"])
    if openings["all"][1]:
        print(f"Python diff chunks opening on a definition: {format_openings(openings)}")
    c = history["counts"]
    return {"repo": bundle.stem, "commits": c.get("commits", 0), "seconds": seconds, "git_log": git_s,
            "malformed_dates": c.get("malformed_dates", 0), "missing": c.get("missing_objects", 0),
            "not_utf8": c.get("not_utf8_diffs", 0),
            "lfs": chunks["diff_filtered"].get("lfs_pointer", 0) + chunks["snapshot_filtered"].get("lfs_pointer", 0),
            "snapshot_filtered": sum(chunks["snapshot_filtered"].values()), "fallback_commits": chunks["fallback_commits"],
            "py_defs": openings["all"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", choices=NAMES, default=list(NAMES), help="bundles to run [all five]")
    p.add_argument("--max-commits", type=int, default=None, help="the N oldest commits of each [all]")
    p.add_argument("--work-dir", type=Path, default=None, help="where to clone and write [a temp dir]")
    args = p.parse_args(argv)
    missing = [n for n in args.only if not (BUNDLES / f"{n}.bundle").is_file()]
    if missing:
        print(f"error: no bundle for {', '.join(missing)} in {BUNDLES}", file=sys.stderr)
        return 2
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-real-"))
    rows = [run_one(BUNDLES / f"{n}.bundle", work, args.max_commits) for n in args.only]
    head = ("repo", "commits", "seconds", "git log -p", "ratio", "bad dates", "missing", "not utf8", "lfs",
            "snap filtered", "fallback", "py def open")
    print("\n" + "  ".join(f"{h:>11}" for h in head))
    for r in rows:
        cells = (r["repo"], r["commits"], f"{r['seconds']:.1f}", f"{r['git_log']:.2f}",
                 f"{r['seconds'] / r['git_log']:.0f}x", r["malformed_dates"], r["missing"], r["not_utf8"], r["lfs"],
                 r["snapshot_filtered"], r["fallback_commits"],
                 f"{100 * r['py_defs'][0] / r['py_defs'][1]:.1f}%" if r["py_defs"][1] else "-")
        print("  ".join(f"{c:>11}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
