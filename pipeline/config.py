"""Settings of comprehensive_pipeline.py: the dataclass, the YAML file, their checks (`core.settings`).

    cfg = PipelineConfig(**load_config("pipeline.yaml"))   # then command-line flags on top
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from chunking.snapshots import head_commit
from core import settings
from core.config import PATH, RUN, at_least, check_fields, load_yaml, setting, settings_of, shared, typed
from core.git_runner import Git, GitError
from core.io import UserError
from core.repository import is_url, open_repository, repo_name
from core.schema import SOURCES_DIR
from core.splits import DEFAULT_RATIOS
from dataset_builder import DatasetConfig
from scrapers.git_scraper_rich import ScrapeConfig
from semantic_chunker import ChunkConfig
from tokenizers_.file_snapshot_tokenizer import TokenizeConfig

# Bumped when a stage's output format changes, so that finished stages from an older version rerun.
PIPELINE_VERSION = 3


@dataclass
class PipelineConfig:
    """The one command's settings: the stages' own fields taken by reference (`shared`: default, help and
    check declared once, in the stage's config), and the few that only the orchestrator has.
    Flags (`parse_args` in comprehensive_pipeline.py), YAML keys and checks come from these fields."""

    repo: str = shared(ScrapeConfig, "repo", flag="",
                       help="git repository to read: a path, a subdirectory or .git of one, a bare repository or "
                            "a URL; repeat it to build one dataset from several (docs/multi_repo.md)")
    output_dir: str | None = setting(None, "where outputs go [data/<repo-name>; several repositories: data/multi "
                                     "or data/<stem of --repos-file>]", role=PATH)
    model: str = shared(TokenizeConfig, "model")
    tokenizer_fallback: bool = setting(True, "fail instead of training a tokenizer on the repository when --model "
                                       "cannot be loaded", flag="--no-tokenizer-fallback")
    fallback_vocab_size: int = shared(TokenizeConfig, "fallback_vocab_size")
    fallback_sample_mb: float = setting(32.0, "MB of history text the fallback tokenizer is trained on, at most")
    sequence_length: int = shared(TokenizeConfig, "sequence_length")
    overlap: int = shared(TokenizeConfig, "overlap")
    max_chunk_tokens: int = shared(ChunkConfig, "max_chunk_tokens")
    min_chunk_tokens: int = shared(ChunkConfig, "min_chunk_tokens")
    filter_binary: bool = shared(ChunkConfig, "filter_binary")
    filter_build_artifacts: bool = shared(ChunkConfig, "filter_build_artifacts")
    filter_lock_files: bool = shared(ChunkConfig, "filter_lock_files")
    filter_generated: bool = shared(ChunkConfig, "filter_generated")
    max_file_bytes: int = shared(ChunkConfig, "max_file_bytes")
    dedup: bool = shared(ChunkConfig, "dedup")
    deleted_content: bool = shared(ChunkConfig, "deleted_content")
    function_context: bool = shared(ChunkConfig, "function_context")
    formatting_changes: bool = shared(ChunkConfig, "formatting_changes")
    pin_bumps: bool = shared(ChunkConfig, "pin_bumps")
    near_dedup: bool = shared(DatasetConfig, "near_dedup")
    scrape_jobs: int | None = shared(ScrapeConfig, "jobs")
    chunk_workers: int | None = shared(ChunkConfig, "workers")
    context_window: int = shared(DatasetConfig, "context_window")
    target_window: int = shared(DatasetConfig, "target_window")
    stride: int | None = shared(DatasetConfig, "stride")
    inline_ids: bool = shared(DatasetConfig, "inline_ids")
    train_ratio: float = setting(DEFAULT_RATIOS[0], "share of tokens in train")
    val_ratio: float = setting(DEFAULT_RATIOS[1], "share of tokens in val")
    test_ratio: float = setting(DEFAULT_RATIOS[2], "share of tokens in test")
    seed: int = shared(DatasetConfig, "seed")
    revs: list[str] = shared(ScrapeConfig, "revs")
    since: str | None = shared(ScrapeConfig, "since")
    until: str | None = shared(ScrapeConfig, "until")
    max_commits: int | None = shared(ScrapeConfig, "max_commits")
    max_diff_bytes: int = shared(ScrapeConfig, "max_diff_bytes")
    snapshot_at: str = shared(ChunkConfig, "snapshot_at")
    redact: bool = shared(ScrapeConfig, "redact")
    force: bool = setting(False, "redo every stage even if it already finished", role=RUN)
    train: bool = setting(False, "train a model on the splits when done", role=RUN)
    training_config: str = setting("training_config.yaml", "config for --train", role=RUN)
    progress: bool = shared(ScrapeConfig, "progress")
    # Several repositories into one dataset (multirepo/): a non-empty `repos` or a `repos_file` turns it on.
    repos: list[str] = setting(help="several repositories (--repo repeated)", role=PATH, flag="", factory=list)
    repos_file: str | None = setting(None, "file listing repositories, one per line (# comments): one dataset from "
                                     "all of them", role=PATH)
    ray_address: str | None = setting(None, "several repositories: join this Ray cluster instead of starting Ray "
                                      "here (repositories and --output-dir must be readable by every worker)",
                                      role=RUN)
    workers: int | None = setting(None, "several repositories: how many are built at a time [every core; 1 builds "
                                  "them one after another in this process, without Ray]", check=at_least(1), role=RUN)
    report: bool = setting(True, "do not write report.html and report/*.png after stage 4", role=RUN)
    export: list[str] = setting(help="also export the splits as: hf, nanogpt (comma-separated) [none]", role=RUN,
                                factory=list, action="store", type=lambda v: v.split(","))

    @property
    def ratios(self) -> tuple[float, float, float]:
        return (self.train_ratio, self.val_ratio, self.test_ratio)


FIELDS = {f.name for f in dataclasses.fields(PipelineConfig)}


def stage_config(cls: type, cfg: PipelineConfig, skip: tuple[str, ...] = (), **given):
    """Stage config `cls` for this run: each of its fields that the one command has (by its `pipeline`
    name) from `cfg`, the rest from `given` or its default; never copied field by field by hand."""
    values = {}
    for f in settings_of(cls):
        name = f.metadata["pipeline"] or f.name
        if f.name not in given and f.name not in skip and name in FIELDS and f.metadata["role"] != PATH:
            values[f.name] = getattr(cfg, name)
    return cls(**values, **given)


def load_config(path: str | None) -> dict:
    """Settings from a YAML file; an unknown key, or a value of the wrong type, is an error that names it."""
    if not path:
        return {}
    data = load_yaml(path, FIELDS)
    return {k: typed(PipelineConfig, k, v, f"--config {path}: {k}") for k, v in data.items()}


def check_settings(cfg: PipelineConfig) -> None:
    """Every setting checked once, before stage 1: a bad one is a UserError naming its flag."""
    for f in dataclasses.fields(cfg):
        typed(PipelineConfig, f.name, getattr(cfg, f.name), "--" + f.name.replace("_", "-"))
    check_fields(cfg)
    settings.ratios(cfg.ratios)
    settings.sequence_windows(cfg.sequence_length, cfg.overlap)
    settings.chunk_bounds(cfg.max_chunk_tokens, cfg.min_chunk_tokens)
    settings.dataset_windows(cfg.context_window, cfg.target_window, cfg.stride)
    settings.fallback_tokenizer(cfg.fallback_vocab_size, cfg.fallback_sample_mb)
    settings.snapshot_at(cfg.snapshot_at)


def validate(cfg: PipelineConfig) -> tuple[Path, Path]:
    """Check every setting, then resolve the repository and the output directory: `(repo, out)`."""
    check_settings(cfg)
    out = Path(cfg.output_dir) if cfg.output_dir else None
    if is_url(cfg.repo):  # cloned into the output directory, and fetched again on the next run
        out = prepare_output_dir(out or Path("data") / repo_name(cfg.repo))
        repo = open_repository(cfg.repo, cache=out / SOURCES_DIR)
    else:
        repo = open_repository(cfg.repo)
    if cfg.snapshot_at == "head":
        head_commit(repo)  # before the output directory is made: a bad setting writes nothing
    return repo, prepare_output_dir(out or Path("data") / repo_name(str(repo)))


def prepare_output_dir(out: Path) -> Path:
    """Create the output directory and make sure files can be written in it; a UserError if not."""
    flag = "--output-dir " + str(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag}: exists and is not a directory; pick another --output-dir")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"{flag}: cannot write there ({e.strerror or e}); pick another --output-dir") from None
    return out


def repo_fingerprint(repo: Path) -> str:
    """Every ref and what it points at: the scrape is redone when any of them moves."""
    git = Git(repo)
    try:
        refs = git.run("for-each-ref", "--format=%(objectname) %(refname)").decode("utf-8", "surrogateescape")
    except (GitError, FileNotFoundError):
        return ""  # not a repository: the scraper says so in one line
    return refs + "HEAD " + (git.try_run("rev-parse", "-q", "--verify", "HEAD") or "") + "\n"
