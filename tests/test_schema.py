"""core/schema.py: the names and record keys it defines are the ones the docs describe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import schema

DOCS = Path(__file__).resolve().parent.parent / "docs"
NAMES = ("HISTORY", "HISTORY_JSON", "HISTORY_STATS", "CHUNKS", "RAW_CHUNKS", "TOKENIZED", "TOKENIZER_DIR",
         "MANIFEST", "TOKENS_SUFFIX", "STATS_SUFFIX", "IDS_SUFFIX", "SEQUENCES_SUFFIX", "SPLIT_CHUNKS_SUFFIX")


def test_every_output_name_is_in_the_formats_table():
    formats = (DOCS / "FORMATS.md").read_text(encoding="utf-8")
    missing = [n for n in NAMES if getattr(schema, n) not in formats]
    assert not missing, f"docs/FORMATS.md does not name {missing}"


@pytest.mark.parametrize("keys", ["COMMIT_KEYS", "FILE_KEYS", "CHUNK_KEYS", "EXAMPLE_KEYS"])
def test_every_record_key_is_documented(keys):
    docs = "".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))
    missing = [k for k in getattr(schema, keys) if f"`{k}`" not in docs]
    assert not missing, f"{keys}: no doc names {missing}"


def test_companion_and_split_names():
    assert schema.companion(Path("d") / schema.CHUNKS, schema.TOKENS_SUFFIX) == Path("d/chunks_semantic.tokens.npy")
    assert schema.companion(Path(schema.TOKENIZED), schema.SEQUENCES_SUFFIX) == Path("chunks_tokenized.sequences.npy")
    assert schema.split_file("test", schema.SPLIT_CHUNKS_SUFFIX) == "training_data_test.chunks.jsonl"


def test_one_token_dtype_rule_for_every_id_array():
    """uint16 holds ids 0..65535: a vocabulary of exactly 65,536 fits (stage 4 used to say uint32)."""
    assert schema.token_dtype(600) is np.uint16 and schema.token_dtype(65_536) is np.uint16
    assert schema.token_dtype(65_537) is np.uint32 and schema.token_dtype(250_000) is np.uint32
