"""python3 training/model_trainer_unified.py --config training_config.yaml --sequences data/NAME/dataset/training_data_train.json --epochs 1 --output models/NAME-test

Train a causal code model on stage 4's splits, from scratch or from a pretrained model (full or
LoRA), on CUDA, Apple Metal or CPU; the same command under `torchrun --nproc-per-node N` runs
DistributedDataParallel. Writes to the output directory:

    config.json, model.safetensors, generation_config.json, tokenizer files   (the final model)
    best/            the best model by validation loss so far (save_pretrained)
    checkpoint/      trainer_state.pt: everything `--resume` needs to continue exactly
    metrics.jsonl    one line per logged step, per evaluation, and the run's summary
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline_io import UserError, dumps, run_main, setup_logging
from training import checkpoint
from training.config import TrainConfig, add_config_flags, load_config
from training.data import Split, epoch_batches, load_split, sibling_split

logger = logging.getLogger(__name__)


class Metrics:
    """metrics.jsonl: an append-only log (rank 0 only), one JSON object per line, flushed per line."""

    def __init__(self, path: Path, enabled: bool, append: bool):
        self.f = open(path, "a" if append else "w", encoding="utf-8") if enabled else None

    def write(self, record: dict) -> None:
        if self.f:
            self.f.write(dumps(record) + "\n")
            self.f.flush()

    def close(self) -> None:
        if self.f:
            self.f.close()


def _splits(cfg: TrainConfig) -> tuple[Split, Split | None, Split | None]:
    if not cfg.train_path:
        raise UserError("no training data: give --sequences PATH/training_data_train.json "
                        "(or train_path in the config)")
    train = load_split(cfg.train_path)
    if len(train) == 0:
        raise UserError(f"{cfg.train_path}: no examples to train on")
    others = []
    for name, given in (("val", cfg.val_path), ("test", cfg.test_path)):
        path = given or sibling_split(cfg.train_path, name)
        split = load_split(path) if path else None
        if split is not None and not _same(split.identity, train.identity):
            raise UserError(f"{path}: built with a different tokenizer than {cfg.train_path}")
        others.append(split if split is not None and len(split) else None)
    return train, others[0], others[1]


def _same(a: dict, b: dict) -> bool:
    from tokenizers_.loading import same_tokenizer
    return same_tokenizer(a, b)


def _tokenizer(cfg: TrainConfig, train: Split):
    """The dataset's tokenizer, to save beside the model: tokenizer_dir, else --model, else its name."""
    from tokenizers_.loading import load_tokenizer, tokenizer_identity
    for spec in (train.tokenizer_dir, cfg.model, train.identity.get("name_or_path")):
        if not spec:
            continue
        try:
            tok = load_tokenizer(str(spec))
        except UserError:
            continue
        if _same(tokenizer_identity(tok), train.identity):
            return tok
    logger.warning("the dataset's tokenizer could not be loaded; the model is saved without one")
    return None


def _save_model(model, tok, out: Path, identity: dict) -> None:
    from training.model import exportable, quiet_transformers
    model = exportable(model)
    model.config.use_cache = True
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = model.config.pad_token_id or identity["separator_id"]
        model.generation_config.eos_token_id = identity["separator_id"]
    with quiet_transformers():
        model.save_pretrained(str(out))
    if tok is not None:
        tok.save_pretrained(str(out))


