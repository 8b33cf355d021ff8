"""Join every repository's train / val / test into one dataset, streaming, in repository-name order.

    manifest = merge_datasets(Path("data/team"), jobs, failed, identity, RunState(Path("data/team")))

Input: `<out>/repos/<name>/dataset/` of each repository (stage 4's files, docs/dataset.md), each
split at that repository's own cut-off. Output: `<out>/dataset/training_data_{split}.json` and
`.tokens.npy` in the same format, so the trainer reads them unchanged, plus `dataset_stats.json`.

A merged split's token stream is the repositories' streams one after another (each with its own
`prefix_tokens` of context from its own earlier splits); each example's `start` moves by the
offset of its repository's part. Tokens are copied in blocks and examples line by line, so
memory stays bounded by a block, whatever the size of the dataset. Reference: docs/multi_repo.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from dataset_builder import MANIFEST_FORMAT
from pipeline.config import PIPELINE_VERSION
from core.io import UserError, atomic_write, dumps, read_json, sha256_file, write_json
from core.schema import DATASET_DIR, MANIFEST, TOKENS_SUFFIX, split_file
from core.split_file import VERSION, read_split, write_split
from core.splits import SPLITS
from pipeline.state import RunState, stage_key

logger = logging.getLogger(__name__)

BLOCK = 1 << 22                    # tokens copied at a time
SUM_KEYS = ("examples", "tokens", "target_tokens", "unique_target_tokens", "prefix_tokens", "chunks", "commits")
RANGE_KEYS = ("examples", "tokens", "commits", "first_order", "last_order", "first_commit", "last_commit")


def read_split_header(path: Path) -> dict:
    """The header of a split file (everything before its examples)."""
    return read_split(path)[0]


def iter_examples(path: Path, shift: int) -> Iterator[str]:
    """The example lines of a split file, each `start` moved by `shift` (inline examples unchanged)."""
    for example in read_split(path)[1] or ():
        if "start" in example:
            example["start"] += shift
        yield dumps(example)


def write_tokens(path: Path, parts: list[np.ndarray], dtype: np.dtype) -> None:
    """The parts one after another as one 1-D `.npy`, copied block by block."""
    total = sum(len(p) for p in parts)
    with atomic_write(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (total,)})
        for part in parts:
            for i in range(0, len(part), BLOCK):
                f.write(np.ascontiguousarray(part[i:i + BLOCK], dtype=dtype).tobytes())


def merge_split(out: Path, split: str, names: list[str], dirs: list[Path], identity: dict) -> tuple[dict, dict]:
    """One merged split file and its token stream; returns (its header without examples, {file: sha256})."""
    headers = [read_split_header(d / split_file(split)) for d in dirs]
    for name, h in zip(names, headers):
        if h["tokenizer"]["sha256"] != identity["sha256"]:
            raise UserError(f"repository {name}: its {split} split was tokenized with another tokenizer; "
                            "rerun with --force")
    parts = [np.load(d / h["tokens_file"], mmap_mode="r") for d, h in zip(dirs, headers)]
    dtype = np.dtype(headers[0]["dtype"])
    tokens_name = split_file(split, TOKENS_SUFFIX)
    write_tokens(out / tokens_name, parts, dtype)
    repos, offset, first_example = [], 0, 0
    for name, h, part in zip(names, headers, parts):
        repos.append({"name": name, "offset": offset, "n_tokens": len(part), "prefix_tokens": h["prefix_tokens"],
                      "first_example": first_example, "n_examples": h["n_examples"]})
        offset += len(part)
        first_example += h["n_examples"]
    base = headers[0]
    header = {"format": base["format"], "version": base["version"], "split": split,
              "tokenizer": {k: v for k, v in identity.items() if k != "files"}, "tokenizer_dir": "../tokenizer",
              "context_window": base["context_window"], "target_window": base["target_window"],
              "stride": base["stride"], "tokens_file": tokens_name, "tokens_sha256": sha256_file(out / tokens_name),
              "dtype": dtype.name, "prefix_tokens": sum(h["prefix_tokens"] for h in headers), "n_tokens": offset,
              "n_examples": first_example, "target_tokens": sum(h["target_tokens"] for h in headers),
              "inline_ids": base["inline_ids"], "repositories": repos}

    def lines() -> Iterator[str]:
        for d, r in zip(dirs, repos):
            yield from iter_examples(d / split_file(split), r["offset"])

    json_name = split_file(split)
    write_split(out / json_name, header, lines())
    return header, {json_name: sha256_file(out / json_name), tokens_name: header["tokens_sha256"]}


def merge_datasets(out: Path, jobs: list, failed: list[dict], identity: dict, state: RunState,
                   force: bool = False) -> dict:
    """`<out>/dataset/` from the built repositories `jobs` (sorted by name); returns the manifest.

    Skipped (unless `force`) when the repositories' manifests, the failures and the tokenizer are
    those of the last merge.
    """
    dirs = [Path(j.out) / DATASET_DIR for j in jobs]
    ds = out / DATASET_DIR
    inputs = {j.name: state.file_hash(d / MANIFEST) for j, d in zip(jobs, dirs)}  # stat data, else content
    settings = {"version": PIPELINE_VERSION, "tokenizer": identity["sha256"],
                "sources": {j.name: j.source for j in jobs},
                "failed": [(r["name"], r["source"], r["error"]) for r in failed]}
    outputs = {"manifest": ds / MANIFEST}
    for split in SPLITS:
        outputs[split] = ds / split_file(split)
        outputs[f"{split}_tokens"] = ds / split_file(split, TOKENS_SUFFIX)
    key = stage_key(settings, inputs)
    if not force and state.finished("merge", key, outputs) is not None:
        logger.info("merge: unchanged since its last run, skipped")
        return read_json(ds / MANIFEST)

    manifests = [read_json(d / MANIFEST) for d in dirs]
    names = [j.name for j in jobs]
    files, splits = {}, {}
    for split in SPLITS:
        _, hashes = merge_split(ds, split, names, dirs, identity)
        files.update(hashes)
        splits[split] = {k: sum(m["splits"][split][k] for m in manifests) for k in SUM_KEYS}
        splits[split]["repositories"] = sum(1 for m in manifests if m["splits"][split]["examples"])
    repositories = [{"name": j.name, "source": j.source, "dataset_dir": f"../repos/{j.name}/dataset",
                     "manifest_sha256": inputs[j.name], "cutoff": m["cutoff"],
                     "splits": {s: {k: m["splits"][s][k] for k in RANGE_KEYS} for s in SPLITS}}
                    for j, m in zip(jobs, manifests)]
    manifest = {
        "format": MANIFEST_FORMAT, "version": VERSION, "kind": "multi-repository",
        "settings": {k: v for k, v in manifests[0]["settings"].items() if k not in ("vocab", "chunks", "commits")},
        "tokenizer": {k: v for k, v in identity.items() if k != "files"}, "tokenizer_dir": "../tokenizer",
        "tokenizer_sample": {k: v for k, v in state.info("tokenizer").items() if k in ("repositories", "sample_mb")}
        if identity.get("fallback") else None,
        "dtype": manifests[0]["dtype"], "order": "repositories by name; each split at its repository's own cut-off",
        "splits": splits, "repositories": repositories,
        "failed": [{"name": r["name"], "source": r["source"], "error": r["error"]} for r in failed],
        "files": files,
    }
    write_json(ds / MANIFEST, manifest)
    state.record("merge", key, outputs, {})
    logger.info("merged %d repositories: %s", len(jobs),
                ", ".join(f"{s} {c['examples']} examples" for s, c in splits.items()))
    return manifest
