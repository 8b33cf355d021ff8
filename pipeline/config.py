"""Settings of comprehensive_pipeline.py: the dataclass, the YAML file, their checks (`core.settings`).

    cfg = PipelineConfig(**load_config("pipeline.yaml"))   # then command-line flags on top
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from chunking.snapshots import head_commit
from core import settings
from core.io import UserError
from core.splits import DEFAULT_RATIOS
from core.git_runner import Git, GitError, resolve_repo
from core.tokenizer import DEFAULT_MODEL, FALLBACK_VOCAB_SIZE

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
    filter_binary: bool = True                # stage 2's filters (--no-binary, ...: keep what they leave out)
    filter_build_artifacts: bool = True
    filter_lock_files: bool = True
    filter_generated: bool = True
    max_file_bytes: int = 1_000_000           # stage 2: larger file changes and files are left out (0: no bound)
    dedup: bool = True                        # stage 2: exact duplicate chunks kept once
    deleted_content: bool = False             # stage 2: a deleted file's old content (default: its title line alone)
    function_context: bool = True             # stage 2: a hunk widened to its enclosing function / class
    formatting_changes: bool = False          # stage 2: keep whitespace-only file changes
    pin_bumps: bool = False                   # stage 2: keep YAML changes that only move version pins
    near_dedup: bool = True                   # stage 4: train chunks that are near-duplicates of earlier ones left out
    scrape_jobs: int | None = None            # stage 1 processes for function complexity; default: one per core
                                              # beyond the first (at most 4), 0: none; the output is the same
    chunk_workers: int | None = None          # stage 2 processes; default: one per core (at most 4), 1: none;
                                              # the output is the same for any number
    context_window: int = 2048
    target_window: int = 256
    stride: int | None = None                 # stage 4; default: target_window (each token a target once)
    inline_ids: bool = False                  # stage 4: ids in the split JSON instead of offsets
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
    # Several repositories into one dataset (multirepo/): a non-empty `repos` or a `repos_file` turns it on.
    repos: list[str] = field(default_factory=list)
    repos_file: str | None = None             # one repository per line, `#` comments
    ray_address: str | None = None            # join this Ray cluster; default: Ray started in this process
    workers: int | None = None                # repositories at a time; default: every core (1: no Ray)
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
    settings.ratios(cfg.ratios)
    settings.sequence_windows(cfg.sequence_length, cfg.overlap)
    settings.chunk_bounds(cfg.max_chunk_tokens, cfg.min_chunk_tokens)
    if cfg.chunk_workers is not None:
        settings.workers(cfg.chunk_workers, "--chunk-workers")
    if cfg.scrape_jobs is not None and cfg.scrape_jobs < 0:
        raise UserError(f"--scrape-jobs must be 0 or more, got {cfg.scrape_jobs}")
    if cfg.workers is not None:
        settings.workers(cfg.workers)
    settings.dataset_windows(cfg.context_window, cfg.target_window, cfg.stride)
    settings.fallback_tokenizer(cfg.fallback_vocab_size, cfg.fallback_sample_mb)
    for flag, value in (("--max-commits", cfg.max_commits), ("--max-diff-bytes", cfg.max_diff_bytes)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be positive, got {value}")
    if cfg.max_file_bytes < 0:
        raise UserError(f"--max-file-bytes must be at least 0 (0: no bound), got {cfg.max_file_bytes}")
    settings.snapshot_at(cfg.snapshot_at)


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
