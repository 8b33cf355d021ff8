"""End to end: the pipeline builds splits from a generated repository, the trainer learns on them.

The splits come from the real stages (comprehensive_pipeline.run_pipeline over conftest's sample
repository, with the test tokenizer); a tiny GPT-2 trains on them on the CPU and its loss goes
down; the saved model completes a prompt.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import build_sample_repo
from pipeline.config import PipelineConfig


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on shared cores: one thread is fastest
    yield
    torch.set_num_threads(before)


def test_tiny_model_learns_on_pipeline_splits(tmp_path, trained_tokenizer_dir):
    from pipeline.orchestrator import run_pipeline
    from training import generate, model_trainer_unified as trainer
    from training.config import load_config

    repo = build_sample_repo(tmp_path / "repo")
    data = tmp_path / "data"
    run_pipeline(PipelineConfig(repo=str(repo.path), output_dir=str(data), model=str(trained_tokenizer_dir),
                                context_window=32, target_window=8, progress=False))
    split = data / "dataset" / "training_data_train.json"
    out = tmp_path / "model"
    cfg = load_config(None, {"train_path": str(split), "output_dir": str(out), "n_layer": 2, "n_embd": 32,
                             "n_head": 2, "batch_size": 4, "learning_rate": 3e-3, "warmup_steps": 0,
                             "max_steps": 30, "eval_every": 15, "log_every": 1, "patience": 0,
                             "device": "cpu", "progress": False})
    summary = trainer.run(cfg)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if x["event"] == "train"]
    evals = [x["val_loss"] for x in lines if x["event"] == "eval"]
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < losses[0] - 0.5, losses
    assert len(evals) == 3 and evals[2] < evals[1] < evals[0]  # steps 0, 15, 30
    assert summary["finished"] and summary["test_perplexity"] < summary["test_perplexity_start"]
    text = generate.run(generate.GenerateConfig(str(out), "def area(", max_new_tokens=4, device="cpu"))
    from transformers import AutoModelForCausalLM

    from core.tokenizer import encode_batch, load_tokenizer
    tok, model = load_tokenizer(str(out)), AutoModelForCausalLM.from_pretrained(str(out))
    ids = torch.tensor([encode_batch(tok, ["def area("])[0]])
    new = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False)[0, ids.shape[1]:]
    assert text == "def area(" + tok.decode(new, skip_special_tokens=True)  # the model's own greedy completion
