"""core/settings.py: a bad value gets the same one-line error from the one command and from each stage."""

from __future__ import annotations

import pytest

import semantic_chunker
from dataset_builder import DatasetConfig
from pipeline.config import PipelineConfig, check_settings
from core.io import UserError
from tokenizers_.file_snapshot_tokenizer import TokenizeConfig, run as tokenize


def message(fn) -> str:
    with pytest.raises(UserError) as e:
        fn()
    return str(e.value)


def test_chunk_bounds_min_equal_to_max_fails_in_both_places(tmp_path, capsys):
    before_stage_1 = message(lambda: check_settings(PipelineConfig(max_chunk_tokens=64, min_chunk_tokens=64)))
    code = semantic_chunker.main(["--commits", str(tmp_path / "h.jsonl"), "--output", str(tmp_path / "c.jsonl"),
                                  "--max-chunk-tokens", "64", "--min-chunk-tokens", "64", "--no-progress"])
    assert code == 2 and capsys.readouterr().err.strip() == f"error: {before_stage_1}"
    check_settings(PipelineConfig(min_chunk_tokens=0))  # what stage 2 accepts, the one command accepts


def test_ratios_and_windows_read_the_same_in_every_stage(tmp_path):
    bad = (0.8, 0.1, 0.05)
    pipeline_says = message(lambda: check_settings(PipelineConfig(train_ratio=bad[0], val_ratio=bad[1],
                                                                  test_ratio=bad[2])))
    assert "--train-ratio" in pipeline_says and "sum to 1" in pipeline_says
    assert message(lambda: DatasetConfig(vocab=tmp_path / "t.json", split_ratios=bad)) == pipeline_says
    assert message(lambda: check_settings(PipelineConfig(context_window=0))) == \
        message(lambda: DatasetConfig(vocab=tmp_path / "t.json", context_window=0))
    (tmp_path / "c.jsonl").write_text("", encoding="utf-8")
    assert message(lambda: check_settings(PipelineConfig(sequence_length=64, overlap=64))) == \
        message(lambda: tokenize(TokenizeConfig(input=str(tmp_path / "c.jsonl"), sequence_length=64, overlap=64)))
