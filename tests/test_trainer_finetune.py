"""Fine-tuning a real pretrained model, as a user would: a tiny GPT-2 trained here on one real
repository's dataset (click, Python) is saved, then fine-tuned on another's (log, Rust) with the
shipped configs; both datasets come from the real pipeline. Nothing is mocked.

What is checked: the evaluation at step 0 and the change at the end, `best/` never worse than the
starting model, fine-tuning rates, LoRA adapters that peft loads, models with fewer position
slots than the dataset's windows, resume with a changed rate and length, Ctrl-C, CPU out of
memory, TensorBoard (tests/test_evaluate.py: the evaluator and the benchmark).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from training import model_trainer_unified as trainer
from training.config import load_config
from training.loop import cosine_lambda

ROOT = Path(__file__).resolve().parents[1]
CONTEXT, TARGET = 64, 16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on shared cores: one thread is fastest
    yield
    torch.set_num_threads(before)


def tiny(dataset: Path, out: Path, **kw):
    """The shipped smoke-run config, quiet."""
    return load_config(ROOT / "training_config_tiny.yaml", {"train_path": str(dataset / "training_data_train.json"),
                                                             "output_dir": str(out), "progress": False, **kw})


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def weights(path: Path) -> dict:
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(str(path)).state_dict()


def test_fine_tune_measures_the_start_and_the_change(pretrained, datasets, tmp_path, caplog):
    caplog.set_level("INFO")
    out = tmp_path / "ft"
    s = trainer.run(tiny(datasets["log"], out, model=str(pretrained)))
    lines = records(out)
    evals = [x for x in lines if x["event"] == "eval"]
    assert evals[0]["step"] == 0 and evals[0]["val_loss"] == s["val_loss_start"]
    assert evals[0]["test_loss"] == s["test_loss_start"]
    assert s["test_loss"] < s["test_loss_start"] and s["val_loss"] < s["val_loss_start"]
    # the fine-tuning rate, not the config's from-scratch 1e-3
    assert max(x["lr"] for x in lines if x["event"] == "train") == pytest.approx(5e-5)
    want = (f"val perplexity {s['val_perplexity_start']:.2f} -> {s['val_perplexity']:.2f}, "
            f"test perplexity {s['test_perplexity_start']:.2f} -> {s['test_perplexity']:.2f}")
    assert want in caplog.text and "finetune_learning_rate: the fine-tuning rate, not learning_rate" in caplog.text
    assert "effective batch 4 examples = 4 per micro-batch x 1 accumulation x 1 processes" in caplog.text
    assert "training on the CPU: about" in caplog.text


def test_learning_rate_flag_sets_the_fine_tuning_rate():
    from training.config import peak_learning_rate
    assert peak_learning_rate(load_config(ROOT / "training_config.yaml", {"model": "m"})) == (
        5e-5, "finetune_learning_rate")  # the file's from-scratch 6e-4 does not apply
    assert peak_learning_rate(load_config(ROOT / "training_config.yaml", {"model": "m", "learning_rate": 1e-5}))[0] == 1e-5
    lora = load_config(None, {"model": "m", "lora": True, "learning_rate": 3e-4})
    assert peak_learning_rate(lora) == (3e-4, "lora_learning_rate")


def test_best_is_never_worse_than_the_starting_model(pretrained, datasets, tmp_path):
    # A ruinous rate: every evaluation after step 0 is worse, so the starting model is the result.
    out = tmp_path / "ruined"
    s = trainer.run(tiny(datasets["log"], out, model=str(pretrained), finetune_learning_rate=0.5))
    evals = [x for x in records(out) if x["event"] == "eval"]
    assert all(e["val_loss"] > evals[0]["val_loss"] for e in evals[1:]) and s["best_step"] == 0
    start, best, final = weights(pretrained), weights(out / "best"), weights(out)
    assert all(torch.equal(start[k], best[k]) and torch.equal(start[k], final[k]) for k in start)
    assert s["val_loss"] == pytest.approx(s["val_loss_start"], rel=1e-6)


def test_lora_saves_an_adapter_that_peft_loads(pretrained, datasets, tmp_path):
    pytest.importorskip("peft", reason="LoRA needs the optional peft package (CI installs it)")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    out = tmp_path / "lora"
    kw = dict(model=str(pretrained), lora=True, lora_r=4, max_steps=6, eval_every=3, lora_learning_rate=1e-2,
              final_weights="last")
    assert not trainer.run(tiny(datasets["log"], out, stop_at_step=3, **kw))["finished"]
    s = trainer.run(tiny(datasets["log"], out, resume="last", **kw))  # from an adapter-only checkpoint
    assert s["finished"] and s["step"] == 6 and (out / "adapter" / "adapter_config.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(str(pretrained))
    adapted = PeftModel.from_pretrained(base, str(out / "adapter")).merge_and_unload()
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    ids = torch.arange(1, 40).unsqueeze(0)
    with torch.no_grad():
        a, b, c = adapted(ids).logits, merged(ids).logits, AutoModelForCausalLM.from_pretrained(str(pretrained))(ids).logits
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(b, c, atol=1e-3)  # trained, and the same
    # the checkpoint holds the adapters only, not the frozen base again
    state = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)["model"]
    assert state and all("lora_" in k for k in state)
    assert sum(v.numel() for v in state.values()) < sum(v.numel() for v in base.state_dict().values()) / 5


def short_model(pretrained: Path, dest: Path, positions: int) -> Path:
    """The pretrained model cut to its first `positions` position slots, with its tokenizer."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(pretrained))
    model.config.n_positions = positions
    model.transformer.wpe.weight.data = model.transformer.wpe.weight.data[:positions].clone()
    model.transformer.wpe.num_embeddings = positions
    model.save_pretrained(str(dest))
    for f in pretrained.glob("tokenizer*"):
        shutil.copy(f, dest)
    return dest


