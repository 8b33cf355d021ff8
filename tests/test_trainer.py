"""The trainer on real split files: real tokens of the sample repository's history, a real
tokenizer, tiny real GPT-2 models on the CPU. Nothing is mocked.

The split files are written here in stage 4's format (docs/dataset.md) by `write_splits`, from
the token ids of `git log -p` over the sample repository, so these tests do not depend on the
other stages; tests/test_pipeline.py covers the splits that dataset_builder.py writes.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import build_sample_repo
from core.io import UserError
from core.tokenizer import encode_batch, load_tokenizer, tokenizer_identity, train_fallback_tokenizer
from training import model_trainer_unified as trainer
from training.checkpoint import FILE as CKPT_FILE
from training.config import FIELDS, load_config
from training.data import epoch_batches, load_split
from training.device import select_device, select_dtype
from training.loop import Amp, forward_loss, train_step

CONTEXT, TARGET = 24, 8
TINY = {"n_layer": 2, "n_embd": 32, "n_head": 2, "batch_size": 4, "learning_rate": 3e-3, "warmup_steps": 0,
        "device": "cpu", "progress": False, "log_every": 1, "patience": 0, "eval_examples": 8,
        "grad_accum": 1}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: on the shared 2-core machines, 2 threads spin more than they compute."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def plan(first_target: int, end: int, stride: int = TARGET) -> list[tuple[int, int, int]]:
    """(start, context, target) of each window whose targets tile [first_target, end)."""
    out = []
    for t0 in range(first_target, end, stride):
        c = min(CONTEXT, t0)
        out.append((t0 - c, c, min(TARGET, end - t0)))
    return out


def write_splits(out: Path, tok_dir: Path, stream: np.ndarray, inline: bool = False) -> Path:
    """Stage 4's three split files (70/15/15 of `stream`), offsets into per-split .npy streams."""
    tok = load_tokenizer(str(tok_dir))
    identity = tokenizer_identity(tok)
    out.mkdir(parents=True, exist_ok=True)
    n = len(stream)
    cuts = [0, int(n * 0.7), int(n * 0.85), n]
    for i, split in enumerate(("train", "val", "test")):
        b, e = cuts[i], cuts[i + 1]
        prefix = min(CONTEXT, b)
        part = stream[b - prefix:e].astype(np.uint16)
        np.save(out / f"training_data_{split}.tokens.npy", part)
        examples = []
        for s, c, t in plan(max(prefix, 1), len(part)):
            ex = {"input_ids": part[s:s + c + t].tolist()} if inline else {"start": s}
            examples.append({**ex, "context_length": c, "target_length": t, "first_commit": "a" * 40,
                             "last_commit": "b" * 40})
        header = {"format": "gitlm-dataset", "version": 1, "split": split, "tokenizer": identity,
                  "tokenizer_dir": str(Path("..") / tok_dir.name), "context_window": CONTEXT,
                  "target_window": TARGET, "stride": TARGET, "tokens_file": f"training_data_{split}.tokens.npy",
                  "dtype": "uint16", "prefix_tokens": prefix, "n_tokens": len(part), "examples": examples}
        (out / f"training_data_{split}.json").write_text(json.dumps(header), encoding="utf-8")
    return out / "training_data_train.json"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, trained_tokenizer_dir) -> Path:
    base = tmp_path_factory.mktemp("trainer")
    shutil.copytree(trained_tokenizer_dir, base / "tokenizer")
    repo = build_sample_repo(base / "repo")
    tok = load_tokenizer(str(base / "tokenizer"))
    text = repo.git("log", "-p", "--reverse", "--all")  # the latin-1 file comes back surrogate-escaped
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    ids = encode_batch(tok, [text])[0]
    assert len(ids) > 2000, len(ids)
    write_splits(base / "dataset", base / "tokenizer", np.asarray(ids))
    return base / "dataset"


def cfg(data_dir: Path, out: Path, **kw):
    return load_config(None, {**TINY, "train_path": str(data_dir / "training_data_train.json"),
                              "output_dir": str(out), **kw})


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run") / "model"
    summary = trainer.run(cfg(data_dir, out, max_steps=30, eval_every=10))
    return out, summary


