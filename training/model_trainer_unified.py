"""python3 training/model_trainer_unified.py --config training_config.yaml --sequences data/NAME/dataset/training_data_train.json --epochs 1 --output models/NAME-test

Train a causal code model on stage 4's splits, from scratch or from a pretrained model (full or
LoRA), on CUDA, Apple Metal or CPU; the same command under `torchrun --nproc-per-node N` runs
DistributedDataParallel. Writes to the output directory:

    config.json, model.safetensors, generation_config.json, tokenizer files   (the final model)
    adapter/         LoRA only: the adapter alone (PeftModel.from_pretrained)
    best/            the best model by validation loss so far, the starting model included (step 0)
    checkpoint/      trainer_state.pt: everything `--resume` needs to continue exactly
    metrics.jsonl    one line per logged step, per evaluation, and the run's summary
    runs/            TensorBoard events, with --report-to tensorboard
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.io import UserError, run_main, setup_logging
from training import checkpoint
from training.config import TrainConfig, add_config_flags, load_config, peak_learning_rate
from training.data import Split, epoch_batches, eval_indices, load_split, shard_batches, sibling_split
from training.outputs import Metrics, change_line, dataset_tokenizer, is_out_of_memory, save_model

logger = logging.getLogger(__name__)


def _splits(cfg: TrainConfig) -> tuple[Split, Split | None, Split | None]:
    if not cfg.train_path:
        raise UserError("no training data: give --sequences PATH/training_data_train.json "
                        "(or train_path in the config)")
    from tokenizers_.loading import same_tokenizer
    train = load_split(cfg.train_path)
    if len(train) == 0:
        raise UserError(f"{cfg.train_path}: no examples to train on")
    others = []
    for name, given in (("val", cfg.val_path), ("test", cfg.test_path)):
        path = given or sibling_split(cfg.train_path, name)
        split = load_split(path) if path else None
        if split is not None and not same_tokenizer(split.identity, train.identity):
            raise UserError(f"{path}: built with a different tokenizer than {cfg.train_path}")
        others.append(split if split is not None and len(split) else None)
    return train, others[0], others[1]


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


def run(cfg: TrainConfig) -> dict:
    """Train as `cfg` says; returns the run's summary (also the last line of metrics.jsonl)."""
    import torch

    from training.device import init_distributed, select_device, select_dtype
    from training.model import build_model, fit_positions

    if cfg.device != "cpu" and cfg.device != "mps":
        from training.device import cuda_alloc_conf
        cuda_alloc_conf()
    dist = init_distributed(cfg.device)
    device = select_device(cfg.device, dist.local_rank)
    dtype, use_scaler = select_dtype(device, cfg.dtype)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever autocast leaves in fp32
    train, val, test = _splits(cfg)
    out = Path(cfg.output_dir)
    evals = {name: s for name, s in (("val", val), ("test", test)) if s is not None}
    positions = int(train.meta["context_window"]) + int(train.meta["target_window"])
    try:
        torch.manual_seed(cfg.seed)
        core = build_model(cfg, train.identity, positions).to(device)
        positions = fit_positions(core, [train, *evals.values()], cfg.max_context)
        return _train(cfg, core, train, evals, out, dist, device, dtype, use_scaler, positions)
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        raise UserError(f"out of memory on {device} at batch_size={cfg.batch_size} with {positions} tokens per "
                        "example: lower batch_size (raise grad_accum to keep tokens/step), set "
                        "gradient_checkpointing: true, lower max_context, or use a smaller model") from None