def test_fewer_position_slots_than_the_window(pretrained, datasets, tmp_path, caplog, capsys):
    from training import generate
    from training.data import load_split
    caplog.set_level("INFO")
    short = short_model(pretrained, tmp_path / "short", 48)
    s = trainer.run(tiny(datasets["log"], tmp_path / "o", model=str(short), max_steps=4, eval_every=2))
    assert s["finished"] and "using the last 32 of each example's 64 context tokens" in caplog.text
    # --max-context: shorter windows without rebuilding the dataset; the last context tokens are kept
    split = load_split(datasets["log"] / "training_data_val.json")
    full = split.batch([10, 11])["input_ids"]
    split.limit_context(5)
    assert torch.equal(split.batch([10, 11])["input_ids"], full[:, -(5 + TARGET):])
    s = trainer.run(tiny(datasets["log"], tmp_path / "mc", model=str(pretrained), max_steps=2, max_context=5))
    assert s["finished"] and "21 tokens per example at most" in caplog.text
    # a model that cannot hold even the target window: one line, exit 2
    tiny_slots = short_model(pretrained, tmp_path / "tiny", TARGET)
    capsys.readouterr()
    code = trainer.main(["--config", str(ROOT / "training_config_tiny.yaml"), "--model", str(tiny_slots),
                         "--sequences", str(datasets["log"] / "training_data_train.json"), "--output",
                         str(tmp_path / "x"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "reads 16 positions" in err[0]
    # a prompt longer than the model reads: its last tokens are completed, no IndexError
    prompt = "def main():\n    return 1\n" * 40
    text = generate.run(generate.GenerateConfig(str(short), prompt, max_new_tokens=8, device="cpu"))
    assert text.startswith(prompt) and "completing its last 40 tokens" in caplog.text


def test_resume_takes_the_new_rate_and_length(datasets, tmp_path, caplog):
    out = tmp_path / "r"
    trainer.run(tiny(datasets["log"], out, max_steps=10, stop_at_step=4, warmup_steps=0))
    assert "stopped at step 4 as --stop-at-step 4 asked (the 10-step schedule is unchanged)" in caplog.text
    s = trainer.run(tiny(datasets["log"], out, max_steps=20, learning_rate=2e-3, warmup_steps=0, resume="last"))
    lines = records(out)
    marker = lines.index(next(x for x in lines if x["event"] == "resume"))
    assert lines[marker]["step"] == 4 and s["step"] == 20
    after = [x for x in lines[marker:] if x["event"] == "train"]
    assert after[0]["step"] == 5 and after[0]["lr"] == pytest.approx(2e-3 * cosine_lambda(4, 20, 0, 0.1))


def test_ctrl_c_saves_a_checkpoint(datasets, tmp_path, caplog):
    """A real SIGINT to this process once training runs: exit 130, with a checkpoint of that step."""
    import threading
    out = tmp_path / "int"

    def interrupt():
        deadline = time.time() + 60
        while time.time() < deadline and not any(x.get("event") == "train" for x in _lines(out)):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    code = trainer.main(["--config", str(ROOT / "training_config_tiny.yaml"), "--output", str(out), "--no-progress",
                         "--sequences", str(datasets["log"] / "training_data_train.json"), "--max-steps", "100000"])
    assert code == 130
    stopped = [x for x in records(out) if x["event"] == "interrupted"]
    ckpt = torch.load(out / "checkpoint" / "trainer_state.pt", weights_only=False)
    assert len(stopped) == 1 and ckpt["loop"]["step"] == stopped[0]["step"] >= 1
    assert "checkpoint saved to" in caplog.text and "continue with --resume" in caplog.text


def _lines(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")] if path.is_file() else []


def test_cpu_out_of_memory_is_one_line(datasets, tmp_path, capsys):
    # 2**40 embedding rows: the CPU allocator refuses at once (no memory is touched)
    code = trainer.main(["--config", str(ROOT / "training_config_tiny.yaml"), "--vocab-multiple", str(2 ** 40),
                         "--sequences", str(datasets["log"] / "training_data_train.json"),
                         "--output", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: out of memory on cpu")


def test_tensorboard_beside_metrics(datasets, tmp_path):
    pytest.importorskip("tensorboard", reason="--report-to tensorboard needs the tensorboard package")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = tmp_path / "tb"
    trainer.run(tiny(datasets["log"], out, max_steps=4, eval_every=2, report_to="tensorboard"))
    events = EventAccumulator(str(out / "runs"))
    events.Reload()
    logged = [x for x in records(out) if x["event"] == "train"]
    assert [e.step for e in events.Scalars("train/loss")] == [x["step"] for x in logged]
    assert [round(e.value, 5) for e in events.Scalars("train/loss")] == [round(x["loss"], 5) for x in logged]
    assert [e.step for e in events.Scalars("eval/val_loss")] == [0, 2, 4]
    # killed after step 3 with its checkpoint at step 2: the resumed run's events replace steps 3-4
    again = tmp_path / "tb2"
    kw = dict(max_steps=4, eval_every=2, report_to="tensorboard", save_every=0)
    trainer.run(tiny(datasets["log"], again, stop_at_step=2, **kw))
    shutil.copytree(again / "checkpoint", tmp_path / "at2")
    trainer.run(tiny(datasets["log"], again, stop_at_step=3, resume="last", **kw))
    shutil.rmtree(again / "checkpoint")
    shutil.copytree(tmp_path / "at2", again / "checkpoint")
    trainer.run(tiny(datasets["log"], again, resume="last", **kw))
    events = EventAccumulator(str(again / "runs"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [x["step"] for x in records(again) if x["event"] == "train"] == [1, 2, 3, 4]


def test_config_special_ids_are_the_tokenizers(tmp_path):
    """A RoBERTa-style tokenizer (bos <s> 0, eos </s> 2): config.json must say 0 and 2, not 2 and 2."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from core.tokenizer import tokenizer_identity
    from training.model import scratch_model
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.train_from_iterator(["def f(x):\n    return x\n"] * 10, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", pad_token="<pad>", eos_token="</s>")
    model = scratch_model(load_config(None, {"n_layer": 1, "n_embd": 16, "n_head": 2}), tokenizer_identity(tok), 16)
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id) == (0, 1, 2)
    assert (model.config.bos_token_id, model.config.pad_token_id, model.config.eos_token_id) == (0, 1, 2)