def run(cfg: TrainConfig) -> dict:
    """Train as `cfg` says; returns the run's summary (also the last line of metrics.jsonl)."""
    import torch

    from training.device import cuda_alloc_conf, init_distributed, peak_flops, select_device, select_dtype
    from training.loop import Amp, cosine_schedule, evaluate, make_optimizer, supports_logits_to_keep, train_step
    from training.model import build_model, count_params

    if cfg.device != "cpu" and cfg.device != "mps":
        cuda_alloc_conf()
    dist = init_distributed(cfg.device)
    device = select_device(cfg.device, dist.local_rank)
    dtype, use_scaler = select_dtype(device, cfg.dtype)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever autocast leaves in fp32
    train, val, test = _splits(cfg)
    out = Path(cfg.output_dir)
    positions = int(train.meta["context_window"]) + int(train.meta["target_window"])

    torch.manual_seed(cfg.seed)
    core = build_model(cfg, train.identity, positions).to(device)
    core.train()
    keep = cfg.loss_on == "target" and supports_logits_to_keep(core)
    optimizer = make_optimizer(core, cfg.learning_rate, cfg.weight_decay, (cfg.beta1, cfg.beta2), device)
    batches_per_epoch = len(epoch_batches(len(train), cfg.batch_size, cfg.seed, 0, dist.rank, dist.world))
    if batches_per_epoch == 0:
        raise UserError(f"{cfg.train_path}: {len(train)} examples are too few for {dist.world} processes")
    steps_per_epoch = -(-batches_per_epoch // cfg.grad_accum)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch
    scheduler = cosine_schedule(optimizer, total_steps, min(cfg.warmup_steps, total_steps // 10), cfg.min_lr_ratio)
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    loop = {"step": 0, "epoch": 0, "step_in_epoch": 0, "best_val": None, "bad_evals": 0, "tokens": 0}
    if cfg.resume:
        ckpt = checkpoint.load(out / "checkpoint" if cfg.resume == "last" else Path(cfg.resume))
        loop = checkpoint.restore(ckpt, core, optimizer, scheduler, scaler, cfg)
        del ckpt
    model = torch.compile(core) if cfg.compile else core
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp = Amp(device, dtype)
    tok = _tokenizer(cfg, train) if dist.main else None
    n_params, n_trainable = count_params(core)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * positions * dist.world
    peak = peak_flops(device)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        logger.info("***** Running training *****")
        logger.info("  device %s (x%d processes), dtype %s, model %s", device, dist.world, str(dtype).split(".")[-1],
                    cfg.model or f"{cfg.architecture} from scratch")
        logger.info("  parameters %s (trainable %s)", f"{n_params:,}", f"{n_trainable:,}")
        logger.info("  examples: train %d, val %d, test %d; tokens/step <= %s", len(train), len(val or ()),
                    len(test or ()), f"{tokens_per_step:,}")
        logger.info("  steps %d (%d per epoch), from step %d", total_steps, steps_per_epoch, loop["step"])
    metrics = Metrics(out / "metrics.jsonl", dist.main, append=bool(cfg.resume))
    eval_batches = {name: epoch_batches(len(s), cfg.batch_size, 0, 0, dist.rank, dist.world, shuffle=False)
                    [: cfg.eval_max_batches or None] for name, s in (("val", val), ("test", test)) if s is not None}

    def save_checkpoint():
        if dist.main:
            checkpoint.save(out / "checkpoint", core, optimizer, scheduler, scaler, loop, cfg)

    def run_eval() -> bool:
        """Evaluate on val, keep the best model; True when patience has run out."""
        loss, ppl = evaluate(model, val, eval_batches["val"], device, amp, cfg.loss_on, keep, dist.world)
        improved = loop["best_val"] is None or loss < loop["best_val"]
        loop["best_val"] = loss if improved else loop["best_val"]
        loop["bad_evals"] = 0 if improved else loop["bad_evals"] + 1
        metrics.write({"event": "eval", "step": loop["step"], "epoch": loop["epoch"], "val_loss": loss,
                       "val_perplexity": ppl, "best": improved})
        logger.info("step %d: val loss %.4f, perplexity %.2f%s", loop["step"], loss, ppl, " (best)" if improved else "")
        if improved and dist.main:
            _save_model(core, tok, out / "best", train.identity)
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
                    if val is not None and cfg.eval_every and loop["step"] % cfg.eval_every == 0:
                        evaluated_at, stopped_early = loop["step"], run_eval()
                        last_log = (time.perf_counter(), loop["tokens"])  # tokens/s leaves evaluation out
                        if stopped_early:
                            break
                    elif cfg.save_every and loop["step"] % cfg.save_every == 0:
                        save_checkpoint()
                if loop["step_in_epoch"] >= steps_per_epoch:  # the epoch is complete
                    loop["epoch"] += 1
                    loop["step_in_epoch"] = 0
                    if val is not None and not cfg.eval_every and not stopped_early:
                        evaluated_at, stopped_early = loop["step"], run_eval()
                        last_log = (time.perf_counter(), loop["tokens"])
            if val is not None and evaluated_at != loop["step"] and loop["step"] == total_steps:
                run_eval()
            save_checkpoint()
        except torch.OutOfMemoryError:
            raise UserError(f"out of memory on {device} at batch_size={cfg.batch_size} with {positions} tokens per "
                            "example: lower batch_size (raise grad_accum to keep tokens/step), set "
                            "gradient_checkpointing: true, or use a smaller model") from None
    summary = {"event": "summary", "step": loop["step"], "epoch": loop["epoch"], "tokens": loop["tokens"],
               "train_tokens_per_s": run_tokens / train_time if train_time else 0.0,
               "best_val_loss": loop["best_val"], "stopped_early": stopped_early, "parameters": n_params,
               "finished": loop["step"] >= total_steps or stopped_early}
    if summary["finished"]:
        final = core
        if cfg.final_weights == "best" and loop["best_val"] is not None and (out / "best").is_dir():
            from transformers import AutoModelForCausalLM

            from training.model import quiet_transformers
            with quiet_transformers():
                final = AutoModelForCausalLM.from_pretrained(str(out / "best"), dtype=torch.float32).to(device)
        if test is not None:
            loss, ppl = evaluate(final, test, eval_batches["test"], device, amp, cfg.loss_on,
                                 keep and supports_logits_to_keep(final), dist.world)
            summary.update(test_loss=loss, test_perplexity=ppl)
            logger.info("test loss %.4f, perplexity %.2f", loss, ppl)
        if dist.main:
            _save_model(final, tok, out, train.identity)
            logger.info("model saved to %s", out)
    metrics.write(summary)
    metrics.close()
    if dist.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return summary


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
    p.add_argument("--verbose", action="store_true", help="debug logging")
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
