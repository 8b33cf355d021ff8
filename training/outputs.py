"""What the trainer writes: metrics.jsonl (and TensorBoard events), saved models, the change line.

    metrics = Metrics(out / "metrics.jsonl", enabled=True, append=False, tensorboard=out / "runs")
    save_model(model, tok, out / "best", identity, record)    # save_pretrained, + adapter/ for LoRA, + run.json
    change_line({"val": (2.7, 2.5)})                          # 'val perplexity 14.88 -> 12.18'
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.io import UserError, atomic_write, dumps, write_json
from training.data import Split

logger = logging.getLogger(__name__)


class Metrics:
    """metrics.jsonl: an append-only log (rank 0 only), one JSON object per line, flushed per line.

    With `tensorboard` (a directory), every numeric field of a `train` or `eval` record is also
    a TensorBoard scalar `EVENT/FIELD` at its step. `resume_step` (a resumed run) keeps the log up
    to that step: the `train` and `eval` records of later steps, which the resumed run writes
    again, are dropped from the file, and TensorBoard purges its events after that step.
    """

    def __init__(self, path: Path, enabled: bool, resume_step: int | None = None, tensorboard: Path | None = None):
        if enabled and resume_step is not None and path.is_file():
            _drop_after(path, resume_step)
        self.f = open(path, "a" if resume_step is not None else "w", encoding="utf-8") if enabled else None
        self.tb = None
        if enabled and tensorboard is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError("report_to: tensorboard needs the tensorboard package: "
                                "python3 -m pip install tensorboard") from None
            self.tb = SummaryWriter(str(tensorboard), purge_step=None if resume_step is None else resume_step + 1)

    def write(self, record: dict) -> None:
        if self.f:
            self.f.write(dumps(record) + "\n")
            self.f.flush()
        if self.tb is not None and record.get("event") in ("train", "eval"):
            for key, value in record.items():
                if key not in ("event", "step") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.tb.add_scalar(f"{record['event']}/{key}", value, record["step"])

    def close(self) -> None:
        if self.f:
            self.f.close()
        if self.tb is not None:
            self.tb.close()


def _drop_after(path: Path, step: int) -> None:
    """Rewrite metrics.jsonl without the train/eval records of steps after `step` (atomically)."""
    import json
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the torn last line of a killed run
        if not (record.get("event") in ("train", "eval") and record.get("step", 0) > step):
            kept.append(line + "\n")
    with atomic_write(path, "w") as f:
        f.writelines(kept)


def change_line(losses: dict[str, tuple[float | None, float | None]]) -> str:
    """'val perplexity 15.00 -> 11.60, test perplexity 14.40 -> 12.10' from (start, end) losses.

    >>> change_line({"val": (2.0, 1.0), "test": (None, 1.0)})
    'val perplexity 7.39 -> 2.72'
    """
    from training.loop import perplexity
    parts = [f"{name} perplexity {perplexity(a):.2f} -> {perplexity(b):.2f}"
             for name, (a, b) in losses.items() if a is not None and b is not None]
    return ", ".join(parts)


def dataset_tokenizer(model_spec: str | None, train: Split):
    """The dataset's tokenizer, to save beside the model: tokenizer_dir, else --model, else its name."""
    from core.tokenizer import load_tokenizer, same_tokenizer, tokenizer_identity
    for spec in (train.tokenizer_dir, model_spec, train.identity.get("name_or_path")):
        if not spec:
            continue
        try:
            tok = load_tokenizer(str(spec))
        except UserError:
            continue
        if same_tokenizer(tokenizer_identity(tok), train.identity):
            return tok
    logger.warning("the dataset's tokenizer could not be loaded; the model is saved without one")
    return None


def save_model(model, tok, out: Path, identity: dict, run_record: dict | None = None) -> None:
    """save_pretrained of the plain model (LoRA merged in) and its tokenizer; a LoRA model's
    adapter alone goes to `out/adapter` too. The tokenizer's `model_max_length` is the model's
    position count, so `pipeline(...)` warns about inputs that do not fit."""
    from training.model import exportable, is_lora, position_slots, quiet_transformers, save_adapter
    if is_lora(model):
        save_adapter(model, out / "adapter")
    model = exportable(model)
    model.config.use_cache = True
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = model.config.pad_token_id or identity["separator_id"]
        model.generation_config.eos_token_id = identity["separator_id"]
    with quiet_transformers():
        model.save_pretrained(str(out))
    if tok is not None:
        tok.model_max_length = position_slots(model) or tok.model_max_length
        tok.save_pretrained(str(out))
    if run_record is not None:
        write_json(out / "run.json", run_record)


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA's OutOfMemoryError, the CPU allocator's RuntimeError, numpy's MemoryError."""
    import torch
    return isinstance(e, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(e, RuntimeError) and "can't allocate memory" in str(e))


