"""Stage 4: a chronological, leak-free dataset of context + target windows from stage 3's tokens.

    python3 dataset_builder.py --vocab data/NAME/chunks_tokenized.json --chunks data/NAME/chunks_tokenized.json \
        --commits data/NAME/git_history_rich.json --context-window 2048 --target-window 256 \
        --output-dir data/NAME/dataset

Chunks are put in commit order (diff/commit chunks before the snapshot chunks of the same
commit, then input order) and concatenated into one token stream with the tokenizer's separator
after every chunk. `core.splits.split_commits` (the function stage 2 uses to place its snapshots)
cuts the stream by commit into train / val / test. Each split's stream is stored once as a
`.npy`; the split's JSON lists windows as offsets into it. Windows never cross a split boundary:
the only tokens a val/test file holds from an earlier split are its `prefix_tokens`, context for
its first windows, never a target. Field reference: docs/dataset.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from core import settings
from core.config import PATH, add_flags, from_args, setting
from core.settings import PROGRESS
from core.io import (UserError, atomic_write, dumps, iter_commit_records, read_json, run_main, setup_logging,
                         sha256_file, write_json)
from core.split_file import FORMAT, VERSION, write_split
from core.schema import (MANIFEST, NEAR_DUP_SUFFIX, SPLIT_CHUNKS_SUFFIX, TOKENS_SUFFIX, companion, split_file,
                         token_dtype)
from core.splits import DEFAULT_RATIOS, SPLITS, commit_token_counts, split_commits
from core.near_dup import SHINGLE, THRESHOLD, SignatureCache, near_duplicates
from core.languages import category_of, language_of
from core.tokenizer import load_tokenizer, same_tokenizer, tokenizer_identity
from core.tokenized_chunks import load_tokenized

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "gitlm-dataset-manifest"
KIND_RANK = {"diff": 0, "commit": 0, "snapshot": 1}


@dataclass
class DatasetConfig:
    """Stage 4's settings, each declared once (`core.config`): the flags below and the one command's come from here."""

    vocab: Path = setting(help="stage 3's chunks_tokenized.json (its tokenizer identity)", role=PATH, type=Path,
                          required=True)
    chunks: Path | None = setting(None, "stage 3's chunks_tokenized.json [--vocab]", role=PATH, type=Path)
    commits: Path | None = setting(None, "git_history_rich.json/.jsonl: commit times and subjects for the manifest",
                                   role=PATH, type=Path)
    context_window: int = setting(2048, "context tokens per example")
    target_window: int = setting(256, "target (predicted) tokens per example")
    stride: int | None = setting(None, "tokens between example targets, 1 to --target-window; smaller repeats "
                                 "targets [--target-window]")
    split_ratios: tuple[float, float, float] = setting(DEFAULT_RATIOS, "train, val, test shares of tokens "
                                                       "(--train-ratio, --val-ratio, --test-ratio)", flag="")
    inline_ids: bool = setting(False, "write each example's ids into the split JSON instead of offsets into its "
                               ".tokens.npy")
    output_dir: Path | None = setting(None, "output directory [dataset/ beside --chunks]", role=PATH, type=Path)
    seed: int = setting(42, "recorded in the manifest and passed to training (nothing here is random)")
    near_dedup: bool = setting(True, "stage 4: keep train diff chunks that are near-duplicates (MinHash, Jaccard "
                               ">= 0.8) of earlier train chunks")
    progress: bool = setting(**PROGRESS)
    ratios: tuple[float, float, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.vocab = Path(self.vocab)
        self.chunks = Path(self.chunks) if self.chunks else self.vocab
        self.commits = Path(self.commits) if self.commits else None
        self.output_dir = Path(self.output_dir) if self.output_dir else self.chunks.parent / "dataset"
        self.stride = settings.dataset_windows(self.context_window, self.target_window, self.stride)
        self.ratios = settings.ratios(self.split_ratios)


@dataclass
class Stage3Tokens:
    """Stage 3's output as arrays, one entry per usable chunk (input order)."""

    identity: dict
    tokenizer_dir: Path | None       # the saved tokenizer stage 3 used, if it names one
    ids: np.ndarray                  # every chunk's ids, concatenated (memory-mapped)
    chunks: list[dict]               # the usable chunk records
    orders: np.ndarray               # (n,) commit order of each chunk
    ranks: np.ndarray                # (n,) KIND_RANK of each chunk
    n_tokens: np.ndarray             # (n,)
    offsets: np.ndarray              # (n,) start of each chunk in `ids`
    commit_index: np.ndarray         # (n,) index into commit_hashes
    commit_hashes: list[str]
    commit_orders: list[int]
    commit_times: list
    skipped: int

    def commit_info(self, i: int) -> dict:
        return {"hash": self.commit_hashes[i], "order": self.commit_orders[i], "timestamp": self.commit_times[i]}


