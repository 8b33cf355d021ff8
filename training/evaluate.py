"""python3 training/evaluate.py --model models/NAME-test --model BASE_MODEL --dataset data/NAME/dataset

Measure saved models (trainer output directories or hub names) on a stage-4 dataset, side by side:

    val / test     loss and perplexity over the target tokens (examples drawn at random, seeded)
    by language    test loss per language of the file the tokens come from (the split's chunk map)
    by category    test loss per kind of content: code, tests, docs, config, data, translations
    completion     line-level code completion on test-period diffs, as in CodeXGLUE: for added
                   lines ("+" lines) of diff chunks drawn at random, the diff up to the line is the
                   prompt; the greedy completion up to the first newline is compared with the line:
                   exact match (%) and edit similarity (difflib ratio x 100, whitespace collapsed)

Prints a table with one column per model; `--output FILE` writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import random
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from pipeline.io import UserError, run_main, setup_logging, write_json
from pipeline.schema import split_file

logger = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    models: list[str]
    dataset: str                     # stage 4's dataset directory (training_data_{val,test}.json)
    max_examples: int = 200          # per split, drawn at random; 0: every example
    completion_lines: int = 100      # added lines to complete; 0: no completion score
    max_new_tokens: int = 48         # the longest completion generated for one line
    max_context: int = 0             # > 0: only the last N context tokens of each example
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"
    progress: bool = True


def added_lines(diff_text: str) -> list[tuple[int, str]]:
    """(offset of the line's content, content) of every non-blank added line of a diff chunk.

    >>> added_lines("file a.py (modified)\\n@@ -1 +1,2 @@\\n x = 1\\n+y = 2\\n+\\n")
    [(43, 'y = 2')]
    """
    out, pos = [], 0
    for line in diff_text.splitlines(keepends=True):
        content = line.rstrip("\r\n")
        if content.startswith("+") and not content.startswith("++") and content[1:].strip():
            out.append((pos + 1, content[1:]))
        pos += len(line)
    return out


def line_scores(predictions: list[str], answers: list[str]) -> tuple[float, float]:
    """(exact match %, edit similarity %) of predicted lines against the true ones (CodeXGLUE's
    line-level measures; whitespace runs collapsed, edit similarity = difflib ratio x 100).

    >>> line_scores(["return a + b", "retrun a"], ["return a + b", "return a"])
    (50.0, 93.75)
    """
    if not answers:
        return 0.0, 0.0
    norm = [(" ".join(p.split()), " ".join(a.split())) for p, a in zip(predictions, answers)]
    exact = sum(p == a for p, a in norm)
    similar = sum(difflib.SequenceMatcher(None, p, a, autojunk=False).ratio() for p, a in norm)
    return 100.0 * exact / len(norm), 100.0 * similar / len(norm)


def split_losses(model, split, cfg: EvalConfig, device, chunk_map=None) -> dict:
    """Mean target-token loss over a seeded random subset of `split`; grouped by the chunk map's
    language and category when one is given."""
    import torch

    from training.data import eval_indices, shard_batches
    from training.loop import Amp, perplexity, supports_logits_to_keep, token_losses
    from tqdm.auto import tqdm

    amp, keep = Amp(device, torch.float32), supports_logits_to_keep(model)
    idx = eval_indices(len(split), cfg.max_examples, cfg.seed)
    losses, positions = [], []
    with torch.no_grad():
        for b in tqdm(shard_batches(idx, cfg.batch_size), desc=split.meta.get("split", "eval"), unit="batch",
                      disable=not cfg.progress, leave=False):
            batch = split.batch(b, "target")
            tl = token_losses(model, batch, device, amp, keep).cpu().numpy()  # (B, K)
            mask, pos = predicted_positions(split, b, batch, tl.shape[1])
            losses.append(tl[mask])
            positions.append(pos[mask])
    losses, positions = np.concatenate(losses), np.concatenate(positions)
    mean = float(losses.mean()) if len(losses) else float("nan")
    result = {"examples": len(idx), "tokens": len(losses), "loss": mean, "perplexity": perplexity(mean)}
    if chunk_map is not None and len(losses):
        rows = chunk_map.chunk_of(positions)
        for key in ("language", "category"):
            names = np.array([r.get(key) or "(no file)" for r in chunk_map.rows] + ["(prefix)"])
            groups = names[np.where(rows < 0, len(names) - 1, rows)]
            result[f"by_{key}"] = {g: _group(losses[groups == g]) for g in sorted(set(groups.tolist()))}
    return result


def predicted_positions(split, idx: np.ndarray, batch: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For the last `k` positions of `batch` (rows `idx` of `split`): which ones predict a labelled
    token, and that token's index in the split's stream; both (B, k)."""
    width = batch["input_ids"].shape[1]
    labels = batch["labels"][:, width - k:].numpy()
    mask = np.pad(labels[:, 1:], ((0, 0), (0, 1)), constant_values=-100) != -100
    # Position j predicts column width-k+j+1; column w of a row of n tokens is stream index start+w-(width-n).
    n = split.context[idx] + split.target[idx]
    return mask, split.starts[idx][:, None] + (width - k + 1 + np.arange(k))[None, :] - (width - n)[:, None]


def _group(losses: np.ndarray) -> dict:
    from training.loop import perplexity
    mean = float(losses.mean())
    return {"tokens": len(losses), "loss": mean, "perplexity": perplexity(mean)}


def completion_samples(split, chunk_map, tok, n: int, seed: int) -> list[tuple[str, str]]:
    """(prompt, true line) for one added line of each of up to `n` diff chunks drawn at random."""
    rng = random.Random(seed)
    diffs = [r for r in chunk_map.rows if r["kind"] == "diff"]
    rng.shuffle(diffs)
    out = []
    for row in diffs:
        if len(out) >= n:
            break
        text = tok.decode(split.tokens[row["start"]:row["start"] + row["n_tokens"]].tolist())
        lines = added_lines(text)
        if lines:
            offset, line = rng.choice(lines)
            out.append((text[:offset], line))
    return out


def complete_lines(model, tok, samples: list[tuple[str, str]], cfg: EvalConfig, device) -> list[str]:
    """Greedy completion of each prompt, up to its first newline (at most max_new_tokens tokens)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import StoppingCriteria

    from training.model import position_slots

    class NewLine(StoppingCriteria):
        def __init__(self, start: int):
            self.start = start

        def __call__(self, input_ids, scores, **kwargs):
            return "\n" in tok.decode(input_ids[0, self.start:])

    room = (position_slots(model) or 1 << 30) - cfg.max_new_tokens
    if cfg.max_context:
        room = min(room, cfg.max_context)
    out = []
    for prompt, _ in tqdm(samples, desc="completion", unit="line", disable=not cfg.progress, leave=False):
        ids = tok(prompt, add_special_tokens=False, verbose=False)["input_ids"][-room:]
        x = torch.tensor([ids], device=device)
        with torch.no_grad():
            y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=cfg.max_new_tokens,
                               do_sample=False, stopping_criteria=[NewLine(len(ids))],
                               pad_token_id=model.generation_config.pad_token_id)
        out.append(tok.decode(y[0, len(ids):], skip_special_tokens=True).split("\n", 1)[0])
    return out


def evaluate_model(spec: str, cfg: EvalConfig) -> dict:
    """Every figure for one model (a saved directory or a hub name)."""
    import torch
    from transformers import AutoModelForCausalLM

    from tokenizers_.loading import load_tokenizer
    from training.data import load_chunk_map, load_split
    from training.device import select_device
    from training.model import check_tokenizer, fit_positions, quiet_transformers

    root = Path(cfg.dataset)
    splits = {}
    for name in ("val", "test"):
        path = root / split_file(name)
        if path.is_file():
            splits[name] = load_split(path)
    splits = {k: s for k, s in splits.items() if len(s)}
    if not splits:
        raise UserError(f"{root}: no training_data_val.json or training_data_test.json with examples")
    identity = next(iter(splits.values())).identity
    check_tokenizer(spec, identity)
    device = select_device(cfg.device)
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32).to(device).eval()
    except (OSError, ValueError) as e:
        raise UserError(f"--model {spec}: cannot load a causal LM ({str(e).splitlines()[0]})") from None
    fit_positions(model, list(splits.values()), cfg.max_context)
    result = {"model": spec}
    test = splits.get("test")
    cmap = load_chunk_map(test) if test is not None else None
    for name, split in splits.items():
        result[name] = split_losses(model, split, cfg, device, cmap if name == "test" else None)
        logger.info("%s: %s loss %.4f, perplexity %.2f", spec, name, result[name]["loss"], result[name]["perplexity"])
    if cfg.completion_lines and cmap is not None:
        tok = load_tokenizer(spec)
        samples = completion_samples(test, cmap, tok, cfg.completion_lines, cfg.seed)
        preds = complete_lines(model, tok, samples, cfg, device)
        em, es = line_scores(preds, [line for _, line in samples])
        result["completion"] = {"lines": len(samples), "exact_match": em, "edit_similarity": es,
                                "samples": [{"prompt_tail": p[-80:], "answer": a, "prediction": q}
                                            for (p, a), q in zip(samples, preds)]}
    elif cfg.completion_lines:
        logger.warning("%s: no chunk map (dataset built before it existed): no per-language loss or completion "
                       "score; rebuild the dataset with dataset_builder.py", root)
    return result


def table(results: list[dict]) -> str:
    """One row per figure, one column per model."""
    rows: list[tuple[str, list[str]]] = []

    def add(label, get, fmt="{:.3f}"):
        values = [get(r) for r in results]
        if any(v is not None for v in values):
            rows.append((label, ["-" if v is None else fmt.format(v) for v in values]))

    for split in ("val", "test"):
        add(f"{split} perplexity", lambda r, s=split: r.get(s, {}).get("perplexity"), "{:.2f}")
        add(f"{split} loss", lambda r, s=split: r.get(s, {}).get("loss"))
    for key in ("by_language", "by_category"):
        names = sorted({g for r in results for g in r.get("test", {}).get(key, {})})
        for g in names:
            add(f"test loss {key[3:]}={g}", lambda r, k=key, g=g: r.get("test", {}).get(k, {}).get(g, {}).get("loss"))
    add("completion exact match %", lambda r: r.get("completion", {}).get("exact_match"), "{:.1f}")
    add("completion edit similarity %", lambda r: r.get("completion", {}).get("edit_similarity"), "{:.1f}")
    add("completion lines", lambda r: r.get("completion", {}).get("lines"), "{}")
    heads = ["figure"] + [Path(r["model"]).name or r["model"] for r in results]
    widths = [max(len(h), *(len(x[0] if i == 0 else x[1][i - 1]) for x in rows)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    lines += ["  ".join([label.ljust(widths[0])] + [v.rjust(w) for v, w in zip(vals, widths[1:])]) for label, vals in rows]
    return "\n".join(lines)


def run(cfg: EvalConfig) -> list[dict]:
    return [evaluate_model(spec, cfg) for spec in cfg.models]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Compare causal code models on a stage-4 dataset.")
    p.add_argument("--model", action="append", required=True, help="model directory or hub name (repeatable)")
    p.add_argument("--dataset", required=True, help="stage 4's dataset directory (data/NAME/dataset)")
    p.add_argument("--max-examples", type=int, default=200, help="examples per split, drawn at random; 0: all (default 200)")
    p.add_argument("--completion-lines", type=int, default=100, help="added lines to complete; 0: none (default 100)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="longest completion of one line (default 48)")
    p.add_argument("--max-context", type=int, default=0, help="> 0: only the last N context tokens (default 0)")
    p.add_argument("--batch-size", type=int, default=8, help="examples per forward pass (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random examples and lines (default 0)")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu (default auto)")
    p.add_argument("--output", type=Path, default=None, help="also write every figure to this JSON file")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    setup_logging(a.verbose)

    def go() -> None:
        cfg = EvalConfig(a.model, a.dataset, a.max_examples, a.completion_lines, a.max_new_tokens, a.max_context,
                         a.batch_size, a.seed, a.device, a.progress)
        results = run(cfg)
        print(table(results))
        if a.output is not None:
            write_json(a.output, results)

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
