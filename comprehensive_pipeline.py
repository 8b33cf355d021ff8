"""One command from a git repository to training-ready splits.

    python3 comprehensive_pipeline.py [--repo PATH] [--output-dir data/<repo-name>] [--config FILE]

Runs the four stages in this process (the orchestrator, `pipeline/orchestrator.py`), checks each
one's output before the next starts, and ends with a summary and the command that trains on the
result. Several repositories (`--repo A --repo B`, `--repos-file LIST`) are one dataset:
`multirepo/` runs the same orchestrator on each as a Ray task and merges the splits
(docs/multi_repo.md). This file parses the flags, calls one of the two, and runs the trainer on
`--train`.
"""

from __future__ import annotations

import argparse
import sys

from core.io import UserError, run_main, setup_logging
from pipeline.config import PipelineConfig, load_config
from pipeline.orchestrator import run_pipeline


def parse_args(argv: list[str] | None = None) -> PipelineConfig:
    d = PipelineConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def add(flag: str, **kw) -> None:
        # Defaults are None here so that only flags the user typed override the --config file.
        p.add_argument(flag, default=None, **kw)

    add("--config", help="YAML file with any of the settings below (underscored names); flags win")
    add("--repo", action="append",
        help=f"git repository to read [{d.repo}]; repeat it to build one dataset from several (docs/multi_repo.md)")
    add("--repos-file", help="file listing repositories, one per line (# comments): one dataset from all of them")
    add("--output-dir", help="where outputs go [data/<repo-name>; several repositories: data/multi "
                             "or data/<stem of --repos-file>]")
    add("--model", help=f"tokenizer: hub name, local directory or tokenizer.json [{d.model}]")
    add("--no-tokenizer-fallback", dest="tokenizer_fallback", action="store_const", const=False,
        help="fail instead of training a tokenizer on the repository when --model cannot be loaded")
    add("--fallback-vocab-size", type=int, help=f"vocab size of the fallback tokenizer [{d.fallback_vocab_size}]")
    add("--fallback-sample-mb", type=float, help=f"MB of history text the fallback is trained on [{d.fallback_sample_mb}]")
    add("--sequence-length", type=int, help=f"tokens per stage-3 sequence [{d.sequence_length}]")
    add("--overlap", type=int, help=f"overlap between stage-3 sequences [{d.overlap}]")
    add("--max-chunk-tokens", type=int, help=f"largest chunk [{d.max_chunk_tokens}]")
    add("--min-chunk-tokens", type=int, help=f"smallest chunk, merged with neighbours below it [{d.min_chunk_tokens}]")
    for name, what in (("binary", "binary files"), ("build-artifacts", "build outputs and vendored trees"),
                       ("lock-files", "lock files"), ("generated", "generated or minified files")):
        add(f"--no-{name}", dest=f"filter_{name.replace('-', '_')}", action="store_const", const=False,
            help=f"stage 2: keep {what} (left out by default)")
    add("--max-file-bytes", type=int, help=f"stage 2: leave out larger file changes and files, 0: no bound "
        f"[{d.max_file_bytes}]")
    add("--no-dedup", dest="dedup", action="store_const", const=False, help="stage 2: keep exact duplicate chunks")
    add("--deleted-content", action="store_const", const=True,
        help="stage 2: a deleted file's chunk shows its old content [its title line alone]")
    add("--no-function-context", dest="function_context", action="store_const", const=False,
        help="stage 2: keep git's 3 context lines instead of widening a hunk to its function")
    add("--keep-formatting-changes", dest="formatting_changes", action="store_const", const=True,
        help="stage 2: keep whitespace-only file changes (left out by default)")
    add("--keep-pin-bumps", dest="pin_bumps", action="store_const", const=True,
        help="stage 2: keep YAML changes that only move version pins, CI action refs or pre-commit revs "
        "(left out by default)")
    add("--no-near-dedup", dest="near_dedup", action="store_const", const=False,
        help="stage 4: keep train chunks that are near-duplicates of earlier train chunks")
    add("--scrape-jobs", type=int, help="stage 1 processes for function complexity (its --jobs); the output is the "
        "same for any number [one per core beyond the first, at most 4; 0: none]")
    add("--chunk-workers", type=int, help="stage 2 processes (its --workers); the output is the same for any number "
        "[one per core, at most 4; 1: none]")
    add("--context-window", type=int, help=f"context tokens per example [{d.context_window}]")
    add("--target-window", type=int, help=f"target tokens per example [{d.target_window}]")
    add("--stride", type=int, help="tokens between example targets, 1 to --target-window [--target-window]")
    add("--inline-ids", action="store_const", const=True,
        help="write each example's ids into the split JSON instead of offsets into its .tokens.npy")
    add("--train-ratio", type=float, help=f"share of tokens in train [{d.train_ratio}]")
    add("--val-ratio", type=float, help=f"share of tokens in val [{d.val_ratio}]")
    add("--test-ratio", type=float, help=f"share of tokens in test [{d.test_ratio}]")
    add("--seed", type=int, help=f"recorded in the manifest and passed to training [{d.seed}]")
    add("--rev", dest="revs", action="append", help="branch, tag or rev range to read (repeatable) [all refs]")
    add("--since", help="only commits after this date (git's --since)")
    add("--until", help="only commits before this date (git's --until)")
    add("--max-commits", type=int, help="read at most this many commits")
    add("--max-diff-bytes", type=int, help="per-file diff text bound [the scraper's default]")
    add("--snapshot-at", choices=["cutoff", "head", "none"],
        help=f"file snapshots at the train cut-off, at HEAD (leaks later code into train), or none [{d.snapshot_at}]")
    add("--no-redact", dest="redact", action="store_const", const=False, help="keep secrets (not recommended)")
    add("--force", action="store_const", const=True, help="redo every stage even if it already finished")
    add("--train", action="store_const", const=True, help="train a model on the splits when done")
    add("--training-config", help=f"config for --train [{d.training_config}]")
    add("--workers", type=int, help="several repositories: how many are built at a time [every core; "
                                    "1 builds them one after another in this process, without Ray]")
    add("--ray-address", help="several repositories: join this Ray cluster instead of starting Ray here "
                              "(repositories and --output-dir must be readable by every worker)")
    add("--no-report", dest="report", action="store_const", const=False,
        help="do not write report.html and report/*.png after stage 4")
    add("--export", type=lambda v: v.split(","), help="also export the splits as: hf, nanogpt (comma-separated) [none]")
    add("--no-progress", dest="progress", action="store_const", const=False, help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    values = load_config(args.config)
    flags = {k: v for k, v in vars(args).items() if v is not None and k not in ("config", "verbose")}
    if "repo" in flags:  # one --repo alone is today's single-repository run; more, or with a list, the multi mode
        repos = flags.pop("repo")
        values.pop("repos", None)
        several = len(repos) > 1 or flags.get("repos_file") or values.get("repos_file")
        flags.update({"repos": repos} if several else {"repo": repos[0]})
    values.update(flags)
    try:
        cfg = PipelineConfig(**values)
    except TypeError as e:
        raise UserError(f"bad setting: {e}") from None
    return cfg


def main(argv: list[str] | None = None) -> int:
    def go() -> int:
        cfg = parse_args(argv)
        if cfg.repos or cfg.repos_file:
            from multirepo.runner import run_multi

            return run_multi(cfg, train)
        run_pipeline(cfg, train)
        return 0

    return run_main(go)


def train(argv: list[str]) -> int:
    """`--train`: the trainer's command line, in this process."""
    from training.model_trainer_unified import main as train_main

    return train_main(argv)


if __name__ == "__main__":
    sys.exit(main())
