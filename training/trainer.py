"""The training loop as an object: `Trainer(cfg, model, train, evaluator, ...).run()` -> the summary.

    trainer = Trainer(cfg, core, train, Evaluator.draw(evals, 200, 0), dist, device, dtype, use_scaler,
                      positions, tok, fim)
    summary = trainer.run()      # step-0 evaluation, steps, evaluations, checkpoints, the final model

Its state is `LoopState` (step, epoch, step in the epoch, best val loss and step, evaluations without
improvement, tokens, the step-0 losses, the latest evaluation), saved in every checkpoint and
restored by --resume; training/model_trainer_unified.py builds the pieces and parses the flags.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.io import UserError
from training import checkpoint
from training.config import TrainConfig, peak_learning_rate
from training.data import Split, epoch_batches, non_overlapping
from training.outputs import Metrics, change_line, save_model

logger = logging.getLogger(__name__)


def _cpu_estimate(run_micro, steps: int, grad_accum: int) -> None:
    """Time one micro-batch (forward and backward) and say what the run will cost on this CPU.

    The first pass pays one-off costs (allocation, kernel choice): when it is quick, a second one
    is timed instead."""
    t0 = time.perf_counter()
    run_micro()
    per_step = (time.perf_counter() - t0) * grad_accum
    if per_step < 30 * grad_accum:
        t0 = time.perf_counter()
        run_micro()
        per_step = (time.perf_counter() - t0) * grad_accum
    logger.warning("training on the CPU: about %s per step, %s for the %d steps left (one micro-batch timed)",
                   _duration(per_step), _duration(per_step * steps), steps)


def _duration(seconds: float) -> str:
    """A duration for people: seconds below 2 minutes, then minutes, hours, days.

    >>> [_duration(s) for s in (0.031, 12.4, 119.6, 300, 3 * 86400)]
    ['0.031 s', '12 s', '120 s', '5.0 min', '3.0 days']
    """
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"


def warmup_steps(requested: int, total: int) -> int:
    """Warmup steps: as requested, capped at a quarter of the run, so a short run still warms up
    and still spends most of its steps at and after the peak.

    >>> [warmup_steps(100, n) for n in (1, 16, 400, 10000)]
    [1, 4, 100, 100]
    """
    return min(requested, -(-total // 4))


@dataclass
class LoopState:
    """Where the loop is: saved in every checkpoint, restored by --resume."""
    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_val: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    tokens: int = 0                                       # real tokens trained on, all ranks
    start: dict = field(default_factory=dict)             # step-0 loss per split
    last_eval: dict = field(default_factory=dict)         # {"step", "val"} of the latest evaluation


class Trainer:
    """The training loop: `Trainer(...).run()` trains to the end (or --stop-at-step) and returns the summary."""

    def __init__(self, cfg: TrainConfig, core, train: Split, evaluator, dist, device, dtype, use_scaler: bool,
                 positions: int, tok, fim):
        import torch

        from training.device import peak_flops
        from training.loop import Amp, cosine_schedule, make_optimizer, supports_logits_to_keep
        from training.model import count_params

        self.cfg, self.core, self.train, self.ev, self.dist, self.device = cfg, core, train, evaluator, dist, device
        self.out, self.tok, self.fim, self.positions = Path(cfg.output_dir), tok, fim, positions
        core.train()
        self.keep = cfg.loss_on == "target" and supports_logits_to_keep(core)
        self.examples = non_overlapping(train) if cfg.loss_on == "all" else np.arange(len(train))
        self.peak_lr, self.lr_key = peak_learning_rate(cfg)
        self.optimizer = make_optimizer(core, self.peak_lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), device)
        n_batches = len(epoch_batches(len(self.examples), cfg.batch_size, cfg.seed, 0, dist.rank, dist.world))
        if n_batches == 0:
            raise UserError(f"{cfg.train_path}: {len(self.examples)} examples are too few for {dist.world} processes")
        self.steps_per_epoch = -(-n_batches // cfg.grad_accum)
        self.total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * self.steps_per_epoch
        self.stop_at = min(self.total_steps, cfg.stop_at_step) if cfg.stop_at_step > 0 else self.total_steps
        self.warmup = warmup_steps(cfg.warmup_steps, self.total_steps)
        self.scheduler = cosine_schedule(self.optimizer, self.total_steps, self.warmup, cfg.min_lr_ratio)
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.state, self.resumed_from, self.saved_at = LoopState(), None, None
        if cfg.resume:
            self.resumed_from = self.out / "checkpoint" if cfg.resume == "last" else Path(cfg.resume)
            ckpt = checkpoint.load(self.resumed_from)
            saved = checkpoint.restore(ckpt, core, self.optimizer, self.scheduler, self.scaler, cfg, self.peak_lr)
            self.state = LoopState(**{k: v for k, v in saved.items() if k in LoopState.__dataclass_fields__})
        self.model = torch.compile(core) if cfg.compile else core
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel
            self.model = DistributedDataParallel(self.model,
                                                 device_ids=[device.index] if device.type == "cuda" else None)
        self.amp = Amp(device, dtype)
        self.n_params, self.n_trainable = count_params(core)
        self.peak_flops = peak_flops(device)
        self.train_time, self.run_tokens, self.last_log = 0.0, 0, (time.perf_counter(), self.state.tokens)

    def run(self) -> dict:
        cfg, out = self.cfg, self.out
        if self.dist.main:
            out.mkdir(parents=True, exist_ok=True)
            self._announce()
            self.ev.save(out / "eval_set.json")
        self.metrics = Metrics(out / "metrics.jsonl", self.dist.main, resume_step=self.state.step if cfg.resume else None,
                               tensorboard=out / "runs" if cfg.report_to == "tensorboard" else None)
        if self.resumed_from is not None:
            self.metrics.write({"event": "resume", "step": self.state.step, "checkpoint": str(self.resumed_from)})
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
        show = cfg.progress and self.dist.main
        with contextlib.ExitStack() as stack:
            if show:
                stack.enter_context(logging_redirect_tqdm())  # log lines above the bar, not through it
            self.bar = stack.enter_context(tqdm(total=self.total_steps, initial=self.state.step, unit="step",
                                                disable=not show))
            try:
                stopped_early = self._loop()
            except KeyboardInterrupt:
                self._save_checkpoint()
                self.metrics.write({"event": "interrupted", "step": self.state.step})
                self.metrics.close()
                logger.warning("interrupted at step %d: checkpoint saved to %s; continue with --resume",
                               self.state.step, out / "checkpoint")
                raise
        return self._finish(stopped_early)

    def _announce(self) -> None:
        cfg, dist, s = self.cfg, self.dist, self.state
        tokens_per_step = cfg.batch_size * cfg.grad_accum * self.positions * dist.world
        logger.info("***** Running training *****")
        logger.info("  device %s (x%d processes), dtype %s, model %s", self.device, dist.world,
                    str(self.amp.dtype).split(".")[-1], cfg.model or f"{cfg.architecture} from scratch")
        logger.info("  parameters %s (trainable %s)", f"{self.n_params:,}", f"{self.n_trainable:,}")
        logger.info("  examples: train %d%s, val %d, test %d; %d tokens per example at most", len(self.train),
                    f" ({len(self.examples)} non-overlapping windows, loss on every token)"
                    if cfg.loss_on == "all" else "", len(self.ev.splits.get("val", ())),
                    len(self.ev.splits.get("test", ())), self.positions)
        logger.info("  evaluation set: %s examples of val and test (eval_seed %d), recorded in %s",
                    cfg.eval_examples or "all", cfg.eval_seed, self.out / "eval_set.json")
        logger.info("  effective batch %d examples = %d per micro-batch x %d accumulation x %d processes "
                    "(<= %s tokens/step)", cfg.batch_size * cfg.grad_accum * dist.world, cfg.batch_size,
                    cfg.grad_accum, dist.world, f"{tokens_per_step:,}")
        logger.info("  learning rate %.2e (%s%s), warmup %d steps, cosine to %.2e", self.peak_lr, self.lr_key,
                    ": the fine-tuning rate, not learning_rate" if cfg.model else "", self.warmup,
                    self.peak_lr * cfg.min_lr_ratio)
        logger.info("  steps %d (%d per epoch), from step %d; evaluation %s, checkpoint %s", self.total_steps,
                    self.steps_per_epoch, s.step,
                    f"every {cfg.eval_every} steps" if cfg.eval_every else "at the end of each epoch",
                    f"every {cfg.save_every} steps and at evaluations" if cfg.save_every else "at evaluations")
        if self.fim is not None:
            logger.info("  fill-in-the-middle on %.0f%% of the chunks (%.0f%% of them SPM), tokens %s%s",
                        100 * cfg.fim_rate, 100 * cfg.fim_spm_rate, ", ".join(self.fim.spec.names),
                        " (added)" if self.fim.spec.added else "")

    def _loop(self) -> bool:
        """Train to `stop_at`; True when early stopping ended the run."""
        cfg, s = self.cfg, self.state
        stopped = self._evaluate() if s.step == 0 else False
        if self.device.type == "cpu" and self.dist.main and s.step < self.stop_at:
            rng = checkpoint.rng_state()  # the timing must not change the run's dropout draws
            first = self._batch(epoch_batches(len(self.examples), cfg.batch_size, cfg.seed, s.epoch)[0])
            _cpu_estimate(lambda: _forward_backward(self.core, first, self.device, self.amp, self.keep),
                          self.stop_at - s.step, cfg.grad_accum)
            checkpoint.set_rng_state(rng)
        self.last_log = (time.perf_counter(), s.tokens)
        while s.step < self.stop_at and not stopped:
            batches = epoch_batches(len(self.examples), cfg.batch_size, cfg.seed, s.epoch, self.dist.rank,
                                    self.dist.world)
            while s.step_in_epoch < self.steps_per_epoch and s.step < self.stop_at and not stopped:
                self._step(batches)
                stopped = self._after_step()
            if s.step_in_epoch >= self.steps_per_epoch:  # the epoch is complete
                s.epoch, s.step_in_epoch = s.epoch + 1, 0
                if not cfg.eval_every and not stopped:
                    stopped = self._evaluate()
        if s.last_eval.get("step") != s.step and s.step == self.total_steps:
            self._evaluate()
        self._save_checkpoint()
        return stopped

    def _batch(self, idx: np.ndarray) -> dict:
        """The micro-batch of epoch positions `idx` (indices into `examples`), FIM applied when asked."""
        ids = self.examples[idx]
        epoch = self.state.epoch
        transform = None if self.fim is None else (lambda i, row: self.fim((epoch, i), row))
        return self.train.batch(ids, self.cfg.loss_on, transform)

    def _step(self, batches: list[np.ndarray]) -> None:
        from training.loop import train_step
        cfg, s = self.cfg, self.state
        first = s.step_in_epoch * cfg.grad_accum
        micro = [self._batch(idx) for idx in batches[first:first + cfg.grad_accum]]
        t0, lr = time.perf_counter(), self.scheduler.get_last_lr()[0]
        loss, norm = train_step(self.model, micro, self.optimizer, self.scheduler, self.scaler, self.device,
                                self.amp, cfg.grad_clip, self.keep, ddp=self.dist.world > 1)
        s.step, s.step_in_epoch = s.step + 1, s.step_in_epoch + 1
        step_tokens = sum(b["n_tokens"] for b in micro) * self.dist.world
        s.tokens += step_tokens
        self.run_tokens += step_tokens
        self.bar.update(1)
        if s.step % cfg.log_every == 0 or s.step == self.stop_at:
            self._log_step(loss, norm, lr)
        self.train_time += time.perf_counter() - t0

    def _log_step(self, loss, norm, lr: float) -> None:
        import torch
        s = self.state
        loss_v = loss.item()  # the one host sync per logged step
        if self.dist.world > 1:
            t = torch.tensor([loss_v], device=self.device)
            torch.distributed.all_reduce(t)
            loss_v = t.item() / self.dist.world
        now = time.perf_counter()
        tps = (s.tokens - self.last_log[1]) / max(now - self.last_log[0], 1e-9)
        record = {"event": "train", "step": s.step, "epoch": s.epoch, "loss": loss_v, "lr": lr, "tokens": s.tokens,
                  "tokens_per_s": tps}
        if norm is not None:
            record["grad_norm"] = norm.item()
        if self.peak_flops:
            record["mfu"] = 6 * self.n_trainable * tps / self.dist.world / self.peak_flops
        self.metrics.write(record)
        self.bar.set_postfix(loss=f"{loss_v:.4f}", lr=f"{lr:.2e}", tok_s=f"{tps:,.0f}")
        self.last_log = (time.perf_counter(), s.tokens)

    def _after_step(self) -> bool:
        """Evaluate or checkpoint when this step calls for it; True when patience has run out."""
        cfg, s = self.cfg, self.state
        if cfg.eval_every and s.step % cfg.eval_every == 0 and "val" in self.ev.splits:
            stopped = self._evaluate()
            self.last_log = (time.perf_counter(), s.tokens)  # tokens/s leaves evaluation out
            return stopped
        if cfg.save_every and s.step % cfg.save_every == 0:
            self._save_checkpoint()
        return False

    def _measure(self, model, name: str) -> float:
        # The unwrapped model: ranks may hold different batch counts, and DDP would wait for the others.
        return self.ev.measure(model, name, self.device, self.cfg.batch_size, self.dist.rank, self.dist.world)["loss"]

    def _evaluate(self) -> bool:
        """Val (at step 0 also test, each once), keep the best model; True when patience has run out."""
        from training.loop import perplexity
        s = self.state
        names = [n for n in (("val", "test") if s.step == 0 else ("val",)) if n in self.ev.splits]
        losses = {name: self._measure(self.core, name) for name in names}
        if s.step == 0:
            s.start = dict(losses)
        if "val" not in losses:
            return False
        loss = losses["val"]
        s.last_eval = {"step": s.step, "val": loss}
        record = {"event": "eval", "step": s.step, "epoch": s.epoch, "val_loss": loss, "val_perplexity": perplexity(loss)}
        if "test" in losses:
            record.update(test_loss=losses["test"], test_perplexity=perplexity(losses["test"]))
        improved = s.best_val is None or loss < s.best_val
        if improved:
            s.best_val, s.best_step = loss, s.step
        s.bad_evals = 0 if improved else s.bad_evals + 1
        self.metrics.write({**record, "best": improved})
        logger.info("step %d: val loss %.4f, perplexity %.2f%s", s.step, loss, perplexity(loss),
                    " (best)" if improved else "")
        if improved and self.dist.main:
            save_model(self.core, self.tok, self.out / "best", self.train.identity, self._run_record())
        if improved and self.dist.world > 1:
            import torch
            torch.distributed.barrier()  # every rank may load best/ at the end
        self._save_checkpoint()
        return self.cfg.patience > 0 and s.bad_evals >= self.cfg.patience

    def _save_checkpoint(self) -> None:
        if self.saved_at == self.state.step:
            return  # written at this step already (an evaluation at the last step)
        self.saved_at = self.state.step
        if self.dist.main:
            checkpoint.save(self.out / "checkpoint", self.core, self.optimizer, self.scheduler, self.scaler,
                            asdict(self.state), self.cfg)

    def _run_record(self) -> dict:
        """run.json beside a saved model: the dataset's tokenizer, FIM tokens (added or own), the settings."""
        return {"format": "gitlm-run", "version": 1, "dataset_tokenizer": self.train.identity,
                "fim": self.fim.spec.record() if self.fim is not None else None, "config": asdict(self.cfg)}

    def _finish(self, stopped_early: bool) -> dict:
        from training.loop import perplexity
        cfg, s, out, total = self.cfg, self.state, self.out, self.total_steps
        finished = s.step >= total or stopped_early
        summary = {"event": "summary", "step": s.step, "epoch": s.epoch, "tokens": s.tokens,
                   "train_tokens_per_s": self.run_tokens / self.train_time if self.train_time else 0.0,
                   "best_val_loss": s.best_val, "best_step": s.best_step, "stopped_early": stopped_early,
                   "parameters": self.n_params, "finished": finished}
        if stopped_early:
            logger.warning("stopped early at step %d of %d: no better val loss in %d evaluations; best step %d "
                           "(val loss %.4f)", s.step, total, cfg.patience, s.best_step, s.best_val)
        elif not finished:
            logger.warning("stopped at step %d as --stop-at-step %d asked (the %d-step schedule is unchanged); "
                           "checkpoint in %s: continue with --resume", s.step, cfg.stop_at_step, total,
                           out / "checkpoint")
        if finished:
            final = _final_model(cfg, self.core, out, s, self.device)
            changes = {}
            for name in self.ev.splits:
                end = self._final_loss(final, name)
                summary.update({f"{name}_loss": end, f"{name}_perplexity": perplexity(end)})
                if name in s.start:
                    summary.update({f"{name}_loss_start": s.start[name],
                                    f"{name}_perplexity_start": perplexity(s.start[name])})
                changes[name] = (s.start.get(name), end)
            if changes:
                logger.info("%s (%s weights%s)", change_line(changes) or "no starting evaluation to compare with",
                            cfg.final_weights, f", best step {s.best_step}" if s.best_step is not None else "")
            if self.dist.main:
                save_model(final, self.tok, out, self.train.identity, self._run_record())
                if final is not self.core and (out / "best" / "adapter").is_dir():
                    shutil.copytree(out / "best" / "adapter", out / "adapter", dirs_exist_ok=True)
                logger.info("model saved to %s", out)
        self.metrics.write(summary)
        self.metrics.close()
        if self.dist.world > 1:
            import torch
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        return summary

    def _final_loss(self, final, name: str) -> float:
        """The final weights' loss on `name`: val is known when they are the best or the last evaluated ones."""
        s = self.state
        if name == "val" and final is not self.core and s.best_val is not None:
            return s.best_val
        if name == "val" and final is self.core and s.last_eval.get("step") == s.step:
            return s.last_eval["val"]
        return self._measure(final, name)


def _forward_backward(model, batch, device, amp, keep) -> None:
    from training.loop import forward_loss
    forward_loss(model, batch, device, amp, keep).backward()
    model.zero_grad(set_to_none=True)


def _final_model(cfg: TrainConfig, core, out: Path, state: LoopState, device):
    """The weights to save: `core` as it ends, or best/ (the starting model when nothing beat it)."""
    import torch
    if cfg.final_weights != "best" or state.best_val is None or not (out / "best").is_dir():
        return core
    from transformers import AutoModelForCausalLM

    from training.model import quiet_transformers
    with quiet_transformers():
        return AutoModelForCausalLM.from_pretrained(str(out / "best"), dtype=torch.float32).to(device)