def _chunk_row(c: dict, n_ids: int) -> tuple | None:
    """(kind rank, order, n_tokens, offset, first_sequence, n_sequences) of a well-formed chunk record, else None."""
    try:
        row = (KIND_RANK[c["kind"]], int(c["order"]), int(c["n_tokens"]), int(c["offset"]),
               int(c["first_sequence"]), int(c["n_sequences"]))
    except (KeyError, TypeError, ValueError):
        return None
    ok = isinstance(c["commit"], str) and row[1] >= 0 and row[2] >= 0 and 0 <= row[3] <= n_ids - row[2]
    return row if ok else None


def check_sequences(index: np.ndarray, n_tokens: np.ndarray, first: np.ndarray, count: np.ndarray,
                    sequences: np.ndarray) -> str | None:
    """Why stage 3's sequences do not tile each chunk's ids exactly (None when they do).

    Chunk `index[k]` owns rows first[k] .. first[k]+count[k] of `sequences` ((chunk, start, length));
    together they must cover [0, n_tokens[k]) from 0 to the end, in order, without gaps.
    """
    keep = n_tokens > 0
    index, n_tokens, first, count = index[keep], n_tokens[keep], first[keep], count[keep]
    if np.any(count < 1) or np.any(first < 0) or np.any(first + count > len(sequences)):
        return "a chunk with tokens has no sequences, or its sequence rows are out of range"
    head = np.zeros(len(count), dtype=np.int64)
    np.cumsum(count[:-1], out=head[1:])
    rows = np.repeat(first - head, count) + np.arange(int(count.sum()))
    seq = np.asarray(sequences[rows], dtype=np.int64)  # (m, 3)
    owner, start, length = seq[:, 0], seq[:, 1], seq[:, 2]
    end = start + length
    if np.any(owner != np.repeat(index, count)):
        return "a sequence names another chunk than the one whose rows hold it"
    if np.any(length < 1) or np.any(start < 0) or np.any(end > np.repeat(n_tokens, count)):
        return "a sequence lies outside its chunk"
    inner = np.ones(len(seq), dtype=bool)
    inner[head] = False  # rows that continue the previous row's chunk
    if np.any(start[head] != 0) or np.any(end[head + count - 1] != n_tokens):
        return "a chunk's sequences do not start at 0 and end at its last token"
    prev_end, prev_start = np.roll(end, 1), np.roll(start, 1)
    if np.any(inner & ((start > prev_end) | (start <= prev_start) | (end <= prev_end))):
        return "a chunk's sequences leave a gap or go backwards"
    return None


