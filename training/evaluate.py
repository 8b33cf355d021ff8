"""python3 training/evaluate.py --model BASE --model models/NAME-ft --dataset data/NAME/dataset --repo PATH

Measure saved models (trainer output directories or hub names) side by side, on one evaluation
set and on a benchmark from the repository's future (the test split's period):

    val / test     loss and perplexity over the target tokens of the evaluation set: `--max-examples`
                   examples per split drawn with `--seed` (the trainer's eval_examples / eval_seed
                   defaults, so the same examples), or exactly a run's set with `--eval-set OUT/eval_set.json`
    by language    test perplexity per language and per category (code, tests, docs, ...) of the file
    by category    each token comes from (the split's chunk map)
    line           next-line completion on the test period's code and test changes (training/benchmark.py,
                   needs --repo): exact match and edit similarity, per language and category
    infill         fill-in-the-middle of an added hunk, for models whose tokenizer has FIM tokens

Prints one table with a column per model; `--output FILE` writes every figure and prediction as JSON.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.io import UserError, run_main, setup_logging, write_json
from core.schema import split_file
from training.config import FIELDS, OneLineParser

logger = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    models: list[str]
    dataset: str                     # stage 4's dataset directory (training_data_{val,test}.json)
    repo: str | None = None          # the repository's clone: the line and infill benchmark read its history
    eval_set: str | None = None      # a run's eval_set.json: score exactly those examples
    max_examples: int = FIELDS["eval_examples"].default   # per split, drawn with `seed`; 0: every example
    seed: int = FIELDS["eval_seed"].default
    completion_lines: int = 100      # next-line tasks; 0: none
    infill_hunks: int = 50           # infill tasks (models with FIM tokens); 0: none
    max_new_tokens: int = 48         # the longest line completion
    infill_new_tokens: int = 128     # the longest infilled middle
    max_context: int = 0             # > 0: only the last N context tokens of each example
    batch_size: int = 8
    device: str = "auto"
    progress: bool = True


def load_eval_splits(dataset: str) -> dict:
    """val and test of `dataset`; the test split (the benchmark's period) must have examples."""
    from training.data import load_split
    root = Path(dataset)
    splits = {}
    for name in ("val", "test"):
        path = root / split_file(name)
        if path.is_file():
            splits[name] = load_split(path)
    if "test" not in splits or len(splits["test"]) == 0:
        raise UserError(f"{root}: no test split with examples (training_data_test.json): the benchmark is the "
                        "test period; rebuild the dataset with --test-ratio above 0 and enough commits")
    return {k: s for k, s in splits.items() if len(s)}


def build_tasks(cfg: EvalConfig, test) -> list:
    from core.git_runner import Git
    from core.repository import open_repository
    from training.benchmark import build_tasks as tasks_from
    from training.data import load_chunk_map
    if not cfg.repo or not (cfg.completion_lines or cfg.infill_hunks):
        if cfg.completion_lines or cfg.infill_hunks:
            logger.warning("no --repo: line completion and infilling read the test period from the repository's "
                           "history; perplexities only")
        return []
    cmap = load_chunk_map(test)
    if cmap is None:
        raise UserError(f"{test.path}: no chunk map (built before it existed); rebuild with dataset_builder.py")
    git = Git(open_repository(cfg.repo))
    tasks = tasks_from(git, cmap, cfg.completion_lines, cfg.infill_hunks, cfg.seed)
    if not tasks:
        raise UserError(f"--repo {cfg.repo}: none of the test split's commits is found there with a code change; "
                        "is it the repository the dataset was built from?")
    return tasks


def load_model(spec: str, device):
    import torch
    from transformers import AutoModelForCausalLM

    from training.model import quiet_transformers
    try:
        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32).to(device).eval()
    except (OSError, ValueError) as e:
        raise UserError(f"--model {spec}: cannot load a causal LM ({str(e).splitlines()[0]})") from None


def evaluate_model(spec: str, cfg: EvalConfig, tasks: list) -> dict:
    """Every figure for one model (a saved directory or a hub name)."""
    from core.tokenizer import load_tokenizer
    from training.data import load_chunk_map
    from training.device import select_device
    from training.evaluator import Evaluator
    from training.model import check_tokenizer, fit_positions

    splits = load_eval_splits(cfg.dataset)
    check_tokenizer(spec, splits["test"].identity)
    device = select_device(cfg.device)
    model = load_model(spec, device)
    fit_positions(model, list(splits.values()), cfg.max_context)
    ev = Evaluator.load(Path(cfg.eval_set), splits) if cfg.eval_set else Evaluator.draw(splits, cfg.max_examples, cfg.seed)
    cmap = load_chunk_map(splits["test"])
    result = {"model": spec}
    for name in splits:
        result[name] = ev.measure(model, name, device, cfg.batch_size, chunk_map=cmap if name == "test" else None,
                                  progress=cfg.progress)
        logger.info("%s: %s loss %.4f, perplexity %.2f", spec, name, result[name]["loss"], result[name]["perplexity"])
    if tasks:
        result.update(benchmark(model, load_tokenizer(spec), tasks, cfg, device))
    return result


