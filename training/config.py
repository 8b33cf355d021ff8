"""The trainer's settings: one dataclass, filled from a YAML file and then from command-line flags.

    cfg = load_config("training_config.yaml", {"epochs": 2})

Every field has a `help` (shown by `--help` and mirrored as a comment in training_config.yaml);
a key in the file that is not a field is a UserError naming it. Each field is also a flag:
`learning_rate` is `--learning-rate`, booleans are `--x / --no-x`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from core.config import load_yaml
from core.io import UserError


def _f(default, help: str, choices: tuple | None = None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    # data
    train_path: str | None = _f(None, "training split file training_data_train.json (stage 4)")
    val_path: str | None = _f(None, "validation split; default: beside train_path (_train.json -> _val.json)")
    test_path: str | None = _f(None, "test split; default: beside train_path (_train.json -> _test.json)")
    loss_on: str = _f("auto", "which tokens carry the loss: target (each example's target window), all (every "
                      "token of non-overlapping windows), auto (all when fine-tuning a model, target from scratch)",
                      ("auto", "target", "all"))
    max_context: int = _f(0, "if > 0: use only the last N context tokens of each example (no dataset rebuild)")
    # model
    model: str | None = _f(None, "pretrained causal LM (hub name or local dir) to fine-tune; unset: train from scratch")
    architecture: str = _f("gpt2", "from-scratch model family", ("gpt2", "llama"))
    n_layer: int = _f(12, "from scratch: transformer blocks")
    n_embd: int = _f(768, "from scratch: hidden width")
    n_head: int = _f(12, "from scratch: attention heads (n_embd must divide by it)")
    n_positions: int = _f(0, "from scratch: position slots; 0 or less than context+target means context+target")
    dropout: float = _f(0.0, "from scratch: dropout probability (0 is usual for pre-training)")
    vocab_multiple: int = _f(64, "from scratch: round the embedding rows up to a multiple of this (faster matmuls)")
    lora: bool = _f(False, "fine-tune a pretrained model with LoRA adapters (needs the peft package)")
    lora_r: int = _f(8, "LoRA rank")
    lora_alpha: int = _f(16, "LoRA scaling numerator")
    lora_dropout: float = _f(0.05, "LoRA dropout")
    lora_target_modules: str = _f("all-linear", "modules that get adapters: 'all-linear' or comma-separated names")
    # optimization
    epochs: int = _f(1, "passes over the training split")
    max_steps: int = _f(0, "if > 0: total optimizer steps (overrides epochs for the schedule and the end)")
    batch_size: int = _f(8, "examples per micro-batch per process")
    grad_accum: int = _f(4, "micro-batches per optimizer step")
    learning_rate: float = _f(6e-4, "from scratch: peak learning rate (after warmup); as a flag with model: the "
                              "fine-tuning rate of this run")
    finetune_learning_rate: float = _f(5e-5, "with model (full fine-tuning): peak learning rate")
    lora_learning_rate: float = _f(2e-4, "with model and lora: peak learning rate")
    min_lr_ratio: float = _f(0.1, "cosine schedule floor, as a fraction of learning_rate")
    warmup_steps: int = _f(100, "linear warmup steps (capped at a quarter of the run's steps)")
    weight_decay: float = _f(0.1, "AdamW weight decay (not applied to biases and norms)")
    beta1: float = _f(0.9, "AdamW beta1")
    beta2: float = _f(0.95, "AdamW beta2")
    grad_clip: float = _f(1.0, "clip the gradient norm to this; 0 turns clipping off")
    seed: int = _f(42, "seed for model init, data order and dropout")
    # evaluation and checkpoints
    eval_every: int = _f(200, "evaluate (and checkpoint) every N optimizer steps; 0: at the end of each epoch")
    eval_examples: int = _f(200, "examples per split in the evaluation set, drawn once with eval_seed; 0: all")
    eval_seed: int = _f(0, "seed of the evaluation set (evaluate.py's --seed): the same examples whatever the run")
    patience: int = _f(3, "stop after this many evaluations without a better val loss; 0: never")
    save_every: int = _f(50, "also write the resumable checkpoint every N steps; 0: at evaluations and the end only")
    final_weights: str = _f("best", "weights saved as the final model: best val loss or last step", ("best", "last"))
    fim_rate: float = _f(0.0, "fill-in-the-middle: share of documents (chunks) turned into FIM examples")
    fim_spm_rate: float = _f(0.5, "of the FIM examples, the share in SPM order (suffix first); the rest PSM")
    fim_add_tokens: bool = _f(False, "add FIM tokens to a tokenizer that has none (embeddings resized)")
    stop_at_step: int = _f(0, "if > 0: end this run at this step with a checkpoint, schedule unchanged (resume later)")
    # hardware
    device: str = _f("auto", "auto (CUDA, else MPS, else CPU), cuda, cuda:N, mps or cpu",)
    dtype: str = _f("auto", "compute dtype: auto (bf16 on CUDA if supported, else fp16; fp32 on MPS/CPU)",
                    ("auto", "fp32", "bf16", "fp16"))
    gradient_checkpointing: bool = _f(False, "recompute activations in backward: less memory, ~30% slower")
    compile: bool = _f(False, "torch.compile the model (CUDA; first steps are slow while it compiles)")
    # output
    output_dir: str = _f("models/gitlm", "where the model, tokenizer, checkpoint and metrics.jsonl go")
    log_every: int = _f(10, "write a metrics.jsonl line every N optimizer steps")
    report_to: str = _f("none", "also log to: none, or tensorboard (event files in output_dir/runs)",
                        ("none", "tensorboard"))
    progress: bool = _f(True, "show a tqdm progress bar")
    resume: str | None = _f(None, "checkpoint directory to continue from ('last': output_dir/checkpoint)")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def _base_type(name: str) -> type:
    hint = _HINTS[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def validate(cfg: TrainConfig) -> TrainConfig:
    for name, f in FIELDS.items():
        value = getattr(cfg, name)
        want = _base_type(name)
        if value is None and f.default is None:
            continue
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            setattr(cfg, name, value)
        if want is float and isinstance(value, str):
            value = _number(name, value)
            setattr(cfg, name, value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise UserError(f"config key '{name}': expected {want.__name__}, got {value!r}")
        choices = f.metadata["choices"]
        if choices and value not in choices:
            raise UserError(f"config key '{name}': {value!r} is not one of {', '.join(choices)}")
    if cfg.max_context < 0:
        raise UserError("config key 'max_context' must be 0 (the whole context) or more")
    for name in ("epochs", "batch_size", "grad_accum"):
        if getattr(cfg, name) < 1:
            raise UserError(f"config key '{name}' must be at least 1")
    if cfg.model is None and cfg.n_embd % cfg.n_head:
        raise UserError(f"n_embd={cfg.n_embd} must be a multiple of n_head={cfg.n_head}")
    for name in ("fim_rate", "fim_spm_rate"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise UserError(f"config key '{name}' must be between 0 and 1")
    if cfg.lora and cfg.model is None:
        raise UserError("lora: true needs a pretrained model (--model NAME_OR_PATH)")
    return cfg


def _number(name: str, text: str) -> float:
    """A float written as text: YAML 1.1 (PyYAML) reads `1e-5`, without a dot, as a string.

    >>> _number("learning_rate", "1e-5")
    1e-05
    """
    try:
        return float(text)
    except ValueError:
        raise UserError(f"config key '{name}': expected a number, got {text!r} (write it as 1.0e-5 or 0.00001)") \
            from None


def peak_learning_rate(cfg: TrainConfig) -> tuple[float, str]:
    """(peak learning rate, the key it comes from): fine-tuning has its own, much lower rates.

    >>> peak_learning_rate(TrainConfig(model="m"))
    (5e-05, 'finetune_learning_rate')
    """
    if cfg.model and cfg.lora:
        return cfg.lora_learning_rate, "lora_learning_rate"
    if cfg.model:
        return cfg.finetune_learning_rate, "finetune_learning_rate"
    return cfg.learning_rate, "learning_rate"


def load_config(path: str | Path | None, overrides: dict | None = None) -> TrainConfig:
    """Defaults, then the YAML file, then `overrides` (command-line flags that were given)."""
    values: dict = {}
    if path is not None:
        values.update(load_yaml(str(path), set(FIELDS)))  # the project's one YAML settings loader
    for key, value in (overrides or {}).items():
        if key not in FIELDS:
            raise UserError(f"unknown config key: {key}")
        values[key] = value
    cfg = validate(TrainConfig(**values))
    if cfg.loss_on == "auto":  # measured: bench/bench_finetune.py, docs/training.md
        cfg.loss_on = "all" if cfg.model else "target"
    if cfg.model and "learning_rate" in (overrides or {}):
        # --learning-rate on the command line of a fine-tuning run means the rate of this run.
        key = peak_learning_rate(cfg)[1]
        if key not in overrides:
            setattr(cfg, key, cfg.learning_rate)
    return cfg


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per field, default SUPPRESS so only the flags given override the file."""
    for name, f in FIELDS.items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        kind = _base_type(name)
        help_ = f.metadata["help"] + f" (default {f.default!r})"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_)
        else:
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, choices=f.metadata["choices"],
                                help=help_, metavar=None if f.metadata["choices"] else name.upper())


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistyped flag is one line naming the nearest flag, not the whole usage."""

    def error(self, message: str):
        import difflib
        hint = ""
        if message.startswith("unrecognized arguments:"):
            flags = [s for a in self._actions for s in a.option_strings]
            wrong = message.split(":", 1)[1].split()[0].split("=")[0]
            close = difflib.get_close_matches(wrong, flags, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
        self.exit(2, f"error: {message}{hint} (see {self.prog} --help)\n")
