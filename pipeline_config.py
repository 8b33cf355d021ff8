"""Settings of comprehensive_pipeline.py: the dataclass, the YAML file, their checks.

    cfg = PipelineConfig(**load_config("pipeline.yaml"))   # then command-line flags on top
"""

from __future__ import annotations

import dataclasses
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_io import UserError
from splits import DEFAULT_RATIOS, check_ratios
from tokenizers_.loading import DEFAULT_MODEL, FALLBACK_VOCAB_SIZE

# Bumped when a stage's output format changes, so that finished stages from an older version rerun.
PIPELINE_VERSION = 1


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
    # Several repositories into one dataset (multirepo/): a non-empty `repos` or a `repos_file` turns it on.
    repos: list[str] = field(default_factory=list)
    repos_file: str | None = None             # one repository per line, `#` comments
    ray_address: str | None = None            # join this Ray cluster; default: Ray started in this process
    workers: int | None = None                # repositories at a time; default: every core (1: no Ray)

    @property
    def ratios(self) -> tuple[float, float, float]:
        return (self.train_ratio, self.val_ratio, self.test_ratio)


def load_config(path: str | None) -> dict:
    """Settings from a YAML file; an unknown key is an error that names it."""
    if not path:
        return {}
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise UserError(f"--config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise UserError(f"--config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: expected a mapping of settings")
    known = {f.name for f in dataclasses.fields(PipelineConfig)}
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"--config {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return data


def validate(cfg: PipelineConfig) -> tuple[Path, Path]:
    try:
        check_ratios(cfg.ratios)
    except ValueError as e:
        raise UserError(str(e)) from None
    if not 0 <= cfg.overlap < cfg.sequence_length:
        raise UserError(f"--overlap must be at least 0 and below --sequence-length, got {cfg.overlap}")
    if not 0 < cfg.min_chunk_tokens <= cfg.max_chunk_tokens:
        raise UserError("--min-chunk-tokens must be positive and at most --max-chunk-tokens")
    if cfg.context_window < 1 or cfg.target_window < 1:
        raise UserError("--context-window and --target-window must be positive")
    repo = Path(cfg.repo).expanduser()
    if not repo.exists():
        raise UserError(f"--repo {cfg.repo}: no such directory")
    repo = repo.resolve()
    out = Path(cfg.output_dir) if cfg.output_dir else Path("data") / repo.name.removesuffix(".git")
    return repo, out


def repo_fingerprint(repo: Path) -> str:
    """Every ref and what it points at: the scrape is redone when any of them moves."""
    try:
        refs = subprocess.run(["git", "-C", str(repo), "for-each-ref", "--format=%(objectname) %(refname)"],
                              capture_output=True, text=True, check=True).stdout
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "-q", "--verify", "HEAD"],
                              capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return ""  # not a repository: the scraper says so in one line
    return refs + "HEAD " + head