def test_split_batches_pad_left_and_label_the_target_only(data_dir):
    split = load_split(data_dir / "training_data_train.json")
    assert int(split.context[0]) == 1 and int(split.target[-1]) <= TARGET  # a short window at each end
    b = split.batch([0, 5], loss_on="target")
    ids, mask, labels = b["input_ids"], b["attention_mask"], b["labels"]
    assert ids.shape == (2, CONTEXT + TARGET)
    pad = 1 + TARGET  # example 0 holds context 1 + target 8
    assert mask[0].tolist() == [0] * (ids.shape[1] - pad) + [1] * pad
    assert (ids[0, :-pad] == split.pad_id).all() and (labels[0, :-TARGET] == -100).all()
    s = int(split.starts[5])
    assert ids[1].tolist() == split.tokens[s:s + CONTEXT + TARGET].tolist()
    assert labels[1, -TARGET:].tolist() == ids[1, -TARGET:].tolist() and (labels[1, :-TARGET] == -100).all()
    assert b["position_ids"][0, -pad:].tolist() == list(range(pad))
    every = split.batch([5], loss_on="all")
    assert every["labels"][0].tolist() == every["input_ids"][0].tolist() and every["attention_mask"] is None


def test_inline_examples_read_the_same_as_offsets(data_dir, tmp_path):
    stream = np.concatenate([np.load(data_dir / f"training_data_{s}.tokens.npy") for s in ("train",)])
    write_splits(tmp_path / "ds", data_dir.parent / "tokenizer", stream, inline=False)
    write_splits(tmp_path / "inline", data_dir.parent / "tokenizer", stream, inline=True)
    a, b = load_split(tmp_path / "ds/training_data_val.json"), load_split(tmp_path / "inline/training_data_val.json")
    assert len(a) == len(b) > 0
    for k in ("input_ids", "labels", "position_ids"):
        assert torch.equal(a.batch(range(len(a)))[k], b.batch(range(len(b)))[k])


def test_builder_line_layout_reads_like_whole_json(data_dir, tmp_path):
    """dataset_builder.py writes the header line, then one example per line: streamed, same result."""
    whole = json.loads((data_dir / "training_data_train.json").read_text())
    examples = whole.pop("examples")
    lines = json.dumps(whole)[:-1] + ',"examples":[\n' + ",\n".join(map(json.dumps, examples)) + "\n]}\n"
    (tmp_path / "training_data_train.json").write_text(lines)
    shutil.copy(data_dir / "training_data_train.tokens.npy", tmp_path)
    a, b = load_split(data_dir / "training_data_train.json"), load_split(tmp_path / "training_data_train.json")
    assert a.meta == b.meta and len(a) == len(b) == len(examples)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("starts", "context", "target"))


