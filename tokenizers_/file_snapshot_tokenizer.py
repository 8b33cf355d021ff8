"""Stage 3: tokenize every chunk once and cut it into overlapping sequences that never cross chunks.

    python3 tokenizers_/file_snapshot_tokenizer.py --input data/NAME/chunks_semantic.jsonl \\
        --sequences data/NAME/chunks_tokenized.json --model microsoft/codebert-base \\
        --sequence-length 512 --overlap 128 --stats

Writes, beside `--sequences` (format: docs/tokens.md):
- `chunks_tokenized.json`: tokenizer identity, settings, stats, one line per chunk;
- `chunks_tokenized.ids.npy`: every chunk's ids concatenated in input order, each token once;
- `chunks_tokenized.sequences.npy`: (n, 3) int64 rows (chunk index, start in chunk, length);
- `tokenizer/`: the tokenizer used, saved with `save_pretrained`, so training loads it offline.

Each chunk is encoded once, in batches, by the Rust tokenizer, and its ids are streamed to the
`.npy` (no Python list of the whole corpus). When stage 2 left its ids
(`chunks_semantic.tokens.npy`) for the same chunks file and the same tokenizer, they are reused
instead of encoding again. Stage 4 and the orchestrator read the output with
`core.tokenized_chunks.load_tokenized`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import settings
from core.config import PATH, RUN, add_flags, from_args, setting
from core.settings import PROGRESS
from core.io import (NpyStream, UserError, atomic_write, iter_jsonl, read_json, run_main, setup_logging,
                         sha256_file)
from core.schema import (IDS_SUFFIX, SEQUENCES_SUFFIX, STATS_SUFFIX, TOKENIZED, TOKENIZER_DIR, TOKENS_SUFFIX,
                             companion, token_dtype)
from core.splits import commit_token_counts, split_commits
from core.tokenizer import (DEFAULT_MODEL, FALLBACK_VOCAB_SIZE, encode_batch, is_backend, load_or_fall_back,
                            save_tokenizer, tokenizer_identity, train_fallback_tokenizer)
from core.tokenized_chunks import FORMAT, FORMAT_VERSION, sequence_table, write_meta

logger = logging.getLogger(__name__)

BATCH_SIZE = 2048  # texts per Rust encode_batch call: enough to keep every core busy, little memory
CHUNK_FIELDS = ("id", "kind", "commit", "order", "timestamp", "path", "language")


@dataclass
class TokenizeConfig:
    """Stage 3's settings, each declared once (`core.config`): the flags below and the one command's come from here."""

    input: str = setting(help="stage 2's chunks_semantic.jsonl (any JSONL of records with `id` and `text`)",
                         role=PATH, required=True)
    sequences: str | None = setting(None, "output chunks_tokenized.json [chunks_tokenized.json beside --input]",
                                    role=PATH)
    model: str = setting(DEFAULT_MODEL, "tokenizer: hub name, local directory (save_pretrained) or tokenizer.json")
    sequence_length: int = setting(512, "tokens per stage-3 sequence")
    overlap: int = setting(128, "tokens a stage-3 sequence shares with the one before it in its chunk")
    fallback: bool = setting(False, "when --model cannot be loaded, train a byte-level BPE on the train-period "
                             "chunks instead", flag="--fallback-tokenizer")
    fallback_vocab_size: int = setting(FALLBACK_VOCAB_SIZE, "vocab size of the fallback tokenizer")
    stats: bool = setting(False, "print token, sequence and unknown-token statistics", role=RUN)
    progress: bool = setting(**PROGRESS)


def run(config: TokenizeConfig, tokenizer=None, identity: dict | None = None) -> dict:
    """Tokenize config.input; write the sequences file, its arrays and `tokenizer/`. Returns a summary.

    `tokenizer`/`identity`: already resolved by the orchestrator (loaded, or the fallback it
    trained; or, with its identity, the bare Rust tokenizer of the one already saved in `tokenizer/`,
    `core.tokenizer.recorded_backend`). When None, config.model is loaded, or with config.fallback a byte-level BPE is
    trained on the chunk texts when it cannot be.
    """
    settings.sequence_windows(config.sequence_length, config.overlap)
    if config.fallback:
        settings.fallback_tokenizer(config.fallback_vocab_size)
    input_path = Path(config.input)
    if not input_path.is_file():
        raise UserError(f"{input_path}: no such file (expected stage 2's chunks_semantic.jsonl)")
    out = Path(config.sequences) if config.sequences else input_path.with_name(TOKENIZED)
    tok_dir = out.parent / TOKENIZER_DIR
    if tokenizer is None:
        tokenizer, identity = _resolve_tokenizer(config, input_path, tok_dir)
    elif identity is None:
        identity = tokenizer_identity(tokenizer, source=config.model)
    save_tokenizer(tokenizer, identity, tok_dir)
    identity = {**identity, "files": TOKENIZER_DIR}

    ids_path, seq_path = companion(out, IDS_SUFFIX), companion(out, SEQUENCES_SUFFIX)
    cache = _stage2_cache(input_path, identity)
    try:
        encoded = _write_ids(input_path, ids_path, tokenizer, identity["vocab_size"], cache, config.progress)
    except _CacheMismatch as e:
        logger.warning("stage 2's token cache does not match %s (%s); encoding the chunks again", input_path, e)
        cache = None
        encoded = _write_ids(input_path, ids_path, tokenizer, identity["vocab_size"], None, config.progress)
    chunks, n_tokens = encoded["chunks"], np.array([c["n_tokens"] for c in encoded["chunks"]], dtype=np.int64)

    table = sequence_table(n_tokens, config.sequence_length, config.overlap)
    counts = np.bincount(table[:, 0], minlength=len(chunks)) if len(chunks) else np.zeros(0, np.int64)
    firsts = np.cumsum(counts) - counts
    for c, first, count in zip(chunks, firsts.tolist(), counts.tolist()):
        c["first_sequence"], c["n_sequences"] = first, count
    with atomic_write(seq_path, "wb") as f:
        np.save(f, table)

    stats = _stats(n_tokens, len(table), encoded, config.sequence_length)
    if stats["n_tokens_mismatch"]:
        logger.warning("%d chunks have a different token count than stage 2 measured: was stage 2 run with "
                       "another tokenizer?", stats["n_tokens_mismatch"])
    if encoded["bad_records"]:
        logger.warning("%d bad chunk records skipped (see the messages above)", encoded["bad_records"])
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "tokenizer": identity,
            "sequence_length": config.sequence_length, "overlap": config.overlap,
            "ids_file": ids_path.name, "ids_dtype": encoded["dtype"], "sequences_file": seq_path.name,
            "stats": stats}
    write_meta(out, meta, chunks)
    if config.stats:
        _print_stats(stats)
    return {"sequences": str(out), "ids": str(ids_path), "sequences_npy": str(seq_path), "tokenizer": identity,
            "stats": stats, "ids_source": "stage 2 cache" if cache is not None else "encoded"}


def _resolve_tokenizer(config: TokenizeConfig, input_path: Path, tok_dir: Path):
    tok = load_or_fall_back(config.model, config.fallback, "the train-period chunks",
                            f"saved in {tok_dir}; without --fallback-tokenizer it stops here")
    if tok is not None:
        return tok, tokenizer_identity(tok, source=config.model)
    tok = train_fallback_tokenizer(_train_period_texts(input_path), tok_dir, vocab_size=config.fallback_vocab_size)
    return tok, tokenizer_identity(tok, source=TOKENIZER_DIR, fallback=True)


def _train_period_texts(input_path: Path):
    """The texts of the chunks in the train period, so that no val/test code shapes the vocabulary.

    The cut-off is stage 2's (`cutoff.train_last_order` in its stats); without those stats it is
    `split_commits` over the chunks with the default ratios, as stage 4 cuts. Records without an
    `order` cannot be placed in time: then every chunk is used, and a warning says so.
    """
    def texts():
        return (r for r in iter_jsonl(input_path) if isinstance(r, dict) and isinstance(r.get("text"), str))

    stats_path = companion(input_path, STATS_SUFFIX)
    stats = read_json(stats_path) if stats_path.is_file() else None
    last = (stats.get("cutoff") or {}).get("train_last_order") if isinstance(stats, dict) else None
    if last is None:
        try:
            last = split_commits(sorted(commit_token_counts(texts()).items())).train_last_order
        except (KeyError, TypeError, ValueError):
            logger.warning("%s: chunks without order/n_tokens: the fallback tokenizer learns from every chunk, "
                           "val and test included", input_path)
            return (r["text"] for r in texts())
    return (r["text"] for r in texts() if isinstance(r.get("order"), int) and r["order"] <= last)


class _CacheMismatch(Exception):
    """Stage 2's ids do not line up with the chunk records' n_tokens."""


def _stage2_cache(input_path: Path, identity: dict) -> np.ndarray | None:
    """Stage 2's ids (`chunks_semantic.tokens.npy`), when they are for this very file and this tokenizer."""
    stats_path, tokens_path = companion(input_path, STATS_SUFFIX), companion(input_path, TOKENS_SUFFIX)
    if not (stats_path.is_file() and tokens_path.is_file()):
        return None
    stats = read_json(stats_path)
    tok = stats.get("tokenizer") if isinstance(stats, dict) else None
    if not isinstance(tok, dict) or tok.get("sha256") != identity["sha256"]:
        logger.info("stage 2's token cache is for another tokenizer: encoding the chunks")
        return None
    if stats.get("chunks_sha256") != sha256_file(input_path):
        logger.info("stage 2's token cache is for another version of %s: encoding the chunks", input_path.name)
        return None
    try:
        cache = np.load(tokens_path, mmap_mode="r")
    except (OSError, ValueError) as e:
        logger.warning("cannot read %s (%s): encoding the chunks", tokens_path, e)
        return None
    if cache.ndim != 1 or cache.dtype.kind not in "ui":
        logger.warning("%s is not a 1-D integer array: encoding the chunks", tokens_path)
        return None
    return cache


