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
import dataclasses
import sys

from core.config import add_flags
from core.io import UserError, run_main, setup_logging
from pipeline.config import PipelineConfig, load_config
from pipeline.orchestrator import run_pipeline

PIPELINE_FIELDS = {f.name: f for f in dataclasses.fields(PipelineConfig)}


def parse_args(argv: list[str] | None = None) -> PipelineConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML file with any of the settings below (underscored names); flags win")
    p.add_argument("--repo", action="append", help=PIPELINE_FIELDS["repo"].metadata["help"] + " [.]")
    # Defaults are None here so that only flags the user typed override the --config file.
    add_flags(p, PipelineConfig, unset_default=True)
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
