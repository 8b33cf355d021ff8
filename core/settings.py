"""One validator per setting, shared by the one command (before stage 1) and each stage's script.

Each raises a UserError that names the flag, so a bad value reads the same wherever it is given:

    >>> chunk_bounds(512, 512)
    Traceback (most recent call last):
    ...
    core.io.UserError: --min-chunk-tokens must be at least 0 and below --max-chunk-tokens (512), got 512
"""

from __future__ import annotations

import math

from core.config import RUN
from core.io import UserError
from core.splits import DEFAULT_RATIOS, check_ratios

MIN_FALLBACK_VOCAB = 256 + 2  # the byte alphabet and the two special tokens: below it BPE silently gives 258
MIN_CHUNK_BUDGET = 16         # the chunker's smallest --max-chunk-tokens
RATIO_FLAGS = ("--train-ratio", "--val-ratio", "--test-ratio")
SNAPSHOT_AT = ("cutoff", "head", "none")  # where file snapshots are taken (--snapshot-at)
MAX_CHUNK_TOKENS = 512  # stage 2's largest chunk by default (stage 1 records what stage 2's widening needs for it)
# Settings that several stages share (`core.config.setting(**REDACT)`), declared here once.
PROGRESS = {"default": True, "help": "no progress bars", "role": RUN}
REDACT = {"default": True, "help": "keep secrets (not recommended; by default they are redacted in everything "
                                   "taken from the repository)"}


def ratios(values) -> tuple[float, float, float]:
    """Train, val and test shares: finite, at least 0, train above 0, summing to 1; returned as floats."""
    for flag, r in zip(RATIO_FLAGS, values):
        if not math.isfinite(r) or r < 0:
            raise UserError(f"{flag} must be a finite number at least 0, got {r}")
    try:
        return check_ratios(values)
    except ValueError as e:
        raise UserError(f"{', '.join(RATIO_FLAGS)}: {e}") from None


def add_ratio_flags(parser, why: str = "") -> None:
    """--train-ratio, --val-ratio, --test-ratio, defaults from `core.splits.DEFAULT_RATIOS` (stages 2 and 4)."""
    for flag, share in zip(RATIO_FLAGS, DEFAULT_RATIOS):
        name = flag[2:].removesuffix("-ratio")
        parser.add_argument(flag, type=float, default=share, help=f"share of tokens in {name} {why} [{share}]")


def chunk_bounds(max_chunk_tokens: int, min_chunk_tokens: int) -> None:
    if max_chunk_tokens < MIN_CHUNK_BUDGET:
        raise UserError(f"--max-chunk-tokens must be at least {MIN_CHUNK_BUDGET}, got {max_chunk_tokens}")
    if not 0 <= min_chunk_tokens < max_chunk_tokens:
        raise UserError(f"--min-chunk-tokens must be at least 0 and below --max-chunk-tokens ({max_chunk_tokens}), "
                        f"got {min_chunk_tokens}")


def workers(n: int, flag: str = "--workers") -> None:
    if n < 1:
        raise UserError(f"{flag} must be at least 1, got {n}")


def snapshot_at(value: str) -> None:
    if value not in SNAPSHOT_AT:
        raise UserError(f"--snapshot-at must be one of {', '.join(SNAPSHOT_AT)}, got {value!r}")


def sequence_windows(sequence_length: int, overlap: int) -> None:
    if sequence_length < 1:
        raise UserError(f"--sequence-length must be at least 1 (got {sequence_length})")
    if not 0 <= overlap < sequence_length:
        raise UserError(f"--overlap must be at least 0 and below --sequence-length {sequence_length} (got {overlap})")


def dataset_windows(context_window: int, target_window: int, stride: int | None) -> int:
    """Checks the stage 4 windows; returns the stride (default: the target window, each token a target once)."""
    if context_window < 1 or target_window < 1:
        raise UserError("--context-window and --target-window must be at least 1")
    stride = target_window if stride is None else stride
    if not 1 <= stride <= target_window:
        raise UserError(f"--stride must be between 1 and --target-window ({target_window}); "
                        "a larger stride would leave tokens that are never a target")
    return stride


def fallback_tokenizer(vocab_size: int, sample_mb: float | None = None) -> None:
    if vocab_size < MIN_FALLBACK_VOCAB:
        raise UserError(f"--fallback-vocab-size must be at least {MIN_FALLBACK_VOCAB} (256 bytes and 2 special "
                        f"tokens), got {vocab_size}")
    if sample_mb is not None and not (math.isfinite(sample_mb) and sample_mb > 0):
        raise UserError(f"--fallback-sample-mb must be a positive number, got {sample_mb}")
