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

import logging
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.io import UserError, run_main, setup_logging
from training.config import OneLineParser, TrainConfig, add_config_flags, load_config
from training.data import Split, load_split, sibling_split
from training.outputs import dataset_tokenizer, is_out_of_memory
from training.trainer import Trainer

logger = logging.getLogger(__name__)


def _splits(cfg: TrainConfig) -> tuple[Split, Split | None, Split | None]:
    if not cfg.train_path:
        raise UserError("no training data: give --sequences PATH/training_data_train.json "
                        "(or train_path in the config)")
    from core.tokenizer import same_tokenizer
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


def run(cfg: TrainConfig) -> dict:
    """Train as `cfg` says; returns the run's summary (also the last line of metrics.jsonl)."""
    import torch

    from training.device import init_distributed, select_device, select_dtype
    from training.evaluator import Evaluator
    from training.model import build_model, fit_positions, grow_embeddings

    if cfg.device != "cpu" and cfg.device != "mps":
        from training.device import cuda_alloc_conf
        cuda_alloc_conf()
    dist = init_distributed(cfg.device)
    device = select_device(cfg.device, dist.local_rank)
    dtype, use_scaler = select_dtype(device, cfg.dtype)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever autocast leaves in fp32
    train, val, test = _splits(cfg)
    evals = {name: s for name, s in (("val", val), ("test", test)) if s is not None}
    positions = int(train.meta["context_window"]) + int(train.meta["target_window"])
    tok = dataset_tokenizer(cfg.model, train)
    fim = _fim(cfg, tok, train)
    try:
        torch.manual_seed(cfg.seed)
        core = build_model(cfg, train.identity, positions)
        if fim is not None and fim.spec.added:
            grow_embeddings(core, len(tok), cfg.vocab_multiple)
        core = core.to(device)
        positions = fit_positions(core, [train, *evals.values()], cfg.max_context)
        evaluator = Evaluator.draw(evals, cfg.eval_examples, cfg.eval_seed)
        return Trainer(cfg, core, train, evaluator, dist, device, dtype, use_scaler, positions, tok, fim).run()
    except Exception as e:
        if not is_out_of_memory(e):
            raise
        raise UserError(f"out of memory on {device} at batch_size={cfg.batch_size} with {positions} tokens per "
                        "example: lower batch_size (raise grad_accum to keep tokens/step), set "
                        "gradient_checkpointing: true, lower max_context, or use a smaller model") from None


def _fim(cfg: TrainConfig, tok, train: Split):
    """The FIM transform of this run, or None (fim_rate 0)."""
    if cfg.fim_rate <= 0:
        return None
    from training.fim import FimTransform, require_fim_tokens
    spec = require_fim_tokens(tok, cfg.fim_add_tokens, f"--fim-rate {cfg.fim_rate}")
    if spec.added:
        logger.info("added FIM tokens %s (ids %d-%d) to the tokenizer; the embeddings grow to match", spec.names,
                    spec.prefix, spec.middle)
    return FimTransform(tok, spec, cfg.fim_rate, cfg.fim_spm_rate, cfg.seed, int(train.identity["separator_id"]))


def parse_args(argv=None):
    import argparse
    p = OneLineParser(description="Train or fine-tune a causal code model on stage 4's splits.")
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