def _id_dtype(backend, vocab_size: int) -> np.dtype:
    return np.dtype(token_dtype(max(vocab_size, backend.get_vocab_size(with_added_tokens=True))))


def _unknown_id(backend) -> int | None:
    """The id the model emits for text it cannot represent (None for byte-level models)."""
    model = json.loads(backend.to_str())["model"]
    if isinstance(model.get("unk_id"), int):  # Unigram
        return model["unk_id"]
    if isinstance(model.get("unk_token"), str):  # BPE, WordPiece, WordLevel
        return backend.token_to_id(model["unk_token"])
    return None


def _write_ids(input_path: Path, ids_path: Path, tok, vocab_size: int, cache: np.ndarray | None,
               progress: bool) -> dict:
    """Stream every chunk's ids into ids_path (a .npy) in batches; return the chunk list and counters.
    `tok`: a transformers tokenizer or a bare Rust one; `vocab_size`: its identity's."""
    from tqdm import tqdm

    backend = tok if is_backend(tok) else tok.backend_tokenizer
    dtype, unk_id = _id_dtype(backend, vocab_size), _unknown_id(backend)
    chunks: list[dict] = []
    counters = {"bad_records": 0, "n_tokens_mismatch": 0, "unknown_tokens": 0}
    offset, cache_pos = 0, 0
    with NpyStream(ids_path, dtype) as sink, tqdm(unit=" chunks", disable=not progress, desc="tokenize") as bar:
        records = iter_jsonl(input_path)
        while batch := list(itertools.islice(records, BATCH_SIZE)):
            good = []
            for number, r in enumerate(batch, len(chunks) + counters["bad_records"] + 1):
                if not isinstance(r, dict) or not isinstance(r.get("text"), str) or r.get("id") is None:
                    logger.warning("%s: record %d skipped: it needs an `id` and a string `text`", input_path, number)
                    counters["bad_records"] += 1
                    if cache is not None:
                        cache_pos += _cached_length(r)
                    continue
                good.append(r)
            if cache is None:
                lists = encode_batch(tok, [r["text"] for r in good])
                lengths = [len(ids) for ids in lists]
                flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=sum(lengths))
            else:
                lengths = [_cached_length(r) for r in good]
                if cache_pos + sum(lengths) > len(cache):
                    raise _CacheMismatch(f"{len(cache)} cached ids, more in the records' n_tokens")
                flat = np.asarray(cache[cache_pos:cache_pos + sum(lengths)], dtype=np.int64)
                cache_pos += sum(lengths)
            assert not len(flat) or int(flat.max()) <= np.iinfo(dtype).max, "token id over the id dtype"
            sink.write(flat.astype(dtype))
            if unk_id is not None:
                counters["unknown_tokens"] += int(np.count_nonzero(flat == unk_id))
            for r, n in zip(good, lengths):
                stage2 = r.get("n_tokens")
                if isinstance(stage2, int) and stage2 != n:
                    counters["n_tokens_mismatch"] += 1
                chunks.append({**{k: r.get(k) for k in CHUNK_FIELDS}, "n_tokens": n, "offset": offset})
                offset += n
            bar.update(len(batch))
    if cache is not None and cache_pos != len(cache):
        raise _CacheMismatch(f"{len(cache)} cached ids, {cache_pos} in the records' n_tokens")
    return {"chunks": chunks, "dtype": dtype.name, "unknown_token_id": unk_id, **counters}


