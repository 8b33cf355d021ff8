"""Benchmark the whole pipeline against its floor: `git log --all -p --cc` plus one raw `encode_batch`.

    python3 bench/bench_pipeline.py                                 # builds a repository with bench/make_bench_repo.py
    python3 bench/bench_pipeline.py --repo A --repo B --rounds 3    # or measures yours, one row each

The floor is what no implementation can avoid: reading the history once (`git log --all -p --cc`)
and tokenizing the chunk texts once (the Rust tokenizer's `encode_batch_fast`), both timed here,
on this machine, in this run. The pipeline runs offline with the fallback tokenizer (trained on a
sample of the history), every stage forced, in a forked process of its own (so that its peak RSS
is its own); floor and pipeline alternate for `--rounds` rounds and the medians are printed.
`report` is the HTML report's step after stage 4, `other` the rest of the run (the summary, exports).
Then the same command again on the finished output (nothing changed: every step is skipped).

Rerun after new commits (`--new-commits N`, default 20; 0: not measured): the repository is cloned
(`--single-branch --no-tags`: its default branch) into the work directory and reset N first-parent
commits back; the first run there is timed (every stage forced), then the clone is reset to its tip
again and the rerun is timed (the pipeline keeps what it can); rounds alternate with the other
repositories'. Both use one fixed tokenizer (the fallback trained above, as `--model DIR`, as a user's
hub tokenizer would be): the fallback tokenizer itself is trained on the train period, which moves
with new commits, and a new tokenizer means every chunk is measured again. Once per repository the
rerun's outputs are compared byte for byte with a fresh run on the whole clone.

Parses per blob version: every whole-blob tree-sitter parse of the pipeline (stage 1's function
complexity and stage 2's widening, in whichever process they run) is logged by content, and the
count is divided by the distinct contents parsed; parses of a hunk's own lines (stage 2, when
no whole-file tree is at hand) and of snapshot files are counted apart, as `fragments`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from make_bench_repo import ensure_repo  # noqa: E402  (bench/ is the script's directory)


def git_log_seconds(repo: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(["git", "-C", str(repo), "log", "--all", "-p", "--cc", "--no-color"], stdout=subprocess.PIPE)
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


def _log_parses(log: Path) -> None:
    """Log each whole-blob parse (`reparse`) and each fragment parse (`definitions`) to `log`, one line
    each, from this process and the workers it forks later (an O_APPEND write of one line is atomic)."""
    import core.parsers as parsers
    import chunking.units as units
    import scrapers.complexity as complexity

    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    reparse, definitions = parsers.reparse, parsers.definitions

    def logged_reparse(lang, content, *args, **kwargs):
        os.write(fd, b"blob " + hashlib.sha1(content).hexdigest().encode() + b"\n")
        return reparse(lang, content, *args, **kwargs)

    def logged_definitions(text, lang):
        os.write(fd, b"fragment\n")
        return definitions(text, lang)

    parsers.reparse = complexity.reparse = logged_reparse
    units.definitions = logged_definitions


def _run_pipeline(repo: str, out: str, force: bool, log: str, model: str) -> tuple[float, list[tuple]]:
    """The pipeline's seconds and its stage reports (name, seconds, skipped, note)."""
    from comprehensive_pipeline import parse_args
    from core.io import setup_logging
    from pipeline.orchestrator import Pipeline
    from pipeline.state import OutputLock

    _log_parses(Path(log))
    cfg = parse_args(["--repo", repo, "--output-dir", out, "--model", model, "--no-progress"]
                     + (["--force"] if force else []))
    setup_logging()
    with OutputLock(Path(out)):
        pipeline = Pipeline(cfg, Path(repo).resolve(), Path(out))
        start = time.perf_counter()
        pipeline.run()
        total = time.perf_counter() - start
    return total, [(r.stage.strip(), r.seconds, r.skipped, r.note) for r in pipeline.reports]


