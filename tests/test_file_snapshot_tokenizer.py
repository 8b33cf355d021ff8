"""Stage 3 on chunk records built from a real repository, with real tokenizers trained here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer

from conftest import ROOT, RepoBuilder, build_sample_repo
from core.io import UserError, iter_jsonl, sha256_file, write_json, write_jsonl
from tokenizers_.file_snapshot_tokenizer import TokenizeConfig, main, run
from core.tokenizer import TokenizerUnavailable, encode_batch, load_tokenizer, tokenizer_identity
from core.tokenized_chunks import load_tokenized, sequence_table

SCRIPT = ROOT / "tokenizers_" / "file_snapshot_tokenizer.py"


def chunk_records(b: RepoBuilder) -> list[dict]:
    """Chunk records as stage 2 writes them: one diff chunk per file change, a commit chunk for a
    commit without file changes (merges, empty commits), and one snapshot chunk per file at HEAD."""
    def git(*args: str) -> str:
        return b.git(*args, stdout_as_string=False).decode("utf-8", errors="replace")

    records = []
    hashes = git("rev-list", "--reverse", "--topo-order", "HEAD").split()
    for order, h in enumerate(hashes):
        ts = int(git("show", "-s", "--format=%ct", h))
        paths = [p for p in git("diff-tree", "--root", "-r", "--no-commit-id", "--name-only", h).split("\n") if p]
        for p in paths:
            records.append({"id": f"{h[:12]}:diff:{p}", "kind": "diff", "commit": h, "timestamp": ts,
                            "order": order, "path": p, "language": Path(p).suffix.lstrip(".") or None,
                            "symbol": None, "text": git("show", "--format=%h %ad %s", h, "--", p)})
        if not paths:
            records.append({"id": f"{h[:12]}:commit", "kind": "commit", "commit": h, "timestamp": ts,
                            "order": order, "path": None, "text": git("show", "--format=%h %ad %B", h)})
    head = hashes[-1]
    for p in git("ls-files").split("\n"):
        if p:
            records.append({"id": f"{head[:12]}:snapshot:{p}", "kind": "snapshot", "commit": head,
                            "timestamp": records[-1]["timestamp"], "order": len(hashes) - 1, "path": p,
                            "text": git("show", f"{head}:{p}")})
    return records


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    return chunk_records(build_sample_repo(tmp_path_factory.mktemp("repo") / "sample"))


@pytest.fixture
def chunks_file(tmp_path, records, trained_tokenizer_dir) -> Path:
    """The records with stage 2's n_tokens, measured with the test tokenizer."""
    tok = load_tokenizer(str(trained_tokenizer_dir))
    lengths = [len(ids) for ids in encode_batch(tok, [r["text"] for r in records])]
    path = tmp_path / "data" / "chunks_semantic.jsonl"
    write_jsonl(path, [{**r, "n_tokens": n} for r, n in zip(records, lengths)])
    return path


def config(chunks_file: Path, model, **kw) -> TokenizeConfig:
    out = chunks_file.parent / "chunks_tokenized.json"
    return TokenizeConfig(input=str(chunks_file), sequences=str(out), model=str(model), progress=False, **kw)


def output_bytes(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != "chunks_semantic.jsonl"}


@pytest.mark.parametrize("sequence_length,overlap", [(1, 0), (4, 1), (8, 0), (8, 7), (16, 5), (512, 128)])
def test_sequences_cover_every_token_once_and_rebuild_chunks(sequence_length, overlap):
    stride = sequence_length - overlap
    rng = np.random.default_rng(sequence_length * 100 + overlap)
    edges = [0, 1, sequence_length - 1, sequence_length, sequence_length + 1, sequence_length + stride,
             sequence_length + stride + 1, sequence_length + 3 * stride, 5 * sequence_length]
    n_tokens = np.array([max(n, 0) for n in edges] + rng.integers(0, 6 * sequence_length, 40).tolist())
    table = sequence_table(n_tokens, sequence_length, overlap)
    for i, n in enumerate(n_tokens.tolist()):
        rows = table[table[:, 0] == i]
        if n == 0:
            assert len(rows) == 0
            continue
        starts, lengths = rows[:, 1], rows[:, 2]
        assert starts[0] == 0 and starts[-1] + lengths[-1] == n  # from the first token to the last
        assert (lengths[:-1] == sequence_length).all() and 0 < lengths[-1] <= sequence_length
        assert (np.diff(starts) == stride).all()  # so each window repeats exactly `overlap` tokens
        tokens = np.arange(n) * 7 + i  # a chunk's stream, rebuilt from its windows without duplicates
        rebuilt = np.concatenate([tokens[s:s + length][(overlap if k else 0):]
                                  for k, (s, length) in enumerate(zip(starts, lengths))])
        assert np.array_equal(rebuilt, tokens)
    assert (np.diff(table[:, 0]) >= 0).all()  # windows grouped by chunk, in chunk order


