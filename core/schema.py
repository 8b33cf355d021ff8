"""Every stage's output file names and record keys, defined once (fields: docs/FORMATS.md).

    >>> split_file("val")
    'training_data_val.json'
    >>> split_file("val", TOKENS_SUFFIX)
    'training_data_val.tokens.npy'
    >>> companion(Path("data/x") / CHUNKS, STATS_SUFFIX).as_posix()
    'data/x/chunks_semantic.stats.json'
    >>> companion(Path(TOKENIZED), IDS_SUFFIX).name
    'chunks_tokenized.ids.npy'

The stages, the readers, `pipeline.checks`, the report, the exports, the merge of several
repositories and the tests take the names from here (stage 1's script still spells its own
default names); the key tuples are the fields every record of that type has (a record may carry
more), checked by `pipeline.checks` and against the docs by tests/test_schema.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Stage 1: scrape
HISTORY = "git_history_rich.jsonl"
HISTORY_JSON = "git_history_rich.json"
HISTORY_STATS = "git_history_stats.json"
# Stage 2: chunk (the token ids and the statistics beside the chunks, see `companion`)
CHUNKS = "chunks_semantic.jsonl"
RAW_CHUNKS = "chunks_raw_commits.jsonl"  # the pipeline's stage-2 fallback: one record per commit
TOKENS_SUFFIX = ".tokens.npy"
STATS_SUFFIX = ".stats.json"
COMMITS_SUFFIX = ".commits.jsonl"  # stage 2's per-commit index, for reruns (chunking.reuse)
# Stage 3: tokenize
TOKENIZED = "chunks_tokenized.json"
IDS_SUFFIX = ".ids.npy"
SEQUENCES_SUFFIX = ".sequences.npy"
# written by stage 4 beside stage 3's file: the MinHash signatures of train's diff chunks, for reruns
NEAR_DUP_SUFFIX = ".near_dup.npy"
TOKENIZER_DIR = "tokenizer"
# Stage 4: dataset (in DATASET_DIR; one set of files per split, see `split_file`)
DATASET_DIR = "dataset"
MANIFEST = "dataset_stats.json"
SPLIT_CHUNKS_SUFFIX = ".chunks.jsonl"
# A URL's bare clone (core.repository), and each repository of a multi-repository run
SOURCES_DIR = "sources"
REPOS_DIR = "repos"

COMMIT_KEYS = ("hash", "short_hash", "parents", "author", "committer", "authored_at", "committed_at",
               "timestamp", "subject", "message", "branches", "tags", "files", "is_merge", "order")
FILE_KEYS = ("path", "old_path", "change_type", "language", "additions", "deletions", "is_binary", "diff", "truncated")
CHUNK_KEYS = ("id", "kind", "commit", "timestamp", "order", "path", "language", "symbol", "text", "n_tokens")
EXAMPLE_KEYS = ("context_length", "target_length", "first_commit", "last_commit")


def companion(path: Path, suffix: str) -> Path:
    """A file beside `path` named by its stem: `chunks_semantic.jsonl` -> `chunks_semantic<suffix>`."""
    return path.with_name(path.stem + suffix)


def token_dtype(vocab_size: int) -> type:
    """The dtype of every token-id array by vocabulary size: uint16 while every id fits.

    >>> token_dtype(65_536).__name__, token_dtype(65_537).__name__
    ('uint16', 'uint32')
    """
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def split_file(split: str, suffix: str = ".json") -> str:
    """The name of one split's file in DATASET_DIR: `.json` (header and examples), TOKENS_SUFFIX, ..."""
    return f"training_data_{split}{suffix}"
