"""Benchmark stage 2 against its target: scraper time + one raw `encode_batch` over the chunk texts.

    python3 bench/bench_chunker.py --repo PATH [--work-dir /tmp/bench_chunker] [--tokenizer DIR] [--no-function-complexity] [--workers N]
    python3 bench/bench_chunker.py             # builds a repository with bench/make_bench_repo.py

Scrapes the repository with stage 1 (timed), chunks it with stage 2 (timed, snapshots at the
cut-off included), then encodes every chunk text once with the raw Rust tokenizer
(`encode_batch_fast` in batches of 2048 texts, the floor of any token counting). Without --tokenizer, a 16k byte-level
BPE is trained on the first 8 MB of diffs (the pipeline's offline fallback), untimed.
Prints each time, the ratio stage 2 / (scrape + encode) (target: at most 1), peak RSS, and the
share of Python diff chunks that open on a definition (issue 13's target: at least 60 %).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import semantic_chunker as sc
from core.io import iter_commit_records
from scrapers.git_scraper_rich import ScrapeConfig, scrape
from core.tokenizer import load_tokenizer, train_fallback_tokenizer

from make_bench_repo import ensure_repo  # bench/ is the script's directory

ROOT = Path(__file__).resolve().parent.parent
RAW_BATCH = 2048
_DEFINITION = re.compile(r"(?:async\s+def|def|class)\s|@")  # a Python def, class or decorator line


def raw_encode_seconds(chunks: Path, tok_dir: Path) -> tuple[float, int, int]:
    from tokenizers import Tokenizer

    texts = [json.loads(line)["text"] for line in open(chunks, encoding="utf-8")]
    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    start = time.perf_counter()
    n = 0
    for i in range(0, len(texts), RAW_BATCH):  # batches, so the encodings of 100 MB are not all held at once
        n += sum(len(e.ids) for e in tok.encode_batch_fast(texts[i:i + RAW_BATCH], add_special_tokens=False))
    return time.perf_counter() - start, n, len(texts)


def definition_openings(chunks: Path, cutoff: dict | None) -> dict[str, tuple[int, int]]:
    """(opening on a definition, all) of the Python diff chunks, per split and in all.

    A chunk opens on a definition when the first line after its first `@@` header, less the diff
    column and indentation, is a `def`, `async def`, `class` or decorator line; a chunk with no hunk
    (a deleted file's title) does not. Splits by the stage's train cut-off (`stats["cutoff"]`).
    """
    out = {s: [0, 0] for s in ("train", "val", "test", "all")}
    with open(chunks, encoding="utf-8") as fh:
        for line in fh:
            c = json.loads(line)
            if c["kind"] != "diff" or c["language"] != "python":
                continue
            lines = c["text"].split("\n")
            at = next((i for i, l in enumerate(lines) if l.startswith("@@")), len(lines))
            opens = at + 1 < len(lines) and _DEFINITION.match(lines[at + 1][1:].lstrip()) is not None
            split = ("train" if cutoff is None or c["order"] <= cutoff["train_last_order"]
                     else "val" if c["order"] <= cutoff["val_last_order"] else "test")
            for s in (split, "all"):
                out[s][0] += opens
                out[s][1] += 1
    return {s: (a, n) for s, (a, n) in out.items()}


def format_openings(openings: dict[str, tuple[int, int]]) -> str:
    return "  ".join(f"{s} {100 * a / n:.1f} % of {n:,}" if n else f"{s} -" for s, (a, n) in openings.items())


def history_tokenizer(history: Path, tok_dir: Path):
    """The tokenizer in `tok_dir`; a byte-level BPE trained there on the first 8 MB of `history`'s diffs when absent."""
    tok_dir = Path(tok_dir)
    if not tok_dir.exists():
        def sample():
            size = 0
            for rec in iter_commit_records(history):
                for f in rec["files"]:
                    if size < 8e6 and f.get("diff"):
                        size += len(f["diff"])
                        yield f["diff"]
        train_fallback_tokenizer(sample(), tok_dir)
    return load_tokenizer(str(tok_dir))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Benchmark stage 2 against scrape + raw encode_batch.")
    p.add_argument("--repo", type=Path, default=None, help="repository to measure [build one]")
    p.add_argument("--commits", type=int, default=600, help="commits of the generated repository")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/bench_chunker"), help="where to write")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer directory [train a fallback BPE]")
    p.add_argument("--max-chunk-tokens", type=int, default=512, help="stage 2 budget")
    p.add_argument("--min-chunk-tokens", type=int, default=64, help="stage 2 minimum")
    p.add_argument("--no-function-complexity", action="store_true",
                   help="scrape without per-function complexity, as the scraper's flag of that name")
    p.add_argument("--workers", type=int, default=None,
                   help="stage 2 worker processes, as its --workers [its default: one per CPU, at most 4]")
    args = p.parse_args(argv)
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    repo = args.repo or ensure_repo(work / "repo", args.commits)
    history = work / "git_history_rich.jsonl"
    start = time.perf_counter()
    scrape(ScrapeConfig(repo=str(repo), output=str(history), output_json=None, progress=False,
                        function_complexity=not args.no_function_complexity))
    scrape_s = time.perf_counter() - start

    tok_dir = args.tokenizer or work / "tokenizer"
    tok = history_tokenizer(history, tok_dir)

    out = work / "chunks_semantic.jsonl"
    cfg = sc.ChunkConfig(repo=str(repo), commits=str(history), output=str(out), progress=False,
                         max_chunk_tokens=args.max_chunk_tokens, min_chunk_tokens=args.min_chunk_tokens,
                         workers=args.workers)
    start = time.perf_counter()
    stats = sc.run(cfg, tokenizer=tok)
    chunk_s = time.perf_counter() - start
    enc_s, n_tokens, n_chunks = raw_encode_seconds(out, tok_dir)

    n_commits, n_changes = stats["commits"], stats["file_changes_chunked"]
    print(f"repository: {repo}  ({n_commits} commits, {n_changes:,} file changes chunked, "
          f"{n_chunks:,} chunks, {n_tokens:,} tokens)")
    print(f"scrape (stage 1):             {scrape_s:8.2f} s")
    print(f"chunk (stage 2):              {chunk_s:8.2f} s  ({cfg.workers or sc.default_workers()} workers)")
    print(f"raw encode_batch over chunks: {enc_s:8.2f} s")
    print(f"ratio: stage 2 / (scrape + raw encode) = {chunk_s / (scrape_s + enc_s):.2f} (target <= 1)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
          f"largest child process (git, workers) {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")
    print(f"Python diff chunks opening on a definition: {format_openings(definition_openings(out, stats['cutoff']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
