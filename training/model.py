"""Build the model: a GPT-2 or Llama-style causal LM from scratch, or a pretrained one (full or LoRA).

    model = build_model(cfg, identity, positions=2304)

A pretrained model is only accepted when its tokenizer is the dataset's (same content hash and
vocab size, `core.tokenizer.same_tokenizer`): otherwise the ids in the data would mean
other tokens to the model, and training would be meaningless.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from core.io import UserError
from core.tokenizer import TokenizerUnavailable, load_tokenizer, same_tokenizer, tokenizer_identity
from training.config import TrainConfig

logger = logging.getLogger(__name__)


def _round_up(n: int, multiple: int) -> int:
    return n if multiple <= 1 else -(-n // multiple) * multiple


def scratch_model(cfg: TrainConfig, identity: dict, positions: int):
    """A randomly initialised causal LM sized by the config; vocab from the dataset's tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    vocab = _round_up(int(identity["vocab_size"]), cfg.vocab_multiple)
    positions = max(cfg.n_positions, positions)
    sep = int(identity["separator_id"])
    special = identity.get("special_tokens", {})
    pad = (special.get("pad_token") or {}).get("id", sep)
    bos = (special.get("bos_token") or {}).get("id", sep)  # the saved tokenizer's bos, as config.json states it
    common = dict(vocab_size=vocab, bos_token_id=bos, eos_token_id=sep, pad_token_id=pad)
    if cfg.architecture == "gpt2":
        conf = GPT2Config(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, n_positions=positions,
                          resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, **common)
        model_cls = GPT2LMHeadModel
    else:
        conf = LlamaConfig(num_hidden_layers=cfg.n_layer, hidden_size=cfg.n_embd, num_attention_heads=cfg.n_head,
                           intermediate_size=_round_up(8 * cfg.n_embd // 3, 64), max_position_embeddings=positions,
                           attention_dropout=cfg.dropout, tie_word_embeddings=True, **common)
        model_cls = LlamaForCausalLM
    conf._attn_implementation = "sdpa"
    return model_cls(conf)


def check_tokenizer(spec: str, identity: dict) -> None:
    """Refuse a pretrained model whose tokenizer differs from the one the dataset was built with."""
    try:
        tok = load_tokenizer(spec)
    except TokenizerUnavailable as e:
        raise UserError(f"--model {spec}: cannot check its tokenizer against the dataset's ({e})") from None
    theirs = tokenizer_identity(tok, source=spec)
    if not same_tokenizer(theirs, identity) and not _extends(spec, tok, identity):
        raise UserError(f"--model {spec}: its tokenizer ({theirs['name_or_path']}, vocab {theirs['vocab_size']}, "
                        f"sha256 {theirs['sha256'][:12]}) is not the dataset's ({identity['name_or_path']}, "
                        f"vocab {identity['vocab_size']}, sha256 {identity['sha256'][:12]}); rebuild the dataset "
                        f"with --model {spec} or train from scratch")


def _extends(spec: str, tok, identity: dict) -> bool:
    """A model the trainer saved with FIM tokens added to the dataset's tokenizer (its run.json says so)."""
    import json
    from pathlib import Path
    record = Path(spec) / "run.json"
    if not record.is_file():
        return False
    run = json.loads(record.read_text(encoding="utf-8"))
    fim = run.get("fim") or {}
    base = run.get("dataset_tokenizer")
    return bool(fim.get("added")) and base is not None and same_tokenizer(base, identity) and \
        len(tok) == int(identity["vocab_size"]) + len(fim.get("tokens", ()))


def pretrained_model(cfg: TrainConfig, identity: dict):
    from transformers import AutoModelForCausalLM

    check_tokenizer(cfg.model, identity)
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(cfg.model, attn_implementation="sdpa", dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise UserError(f"--model {cfg.model}: cannot load a causal LM ({str(e).splitlines()[0]})") from None
    if model.get_input_embeddings().num_embeddings < int(identity["vocab_size"]):
        raise UserError(f"--model {cfg.model}: fewer embedding rows than the tokenizer's {identity['vocab_size']} ids")
    if cfg.lora:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise UserError("lora: true needs the peft package: python3 -m pip install peft") from None
        targets = cfg.lora_target_modules
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, task_type="CAUSAL_LM",
                                                 lora_dropout=cfg.lora_dropout, target_modules=targets))
    return model


def position_slots(model) -> int | None:
    """How many positions the model can read (n_positions / max_position_embeddings), None if unknown."""
    conf = model.config
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(conf, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def fit_positions(model, splits, max_context: int = 0) -> int:
    """Shorten every example's context to what `max_context` and the model's position slots allow
    (the last tokens are kept); returns the positions an example now needs (context + target)."""
    meta = splits[0].meta
    target, full = int(meta["target_window"]), int(meta["context_window"])
    context = min(full, max_context or full)
    slots = position_slots(model)
    if slots is not None and slots < context + target:
        if slots <= target:
            raise UserError(f"the model reads {slots} positions, not enough for the dataset's {target}-token "
                            "target window; rebuild the dataset with a smaller --target-window")
        logger.warning("the model reads at most %d positions: using the last %d of each example's %d context "
                       "tokens (set --max-context to choose fewer)", slots, slots - target, context)
        context = slots - target
    if context < full:
        for split in splits:
            split.limit_context(context)
    return context + target


def is_lora(model) -> bool:
    return hasattr(model, "peft_config")


def build_model(cfg: TrainConfig, identity: dict, positions: int):
    model = pretrained_model(cfg, identity) if cfg.model else scratch_model(cfg, identity, positions)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model


@contextlib.contextmanager
def quiet_transformers():
    """No 'Writing model shards' / 'Loading weights' bars from transformers on every save and load."""
    from transformers.utils import logging as hf_logging
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def save_adapter(model, out) -> None:
    """A LoRA model's adapter alone (adapter_config.json + weights): PeftModel.from_pretrained loads it."""
    with quiet_transformers():
        model.save_pretrained(str(out))


def exportable(model):
    """The plain transformers model to save: LoRA adapters merged in, so from_pretrained just works."""
    if hasattr(model, "merge_and_unload"):
        import copy
        return copy.deepcopy(model).merge_and_unload()
    return model


def count_params(model) -> tuple[int, int]:
    """(all parameters, trainable parameters); tied weights counted once."""
    seen, total, trainable = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def grow_embeddings(model, n_tokens: int, multiple: int) -> None:
    """Room for added tokens: the embeddings (and a tied or untied LM head) grow to `n_tokens`."""
    if model.get_input_embeddings().num_embeddings < n_tokens:
        model.resize_token_embeddings(n_tokens, pad_to_multiple_of=multiple if multiple > 1 else None,
                                      mean_resizing=True)