def pipeline_run(repo: Path, out: Path, force: bool, log: Path, model: str = "bench/offline-fallback"
                 ) -> tuple[float, list, int]:
    """`_run_pipeline` in a forked process (not a pool's daemon: the stages fork workers of their own),
    with the peak RSS in KB of it and its workers (`wait4`)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into the caller's code
        os.close(r)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the pipeline's summary: not in the benchmark's table
        code = 1
        try:
            answer = _run_pipeline(str(repo), str(out), force, str(log), model)
            code = 0
        except BaseException as e:  # noqa: BLE001 (told to the parent, which raises it)
            answer = f"{type(e).__name__}: {e}"
        finally:
            with os.fdopen(w, "wb") as f:
                pickle.dump(answer, f)
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = pickle.load(f)
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"error: the pipeline failed on {repo}: {answer}")
    return (*answer, usage.ru_maxrss)


def parse_counts(log: Path) -> tuple[int, int, int]:
    """(whole-blob parses, distinct blob contents parsed, fragment parses) logged in `log`."""
    lines = log.read_bytes().splitlines() if log.exists() else []
    blobs = [line for line in lines if line.startswith(b"blob ")]
    return len(blobs), len(set(blobs)), len(lines) - len(blobs)


def measure(repo: Path, work: Path, rounds: int) -> dict:
    out = work / "out"
    floors, runs = [], []
    for k in range(rounds):  # floor and pipeline alternate, so that both see the same load
        log = work / f"parses-{k}.log"
        log.unlink(missing_ok=True)
        git_s, git_bytes = git_log_seconds(repo)
        runs.append(pipeline_run(repo, out, True, log))
        with get_context("fork").Pool(1) as child:  # its texts stay out of this process, which later runs fork
            enc_s, n_tokens = child.apply(encode_seconds, (out / "chunks_semantic.jsonl", out / "tokenizer"))
        floors.append((git_s, enc_s))
    rerun, rerun_stages, _ = pipeline_run(repo, out, False, work / "parses-rerun.log")
    parses, distinct, fragments = parse_counts(work / "parses-0.log")
    stages = {}
    for total, reports, _ in runs:
        for name, seconds, *_ in reports:
            stages.setdefault(name, []).append(seconds)
        stages.setdefault("other", []).append(total - sum(r[1] for r in reports))  # the summary, the exports
    return {"repo": repo.name, "git_mb": git_bytes / 1e6, "tokens": n_tokens,
            "pipeline": statistics.median(r[0] for r in runs),
            "git": statistics.median(f[0] for f in floors), "encode": statistics.median(f[1] for f in floors),
            "floor": statistics.median(f[0] + f[1] for f in floors),
            "stages": {name: statistics.median(v) for name, v in stages.items()},
            "peak_mb": max(r[2] for r in runs) / 1024, "parses": parses, "blob_versions": distinct,
            "fragments": fragments, "rerun": rerun, "rerun_skipped": all(r[2] for r in rerun_stages)}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def outputs_of(out: Path) -> dict[str, bytes]:
    """Every output file's bytes, without the lock and the stat cache (this machine's, not output)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (".pipeline.lock", ".pipeline_stat.json")}


