"""The resumable checkpoint: one file `checkpoint/trainer_state.pt` holding everything a run needs.

Model and optimizer tensors, scheduler and grad-scaler state, the loop position (step, epoch,
step inside the epoch: the data order itself is a pure function of seed and epoch), the best
validation loss so far, every random generator's state (python, numpy, torch, CUDA) and the
resolved config. Written atomically, so a run killed while saving keeps the previous checkpoint.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from core.io import UserError, atomic_write

logger = logging.getLogger(__name__)

FILE = "trainer_state.pt"


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_state(model) -> dict:
    """The weights a checkpoint needs: all of them, or only the trainable ones of a LoRA model
    (the frozen base is rebuilt from `model` on resume, not stored again)."""
    state = model.state_dict()
    if not hasattr(model, "peft_config"):
        return state
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in state.items() if k in trainable}


def save(directory: Path, model, optimizer, scheduler, scaler, loop_state: dict, config) -> Path:
    path = Path(directory) / FILE
    payload = {
        "model": model_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "loop": dict(loop_state),
        "rng": rng_state(),
        "config": asdict(config),
    }
    with atomic_write(path, "wb") as f:
        torch.save(payload, f)
    logger.debug("checkpoint at step %d -> %s", loop_state["step"], path)
    return path


def load(directory: Path) -> dict:
    path = Path(directory)
    path = path / FILE if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"--resume: no checkpoint at {path}")
    # Our own file: it holds numpy RNG state and plain dicts, which weights_only would refuse.
    return torch.load(path, map_location="cpu", weights_only=False)


def restore(ckpt: dict, model, optimizer, scheduler, scaler, config, peak_lr: float) -> dict:
    """Load a checkpoint's state into freshly built objects; returns the loop position.

    The schedule is this run's: `peak_lr` and the lambda built from this config's steps replace
    the checkpoint's, so a changed --learning-rate or --max-steps applies from the next step.
    """
    changed = sorted(k for k, v in ckpt["config"].items()
                     if k not in ("resume", "stop_at_step", "progress", "device", "report_to")
                     and getattr(config, k, v) != v)
    if changed:
        logger.warning("resuming with settings that differ from the checkpoint's: %s; the result will not "
                       "match an uninterrupted run", ", ".join(changed))
    want = model_state(model).keys()
    if set(ckpt["model"]) != set(want):
        missing = sorted(set(want) - set(ckpt["model"])) or sorted(set(ckpt["model"]) - set(want))
        raise UserError(f"--resume: the checkpoint's model does not match this config (e.g. {missing[0]})")
    try:
        model.load_state_dict(ckpt["model"], strict=False)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise UserError(f"--resume: the checkpoint's model does not match this config ({first})") from None
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scheduler.base_lrs = [peak_lr] * len(optimizer.param_groups)
    for group, lr_lambda in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group["initial_lr"] = peak_lr
        group["lr"] = peak_lr * lr_lambda(scheduler.last_epoch)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    if scaler is not None and ckpt["scaler"] is not None:
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    return ckpt["loop"]