def benchmark(model, tok, tasks: list, cfg: EvalConfig, device) -> dict:
    """The line-completion and infill figures of one model (infill only with FIM tokens)."""
    from training.benchmark import complete, scores
    from training.fim import fim_tokens
    from training.model import position_slots

    out = {}
    slots = position_slots(model) or 1 << 30
    fim = fim_tokens(tok)
    for kind, new_tokens in (("line", cfg.max_new_tokens), ("infill", cfg.infill_new_tokens)):
        mine = [t for t in tasks if t.kind == kind]
        if not mine:
            continue
        if kind == "infill" and fim is None:
            logger.info("%s: no fill-in-the-middle tokens: no infill score", getattr(tok, "name_or_path", ""))
            continue
        room = slots - new_tokens
        if cfg.max_context:
            room = min(room, cfg.max_context)
        preds = complete(model, tok, mine, new_tokens, device, fim if kind == "infill" else None, room, cfg.progress)
        out[kind] = {**scores(mine, preds),
                     "samples": [{**t.record(), "prediction": p} for t, p in zip(mine, preds)]}
    return out


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
    for key in ("by_category", "by_language"):
        names = sorted({g for r in results for g in r.get("test", {}).get(key, {})})
        for g in names:
            add(f"test perplexity {key[3:]}={g}",
                lambda r, k=key, g=g: r.get("test", {}).get(k, {}).get(g, {}).get("perplexity"), "{:.2f}")
    for kind in ("line", "infill"):
        for measure, short in (("exact_match", "exact match %"), ("edit_similarity", "edit similarity %")):
            add(f"{kind} {short}", lambda r, k=kind, m=measure: r.get(k, {}).get(m), "{:.1f}")
            for key in ("by_category", "by_language"):
                names = sorted({g for r in results for g in r.get(kind, {}).get(key, {})})
                for g in names:
                    add(f"{kind} {short} {key[3:]}={g}",
                        lambda r, k=kind, m=measure, key=key, g=g: r.get(k, {}).get(key, {}).get(g, {}).get(m),
                        "{:.1f}")
        add(f"{kind} tasks", lambda r, k=kind: r.get(k, {}).get("tasks"), "{}")
    heads = ["figure"] + [Path(r["model"]).name or r["model"] for r in results]
    widths = [max(len(h), *(len(x[0] if i == 0 else x[1][i - 1]) for x in rows)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    lines += ["  ".join([label.ljust(widths[0])] + [v.rjust(w) for v, w in zip(vals, widths[1:])]) for label, vals in rows]
    return "\n".join(lines)


def run(cfg: EvalConfig) -> list[dict]:
    tasks = build_tasks(cfg, load_eval_splits(cfg.dataset)["test"])
    return [evaluate_model(spec, cfg, tasks) for spec in cfg.models]


def parse_args(argv=None):
    d = EvalConfig([], "")
    p = OneLineParser(description="Compare causal code models on a stage-4 dataset and its test period.")
    p.add_argument("--model", action="append", required=True, help="model directory or hub name (repeatable)")
    p.add_argument("--dataset", required=True, help="stage 4's dataset directory (data/NAME/dataset)")
    p.add_argument("--repo", default=None, help="the repository the dataset comes from (line and infill tasks)")
    p.add_argument("--eval-set", default=None, help="a run's eval_set.json: exactly its examples")
    p.add_argument("--max-examples", type=int, default=d.max_examples,
                   help=f"examples per split, drawn with --seed; 0: all (default {d.max_examples})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of the examples and tasks (default {d.seed})")
    p.add_argument("--completion-lines", type=int, default=d.completion_lines,
                   help=f"next-line tasks; 0: none (default {d.completion_lines})")
    p.add_argument("--infill-hunks", type=int, default=d.infill_hunks,
                   help=f"infill tasks, for models with FIM tokens; 0: none (default {d.infill_hunks})")
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens,
                   help=f"longest line completion (default {d.max_new_tokens})")
    p.add_argument("--infill-new-tokens", type=int, default=d.infill_new_tokens,
                   help=f"longest infilled middle (default {d.infill_new_tokens})")
    p.add_argument("--max-context", type=int, default=0, help="> 0: only the last N context tokens (default 0)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"examples per forward pass (default {d.batch_size})")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu (default auto)")
    p.add_argument("--output", type=Path, default=None, help="also write every figure to this JSON file")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    setup_logging(a.verbose)

    def go() -> None:
        cfg = EvalConfig(a.model, a.dataset, a.repo, a.eval_set, a.max_examples, a.seed, a.completion_lines,
                         a.infill_hunks, a.max_new_tokens, a.infill_new_tokens, a.max_context, a.batch_size, a.device,
                         a.progress)
        results = run(cfg)
        print(table(results))
        if a.output is not None:
            write_json(a.output, results)

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