class NewCommits:
    """`repo`'s default branch cloned into `work`, for a first run N commits back and a rerun at its tip."""

    def __init__(self, repo: Path, work: Path, n: int, tokenizer: Path | None):
        self.clone, self.work, self.n = work / "clone", work, n
        if not self.clone.exists():
            subprocess.run(["git", "clone", "-q", "--no-local", "--single-branch", "--no-tags", str(repo),
                            str(self.clone)], check=True)
            git(self.clone, "remote", "remove", "origin")
        self.tip = git(self.clone, "rev-parse", "HEAD")
        self.model = str(work / "tokenizer")
        if tokenizer is None:  # a run, not timed, that trains the fallback tokenizer (and warms the caches)
            warm = work / "out-warm"
            git(self.clone, "reset", "-q", "--hard", f"{self.tip}~{self.n}")
            pipeline_run(self.clone, warm, True, work / "parses-warm.log")
            git(self.clone, "reset", "-q", "--hard", self.tip)
            tokenizer = warm / "tokenizer"
        shutil.rmtree(self.model, ignore_errors=True)
        shutil.copytree(tokenizer, self.model)
        self.rounds: list[tuple[float, float, list]] = []  # (first run, rerun, the rerun's stage reports)
        self.first_reports: list[float] = []  # the report step's seconds in each first run
        self.identical: bool | None = None

    def round(self, k: int) -> None:
        out = self.work / f"out-{k}"
        shutil.rmtree(out, ignore_errors=True)
        git(self.clone, "reset", "-q", "--hard", f"{self.tip}~{self.n}")
        first, first_stages, _ = pipeline_run(self.clone, out, True, self.work / "parses-first.log", self.model)
        self.first_reports += [seconds for name, seconds, *_ in first_stages if name == "report"]
        git(self.clone, "reset", "-q", "--hard", self.tip)
        rerun, stages, _ = pipeline_run(self.clone, out, False, self.work / "parses-rerun.log", self.model)
        self.rounds.append((first, rerun, stages))
        if self.identical is None:  # once: the rerun's files against a fresh run's on the whole clone
            fresh = self.work / "out-fresh"
            shutil.rmtree(fresh, ignore_errors=True)
            pipeline_run(self.clone, fresh, True, self.work / "parses-fresh.log", self.model)
            self.identical = outputs_of(out) == outputs_of(fresh)
            shutil.rmtree(fresh)
        shutil.rmtree(out)

    def row(self) -> dict:
        first = statistics.median(r[0] for r in self.rounds)
        rerun = statistics.median(r[1] for r in self.rounds)
        median_round = sorted(self.rounds, key=lambda r: r[1])[len(self.rounds) // 2]
        return {"first": first, "rerun": rerun, "share": rerun / first, "identical": self.identical,
                "rounds": [(a, b) for a, b, _ in self.rounds], "stages": median_round[2],
                "first_report": statistics.median(self.first_reports),
                "new_commits": len(git(self.clone, "rev-list", f"{self.tip}~{self.n}..{self.tip}").split())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, action="append", default=[], help="repository to measure (repeatable) [build one]")
    p.add_argument("--commits", type=int, default=600, help="commits of the generated repository")
    p.add_argument("--rounds", type=int, default=3, help="alternating floor/pipeline rounds; medians are printed")
    p.add_argument("--work-dir", type=Path, default=None, help="where to build and write [a temp dir]")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--new-commits", type=int, default=20,
                   help="also time a rerun after this many new first-parent commits (0: do not)")
    p.add_argument("--new-commits-only", action="store_true", help="time only the rerun after new commits")
    args = p.parse_args(argv)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    repos = args.repo or [ensure_repo(work / "repo", args.commits)]
    rows = []
    for repo in repos:
        (work / repo.name).mkdir(parents=True, exist_ok=True)
        if args.new_commits_only:
            rows.append({"repo": repo.name})
            continue
        row = measure(repo, work / repo.name, args.rounds)
        rows.append(row)
        print(f"\n{row['repo']}: {row['git_mb']:.0f} MB of `git log --all -p --cc`, {row['tokens']:,} chunk tokens, "
              f"medians of {args.rounds}")
        for name, seconds in row["stages"].items():
            print(f"  {name:<12}{seconds:>9.2f}s {seconds / row['pipeline']:>5.0%}")
        print(f"  {'pipeline':<12}{row['pipeline']:>9.2f}s   floor {row['floor']:.2f}s (git {row['git']:.2f}s + "
              f"encode_batch {row['encode']:.2f}s)   ratio {row['pipeline'] / row['floor']:.2f}x")
        print(f"  parses per blob version {row['parses'] / max(1, row['blob_versions']):.2f} ({row['parses']:,} parses "
              f"of {row['blob_versions']:,} blob versions; {row['fragments']:,} fragment parses)   "
              f"peak RSS {row['peak_mb']:.0f} MB   unchanged rerun {row['rerun']:.2f}s"
              + ("" if row["rerun_skipped"] else " (NOT all stages skipped)"))
    if args.new_commits:
        reruns = [NewCommits(repo, work / repo.name / "new-commits", args.new_commits,
                             None if args.new_commits_only else work / repo.name / "out" / "tokenizer")
                  for repo in repos]
        for k in range(args.rounds):  # the repositories alternate, round by round
            for r in reruns:
                r.round(k)
        for row, r in zip(rows, reruns):
            row["new_commits"] = new = r.row()
            print(f"\n{row['repo']}: rerun after {args.new_commits} new commits on the default branch "
                  f"({new['new_commits']} commits with their merged branches), medians of {args.rounds}: "
                  f"first run {new['first']:.2f}s, rerun {new['rerun']:.2f}s = {new['share']:.1%} of the first run; "
                  f"outputs identical to a fresh run: {'yes' if new['identical'] else 'NO'}")
            print("  rounds (first, rerun): " + ", ".join(f"({a:.1f}, {b:.1f})" for a, b in new["rounds"])
                  + f"; the first run's report {new['first_report']:.2f}s (median)")
            for name, seconds, skipped, note in new["stages"]:
                print(f"  {name:<12}{'skipped' if skipped else f'{seconds:.2f}s':>9}  {note}")
    if len(rows) > 1 and not args.new_commits_only:
        print(f"\n{'repository':<12}{'pipeline':>10}{'floor':>8}{'ratio':>7}{'parses/blob':>13}{'peak MB':>9}{'rerun':>8}")
        for r in rows:
            print(f"{r['repo']:<12}{r['pipeline']:>10.1f}{r['floor']:>8.1f}{r['pipeline'] / r['floor']:>6.2f}x"
                  f"{r['parses'] / max(1, r['blob_versions']):>13.2f}{r['peak_mb']:>9.0f}{r['rerun']:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
