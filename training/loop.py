"""The training loop's pieces: loss, one optimizer step, optimizer and LR schedule.

    loss_sum = forward_loss(model, batch, device, amp, keep_logits=True)   # summed over target tokens
    loss = train_step(model, micro_batches, optimizer, scheduler, scaler, device, amp, grad_clip)

A step's loss is the sum of per-token losses over all its micro-batches divided by the number
of target tokens in the step, so what is logged is the true mean loss whatever `grad_accum` is.
"""

from __future__ import annotations

import contextlib
import inspect
import math

import torch
import torch.nn.functional as F


class Amp:
    """Autocast settings for one device: `dtype` fp32 means autocast off."""

    def __init__(self, device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype

    def __call__(self):
        if self.dtype is torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def supports_logits_to_keep(model) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(type(base).forward).parameters


def forward_loss(model, batch: dict, device: torch.device, amp: Amp, keep_logits: bool) -> torch.Tensor:
    """Summed cross-entropy over the labelled tokens of one batch (a 0-d float32 tensor)."""
    return token_losses(model, batch, device, amp, keep_logits).sum()


def token_losses(model, batch: dict, device: torch.device, amp: Amp, keep_logits: bool) -> torch.Tensor:
    """Cross-entropy of each kept position, (B, K) float32: 0 where the label is -100.

    Position k predicts the token at column `width - K + k + 1` of the batch. With `keep_logits`,
    the LM head runs only on the last `max_target + 1` positions (the target window and the token
    before it), which is all the loss needs when the loss is on the target: the vocabulary
    projection is a large share of a small model's compute.
    """
    kwargs = {k: batch[k].to(device, non_blocking=True) for k in ("input_ids", "position_ids")}
    if batch["attention_mask"] is not None:
        kwargs["attention_mask"] = batch["attention_mask"].to(device, non_blocking=True)
    if keep_logits and batch["max_target"]:
        kwargs["logits_to_keep"] = batch["max_target"] + 1
    with amp():
        logits = model(**kwargs, use_cache=False).logits  # (B, K, V), K = kept positions
    labels = batch["labels"][:, -logits.size(1):]  # (B, K)
    # Shift the labels, not the logits: slicing (B, K, V) logits would copy them all.
    shifted = F.pad(labels[:, 1:], (0, 1), value=-100).to(device, non_blocking=True)  # (B, K)
    losses = F.cross_entropy(logits.flatten(0, 1).float(), shifted.flatten(), ignore_index=-100, reduction="none")
    return losses.view(shifted.shape)


def train_step(model, micro_batches: list[dict], optimizer, scheduler, scaler, device: torch.device,
               amp: Amp, grad_clip: float, keep_logits: bool, ddp: bool = False):
    """One optimizer step over `micro_batches`; returns (mean loss tensor, grad norm tensor or None)."""
    n_target = max(1, sum(b["n_target"] for b in micro_batches))
    total = torch.zeros((), device=device)
    for i, batch in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        sync = contextlib.nullcontext() if (last or not ddp) else model.no_sync()
        with sync:
            loss_sum = forward_loss(model, batch, device, amp, keep_logits)
            loss = loss_sum / n_target
            (scaler.scale(loss) if scaler is not None else loss).backward()
        total += loss_sum.detach()
    norm = None
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return total / n_target, norm


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")


def make_optimizer(model, lr: float, weight_decay: float, betas: tuple[float, float], device: torch.device):
    """AdamW; weight decay on matrices only (not on biases, norms' gains)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, betas=betas, **fused)


def cosine_schedule(optimizer, total_steps: int, warmup_steps: int, min_ratio: float):
    """Linear warmup to the peak, then cosine decay to `min_ratio` of it at `total_steps`.

    >>> [round(cosine_lambda(s, 10, 2, 0.1), 3) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.55, 0.1]
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: cosine_lambda(s, total_steps, warmup_steps, min_ratio))


def cosine_lambda(step: int, total: int, warmup: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