def test_unknown_format_is_one_line(tmp_path, capsys):
    bad = tmp_path / "training_data_train.json"
    bad.write_text(json.dumps({"format": "something-else", "version": 7, "examples": []}))
    assert trainer.main(["--sequences", str(bad), "--device", "cpu", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a gitlm-dataset split file" in err


def test_epoch_order_is_seeded_and_sharded():
    a, b = epoch_batches(10, 3, seed=1, epoch=0), epoch_batches(10, 3, seed=1, epoch=0)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert sorted(np.concatenate(a).tolist()) == list(range(10))
    assert np.concatenate(epoch_batches(10, 3, 1, 1)).tolist() != np.concatenate(a).tolist()
    r0, r1 = (np.concatenate(epoch_batches(11, 2, 1, 0, rank=r, world=2)) for r in (0, 1))
    assert len(r0) == len(r1) == 5 and not set(r0) & set(r1)


def test_accumulated_loss_is_the_true_mean(data_dir):
    from training.model import scratch_model
    split = load_split(data_dir / "training_data_train.json")
    c = cfg(data_dir, data_dir / "unused")
    torch.manual_seed(0)
    model = scratch_model(c, split.identity, CONTEXT + TARGET)
    batches = [split.batch([0, 1, 2]), split.batch([3])]  # unequal target counts (example 0 is short)
    amp = Amp(torch.device("cpu"), torch.float32)
    with torch.no_grad():
        whole = forward_loss(model, split.batch([0, 1, 2, 3]), torch.device("cpu"), amp, True)
        full = forward_loss(model, split.batch([0, 1, 2, 3]), torch.device("cpu"), amp, False)
    n = sum(b["n_target"] for b in batches)
    assert torch.allclose(whole, full, atol=1e-4)  # logits_to_keep changes nothing in the loss
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    loss, _ = train_step(model, batches, opt, sched, None, torch.device("cpu"), amp, 1.0, True)
    assert loss.item() == pytest.approx(whole.item() / n, rel=1e-5)


def test_tiny_model_learns_and_saves_a_loadable_model(trained):
    out, summary = trained
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [x["loss"] for x in lines if x["event"] == "train"]
    evals = [x for x in lines if x["event"] == "eval"]
    assert len(train) == 30 and [e["step"] for e in evals] == [0, 10, 20, 30]  # step 0: the starting model
    assert sum(train[-5:]) / 5 < train[0] - 1.0, train  # from ~ln(640) down by well over a nat
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert evals[0]["val_perplexity"] == pytest.approx(math.exp(evals[0]["val_loss"]))
    assert summary["test_perplexity"] == pytest.approx(math.exp(summary["test_loss"]))
    assert summary["test_loss"] < summary["test_loss_start"] == evals[0]["test_loss"]
    assert summary["best_val_loss"] == min(e["val_loss"] for e in evals)
    assert (out / CKPT_FILE).exists() is False and (out / "checkpoint" / CKPT_FILE).is_file()

    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
    model, tok = AutoModelForCausalLM.from_pretrained(str(out)), AutoTokenizer.from_pretrained(str(out))
    assert model.config.n_layer == 2 and model.config.n_positions == CONTEXT + TARGET
    # config.json names the saved tokenizer's own special ids; the tokenizer knows the model's length
    assert (model.config.bos_token_id, model.config.eos_token_id) == (tok.bos_token_id, tok.eos_token_id)
    assert tok.model_max_length == CONTEXT + TARGET
    gen = pipeline("text-generation", model=str(out), device="cpu")
    text = gen("def area(", max_new_tokens=5, do_sample=False, return_full_text=False)[0]["generated_text"]
    ids = torch.tensor([encode_batch(tok, ["def area("])[0]])
    new = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False)[0, ids.shape[1]:]
    assert text == tok.decode(new, skip_special_tokens=True)


def test_generate_command_completes_a_prompt(trained, capsys):
    from training import generate
    out, _ = trained
    assert generate.main(["--model", str(out), "--prompt", "pub fn add(", "--max-new-tokens", "6",
                          "--device", "cpu"]) == 0
    printed = capsys.readouterr().out[:-1]  # print's newline
    from transformers import AutoModelForCausalLM
    tok, model = load_tokenizer(str(out)), AutoModelForCausalLM.from_pretrained(str(out))
    ids = torch.tensor([encode_batch(tok, ["pub fn add("])[0]])
    new = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False)[0, ids.shape[1]:]
    assert 1 <= len(new) <= 6 and printed == "pub fn add(" + tok.decode(new, skip_special_tokens=True)


def test_resume_ends_with_the_same_weights(data_dir, tmp_path):
    # dropout > 0 so the restored RNG matters; accumulation and an epoch boundary inside the run
    # The small val split as training data: 2 epochs of a few steps; stopped mid-epoch.
    kw = dict(epochs=2, grad_accum=2, dropout=0.1, eval_every=3, final_weights="last",
              train_path=str(data_dir / "training_data_val.json"), val_path=str(data_dir / "training_data_test.json"),
              test_path=str(data_dir / "training_data_test.json"))
    full = trainer.run(cfg(data_dir, tmp_path / "full", **kw))
    half = trainer.run(cfg(data_dir, tmp_path / "split", stop_at_step=4, **kw))
    assert half["step"] == 4 and half["epoch"] == 0 and not half["finished"]
    rest = trainer.run(cfg(data_dir, tmp_path / "split", resume="last", **kw))
    assert rest["step"] == full["step"] > 8 and rest["epoch"] == full["epoch"] == 2
    a = torch.load(tmp_path / "full/checkpoint" / CKPT_FILE, weights_only=False)["model"]
    b = torch.load(tmp_path / "split/checkpoint" / CKPT_FILE, weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert rest["test_loss"] == full["test_loss"]


def test_pretrained_model_with_another_tokenizer_is_refused(data_dir, tmp_path, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel
    other = train_fallback_tokenizer(["fn main() { println!(\"other\"); }\n"] * 20, tmp_path / "other", vocab_size=300)
    small = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(other))
    GPT2LMHeadModel(small).save_pretrained(tmp_path / "other")
    capsys.readouterr()
    code = trainer.main(["--sequences", str(data_dir / "training_data_train.json"), "--model", str(tmp_path / "other"),
                         "--device", "cpu", "--output", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is not the dataset's" in err[0]


def test_fine_tune_with_lora_from_a_saved_model(trained, data_dir, tmp_path):
    pytest.importorskip("peft", reason="LoRA needs the optional peft package (CI installs it)")
    base, _ = trained
    s = trainer.run(cfg(data_dir, tmp_path / "lora", model=str(base), lora=True, lora_r=4, max_steps=2))
    from transformers import AutoModelForCausalLM
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "lora"))
    assert s["finished"] and not any("lora" in k for k in merged.state_dict())


def test_device_selection_through_torch():
    import os
    import subprocess
    import sys
    assert select_device("cpu").type == "cpu" and select_device(" CPU ").type == "cpu"
    if torch.cuda.is_available():
        assert select_device("auto", local_rank=0) == torch.device("cuda:0")  # a torchrun rank's own GPU
    if sys.platform == "linux":  # no GPU visible (and no MPS on Linux): auto is the CPU, on any machine
        code = "from training.device import select_device; print(select_device('auto'))"
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                              cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120)
        assert done.stdout.strip() == "cpu", done.stderr[-500:]
    assert select_dtype(torch.device("cpu"), "auto") == (torch.float32, False)
    assert select_dtype(torch.device("cpu"), "bf16") == (torch.bfloat16, False)
    with pytest.raises(UserError, match="fp16"):
        select_dtype(torch.device("cpu"), "fp16")
    with pytest.raises(UserError, match="expected auto"):
        select_device("tpu")