def _cached_length(r) -> int:
    n = r.get("n_tokens") if isinstance(r, dict) else None
    if not isinstance(n, int) or n < 0:
        raise _CacheMismatch("a record without a valid n_tokens")
    return n


def _stats(n_tokens: np.ndarray, n_sequences: int, encoded: dict, sequence_length: int) -> dict:
    total = int(n_tokens.sum())
    return {
        "chunks": len(n_tokens),
        "bad_records": encoded["bad_records"],
        "tokens": total,
        "sequences": n_sequences,
        "tokens_per_chunk": {"min": int(n_tokens.min()) if len(n_tokens) else 0,
                             "median": float(np.median(n_tokens)) if len(n_tokens) else 0.0,
                             "max": int(n_tokens.max()) if len(n_tokens) else 0},
        "unknown_token_id": encoded["unknown_token_id"],
        "unknown_tokens": encoded["unknown_tokens"],
        "unknown_token_rate": encoded["unknown_tokens"] / total if total else 0.0,
        "chunks_over_sequence_length": int(np.count_nonzero(n_tokens > sequence_length)),
        "n_tokens_mismatch": encoded["n_tokens_mismatch"],
    }


def _print_stats(stats: dict) -> None:
    per = stats["tokens_per_chunk"]
    print(f"chunks:              {stats['chunks']:,} ({stats['bad_records']:,} bad records skipped)")
    print(f"tokens:              {stats['tokens']:,}")
    print(f"sequences:           {stats['sequences']:,}")
    print(f"tokens per chunk:    min {per['min']:,}, median {per['median']:,.1f}, max {per['max']:,}")
    print(f"unknown-token rate:  {stats['unknown_token_rate']:.4%} ({stats['unknown_tokens']:,} tokens)")
    print(f"chunks over length:  {stats['chunks_over_sequence_length']:,}")
    print(f"n_tokens mismatches: {stats['n_tokens_mismatch']:,} (chunks stage 2 counted differently)")


def parse_args(argv=None) -> TokenizeConfig:
    p = argparse.ArgumentParser(description="Stage 3: tokenize chunks and cut them into overlapping sequences.")
    add_flags(p, TokenizeConfig)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    return from_args(TokenizeConfig, a)


def main(argv=None) -> int:
    def cli() -> None:
        run(parse_args(argv))
    return run_main(cli)


if __name__ == "__main__":
    sys.exit(main())
