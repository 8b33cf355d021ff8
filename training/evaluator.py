"""The one evaluator: the trainer (step 0, every evaluation, the end) and evaluate.py score with it.

    ev = Evaluator.draw({"val": val, "test": test}, max_examples=200, seed=0)
    ev.save(out / "eval_set.json")                       # the examples, recorded in the run's output
    ev = Evaluator.load(out / "eval_set.json", splits)   # the same examples; another dataset is refused
    figures = ev.measure(model, "val", device, batch_size=8)   # {"examples", "tokens", "loss", "perplexity"}

The evaluation set is chosen by example, not by batch: `max_examples` example indices per split
drawn with `seed` (`training.data.eval_indices`), so it does not depend on the batch size, the
model, the training seed or the number of processes. The loss is always the mean over the target
tokens of those examples (whatever `loss_on` the training used), so runs with different
objectives are compared on the same figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.io import UserError, read_json, write_json

FORMAT, VERSION = "gitlm-eval-set", 1


def _fingerprint(split, context: int) -> dict:
    """What must be equal for an evaluation set to mean the same examples in another run."""
    meta = split.meta
    return {"tokenizer_sha256": split.identity.get("sha256"), "vocab_size": split.identity.get("vocab_size"),
            "context_window": meta["context_window"], "target_window": meta["target_window"],
            "stride": meta.get("stride"), "n_examples": len(split), "tokens_sha256": meta.get("tokens_sha256"),
            "context": context}


class Evaluator:
    def __init__(self, splits: dict, indices: dict[str, np.ndarray], seed: int, max_examples: int):
        self.splits, self.indices, self.seed, self.max_examples = splits, indices, seed, max_examples

    @classmethod
    def draw(cls, splits: dict, max_examples: int, seed: int) -> Evaluator:
        from training.data import eval_indices
        return cls(splits, {name: eval_indices(len(s), max_examples, seed) for name, s in splits.items()},
                   seed, max_examples)

    def context(self, name: str) -> int:
        split = self.splits[name]
        return int(split.context.max()) if len(split) else 0

    def record(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "seed": self.seed, "max_examples": self.max_examples,
                "splits": {name: {"file": s.path.name, **_fingerprint(s, self.context(name)),
                                  "indices": self.indices[name].tolist()} for name, s in self.splits.items()}}

    def save(self, path: Path) -> None:
        write_json(path, self.record())

    @classmethod
    def load(cls, path: Path, splits: dict) -> Evaluator:
        """The evaluation set at `path`, checked against `splits`; their context is cut as it was."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"--eval-set {path}: no such file")
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise UserError(f"--eval-set {path}: not a {FORMAT} file of version {VERSION}")
        indices = {}
        for name, split in splits.items():
            want = data["splits"].get(name)
            if want is None:
                raise UserError(f"--eval-set {path}: has no '{name}' split")
            if want["context"] < int(split.context.max(initial=0)):
                split.limit_context(want["context"])
            have = _fingerprint(split, int(split.context.max(initial=0)))
            differ = [k for k, v in have.items() if want.get(k) != v]
            if differ:
                k = differ[0]
                raise UserError(f"--eval-set {path}: drawn from another dataset than {split.path} "
                                f"({k} {str(want.get(k))[:16]} there, {str(have[k])[:16]} here); evaluate on the "
                                "dataset it was drawn from, or leave --eval-set out")
            indices[name] = np.asarray(want["indices"], dtype=np.int64)
        return cls(splits, indices, data["seed"], data["max_examples"])

    def measure(self, model, name: str, device, batch_size: int, rank: int = 0, world: int = 1,
                chunk_map=None, progress: bool = False) -> dict:
        """Mean target-token loss of `model` over the evaluation set of split `name`.

        Under torchrun each rank scores every `world`-th example and the sums are all-reduced.
        With `chunk_map`, also the loss per language and per category of each token's chunk.
        """
        import torch
        from tqdm.auto import tqdm

        from training.data import shard_batches
        from training.loop import Amp, perplexity, supports_logits_to_keep, token_losses

        split, amp, keep = self.splits[name], Amp(device, torch.float32), supports_logits_to_keep(model)
        was_training = model.training
        model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, target tokens
        losses, positions = [], []
        with torch.no_grad():
            for idx in tqdm(shard_batches(self.indices[name], batch_size, rank, world), desc=name, unit="batch",
                            disable=not progress, leave=False):
                batch = split.batch(idx, "target")
                tl = token_losses(model, batch, device, amp, keep)  # (B, K), 0 where nothing is predicted
                total[0] += tl.double().sum()
                total[1] += batch["n_target"]
                if chunk_map is not None:
                    mask, pos = predicted_positions(split, idx, batch, tl.shape[1])
                    losses.append(tl.cpu().numpy()[mask])
                    positions.append(pos[mask])
        model.train(was_training)
        if world > 1:
            torch.distributed.all_reduce(total)
        loss = (total[0] / total[1].clamp(min=1)).item() if total[1] else float("nan")
        result = {"examples": len(self.indices[name]), "tokens": int(total[1].item()), "loss": loss,
                  "perplexity": perplexity(loss)}
        if chunk_map is not None and losses:
            result.update(grouped_losses(chunk_map, np.concatenate(losses), np.concatenate(positions)))
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


def grouped_losses(chunk_map, losses: np.ndarray, positions: np.ndarray) -> dict:
    """{"by_language": {...}, "by_category": {...}}: the mean loss of the tokens of each group."""
    rows = chunk_map.chunk_of(positions)
    out = {}
    for key in ("language", "category"):
        names = np.array([r.get(key) or "(no file)" for r in chunk_map.rows] + ["(prefix)"])
        groups = names[np.where(rows < 0, len(names) - 1, rows)]
        out[f"by_{key}"] = {g: _group(losses[groups == g]) for g in sorted(set(groups.tolist()))}
    return out


def _group(losses: np.ndarray) -> dict:
    from training.loop import perplexity
    mean = float(losses.mean())
    return {"tokens": len(losses), "loss": mean, "perplexity": perplexity(mean)}
