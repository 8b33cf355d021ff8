"""python3 bench/bench_trainer.py [--steps 30] [--device auto]

Is the trainer's loop as fast as a plain hand-written PyTorch loop? Both train the same
from-scratch model, from the same initial weights, on the same batches (a split file of random
token ids in stage 4's format, written to a temporary directory), and report tokens/s of the
timed steps (the trainer: `train_tokens_per_s` of its summary, evaluation and saving left out).

On the CPU it runs a small GPT-2 twice: loss on every token (the same work in both loops: the
ratio is the trainer's overhead) and loss on the target window (the trainer computes only the
logits the loss needs). On CUDA it also runs the ~125M model of training_config.yaml in bf16 and
prints tokens/s and MFU (6 * parameters * tokens/s / the GPU's peak bf16 FLOP/s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from training import model_trainer_unified as trainer
from training.config import load_config
from training.data import epoch_batches, load_split
from training.device import peak_flops, select_device, select_dtype
from training.model import scratch_model

VOCAB = 50257
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the random split names no real tokenizer: never ask the hub


def write_random_split(out: Path, n_examples: int, context: int, target: int, seed: int = 0) -> Path:
    """A train split of random ids (uint16) in stage 4's format; windows tile the stream."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stream = rng.integers(0, VOCAB, size=context + n_examples * target, dtype=np.uint16)
    np.save(out / "training_data_train.tokens.npy", stream)
    identity = {"name_or_path": "random", "vocab_size": VOCAB, "special_tokens": {}, "separator_id": 0,
                "sha256": "0" * 64, "fallback": False}
    examples = [{"start": i * target, "context_length": context, "target_length": target,
                 "first_commit": "0" * 40, "last_commit": "0" * 40} for i in range(n_examples)]
    header = {"format": "gitlm-dataset", "version": 1, "split": "train", "tokenizer": identity,
              "tokenizer_dir": None, "context_window": context, "target_window": target, "stride": target,
              "tokens_file": "training_data_train.tokens.npy", "dtype": "uint16", "prefix_tokens": 0,
              "n_tokens": len(stream), "examples": examples}
    path = out / "training_data_train.json"
    path.write_text(json.dumps(header), encoding="utf-8")
    return path


def plain_loop(cfg, split, steps: int, device: torch.device) -> float:
    """The floor: model(input_ids, labels).loss, backward, clip, AdamW step. Returns tokens/s."""
    dtype, _ = select_dtype(device, cfg.dtype)
    torch.manual_seed(cfg.seed)
    positions = int(split.meta["context_window"]) + int(split.meta["target_window"])
    model = scratch_model(cfg, split.identity, positions).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, fused=device.type == "cuda")
    batches = [split.batch(i, cfg.loss_on) for i in epoch_batches(len(split), cfg.batch_size, cfg.seed, 0)[:steps]]
    tokens, t0 = 0, time.perf_counter()
    for b in batches:
        ids, labels = b["input_ids"].to(device), b["labels"].to(device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not torch.float32):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += ids.numel()
    loss.item()  # wait for the device
    return tokens / (time.perf_counter() - t0)


def compare(tmp: Path, name: str, steps: int, device: torch.device, rounds: int, **keys) -> dict:
    split_path = write_random_split(tmp / name, n_examples=steps * keys["batch_size"], context=keys.pop("context"),
                                    target=keys.pop("target"))
    cfg = load_config(None, {"train_path": str(split_path), "output_dir": str(tmp / name / "out"), "progress": False,
                             "max_steps": steps, "log_every": steps, "warmup_steps": 0, "device": str(device),
                             "patience": 0, "grad_accum": 1, "save_every": 0, **keys})
    ours = plain = 0.0
    for _ in range(rounds):  # interleaved, best of each: the machine's load drifts
        summary = trainer.run(cfg)
        ours = max(ours, summary["train_tokens_per_s"])
        plain = max(plain, plain_loop(cfg, load_split(split_path), steps, device))
    row = {"case": name, "trainer_tokens_per_s": round(ours), "plain_tokens_per_s": round(plain),
           "ratio": round(ours / plain, 3), "parameters": summary["parameters"]}
    peak = peak_flops(device)
    if peak:
        row["trainer_mfu"] = round(6 * summary["parameters"] * ours / peak, 4)
        row["plain_mfu"] = round(6 * summary["parameters"] * plain / peak, 4)
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per timed loop (default 30)")
    p.add_argument("--device", type=str, default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--rounds", type=int, default=2, help="timed runs of each loop; the best counts (default 2)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = select_device(a.device)
    print(f"# torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads", flush=True)
    small = dict(architecture="gpt2", n_layer=2, n_embd=128, n_head=4, batch_size=4, context=96, target=32)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cpu = torch.device("cpu")
        compare(tmp, "cpu-small-loss-all", a.steps, cpu, a.rounds, loss_on="all", **small)
        compare(tmp, "cpu-small-loss-target", a.steps, cpu, a.rounds, loss_on="target", **small)
        if device.type == "cuda":
            gpt2_small = dict(n_layer=12, n_embd=768, n_head=12, batch_size=8, context=2048, target=256, dtype="bf16")
            compare(tmp, "cuda-125m-bf16-loss-all", a.steps, device, a.rounds, loss_on="all", **gpt2_small)
            compare(tmp, "cuda-125m-bf16-loss-target", a.steps, device, a.rounds, loss_on="target", **gpt2_small)
    return 0


if __name__ == "__main__":
    sys.exit(main())