def _train(cfg, core, train, evals, out, dist, device, dtype, use_scaler, positions) -> dict:
    import torch

    from training.device import peak_flops
    from training.loop import (Amp, cosine_schedule, evaluate, make_optimizer, perplexity, supports_logits_to_keep,
                               train_step)
    from training.model import count_params

    core.train()
    keep = cfg.loss_on == "target" and supports_logits_to_keep(core)
    peak_lr, lr_key = peak_learning_rate(cfg)
    optimizer = make_optimizer(core, peak_lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), device)
    batches_per_epoch = len(epoch_batches(len(train), cfg.batch_size, cfg.seed, 0, dist.rank, dist.world))
    if batches_per_epoch == 0:
        raise UserError(f"{cfg.train_path}: {len(train)} examples are too few for {dist.world} processes")
    steps_per_epoch = -(-batches_per_epoch // cfg.grad_accum)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch
    warmup = min(cfg.warmup_steps, total_steps // 10)
    scheduler = cosine_schedule(optimizer, total_steps, warmup, cfg.min_lr_ratio)
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    loop = {"step": 0, "epoch": 0, "step_in_epoch": 0, "best_val": None, "best_step": None, "bad_evals": 0,
            "tokens": 0, "start": {}}
    resumed_from = None
    if cfg.resume:
        resumed_from = out / "checkpoint" if cfg.resume == "last" else Path(cfg.resume)
        ckpt = checkpoint.load(resumed_from)
        loop = {**loop, **checkpoint.restore(ckpt, core, optimizer, scheduler, scaler, cfg, peak_lr)}
        del ckpt
    model = torch.compile(core) if cfg.compile else core
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp = Amp(device, dtype)
    tok = dataset_tokenizer(cfg.model, train) if dist.main else None
    n_params, n_trainable = count_params(core)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * positions * dist.world
    peak = peak_flops(device)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        logger.info("***** Running training *****")
        logger.info("  device %s (x%d processes), dtype %s, model %s", device, dist.world, str(dtype).split(".")[-1],
                    cfg.model or f"{cfg.architecture} from scratch")
        logger.info("  parameters %s (trainable %s)", f"{n_params:,}", f"{n_trainable:,}")
        logger.info("  examples: train %d, val %d, test %d; %d tokens per example at most", len(train),
                    len(evals.get("val", ())), len(evals.get("test", ())), positions)
        logger.info("  effective batch %d examples = %d per micro-batch x %d accumulation x %d processes "
                    "(<= %s tokens/step)", cfg.batch_size * cfg.grad_accum * dist.world, cfg.batch_size,
                    cfg.grad_accum, dist.world, f"{tokens_per_step:,}")
        logger.info("  learning rate %.2e (%s%s), warmup %d steps, cosine to %.2e", peak_lr, lr_key,
                    ": the fine-tuning rate, not learning_rate" if cfg.model else "", warmup, peak_lr * cfg.min_lr_ratio)
        logger.info("  steps %d (%d per epoch), from step %d; evaluation and checkpoint %s", total_steps,
                    steps_per_epoch, loop["step"],
                    f"every {cfg.eval_every} steps" if cfg.eval_every else "at the end of each epoch")
    metrics = Metrics(out / "metrics.jsonl", dist.main, append=bool(cfg.resume),
                      tensorboard=out / "runs" if cfg.report_to == "tensorboard" else None)
    if resumed_from is not None:  # records after this line replace those of the same steps before it
        metrics.write({"event": "resume", "step": loop["step"], "checkpoint": str(resumed_from)})
    n_eval = cfg.eval_max_batches * cfg.batch_size
    eval_batches = {name: shard_batches(eval_indices(len(s), n_eval, cfg.seed), cfg.batch_size, dist.rank, dist.world)
                    for name, s in evals.items()}

    def measure(m, name: str) -> float:
        # The unwrapped model: ranks may hold different batch counts, and DDP would wait for the others.
        return evaluate(m, evals[name], eval_batches[name], device, amp, cfg.loss_on,
                        keep and supports_logits_to_keep(m), dist.world)[0]

    def save_checkpoint():
        if dist.main:
            checkpoint.save(out / "checkpoint", core, optimizer, scheduler, scaler, loop, cfg)

    def run_eval() -> bool:
        """Evaluate on val, keep the best model (step 0: the starting one); True when patience has run out."""
        loss = measure(core, "val")
        record = {"event": "eval", "step": loop["step"], "epoch": loop["epoch"], "val_loss": loss,
                  "val_perplexity": perplexity(loss)}
        if loop["step"] == 0:
            loop["start"] = {name: measure(core, name) for name in evals}
            if "test" in evals:
                record.update(test_loss=loop["start"]["test"], test_perplexity=perplexity(loop["start"]["test"]))
        improved = loop["best_val"] is None or loss < loop["best_val"]
        if improved:
            loop["best_val"], loop["best_step"] = loss, loop["step"]
        loop["bad_evals"] = 0 if improved else loop["bad_evals"] + 1
        metrics.write({**record, "best": improved})
        logger.info("step %d: val loss %.4f, perplexity %.2f%s", loop["step"], loss, perplexity(loss),
                    " (best)" if improved else "")
        if improved and dist.main:
            save_model(core, tok, out / "best", train.identity)
        if improved and dist.world > 1:
            torch.distributed.barrier()  # every rank may load best/ at the end
        save_checkpoint()
        return cfg.patience > 0 and loop["bad_evals"] >= cfg.patience

    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    with contextlib.ExitStack() as stack:
        if cfg.progress and dist.main:
            stack.enter_context(logging_redirect_tqdm())  # log lines above the bar, not through it
        bar = stack.enter_context(tqdm(total=total_steps, initial=loop["step"], unit="step",
                                       disable=not (cfg.progress and dist.main)))
        stop_at = min(total_steps, cfg.stop_at_step) if cfg.stop_at_step > 0 else total_steps
        train_time, run_tokens, last_log = 0.0, 0, (time.perf_counter(), loop["tokens"])
        stopped_early, evaluated_at = False, None
        try:
            if loop["step"] == 0 and "val" in evals:
                evaluated_at, stopped_early = 0, run_eval()
            elif loop["step"] == 0:
                loop["start"] = {name: measure(core, name) for name in evals}
            if device.type == "cpu" and dist.main and loop["step"] < stop_at:
                rng = checkpoint.rng_state()  # the timing must not change the run's dropout draws
                first = epoch_batches(len(train), cfg.batch_size, cfg.seed, loop["epoch"])[0]
                _cpu_estimate(lambda: _forward_backward(core, train.batch(first, cfg.loss_on), device, amp, keep),
                              stop_at - loop["step"], cfg.grad_accum)
                checkpoint.set_rng_state(rng)
            last_log = (time.perf_counter(), loop["tokens"])
            while loop["step"] < stop_at and not stopped_early:
                batches = epoch_batches(len(train), cfg.batch_size, cfg.seed, loop["epoch"], dist.rank, dist.world)
                while loop["step_in_epoch"] < steps_per_epoch and loop["step"] < stop_at:
                    first = loop["step_in_epoch"] * cfg.grad_accum
                    micro = [train.batch(idx, cfg.loss_on) for idx in batches[first:first + cfg.grad_accum]]
                    t0, lr = time.perf_counter(), scheduler.get_last_lr()[0]
                    loss, norm = train_step(model, micro, optimizer, scheduler, scaler, device, amp, cfg.grad_clip,
                                            keep, ddp=dist.world > 1)
                    loop["step"] += 1
                    loop["step_in_epoch"] += 1
                    step_tokens = sum(b["n_tokens"] for b in micro) * dist.world
                    loop["tokens"] += step_tokens
                    run_tokens += step_tokens
                    bar.update(1)
                    if loop["step"] % cfg.log_every == 0 or loop["step"] == stop_at:
                        loss_v = loss.item()  # the one host sync per logged step
                        if dist.world > 1:
                            t = torch.tensor([loss_v], device=device)
                            torch.distributed.all_reduce(t)
                            loss_v = t.item() / dist.world
                        now = time.perf_counter()
                        tps = (loop["tokens"] - last_log[1]) / max(now - last_log[0], 1e-9)
                        record = {"event": "train", "step": loop["step"], "epoch": loop["epoch"], "loss": loss_v,
                                  "lr": lr, "tokens": loop["tokens"], "tokens_per_s": tps}
                        if norm is not None:
                            record["grad_norm"] = norm.item()
                        if peak:
                            record["mfu"] = 6 * n_trainable * tps / dist.world / peak
                        metrics.write(record)
                        bar.set_postfix(loss=f"{loss_v:.4f}", lr=f"{record['lr']:.2e}", tok_s=f"{tps:,.0f}")
                        last_log = (time.perf_counter(), loop["tokens"])
                    train_time += time.perf_counter() - t0
                    if "val" in evals and cfg.eval_every and loop["step"] % cfg.eval_every == 0:
                        evaluated_at, stopped_early = loop["step"], run_eval()
                        last_log = (time.perf_counter(), loop["tokens"])  # tokens/s leaves evaluation out
                        if stopped_early:
                            break
                    elif cfg.save_every and loop["step"] % cfg.save_every == 0:
                        save_checkpoint()
                if loop["step_in_epoch"] >= steps_per_epoch:  # the epoch is complete
                    loop["epoch"] += 1
                    loop["step_in_epoch"] = 0
                    if "val" in evals and not cfg.eval_every and not stopped_early:
                        evaluated_at, stopped_early = loop["step"], run_eval()
                        last_log = (time.perf_counter(), loop["tokens"])
            if "val" in evals and evaluated_at != loop["step"] and loop["step"] == total_steps:
                run_eval()
            save_checkpoint()
        except KeyboardInterrupt:
            save_checkpoint()
            metrics.write({"event": "interrupted", "step": loop["step"]})
            metrics.close()
            logger.warning("interrupted at step %d: checkpoint saved to %s; continue with --resume", loop["step"],
                           out / "checkpoint")
            raise
    finished = loop["step"] >= total_steps or stopped_early
    summary = {"event": "summary", "step": loop["step"], "epoch": loop["epoch"], "tokens": loop["tokens"],
               "train_tokens_per_s": run_tokens / train_time if train_time else 0.0,
               "best_val_loss": loop["best_val"], "best_step": loop["best_step"], "stopped_early": stopped_early,
               "parameters": n_params, "finished": finished}
    if stopped_early:
        logger.warning("stopped early at step %d of %d: no better val loss in %d evaluations; best step %d "
                       "(val loss %.4f)", loop["step"], total_steps, cfg.patience, loop["best_step"], loop["best_val"])
    elif not finished:
        logger.warning("stopped at step %d as --stop-at-step %d asked (the %d-step schedule is unchanged); "
                       "checkpoint in %s: continue with --resume", loop["step"], cfg.stop_at_step, total_steps,
                       out / "checkpoint")
    if finished:
        final = _final_model(cfg, core, out, loop, device)
        changes = {}
        for name in evals:
            end = measure(final, name)
            start = loop["start"].get(name)
            summary.update({f"{name}_loss": end, f"{name}_perplexity": perplexity(end)})
            if start is not None:
                summary.update({f"{name}_loss_start": start, f"{name}_perplexity_start": perplexity(start)})
            changes[name] = (start, end)
        if changes:
            logger.info("%s (%s weights%s)", change_line(changes) or "no starting evaluation to compare with",
                        cfg.final_weights, f", best step {loop['best_step']}" if loop["best_step"] is not None else "")
        if dist.main:
            save_model(final, tok, out, train.identity)
            if final is not core and (out / "best" / "adapter").is_dir():
                shutil.copytree(out / "best" / "adapter", out / "adapter", dirs_exist_ok=True)
            logger.info("model saved to %s", out)
    metrics.write(summary)
    metrics.close()
    if dist.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return summary


def _forward_backward(model, batch, device, amp, keep) -> None:
    from training.loop import forward_loss
    forward_loss(model, batch, device, amp, keep).backward()
    model.zero_grad(set_to_none=True)


def _final_model(cfg: TrainConfig, core, out: Path, loop: dict, device):
    """The weights to save: `core` as it ends, or best/ (the starting model when nothing beat it)."""
    import torch
    if cfg.final_weights != "best" or loop["best_val"] is None or not (out / "best").is_dir():
        return core
    from transformers import AutoModelForCausalLM

    from training.model import quiet_transformers
    with quiet_transformers():
        return AutoModelForCausalLM.from_pretrained(str(out / "best"), dtype=torch.float32).to(device)


def parse_args(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Train or fine-tune a causal code model on stage 4's splits.")
    p.add_argument("--config", type=str, default=None, help="YAML file of config keys (training_config.yaml)")
    p.add_argument("--sequences", dest="train_path", type=str, default=argparse.SUPPRESS,
                   help="training split training_data_train.json (config key train_path)")
    p.add_argument("--val-sequences", dest="val_path", type=str, default=argparse.SUPPRESS, help="validation split")
    p.add_argument("--test-sequences", dest="test_path", type=str, default=argparse.SUPPRESS, help="test split")
    p.add_argument("--output", dest="output_dir", type=str, default=argparse.SUPPRESS, help="output directory")
    p.add_argument("--resume", nargs="?", const="last", default=argparse.SUPPRESS,
                   help="continue from a checkpoint directory (bare --resume: OUTPUT/checkpoint)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_config_flags(p, skip=("train_path", "val_path", "test_path", "output_dir", "resume"))
    args = vars(p.parse_args(argv))
    return args.pop("config"), args.pop("verbose"), args


def main(argv=None) -> int:
    config_path, verbose, overrides = parse_args(argv)
    setup_logging(verbose)
    if int(os.environ.get("RANK", "0")) > 0:  # under torchrun only rank 0 talks
        logging.getLogger().setLevel(logging.WARNING)

    def train() -> None:
        run(load_config(config_path, overrides))

    return run_main(train)


if __name__ == "__main__":
    sys.exit(main())