def load_stage3(path: Path) -> Stage3Tokens:
    """Read chunks_tokenized.json and its .npy files; skip (and count) malformed chunk records."""
    tc = load_tokenized(path)
    identity, ids, sequences = tc.tokenizer, tc.ids, tc.sequences
    if not isinstance(identity, dict) or "separator_id" not in identity or "vocab_size" not in identity:
        raise UserError(f"{path}: no tokenizer identity with vocab_size and separator_id; rerun stage 3")
    tokenizer_dir = tc.tokenizer_dir.resolve() if identity.get("files") else None

    index, rows, chunks, hashes = [], [], [], {}
    commit_index, commit_orders, commit_times = [], [], []
    for i, c in enumerate(tc.chunks):
        row = _chunk_row(c, len(ids))
        if row is None:
            if i - len(rows) < 3:  # the first few by index; the total is logged and counted below
                logger.warning("%s: chunk %d is malformed (kind, commit, order, offsets or n_tokens), skipped", path, i)
            continue
        if c["commit"] not in hashes:
            hashes[c["commit"]] = len(hashes)
            commit_orders.append(row[1])
            commit_times.append(c.get("timestamp"))
        index.append(i)
        rows.append(row)
        chunks.append(c)
        commit_index.append(hashes[c["commit"]])
    if not rows:
        raise UserError(f"{path}: no usable chunks")
    table = np.array(rows, dtype=np.int64)  # (n, 6)
    data = Stage3Tokens(
        identity=identity, tokenizer_dir=tokenizer_dir, ids=ids.view(np.ndarray), chunks=chunks,
        orders=table[:, 1].copy(), ranks=table[:, 0].astype(np.int8), n_tokens=table[:, 2].copy(),
        offsets=table[:, 3].copy(), commit_index=np.array(commit_index, dtype=np.int64),
        commit_hashes=list(hashes), commit_orders=commit_orders, commit_times=commit_times,
        skipped=len(tc.chunks) - len(rows))
    if data.skipped:
        logger.warning("%s: %d malformed chunk records skipped", path, data.skipped)
    why = check_sequences(np.array(index, dtype=np.int64), data.n_tokens, table[:, 4], table[:, 5], sequences)
    if why:
        raise UserError(f"{path}: the sequences file does not match the chunk index: {why}; rerun stage 3")
    return data


def vocab_identity(path: Path) -> dict:
    """The tokenizer identity behind --vocab: a stage-3 file's, or a saved tokenizer's (dir or file)."""
    if path.is_file() and path.suffix == ".json":
        meta = read_json(path)
        if isinstance(meta, dict) and isinstance(meta.get("tokenizer"), dict) and "sha256" in meta["tokenizer"]:
            return meta["tokenizer"]
    return tokenizer_identity(load_tokenizer(str(path)))


