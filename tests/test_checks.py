"""pipeline/checks.py: each check passes on what the stage wrote and fails, as one line, on a damaged copy.

Stage 3 and 4 run here for real (`file_snapshot_tokenizer.run`, `dataset_builder.run`) on a few
chunks and the tokenizer trained in conftest; the damage is done to the files afterwards.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dataset_builder import DatasetConfig, run as build_dataset
from core import schema
from pipeline.checks import StageCheckFailed, check_chunks, check_dataset, check_tokenized
from core.io import write_jsonl
from tokenizers_.file_snapshot_tokenizer import TokenizeConfig, run as tokenize


@pytest.fixture(scope="module")
def stages(tmp_path_factory, trained_tokenizer_dir):
    out = tmp_path_factory.mktemp("checks")
    chunks = [{"id": f"c{i}", "kind": "diff", "commit": f"{i:040x}", "timestamp": 1_700_000_000 + i, "order": i,
               "path": f"src/m{i % 3}.py", "language": "Python", "symbol": None,
               "text": f"def f_{i}(width, height):\n    return width * {i} + height\n" * 3, "n_tokens": 0}
              for i in range(30)]
    write_jsonl(out / schema.CHUNKS, chunks)
    tokenize(TokenizeConfig(input=str(out / schema.CHUNKS), model=str(trained_tokenizer_dir),
                            sequence_length=32, overlap=8, progress=False))
    build_dataset(DatasetConfig(vocab=out / schema.TOKENIZED, context_window=16, target_window=8, progress=False))
    return out


def damaged(stages, tmp_path):
    shutil.copytree(stages, tmp_path / "run")
    return tmp_path / "run"


def test_checks_pass_on_real_outputs(stages):
    assert check_chunks(stages / schema.CHUNKS)["chunks"] == 30
    tok = check_tokenized(stages / schema.TOKENIZED)
    assert tok["chunks"] == 30 and tok["tokens"] > 30
    counts = check_dataset(stages / schema.DATASET_DIR)
    assert counts["train"]["examples"] > 0 and set(counts) == {"train", "val", "test"}


def test_chunk_without_a_schema_key_fails(stages, tmp_path):
    run = damaged(stages, tmp_path)
    lines = (run / schema.CHUNKS).read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[3])
    del record["symbol"]
    (run / schema.CHUNKS).write_text("\n".join(lines[:3] + [json.dumps(record)] + lines[4:]) + "\n", encoding="utf-8")
    with pytest.raises(StageCheckFailed, match=r"stage 2 \(chunk\).*chunk c3 lacks symbol"):
        check_chunks(run / schema.CHUNKS)


def test_tokenized_ids_beyond_the_vocab_fail(stages, tmp_path):
    run = damaged(stages, tmp_path)
    ids_path = schema.companion(run / schema.TOKENIZED, schema.IDS_SUFFIX)
    ids = np.load(ids_path).astype(np.uint32)
    ids[5] = 10 ** 6  # far beyond the 600-token vocab
    np.save(ids_path, ids)
    with pytest.raises(StageCheckFailed, match="not below the vocab size"):
        check_tokenized(run / schema.TOKENIZED)


def test_tokenized_arrays_that_do_not_match_fail_through_the_reader(stages, tmp_path):
    run = damaged(stages, tmp_path)
    ids_path = schema.companion(run / schema.TOKENIZED, schema.IDS_SUFFIX)
    np.save(ids_path, np.load(ids_path)[:-3])
    with pytest.raises(StageCheckFailed, match=r"stage 3 \(tokenize\) output check failed: .*do not match"):
        check_tokenized(run / schema.TOKENIZED)


def test_dataset_examples_count_differs_from_the_manifest(stages, tmp_path):
    run = damaged(stages, tmp_path)
    manifest_path = run / schema.DATASET_DIR / schema.MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["splits"]["train"]["examples"] += 1
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(StageCheckFailed, match="the manifest says"):
        check_dataset(run / schema.DATASET_DIR)


def test_dataset_window_past_its_stream_fails_through_the_trainer_reader(stages, tmp_path):
    run = damaged(stages, tmp_path)
    tokens = run / schema.DATASET_DIR / schema.split_file("train", schema.TOKENS_SUFFIX)
    np.save(tokens, np.load(tokens)[:10])
    with pytest.raises(StageCheckFailed, match=r"stage 4 \(dataset\) output check failed: .*runs past the end"):
        check_dataset(run / schema.DATASET_DIR)


def test_a_history_json_that_is_not_the_jsonls_copy_fails(tmp_path):
    """Stage 1's .json must hold the .jsonl's commits line for line: another commit, one too few or too many fails."""
    from conftest import build_sample_repo
    from scrapers.git_scraper_rich import ScrapeConfig, scrape
    from pipeline.checks import check_history

    repo = build_sample_repo(tmp_path / "repo")
    jsonl, history_json = tmp_path / "h.jsonl", tmp_path / "h.json"
    scrape(ScrapeConfig(repo=str(repo.path), output=str(jsonl), output_json=str(history_json), progress=False, jobs=0))
    assert check_history(jsonl, history_json)["commits"] == 10
    good = history_json.read_text(encoding="utf-8").split("\n")
    other = json.loads(good[2].removesuffix(","))
    other["subject"] = "Not what the .jsonl says"
    for lines, why in ((good[:2] + [json.dumps(other, separators=(",", ":")) + ","] + good[3:], "its commit 1 is not"),
                       (good[:2] + good[3:], "is not the .jsonl's"),
                       (good[:1] + good[1:2] * 2 + good[2:], "is not the .jsonl's"),
                       (good[:-3] + good[-2:], "more commits than the .jsonl, or its commit list does not end"),
                       (good[1:], "does not open with the commit list")):
        history_json.write_text("\n".join(lines), encoding="utf-8")
        with pytest.raises(StageCheckFailed, match=r"stage 1 \(scrape\).*h\.json: .*" + why):
            check_history(jsonl, history_json)
