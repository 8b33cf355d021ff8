"""Settings of comprehensive_pipeline.py: the dataclass, the YAML file, their checks.

    cfg = PipelineConfig(**load_config("pipeline.yaml"))   # then command-line flags on top
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from chunking.snapshots import SNAPSHOT_AT, head_commit
from pipeline.io import UserError
from pipeline.splits import DEFAULT_RATIOS, check_ratios
from scrapers.git_runner import Git, GitError, resolve_repo
from tokenizers_.loading import DEFAULT_MODEL, FALLBACK_VOCAB_SIZE

MIN_FALLBACK_VOCAB = 256 + 2  # the byte alphabet and the two special tokens: below it BPE silently gives 258
MIN_CHUNK_BUDGET = 16         # the chunker's smallest --max-chunk-tokens

# Bumped when a stage's output format changes, so that finished stages from an older version rerun.
PIPELINE_VERSION = 2


@dataclass
class PipelineConfig:
    repo: str = "."
    output_dir: str | None = None            # default: data/<repo-name>
    model: str = DEFAULT_MODEL                # tokenizer: hub name, directory or tokenizer.json
    tokenizer_fallback: bool = True           # train a BPE on the repository when `model` can't be loaded
    fallback_vocab_size: int = FALLBACK_VOCAB_SIZE
    fallback_sample_mb: float = 32.0          # text the fallback tokenizer is trained on, at most
    sequence_length: int = 512
    overlap: int = 128
    max_chunk_tokens: int = 512
    min_chunk_tokens: int = 64
    context_window: int = 2048
    target_window: int = 256
    train_ratio: float = DEFAULT_RATIOS[0]
    val_ratio: float = DEFAULT_RATIOS[1]
    test_ratio: float = DEFAULT_RATIOS[2]
    seed: int = 42
    revs: list[str] = field(default_factory=list)   # default: every branch and tag
    since: str | None = None
    until: str | None = None
    max_commits: int | None = None
    max_diff_bytes: int | None = None         # default: the scraper's
    snapshot_at: str = "cutoff"
    redact: bool = True
    force: bool = False
    train: bool = False
    training_config: str = "training_config.yaml"
    progress: bool = True
    report: bool = True                       # report.html and report/*.png after stage 4
    export: list[str] = field(default_factory=list)   # "hf", "nanogpt": extra formats of the splits

    @property
    def ratios(self) -> tuple[float, float, float]:
        return (self.train_ratio, self.val_ratio, self.test_ratio)


def load_config(path: str | None) -> dict:
    """Settings from a YAML file; an unknown key, or a value of the wrong type, is an error that names it."""
    if not path:
        return {}
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise UserError(f"--config {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"--config {path}: not UTF-8 (byte {e.start}); save the file as UTF-8") from None
    except yaml.YAMLError as e:
        raise UserError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: expected a mapping of settings")
    known = {f.name for f in dataclasses.fields(PipelineConfig)}
    for key in data:
        if not isinstance(key, str):
            raise UserError(f"--config {path}: key {key!r} is not a setting name (known: {', '.join(sorted(known))})")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"--config {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return {k: _typed(k, v, f"--config {path}: {k}") for k, v in data.items()}


def _typed(name: str, value, where: str):
    """`value` checked against the type of PipelineConfig.<name> (an int is a fine float)."""
    hint = typing.get_type_hints(PipelineConfig)[name]
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for t in options:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is str and isinstance(value, str):
            return value
        if typing.get_origin(t) is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        if t not in (bool, int, float, str) and isinstance(t, type) and isinstance(value, t):
            return value
    names = " or ".join("null" if t is type(None) else "a list of strings" if typing.get_origin(t) is list
                        else {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(t, str(t))
                        for t in options)
    raise UserError(f"{where} must be {names}, got {value!r} ({type(value).__name__})")


def check_settings(cfg: PipelineConfig) -> None:
    """Every setting checked once, before stage 1: a bad one is a UserError naming its flag."""
    for f in dataclasses.fields(cfg):
        _typed(f.name, getattr(cfg, f.name), "--" + f.name.replace("_", "-"))
    for name, r in zip(("train", "val", "test"), cfg.ratios):
        if not math.isfinite(r) or r < 0:
            raise UserError(f"--{name}-ratio must be a finite number at least 0, got {r}")
    try:
        check_ratios(cfg.ratios)
    except ValueError as e:
        raise UserError(f"--train-ratio, --val-ratio, --test-ratio: {e}") from None
    if not 0 <= cfg.overlap < cfg.sequence_length:
        raise UserError(f"--overlap must be at least 0 and below --sequence-length, got {cfg.overlap}")
    if cfg.max_chunk_tokens < MIN_CHUNK_BUDGET:
        raise UserError(f"--max-chunk-tokens must be at least {MIN_CHUNK_BUDGET}, got {cfg.max_chunk_tokens}")
    if not 0 < cfg.min_chunk_tokens < cfg.max_chunk_tokens:
        raise UserError(f"--min-chunk-tokens must be positive and below --max-chunk-tokens ({cfg.max_chunk_tokens}), "
                        f"got {cfg.min_chunk_tokens}")
    if cfg.context_window < 1 or cfg.target_window < 1:
        raise UserError("--context-window and --target-window must be positive")
    if cfg.fallback_vocab_size < MIN_FALLBACK_VOCAB:
        raise UserError(f"--fallback-vocab-size must be at least {MIN_FALLBACK_VOCAB} (256 bytes and 2 special "
                        f"tokens), got {cfg.fallback_vocab_size}")
    if not (math.isfinite(cfg.fallback_sample_mb) and cfg.fallback_sample_mb > 0):
        raise UserError(f"--fallback-sample-mb must be a positive number, got {cfg.fallback_sample_mb}")
    for flag, value in (("--max-commits", cfg.max_commits), ("--max-diff-bytes", cfg.max_diff_bytes)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be positive, got {value}")
    if cfg.snapshot_at not in SNAPSHOT_AT:
        raise UserError(f"--snapshot-at must be one of {', '.join(SNAPSHOT_AT)}, got {cfg.snapshot_at!r}")


def validate(cfg: PipelineConfig) -> tuple[Path, Path]:
    """Check every setting, then resolve the repository and the output directory: `(repo, out)`."""
    check_settings(cfg)
    given = Path(cfg.repo).expanduser()
    if not given.is_dir():
        raise UserError(f"--repo {cfg.repo}: no such directory")
    try:
        repo = resolve_repo(given.resolve())
    except FileNotFoundError:
        raise UserError("git is not installed or not on PATH") from None
    except GitError as e:
        raise UserError(f"--repo {cfg.repo}: not a git repository ({e})") from None
    if cfg.snapshot_at == "head":
        head_commit(repo)
    out = Path(cfg.output_dir) if cfg.output_dir else Path("data") / repo.name.removesuffix(".git")
    return repo, prepare_output_dir(out)


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