def test_overlap_must_be_below_sequence_length(chunks_file, trained_tokenizer_dir, capsys):
    with pytest.raises(UserError, match="--overlap"):
        run(config(chunks_file, trained_tokenizer_dir, sequence_length=64, overlap=64))
    assert main(["--input", str(chunks_file), "--model", str(trained_tokenizer_dir), "--overlap", "600"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --overlap")


def test_tokenizer_loaded_by_path_like_a_hub_model(chunks_file, records, trained_tokenizer_dir):
    result = run(config(chunks_file, trained_tokenizer_dir, sequence_length=32, overlap=8))
    tc = load_tokenized(result["sequences"])
    reference = AutoTokenizer.from_pretrained(str(trained_tokenizer_dir))  # the user's view of the model

    assert tc.tokenizer["sha256"] == tokenizer_identity(reference)["sha256"]
    assert tc.tokenizer["name_or_path"] == str(trained_tokenizer_dir) and tc.tokenizer["fallback"] is False
    assert tc.tokenizer["files"] == "tokenizer" and tc.meta["ids_dtype"] == "uint16" and tc.ids.dtype == np.uint16
    saved = AutoTokenizer.from_pretrained(str(tc.tokenizer_dir))
    assert tokenizer_identity(saved)["sha256"] == tc.tokenizer["sha256"]

    assert len(tc) == len(records)
    for i, r in enumerate(records):
        expected = reference(r["text"], add_special_tokens=False)["input_ids"]
        c = tc.chunks[i]
        assert {k: c[k] for k in ("id", "kind", "commit", "order", "timestamp", "path")} == \
               {k: r[k] for k in ("id", "kind", "commit", "order", "timestamp", "path")}
        assert tc.chunk_tokens(i).tolist() == expected and c["n_tokens"] == len(expected)
        assert tc.chunk_from_sequences(i).tolist() == expected
        assert all(0 < length <= 32 for _, _, length in tc.chunk_sequences(i).tolist())
    stats = tc.meta["stats"]
    assert stats["tokens"] == len(tc.ids) == sum(c["n_tokens"] for c in tc.chunks)
    assert stats["sequences"] == len(tc.sequences) and stats["n_tokens_mismatch"] == 0
    assert stats["chunks_over_sequence_length"] == sum(c["n_tokens"] > 32 for c in tc.chunks) > 0
    assert stats["unknown_tokens"] == 0 and stats["bad_records"] == 0
    assert {c["kind"] for c in tc.chunks} == {"diff", "commit", "snapshot"}


def test_fallback_trains_a_tokenizer_that_transformers_loads(chunks_file, records):
    with pytest.raises(TokenizerUnavailable, match="nobody/no-such-tokenizer"):
        run(config(chunks_file, "nobody/no-such-tokenizer"))
    result = run(config(chunks_file, "nobody/no-such-tokenizer", fallback=True, fallback_vocab_size=400))
    tc = load_tokenized(result["sequences"])
    assert tc.tokenizer["fallback"] is True and tc.tokenizer["vocab_size"] == 400
    tok = AutoTokenizer.from_pretrained(str(chunks_file.parent / "tokenizer"))
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>"
    assert tokenizer_identity(tok)["sha256"] == tc.tokenizer["sha256"]
    assert tc.chunk_tokens(3).tolist() == tok(records[3]["text"], add_special_tokens=False)["input_ids"]
    stage2 = [r["n_tokens"] for r in iter_jsonl(chunks_file)]  # measured with another tokenizer
    mismatches = sum(c["n_tokens"] != n for c, n in zip(tc.chunks, stage2))
    assert tc.meta["stats"]["n_tokens_mismatch"] == mismatches > 0


def test_unknown_model_name_is_one_line_and_exit_code_2(chunks_file, tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--input", str(chunks_file), "--model",
                           "nobody/no-such-tokenizer", "--no-progress"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot load tokenizer 'nobody/no-such-tokenizer'")
    assert "--model" in lines[0] and "HF_HOME" in lines[0]
    assert not (chunks_file.parent / "chunks_tokenized.json").exists()


def write_stage2_cache(chunks_file: Path, ids: np.ndarray, tokenizer: dict) -> None:
    np.save(chunks_file.with_name("chunks_semantic.tokens.npy"), ids.astype(np.uint32))
    write_json(chunks_file.with_name("chunks_semantic.stats.json"),
               {"tokenizer": tokenizer, "chunks_sha256": sha256_file(chunks_file)})


def test_stage2_cache_used_when_valid_and_ignored_otherwise(chunks_file, trained_tokenizer_dir, tmp_path):
    cfg = config(chunks_file, trained_tokenizer_dir)
    encoded = run(cfg)
    assert encoded["ids_source"] == "encoded"
    expected = output_bytes(chunks_file.parent)
    ids = np.load(chunks_file.with_name("chunks_tokenized.ids.npy")).astype(np.uint32)
    identity = tokenizer_identity(load_tokenizer(str(trained_tokenizer_dir)))

    write_stage2_cache(chunks_file, ids, identity)
    assert run(cfg)["ids_source"] == "stage 2 cache"
    for name, data in expected.items():  # the same output as encoding
        assert (chunks_file.parent / name).read_bytes() == data, name

    marked = ids.copy()
    marked[::2] = 7  # valid-looking ids that only the cache holds: proof that the cache is read
    write_stage2_cache(chunks_file, marked, identity)
    run(cfg)
    assert np.array_equal(np.load(chunks_file.with_name("chunks_tokenized.ids.npy")), marked)

    for stale in ({**identity, "sha256": "0" * 64},  # another tokenizer
                  None):  # another chunks file
        write_stage2_cache(chunks_file, marked, stale or identity)
        if stale is None:
            stats_path = chunks_file.with_name("chunks_semantic.stats.json")
            write_json(stats_path, {**json.loads(stats_path.read_text()), "chunks_sha256": "f" * 64})
        assert run(cfg)["ids_source"] == "encoded"
        assert (chunks_file.parent / "chunks_tokenized.ids.npy").read_bytes() == expected["chunks_tokenized.ids.npy"]

    write_stage2_cache(chunks_file, ids[:-1], identity)  # lengths do not add up: encoded again
    assert run(cfg)["ids_source"] == "encoded"
    assert output_bytes(chunks_file.parent)["chunks_tokenized.json"] == expected["chunks_tokenized.json"]


def test_reruns_are_byte_identical(chunks_file, trained_tokenizer_dir):
    cfg = config(chunks_file, trained_tokenizer_dir, sequence_length=64, overlap=16)
    run(cfg)
    first = output_bytes(chunks_file.parent)
    assert set(first) == {"chunks_tokenized.json", "chunks_tokenized.ids.npy", "chunks_tokenized.sequences.npy",
                          "tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json"}
    run(cfg)
    assert output_bytes(chunks_file.parent) == first
    assert str(chunks_file.parent) not in first["chunks_tokenized.json"].decode()


def test_bad_records_commit_only_records_and_n_tokens_mismatch(tmp_path, trained_tokenizer_dir):
    path = tmp_path / "chunks.jsonl"
    write_jsonl(path, [{"id": "c1", "kind": "commit", "text": "Fix the counter\n\n-    count: 0\n+    count: 1\n",
                        "n_tokens": 1},
                       {"id": "no-text"},
                       {"text": "no id"},
                       {"id": "empty", "text": ""},
                       {"id": "c2", "text": "def area(w, h):\n    return w * h\n"}])
    result = run(TokenizeConfig(input=str(path), model=str(trained_tokenizer_dir), progress=False))
    tc = load_tokenized(tmp_path / "chunks_tokenized.json")
    assert [c["id"] for c in tc.chunks] == ["c1", "empty", "c2"]
    assert tc.chunks[0]["path"] is None and tc.chunks[0]["order"] is None and tc.chunks[0]["kind"] == "commit"
    assert tc.chunks[1]["n_tokens"] == tc.chunks[1]["n_sequences"] == 0 and len(tc.chunk_from_sequences(1)) == 0
    assert result["stats"]["bad_records"] == 2 and result["stats"]["n_tokens_mismatch"] == 1
    assert result["stats"]["tokens_per_chunk"]["min"] == 0


def test_empty_input(tmp_path, trained_tokenizer_dir):
    path = tmp_path / "chunks.jsonl"
    path.write_text("")
    result = run(TokenizeConfig(input=str(path), model=str(trained_tokenizer_dir), progress=False))
    tc = load_tokenized(result["sequences"])
    assert len(tc) == 0 and tc.ids.shape == (0,) and tc.sequences.shape == (0, 3)
    assert result["stats"]["tokens"] == 0 and result["stats"]["tokens_per_chunk"]["max"] == 0


def word_level_tokenizer(tmp_path: Path, words: list[str]) -> Path:
    """A word-level tokenizer.json with an unknown token, as a user might pass with --model."""
    vocab = {"[UNK]": 0, "[SEP]": 1, "[PAD]": 2, **{w: i + 3 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(["[UNK]", "[SEP]", "[PAD]"])
    path = tmp_path / "word_level.json"
    backend.save(str(path))
    return path


def test_unknown_token_rate_and_uint32_ids_for_a_large_vocabulary(tmp_path, capsys):
    words = [f"w{i}" for i in range(70_000)]
    model = word_level_tokenizer(tmp_path, words)
    path = tmp_path / "chunks.jsonl"
    write_jsonl(path, [{"id": "a", "text": "w1 w69999 mystery w2"}, {"id": "b", "text": "enigma w65600"}])
    assert main(["--input", str(path), "--model", str(model), "--stats", "--no-progress",
                 "--sequence-length", "3", "--overlap", "1"]) == 0
    tc = load_tokenized(tmp_path / "chunks_tokenized.json")
    assert tc.ids.dtype == np.uint32 and tc.tokenizer["vocab_size"] == 70_003
    assert tc.chunk_tokens(0).tolist() == [4, 70_002, 0, 5] and tc.chunk_tokens(1).tolist() == [0, 65_603]
    assert tc.sequences.tolist() == [[0, 0, 3], [0, 2, 2], [1, 0, 2]]
    stats = tc.meta["stats"]
    assert stats["unknown_token_id"] == 0 and stats["unknown_tokens"] == 2 and stats["unknown_token_rate"] == 2 / 6
    out = capsys.readouterr().out
    assert "unknown-token rate:  33.3333% (2 tokens)" in out and "sequences:           3" in out


def test_reader_refuses_other_versions_and_arrays_that_do_not_match(chunks_file, trained_tokenizer_dir):
    out = Path(run(config(chunks_file, trained_tokenizer_dir))["sequences"])
    meta = json.loads(out.read_text())
    write_json(out, {**meta, "version": 99})
    with pytest.raises(UserError, match="version 99"):
        load_tokenized(out)
    write_json(out, {**meta, "chunks": meta["chunks"][:-1]})
    with pytest.raises(UserError, match="do not match"):
        load_tokenized(out)
    with pytest.raises(UserError, match="no such file"):
        run(config(chunks_file.with_name("missing.jsonl"), trained_tokenizer_dir))


@pytest.mark.parametrize("with_stats", [False, True])
def test_fallback_learns_only_from_the_train_period(tmp_path, with_stats):
    """A word that only the last (test) commit has never becomes a token of the fallback vocabulary."""
    chunks = [{"id": f"c{i}", "kind": "diff", "commit": f"{i:040x}", "order": i, "timestamp": i, "path": "a.py",
               "text": f"def area_{i}(width, height):\n    return width * height + {i}\n", "n_tokens": 10}
              for i in range(19)]
    chunks.append({"id": "c19", "kind": "diff", "commit": f"{19:040x}", "order": 19, "timestamp": 19, "path": "b.py",
                   "text": "zqxjkv_leak " * 400, "n_tokens": 10})
    path = tmp_path / "chunks_semantic.jsonl"
    write_jsonl(path, chunks)
    if with_stats:  # stage 2's own cut-off wins over the default ratios: here train ends at order 9
        write_json(tmp_path / "chunks_semantic.stats.json", {"cutoff": {"train_last_order": 9}})
        chunks[12]["text"] = "wvbnmq_later " * 400
        write_jsonl(path, chunks)
    result = run(config(path, "nobody/no-such-tokenizer", fallback=True, fallback_vocab_size=300))
    vocab = "".join(load_tokenizer(str(tmp_path / "tokenizer")).get_vocab())
    assert "area" in vocab and "zqxj" not in vocab and "wvbn" not in vocab
    assert load_tokenized(result["sequences"]).tokenizer["fallback"] is True
