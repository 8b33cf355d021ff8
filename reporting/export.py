"""Exports of a finished dataset for other trainers: Hugging Face Parquet and nanoGPT .bin files.

    python3 -m reporting.export data/NAME --format hf,nanogpt

The native split files (`dataset/training_data_{split}.json` + `.tokens.npy`) stay the source
of truth; an export is derived from them and streamed (a few thousand examples or 16M tokens at
a time), so its memory does not grow with the dataset.

- `hf` -> `export/hf/data/{split}.parquet` (`input_ids`, `labels`: -100 on the context
  positions, the ids on the targets, as the trainer's target-only loss; `first_commit`,
  `last_commit`) and `export/hf/README.md`, a dataset card with the manifest's facts.
  `datasets.load_dataset("parquet", data_files={"train": ".../data/train.parquet"})`, or
  `load_dataset("export/hf")`.
- `nanogpt` -> `export/nanogpt/{train,val,test}.bin` (each split's own tokens, no borrowed
  context, in the manifest's dtype) and `meta.pkl` (`vocab_size`, `dtype`): what nanoGPT's
  `train.py` reads with `np.memmap(path, dtype=np.uint16, mode="r")`.

Each export directory gets `export_info.json` (the manifest's sha256 and the files written); an
export whose manifest has not changed is not written again.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from core.io import UserError, atomic_write, read_json, run_main, setup_logging, sha256_file, write_json
from core.schema import DATASET_DIR, HISTORY_STATS, MANIFEST, TOKENS_SUFFIX, split_file
from core.split_file import read_split
from core.splits import SPLITS

logger = logging.getLogger(__name__)

FORMATS = ("hf", "nanogpt")
EXAMPLES_PER_BATCH = 512        # hf: examples per Parquet row group
TOKENS_PER_BLOCK = 1 << 24      # nanogpt: tokens copied per write


def check_formats(formats) -> list[str]:
    """`--export` as a list of known format names: "hf,nanogpt", ["hf"], "" or None."""
    if formats is None:
        return []
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [f.strip() for f in items if str(f).strip()]
    unknown = sorted(set(names) - set(FORMATS))
    if unknown:
        raise UserError(f"--export: unknown format {unknown[0]!r} (known: {', '.join(FORMATS)})")
    return list(dict.fromkeys(names))


class TokenFile:
    """A 1-D .npy token stream read by ranges with plain file reads.

    Not memory-mapped: mapped pages stay in the process's resident memory once touched, so
    reading a multi-GB stream through a map would grow the RSS with it.
    """

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, self.dtype = read(f)
            self.offset = f.tell()
        if len(shape) != 1:
            raise UserError(f"{path}: expected a 1-D token stream, got shape {shape}")
        self.path, self.size = path, int(shape[0])

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Tokens [lo, hi) as an array."""
        return np.fromfile(self.path, dtype=self.dtype, count=max(0, hi - lo), offset=self.offset + lo * self.dtype.itemsize)


def _batches(it: Iterator[dict], n: int) -> Iterator[list[dict]]:
    batch = []
    for row in it:
        batch.append(row)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _hf_table(batch: list[dict], stream: TokenFile):
    """One Arrow table of `batch`: ids from the split's token stream (or inline), labels -100 on context."""
    import pyarrow as pa

    inline = "input_ids" in batch[0]
    if not inline:  # the batch's windows lie in one range of the stream: read it once
        lo = min(ex["start"] for ex in batch)
        part = stream.read(lo, max(ex["start"] + ex["context_length"] + ex["target_length"] for ex in batch))
    ids = [np.asarray(ex["input_ids"] if inline else
                      part[ex["start"] - lo:ex["start"] - lo + ex["context_length"] + ex["target_length"]],
                      dtype=np.int32)
           for ex in batch]
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum([len(a) for a in ids], out=offsets[1:])
    values = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    labels = values.copy()
    for start, ex in zip(offsets.tolist(), batch):
        labels[start:start + ex["context_length"]] = -100  # context: no loss there
    lists = lambda v: pa.ListArray.from_arrays(pa.array(offsets), pa.array(v))  # noqa: E731
    return pa.table({"input_ids": lists(values), "labels": lists(labels),
                     "first_commit": pa.array([ex["first_commit"] for ex in batch], pa.string()),
                     "last_commit": pa.array([ex["last_commit"] for ex in batch], pa.string())})


def _hf_schema():
    import pyarrow as pa

    return pa.schema([("input_ids", pa.list_(pa.int32())), ("labels", pa.list_(pa.int32())),
                      ("first_commit", pa.string()), ("last_commit", pa.string())])


def export_hf(dataset_dir: Path, dest: Path, manifest: dict, repository: str, progress: bool = False) -> list[Path]:
    """export/hf/data/{split}.parquet and README.md; returns the files written."""
    import pyarrow.parquet as pq
    from tqdm import tqdm

    written = []
    for split in SPLITS:
        path = dataset_dir / split_file(split)
        header, examples = read_split(path)
        if examples is None:
            raise UserError(f"{path}: missing the 'examples' list")
        stream = TokenFile(dataset_dir / header["tokens_file"])
        target = dest / "data" / f"{split}.parquet"
        # no dictionary for the id lists: it costs half the write time and makes the files larger
        with atomic_write(target, "wb") as f, pq.ParquetWriter(
                f, _hf_schema(), compression="zstd", use_dictionary=["first_commit", "last_commit"]) as writer:
            bar = tqdm(total=header.get("n_examples"), unit="example", desc=f"export hf {split}",
                       disable=not progress, mininterval=1.0)
            for batch in _batches(examples, EXAMPLES_PER_BATCH):
                writer.write_table(_hf_table(batch, stream))
                bar.update(len(batch))
            bar.close()
        written.append(target)
    card = dest / "README.md"
    with atomic_write(card) as f:
        f.write(dataset_card(manifest, repository))
    return written + [card]