def test_cuda_request(data_dir, tmp_path, capsys):
    if torch.cuda.is_available():
        assert select_device("cuda").type == "cuda"
        assert select_dtype(torch.device("cuda"), "auto")[0] in (torch.bfloat16, torch.float16)
        return
    code = trainer.main(["--sequences", str(data_dir / "training_data_train.json"), "--device", "cuda",
                         "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "CUDA is not available" in err[0]


def test_mps_request():
    if not torch.backends.mps.is_available():
        with pytest.raises(UserError, match="MPS"):
            select_device("mps")
        pytest.skip("no Apple Metal (MPS) on this machine: only the refusal is tested")
    assert select_device("mps").type == "mps"
    assert select_dtype(torch.device("mps"), "auto") == (torch.float32, False)


def test_unknown_config_key_is_named(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("n_layer: 2\nlearning_rat: 0.1\n")
    assert trainer.main(["--config", str(bad), "--sequences", "x.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "learning_rat" in err
    with pytest.raises(UserError, match="expected int"):
        load_config(None, {"n_layer": "two"})


def test_config_files_document_every_key():
    root = Path(__file__).resolve().parent.parent
    text = (root / "training_config.yaml").read_text()
    assert set(yaml.safe_load(text)) == set(FIELDS)
    keyed = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert all("  # " in ln for ln in keyed), [ln for ln in keyed if "  # " not in ln]
    big = load_config(root / "training_config.yaml")
    assert (big.n_layer, big.n_embd, big.model) == (12, 768, None)
    tiny = load_config(root / "training_config_tiny.yaml", {"epochs": 2})
    assert tiny.n_layer == 2 and tiny.epochs == 2 and tiny.device == "cpu"


def test_two_process_ddp_on_cpu(data_dir, tmp_path):
    """The torchrun path for real: 2 processes, gloo on the CPU, rank-sharded data, rank 0 writes."""
    import os
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(root / "training/model_trainer_unified.py"), "--sequences", str(data_dir / "training_data_train.json"),
           "--output", str(out), "--device", "cpu", "--max-steps", "4", "--eval-every", "2", "--no-progress",
           "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--batch-size", "2", "--log-every", "1",
           "--eval-examples", "6"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["event"] == "train"] == [1, 2, 3, 4]  # one writer: rank 0
    assert lines[-1]["event"] == "summary" and lines[-1]["finished"] and math.isfinite(lines[-1]["test_loss"])
    assert "(x2 processes)" in done.stderr and done.stderr.count("test perplexity") == 1
    assert (out / "model.safetensors").is_file()
    # The evaluation subset is drawn by seed, not by process count: one process measures the same.
    one = trainer.run(cfg(data_dir, tmp_path / "one", max_steps=1, n_layer=1, batch_size=2, eval_examples=6))
    first = next(x for x in lines if x["event"] == "eval")
    assert first["step"] == 0 and first["test_loss"] == pytest.approx(one["test_loss_start"], rel=1e-5)


def test_early_stopping_after_patience(data_dir, tmp_path, caplog):
    # learning rate 0: the val loss never improves after the first evaluation
    s = trainer.run(cfg(data_dir, tmp_path / "es", learning_rate=0.0, eval_every=1, patience=2, max_steps=20))
    assert s["stopped_early"] and s["finished"] and s["step"] == 2 and s["best_step"] == 0
    evals = [json.loads(x) for x in (tmp_path / "es/metrics.jsonl").read_text().splitlines()]
    assert [(e["step"], e["best"]) for e in evals if e["event"] == "eval"] == [(0, True), (1, False), (2, False)]
    assert "stopped early at step 2 of 20: no better val loss in 2 evaluations; best step 0" in caplog.text


def test_resume_after_a_kill_logs_each_step_once(data_dir, tmp_path):
    """A run killed after its checkpoint at step 4 had logged steps 5-6: the resumed run drops them."""
    kw = dict(max_steps=8, eval_every=100, save_every=4, warmup_steps=0)
    out = tmp_path / "r"
    trainer.run(cfg(data_dir, out, stop_at_step=4, **kw))
    shutil.copytree(out / "checkpoint", tmp_path / "at4")
    trainer.run(cfg(data_dir, out, stop_at_step=6, resume="last", **kw))  # logs 5, 6, then "dies"
    shutil.rmtree(out / "checkpoint")
    shutil.copytree(tmp_path / "at4", out / "checkpoint")
    trainer.run(cfg(data_dir, out, resume="last", **kw))
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if x["event"] == "train"]
    assert steps == list(range(1, 9))
    assert [x["step"] for x in lines if x["event"] == "eval"] == [0, 8]


def test_checkpoint_every_save_every_steps(data_dir, tmp_path, monkeypatch):
    from training import checkpoint
    saved, save = [], checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda d, m, o, s, sc, loop, c: saved.append(loop["step"]) or
                        save(d, m, o, s, sc, loop, c))
    trainer.run(cfg(data_dir, tmp_path / "c", max_steps=7, eval_every=5, save_every=3))
    assert saved == [0, 3, 5, 6, 7]  # evaluations (0, 5, the end) and every 3 steps between them
    assert load_config(None, {}).save_every == 50  # by default a kill loses at most 49 steps


def test_short_runs_warm_up(data_dir, tmp_path):
    from training.trainer import warmup_steps
    trainer.run(cfg(data_dir, tmp_path / "w", max_steps=16, warmup_steps=100, eval_every=100))
    lines = [json.loads(x) for x in (tmp_path / "w/metrics.jsonl").read_text().splitlines()]
    lrs = [x["lr"] for x in lines if x["event"] == "train"]
    assert lrs[:5] == sorted(lrs[:5]) and lrs[0] < lrs[3] == pytest.approx(3e-3) == max(lrs)  # 4 warmup steps
    assert warmup_steps(100, 16) == 4 and warmup_steps(2, 16) == 2


def test_loss_on_all_trains_each_token_once(data_dir, tmp_path, caplog):
    from training.data import non_overlapping
    caplog.set_level("INFO")
    split = load_split(data_dir / "training_data_train.json")
    keep = non_overlapping(split)
    ends = split.starts[keep] + split.context[keep] + split.target[keep]
    assert (split.starts[keep][1:] >= ends[:-1]).all() and len(keep) < len(split)
    assert ends[-1] == split.starts[-1] + split.context[-1] + split.target[-1] or len(split.tokens) - ends[-1] < 40
    s = trainer.run(cfg(data_dir, tmp_path / "all", loss_on="all", max_steps=3))
    assert s["finished"] and f"({len(keep)} non-overlapping windows, loss on every token)" in caplog.text


def test_yaml_exponents_and_defaults_are_one_source(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("finetune_learning_rate: 1e-5\nlearning_rate: 3E-4\n")  # YAML 1.1 reads both as strings
    c = load_config(f)
    assert c.finetune_learning_rate == 1e-5 and c.learning_rate == 3e-4
    f.write_text("learning_rate: fast\n")
    assert trainer.main(["--config", str(f), "--sequences", "x.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "learning_rate" in err and "1.0e-5" in err
    # without --config the settings are the shipped file's: the dataclass defaults are that file
    root = Path(__file__).resolve().parent.parent
    shipped = yaml.safe_load((root / "training_config.yaml").read_text())
    differ = {k: (v, FIELDS[k].default) for k, v in shipped.items() if v != FIELDS[k].default}
    assert not differ


def test_mistyped_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        trainer.main(["--lerning-rate", "1e-4", "--sequences", "x.json"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and "did you mean --learning-rate?" in err