def plan_windows(first_target: int, end: int, context_window: int, target_window: int,
                 stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows whose targets cover positions [first_target, end) of a stream: (start, context, target).

    Target blocks start every `stride` tokens from `first_target` until one reaches `end` (the last
    may be short); each takes up to `context_window` tokens before it as context (fewer near the
    start of the stream, never before position 0). Input = stream[start : start + c + t].

    >>> [a.tolist() for a in plan_windows(1, 10, 4, 3, 3)]   # targets [1,4) [4,7) [7,10)
    [[0, 0, 3], [1, 4, 4], [3, 3, 3]]
    """
    if end <= first_target:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    n = max(0, -(-(end - first_target - target_window) // stride)) + 1
    target_start = first_target + np.arange(n, dtype=np.int64) * stride
    target_len = np.minimum(target_window, end - target_start)
    context_len = np.minimum(context_window, target_start)
    return target_start - context_len, context_len, target_len


def order_chunks(orders: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Chunk indices sorted by (commit order, kind rank, input index)."""
    return np.lexsort((np.arange(len(orders)), ranks, orders))


def near_dup_candidates(data: Stage3Tokens, perm: np.ndarray, split_sorted: np.ndarray) -> np.ndarray:
    """Positions in `perm` that near-dedup compares, in stream order: train's diff chunks (not snapshots)."""
    return np.flatnonzero((split_sorted == 0) & (data.ranks[perm] != KIND_RANK["snapshot"]))


def _drop_near_duplicates(data: Stage3Tokens, perm: np.ndarray, split_sorted: np.ndarray,
                          enabled: bool, progress: bool, signatures: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train diff chunks that are near-duplicates of earlier train chunks (`core.near_dup`) left out;
    val and test are never touched, so nothing moves between splits. Returns the new order and the counts.
    Their MinHash signatures are kept in the file `signatures` for the next run to reuse."""
    near = {"enabled": enabled, "threshold": THRESHOLD, "shingle_tokens": SHINGLE, "split": "train",
            "chunks": 0, "tokens": 0}
    if not enabled:
        signatures.unlink(missing_ok=True)  # a file of the last run's, not of this one
        return perm, split_sorted, near
    from tqdm import tqdm

    cache = SignatureCache(signatures)
    pos = near_dup_candidates(data, perm, split_sorted)
    offsets, n_tokens = data.offsets[perm[pos]].tolist(), data.n_tokens[perm[pos]].tolist()
    flags = near_duplicates(tqdm((data.ids[o:o + n] for o, n in zip(offsets, n_tokens)), total=len(pos),
                                 desc="near-duplicates", unit="chunk", disable=not progress), cache=cache)
    try:
        cache.save()
    except OSError as e:  # stage 3's directory is not writable here: the next run computes them again
        logger.warning("%s: near-duplicate signatures not kept for the next run (%s)", signatures, e.strerror or e)
    drop = pos[np.asarray(flags, dtype=bool)] if flags else pos[:0]
    near.update(chunks=int(len(drop)), tokens=int((data.n_tokens[perm[drop]] + 1).sum()))
    return np.delete(perm, drop), np.delete(split_sorted, drop), near


def build_stream(data: Stage3Tokens, perm: np.ndarray, separator: int, dtype, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """The chunks of `perm`, each followed by `separator`, as one array; and each chunk's start in it."""
    from tqdm import tqdm

    lengths = data.n_tokens[perm] + 1
    starts = np.zeros(len(perm), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    stream = np.empty(int(lengths.sum()), dtype=dtype)
    offsets, n_tokens = data.offsets[perm].tolist(), data.n_tokens[perm].tolist()
    for s, off, n in tqdm(zip(starts.tolist(), offsets, n_tokens), total=len(perm), unit="chunk",
                          desc="stream", disable=not progress, mininterval=1.0):
        stream[s:s + n] = data.ids[off:off + n]
    stream[starts + lengths - 1] = separator
    return stream, starts


def _split_bounds(split_of_sorted: np.ndarray, starts: np.ndarray, total: int) -> list[tuple[int, int, int, int]]:
    """Per split: (first chunk, end chunk) in sorted order and (begin, end) in the stream."""
    bounds = []
    for s in range(len(SPLITS)):
        c0, c1 = np.searchsorted(split_of_sorted, [s, s + 1]).tolist()
        b = int(starts[c0]) if c0 < len(starts) else total
        e = int(starts[c1]) if c1 < len(starts) else total
        bounds.append((c0, c1, b, e))
    return bounds


def _example_lines(ex: dict, stream_part: np.ndarray, hashes: list[str], inline: bool) -> Iterator[str]:
    """One compact JSON object per example, built from the example arrays without a dict each."""
    q = [json.dumps(h) for h in hashes]
    rows = zip(ex["start"].tolist(), ex["context_length"].tolist(), ex["target_length"].tolist(),
               ex["first_commit"].tolist(), ex["last_commit"].tolist())
    for s, c, t, f, l in rows:
        head = ('{"input_ids":[' + ",".join(map(str, stream_part[s:s + c + t].tolist())) + "]" if inline
                else f'{{"start":{s}')
        yield f'{head},"context_length":{c},"target_length":{t},"first_commit":{q[f]},"last_commit":{q[l]}}}'


def _chunk_map_lines(data: Stage3Tokens, chunk_idx: np.ndarray, starts: np.ndarray) -> Iterator[str]:
    """One line per chunk of a split: where its tokens start in the split's token file, and its file."""
    for k, start in zip(chunk_idx.tolist(), starts.tolist()):
        c = data.chunks[k]
        path = c.get("path")
        yield dumps({"start": start, "n_tokens": int(data.n_tokens[k]), "id": c.get("id"), "kind": c["kind"],
                     "commit": c["commit"], "path": path, **_language_and_category(c)})


def _language_and_category(chunk: dict) -> dict:
    """A chunk's language (stage 2's, which its file's first lines may have told; else its path's) and category."""
    path = chunk.get("path")
    if not path:
        return {"language": None, "category": None}
    lang = chunk.get("language") or language_of(path)
    return {"language": lang, "category": category_of(path, lang)}


def _commit_details(path: Path | None, wanted: set[str]) -> dict[str, dict]:
    """Commit time and subject of the `wanted` hashes, streamed from stage 1's history."""
    if path is None:
        return {}
    found: dict[str, dict] = {}
    for rec in iter_commit_records(path):
        if rec.get("hash") in wanted:
            found[rec["hash"]] = {"committed_at": rec.get("committed_at"), "subject": rec.get("subject")}
    missing = sorted(wanted - found.keys())
    if missing:
        logger.warning("%d commit(s) of the dataset not found in %s (e.g. %s)", len(missing), path, missing[0])
    return found


def tokens_by_language_and_category(chunks: list[dict], picked: np.ndarray) -> tuple[dict, dict]:
    """Stream tokens (n_tokens + 1 separator) of the chunks `picked`, by the language and the
    category (`core.languages`) of each chunk's path; "unknown" for a chunk without one.
    Largest first, so each sums to the split's `tokens`."""
    by_lang: dict[str, int] = {}
    by_cat: dict[str, int] = {}
    for i in picked.tolist():
        n = int(chunks[i]["n_tokens"]) + 1
        lang, cat = _language_and_category(chunks[i]).values()
        lang, cat = lang or "unknown", cat or "unknown"
        by_lang[lang] = by_lang.get(lang, 0) + n
        by_cat[cat] = by_cat.get(cat, 0) + n

    def ranked(d: dict[str, int]) -> dict[str, int]:
        return dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))

    return ranked(by_lang), ranked(by_cat)


def _write_split_files(out_dir: Path, split: str, stream: np.ndarray, starts: np.ndarray, perm: np.ndarray,
                       bounds: tuple[int, int, int, int], config: DatasetConfig, header_base: dict,
                       data: Stage3Tokens) -> tuple[dict, dict[str, str]]:
    """training_data_{split}.tokens.npy and .json for one split: its manifest entry, {file: sha256}."""
    c0, c1, b, e = bounds
    commit_sorted = data.commit_index[perm]
    prefix = 0 if b == e else min(config.context_window, b)  # borrowed context from earlier splits
    part = stream[b - prefix:e]
    first_target = max(prefix, 1)  # the first token of the stream has no context: never a target
    start, ctx, tgt = plan_windows(first_target, len(part), config.context_window, config.target_window, config.stride)
    g_first = b - prefix + start  # window starts in the whole stream

    def commit_at(g: np.ndarray) -> np.ndarray:
        return commit_sorted[np.searchsorted(starts, g, side="right") - 1]

    ex = {"start": start, "context_length": ctx, "target_length": tgt,
          "first_commit": commit_at(g_first), "last_commit": commit_at(g_first + ctx + tgt - 1)}
    tokens_name = split_file(split, TOKENS_SUFFIX)
    with atomic_write(out_dir / tokens_name, "wb") as f:
        np.save(f, part, allow_pickle=False)
    target_tokens, unique_targets = int(tgt.sum()), max(0, len(part) - first_target)
    tokens_sha = sha256_file(out_dir / tokens_name)
    header = {"format": FORMAT, "version": VERSION, "split": split, **header_base, "tokens_file": tokens_name,
              "tokens_sha256": tokens_sha, "dtype": part.dtype.name,
              "prefix_tokens": prefix, "n_tokens": len(part), "n_examples": len(start),
              "target_tokens": target_tokens, "inline_ids": config.inline_ids}
    chunks_name = split_file(split, SPLIT_CHUNKS_SUFFIX)
    with atomic_write(out_dir / chunks_name) as f:
        for line in _chunk_map_lines(data, perm[c0:c1], starts[c0:c1] - (b - prefix)):
            f.write(line + "\n")
    header["chunks_file"] = chunks_name
    json_name = split_file(split)
    write_split(out_dir / json_name, header, _example_lines(ex, part, data.commit_hashes, config.inline_ids))
    repeated = target_tokens - unique_targets
    by_lang, by_cat = tokens_by_language_and_category(data.chunks, perm[c0:c1])
    if repeated:
        logger.warning("%s: stride %d < target window %d: %d of %d target tokens (%.1f%%) are targets more than once",
                       split, config.stride, config.target_window, repeated, target_tokens,
                       100.0 * repeated / target_tokens)
    stats = {
        "examples": len(start), "tokens": e - b, "target_tokens": target_tokens, "prefix_tokens": prefix,
        "unique_target_tokens": unique_targets,
        "repeated_target_fraction": repeated / target_tokens if target_tokens else 0.0,
        "chunks": c1 - c0, "commits": len(np.unique(commit_sorted[c0:c1])),
        "tokens_by_language": by_lang, "tokens_by_category": by_cat,
        "first_commit": None, "last_commit": None, "first_order": None, "last_order": None,
    }
    # The commit range comes from diff/commit chunks: snapshots taken at HEAD (an opt-in, stated leak)
    # carry HEAD's hash and would otherwise stretch train's range over val and test.
    content = c0 + np.flatnonzero(data.ranks[perm[c0:c1]] != KIND_RANK["snapshot"])
    if content.size:
        first, last = int(commit_sorted[content[0]]), int(commit_sorted[content[-1]])
        stats.update(first_commit=data.commit_info(first), last_commit=data.commit_info(last),
                     first_order=data.commit_orders[first], last_order=data.commit_orders[last])
    return stats, {json_name: sha256_file(out_dir / json_name), tokens_name: tokens_sha,
                   chunks_name: sha256_file(out_dir / chunks_name)}


def run(config: DatasetConfig) -> dict:
    """Build the three split files and the manifest in `config.output_dir`; return the manifest."""
    data = load_stage3(config.chunks)
    identity = data.identity
    if config.vocab != config.chunks and not same_tokenizer(identity, vocab_identity(config.vocab)):
        raise UserError(f"{config.vocab}: tokenizer differs from the one {config.chunks} was tokenized with")
    vocab_size, separator = int(identity["vocab_size"]), int(identity["separator_id"])
    dtype = token_dtype(vocab_size)
    if data.ids.size and int(data.ids.max()) >= vocab_size:
        raise UserError(f"{config.chunks}: token id {int(data.ids.max())} is not below the vocabulary size {vocab_size}")

    plan = split_commits(sorted(commit_token_counts(data.chunks).items()), config.ratios)
    is_snap = data.ranks == KIND_RANK["snapshot"]
    if is_snap.any() and int(data.orders[is_snap].max()) > plan.train_last_order:
        raise UserError(f"snapshot chunks sit at commit order {int(data.orders[is_snap].max())}, after the train "
                        f"cut-off ({plan.train_last_order}): rerun stage 2 with the same split ratios as stage 4")
    split_of = plan.split_indices(data.orders)
    perm = order_chunks(data.orders, data.ranks)
    split_sorted = split_of[perm]
    assert np.all(np.diff(split_sorted) >= 0), "splits must be contiguous in commit order"
    perm, split_sorted, near = _drop_near_duplicates(data, perm, split_sorted, config.near_dedup,
                                                     config.progress, companion(config.chunks, NEAR_DUP_SUFFIX))
    stream, starts = build_stream(data, perm, separator, dtype, config.progress)

    out_dir = config.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = os.path.relpath(data.tokenizer_dir, out_dir).replace(os.sep, "/") if data.tokenizer_dir else None
    ident_out = {k: v for k, v in identity.items() if k != "files"}
    header_base = {"tokenizer": ident_out, "tokenizer_dir": tokenizer_dir, "context_window": config.context_window,
                   "target_window": config.target_window, "stride": config.stride}
    split_stats, files = {}, {}
    for split, bounds in zip(SPLITS, _split_bounds(split_sorted, starts, len(stream))):
        split_stats[split], hashes = _write_split_files(out_dir, split, stream, starts, perm, bounds,
                                                        config, header_base, data)
        files.update(hashes)

    ends = [st[k] for st in split_stats.values() for k in ("first_commit", "last_commit") if st[k]]
    details = _commit_details(config.commits, {c["hash"] for c in ends})
    for c in ends:
        c.update(details.get(c["hash"], {}))
    snapshot = None
    if is_snap.any():
        k = int(np.flatnonzero(is_snap)[0])
        snapshot = {"chunks": int(is_snap.sum()), "tokens": int(data.n_tokens[is_snap].sum() + is_snap.sum()),
                    "commit": data.commit_hashes[int(data.commit_index[k])], "order": int(data.orders[k]),
                    "split": "train"}
    recorded = {k: v for k, v in asdict(config).items() if k not in ("ratios", "output_dir", "progress")}
    recorded.update(vocab=config.vocab.name, chunks=config.chunks.name,
                    commits=config.commits.name if config.commits else None,
                    split_ratios=list(config.split_ratios), normalized_ratios=list(config.ratios))
    manifest = {
        "format": MANIFEST_FORMAT, "version": VERSION, "settings": recorded,
        "input": {"chunks_file": config.chunks.name, "chunks_sha256": sha256_file(config.chunks),
                  "chunks": len(data.orders), "skipped_chunks": data.skipped},
        "tokenizer": ident_out, "tokenizer_dir": tokenizer_dir, "dtype": np.dtype(dtype).name,
        "cutoff": {"train_last_order": plan.train_last_order, "val_last_order": plan.val_last_order},
        "splits": split_stats, "snapshot": snapshot, "files": files,
        "quality": quality_section(split_stats, near),
    }
    write_json(out_dir / MANIFEST, manifest)
    logger.info("dataset: %s", ", ".join(f"{k} {v['examples']} examples / {v['tokens']} tokens"
                                         for k, v in split_stats.items()))
    return manifest


def quality_section(split_stats: dict, near: dict) -> dict:
    """Noise (tokens of the `data` category and of chunks without a path) per split, next to train's,
    and the near-duplicates left out of train. Token shares by category are the splits' `tokens_by_category`."""
    noise = {}
    for split, st in split_stats.items():
        cats = st["tokens_by_category"]
        noise[split] = round((cats.get("data", 0) + cats.get("unknown", 0)) / st["tokens"], 6) if st["tokens"] else 0.0
    train = noise.get("train") or 0.0
    return {"noise_share": noise,
            "noise_vs_train": {s: (round(v / train, 3) if train else None) for s, v in noise.items() if s != "train"},
            "near_duplicates": dict(near, share=round(near["tokens"] / max(1, near["tokens"] + split_stats["train"]["tokens"]), 6))}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Stage 4: chronological train/val/test windows from stage 3's tokens.")
    add_flags(p, DatasetConfig)
    settings.add_ratio_flags(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> DatasetConfig:
    return from_args(DatasetConfig, a, split_ratios=(a.train_ratio, a.val_ratio, a.test_ratio))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)

    def go() -> int:
        run(config_from_args(args))
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