def dataset_card(manifest: dict, repository: str) -> str:
    """README.md for the Hugging Face export: YAML front matter naming the splits, then the facts."""
    s, tok, st = manifest["settings"], manifest["tokenizer"], manifest["splits"]
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    lines += [f"  - split: {split}\n    path: data/{split}.parquet" for split in SPLITS]
    lines += ["---", "", f"# {repository}: code-LM training data from its git history", "",
              "Built by comprehensive_pipeline.py from the history of the repository "
              f"`{repository}`. The native files (`dataset/`) are the source of truth; this is an export.", "",
              "## Splits", "",
              "Leak-free and chronological: every commit belongs to exactly one split (train < val < test in "
              "commit order, cut at commit boundaries by share of tokens "
              f"{s['normalized_ratios']}); file snapshots are taken at the train cut-off; val and test windows "
              "take context only from earlier splits, never a target.", "",
              "| split | examples | tokens | target tokens | first commit | last commit |", "|---|---|---|---|---|---|"]
    for split in SPLITS:
        x = st[split]
        ends = [f"`{c['hash'][:12]}` {c.get('committed_at') or ''} {c.get('subject') or ''}".strip() if c else ""
                for c in (x["first_commit"], x["last_commit"])]
        lines.append(f"| {split} | {x['examples']:,} | {x['tokens']:,} | {x['target_tokens']:,} | {ends[0]} | {ends[1]} |")
    lines += ["", "## Columns", "",
              "- `input_ids`: context then target token ids of one window "
              f"(up to {s['context_window']} + {s['target_window']}, stride {s['stride']}).",
              "- `labels`: -100 on the context positions, the ids on the target positions (the loss is on "
              "the targets only; a causal LM shifts the labels itself).",
              "- `first_commit`, `last_commit`: commit hashes of the window's first and last token.", "",
              "## Tokenizer", "",
              f"`{tok['name_or_path']}`, vocabulary {tok['vocab_size']:,}, separator id {tok['separator_id']}, "
              f"sha256 `{tok['sha256']}`" + (", a byte-level BPE trained on the repository (fallback)."
                                             if tok.get("fallback") else "."), "",
              "## Settings", "", "```json", json.dumps(s, indent=2), "```", ""]
    return "\n".join(lines)


def export_nanogpt(dataset_dir: Path, dest: Path, manifest: dict) -> list[Path]:
    """export/nanogpt/{split}.bin (own tokens, no prefix) and meta.pkl; returns the files written."""
    written = []
    for split in SPLITS:
        stream = TokenFile(dataset_dir / split_file(split, TOKENS_SUFFIX))
        target = dest / f"{split}.bin"
        with atomic_write(target, "wb") as f:
            for i in range(manifest["splits"][split]["prefix_tokens"], stream.size, TOKENS_PER_BLOCK):
                stream.read(i, min(i + TOKENS_PER_BLOCK, stream.size)).tofile(f)
        written.append(target)
    meta = dest / "meta.pkl"
    with atomic_write(meta, "wb") as f:
        pickle.dump({"vocab_size": int(manifest["tokenizer"]["vocab_size"]), "dtype": manifest["dtype"],
                     "separator_id": int(manifest["tokenizer"]["separator_id"]),
                     "tokenizer": manifest["tokenizer"]["name_or_path"]}, f)
    return written + [meta]


def export(run_dir: str | Path, formats, repository: str | None = None, progress: bool = False) -> dict[str, Path]:
    """Write each format of `formats` under `run_dir/export/`; {format: its directory}."""
    run_dir = Path(run_dir)
    dataset_dir = run_dir / DATASET_DIR
    manifest_path = dataset_dir / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{run_dir}: no dataset/dataset_stats.json; run the pipeline (stage 4) first")
    manifest, manifest_sha = read_json(manifest_path), sha256_file(manifest_path)
    if repository is None:
        stats = run_dir / HISTORY_STATS
        repository = (read_json(stats).get("repository") if stats.is_file() else None) or run_dir.name
    done = {}
    for fmt in check_formats(formats):
        dest = run_dir / "export" / fmt
        info_path = dest / "export_info.json"
        info = read_json(info_path) if info_path.is_file() else {}
        if info.get("manifest_sha256") == manifest_sha and all((dest / n).is_file() for n in info.get("files", [])):
            logger.info("export %s: unchanged since the last export, skipped", fmt)
        else:
            files = export_hf(dataset_dir, dest, manifest, repository, progress) if fmt == "hf" else \
                export_nanogpt(dataset_dir, dest, manifest)
            write_json(info_path, {"format": fmt, "manifest_sha256": manifest_sha,
                                   "files": [p.relative_to(dest).as_posix() for p in files]})
            logger.info("export %s: %d files in %s", fmt, len(files), dest)
        done[fmt] = dest
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Export a finished dataset for Hugging Face datasets or nanoGPT.")
    p.add_argument("run_dir", type=Path, help="the run's output directory (data/NAME)")
    p.add_argument("--format", default="hf,nanogpt", help=f"comma-separated, of {', '.join(FORMATS)} [hf,nanogpt]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    setup_logging(args.verbose)

    def go() -> int:
        for fmt, dest in export(args.run_dir, args.format, progress=not args.no_progress).items():
            print(f"{fmt}: {dest}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
