"""python3 training/generate.py --model models/NAME-test --prompt "def area(width, height):" --max-new-tokens 64

Complete a code prompt with a model the trainer saved (or any causal LM directory / hub name).
Prints the prompt followed by its completion. `--temperature 0` (the default) is greedy decoding,
so the same model and prompt always print the same text. A prompt longer than the model can read
(its position slots less `--max-new-tokens`) is cut to its last tokens, with a warning.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.io import UserError, run_main, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class GenerateConfig:
    model: str
    prompt: str
    max_new_tokens: int = 64
    temperature: float = 0.0     # 0: greedy
    top_p: float = 0.95          # nucleus sampling when temperature > 0
    seed: int = 0
    device: str = "auto"


def run(cfg: GenerateConfig) -> str:
    """The prompt plus its completion, decoded."""
    import torch
    from transformers import AutoModelForCausalLM

    from core.tokenizer import load_tokenizer
    from training.device import select_device
    from training.model import position_slots, quiet_transformers

    if not cfg.prompt:
        raise UserError("empty prompt: give --prompt TEXT or --prompt-file PATH")
    device = select_device(cfg.device)
    tok = load_tokenizer(cfg.model)
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(cfg.model).to(device).eval()
    except (OSError, ValueError) as e:
        raise UserError(f"--model {cfg.model}: cannot load a causal LM ({str(e).splitlines()[0]})") from None
    torch.manual_seed(cfg.seed)
    ids = tok(cfg.prompt, add_special_tokens=False, verbose=False)["input_ids"]
    slots = position_slots(model)
    if slots is not None and len(ids) + cfg.max_new_tokens > slots:
        room = slots - cfg.max_new_tokens
        if room < 1:
            raise UserError(f"--max-new-tokens {cfg.max_new_tokens}: the model reads at most {slots} positions; "
                            "ask for fewer new tokens")
        logger.warning("the prompt has %d tokens and the model reads %d positions: completing its last %d tokens",
                       len(ids), slots, room)
        ids = ids[-room:]
    ids = torch.tensor([ids], device=device)
    sample = cfg.temperature > 0
    extra = {"temperature": cfg.temperature, "top_p": cfg.top_p} if sample else {}
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=cfg.max_new_tokens,
                             do_sample=sample, pad_token_id=model.generation_config.pad_token_id, **extra)
    return cfg.prompt + tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def parse_args(argv=None) -> argparse.Namespace:
    from training.config import OneLineParser
    p = OneLineParser(description="Complete a code prompt with a saved model.")
    p.add_argument("--model", type=str, required=True, help="model directory written by the trainer (or hub name)")
    p.add_argument("--prompt", type=str, default=None, help="text to complete")
    p.add_argument("--prompt-file", type=Path, default=None, help="read the prompt from this file instead")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate (default 64)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 is greedy (default)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass when sampling (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="random seed for sampling (default 0)")
    p.add_argument("--device", type=str, default="auto", help="auto, cuda, mps or cpu (default auto)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    setup_logging()

    def go() -> None:
        prompt = a.prompt
        if a.prompt_file is not None:
            if not a.prompt_file.is_file():
                raise UserError(f"{a.prompt_file}: no such file")
            prompt = a.prompt_file.read_text(encoding="utf-8")
        print(run(GenerateConfig(a.model, prompt or "", a.max_new_tokens, a.temperature, a.top_p, a.seed, a.device)))

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
