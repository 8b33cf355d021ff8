"""Exports of a real pipeline run: Parquet that `datasets` loads and `transformers.Trainer` trains on,
and nanoGPT's .bin/meta.pkl read back the way nanoGPT's train.py reads them."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from core.io import read_json
from test_report import run_pipeline
from training.data import load_split

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return run_pipeline(tmp_path_factory.mktemp("export"), "--no-report", "--export", "hf,nanogpt")


def load_hf(run: Path, cache: Path):
    import datasets

    files = {s: str(run / "export" / "hf" / "data" / f"{s}.parquet") for s in SPLITS}
    return datasets.load_dataset("parquet", data_files=files, cache_dir=str(cache))


def test_hf_parquet_holds_every_window_with_target_only_labels(run, tmp_path):
    ds = load_hf(run, tmp_path / "cache")
    for s in SPLITS:
        native = load_split(run / "dataset" / f"training_data_{s}.json")
        examples = read_json(run / "dataset" / f"training_data_{s}.json")["examples"]
        rows = ds[s]
        assert len(rows) == len(native) == len(examples) > 0
        for i, (row, ex) in enumerate(zip(rows, examples)):
            ids = native.tokens[ex["start"]:ex["start"] + ex["context_length"] + ex["target_length"]]
            assert row["input_ids"] == ids.tolist()
            trainer_labels = native.batch([i], loss_on="target")["labels"][0].tolist()  # the trainer's own rule
            assert row["labels"] == trainer_labels
            assert row["labels"][:ex["context_length"]] == [-100] * ex["context_length"]
            assert (row["first_commit"], row["last_commit"]) == (ex["first_commit"], ex["last_commit"])


def test_dataset_card_states_the_manifests_facts(run):
    card = (run / "export" / "hf" / "README.md").read_text(encoding="utf-8")
    m = read_json(run / "dataset" / "dataset_stats.json")
    assert card.startswith("---\nconfigs:")
    for s in SPLITS:
        st = m["splits"][s]
        assert f"| {s} | {st['examples']:,} | {st['tokens']:,} | {st['target_tokens']:,} |" in card
        assert st["first_commit"]["hash"][:12] in card and st["last_commit"]["hash"][:12] in card
    assert m["tokenizer"]["sha256"] in card and "every commit belongs to exactly one split" in card


def test_transformers_trainer_runs_two_steps_on_the_hf_export(run, tmp_path):
    import torch
    from transformers import (DataCollatorForSeq2Seq, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast,
                              Trainer, TrainingArguments)

    ds = load_hf(run, tmp_path / "cache")
    tok = PreTrainedTokenizerFast.from_pretrained(str(run / "tokenizer"))
    m = read_json(run / "dataset" / "dataset_stats.json")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=m["tokenizer"]["vocab_size"], n_positions=128, n_embd=32,
                                       n_layer=1, n_head=2))
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), max_steps=2, per_device_train_batch_size=4,
                             per_device_eval_batch_size=4, learning_rate=1e-3, logging_steps=1, save_strategy="no",
                             report_to=[], use_cpu=True, dataloader_num_workers=0, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=ds["train"], eval_dataset=ds["val"],
                      data_collator=DataCollatorForSeq2Seq(tok, label_pad_token_id=-100))
    result = trainer.train()
    assert result.global_step == 2 and math.isfinite(result.training_loss)
    assert math.isfinite(trainer.evaluate()["eval_loss"])


def test_nanogpt_bins_read_back_as_nanogpt_reads_them(run):
    meta = pickle.load(open(run / "export" / "nanogpt" / "meta.pkl", "rb"))
    m = read_json(run / "dataset" / "dataset_stats.json")
    assert meta["vocab_size"] == m["tokenizer"]["vocab_size"] and meta["dtype"] == "uint16" == m["dtype"]
    whole = []
    for s in SPLITS:
        data = np.memmap(run / "export" / "nanogpt" / f"{s}.bin", dtype=np.uint16, mode="r")  # as train.py does
        stream = np.load(run / "dataset" / f"training_data_{s}.tokens.npy")
        own = stream[m["splits"][s]["prefix_tokens"]:]  # the split's own tokens: no borrowed context
        assert len(data) == m["splits"][s]["tokens"] and np.array_equal(data, own)
        whole.append(np.asarray(data))
    # Back to back the three files are the dataset's one chronological stream.
    ids = np.concatenate(whole)
    assert ids.max() < meta["vocab_size"] and (ids == m["tokenizer"]["separator_id"]).sum() == m["input"]["chunks"]
    block = 8  # nanoGPT's get_batch: x = data[i:i+block], y = data[i+1:i+1+block]
    train = np.memmap(run / "export" / "nanogpt" / "train.bin", dtype=np.uint16, mode="r")
    x, y = train[5:5 + block].astype(np.int64), train[6:6 + block].astype(np.int64)
    assert np.array_equal(x[1:], y[:-1])


def test_an_unchanged_export_is_not_rewritten_and_a_bad_format_is_refused(run):
    from core.io import UserError
    from reporting.export import check_formats, export

    target = run / "export" / "nanogpt" / "train.bin"
    stamp = target.stat().st_mtime_ns
    export(run, "nanogpt")
    assert target.stat().st_mtime_ns == stamp
    target.write_bytes(b"")
    (run / "export" / "nanogpt" / "export_info.json").unlink()  # no record: written again
    export(run, ["nanogpt"])
    assert target.stat().st_size == 2 * read_json(run / "dataset" / "dataset_stats.json")["splits"]["train"]["tokens"]
    with pytest.raises(UserError, match="unknown format 'parquet'"):
        check_formats("hf,parquet")
