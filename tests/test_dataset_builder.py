"""Stage 4 on a real repository's diffs, tokenized by a real tokenizer into stage 3's format.

`write_stage3` below writes chunks_tokenized.json exactly as docs/tokens.md describes it (ids
concatenated once, (chunk, start, length) sequences with overlap), from chunks cut out of a git
repository built here: one diff chunk per changed file, plus snapshot chunks of every file at the
train cut-off, as stage 2 makes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import RepoBuilder
from dataset_builder import DatasetConfig, check_sequences, main, plan_windows, run
from core.io import UserError, write_jsonl
from core.splits import SPLITS, commit_token_counts, split_commits
from tokenizers_ import file_snapshot_tokenizer as stage3
from core.tokenizer import encode_batch, load_tokenizer, tokenizer_identity

N_COMMITS = 24
CTX, TGT = 24, 8


def marker(i: int) -> str:
    return f"marker_{i:03d}_unique"


def build_repo(path: Path) -> RepoBuilder:
    """Commit i adds a function named marker(i): a string that first appears in commit i."""
    b = RepoBuilder(path)
    files: dict[str, str] = {}
    for i in range(N_COMMITS):
        rel = f"src/mod_{i % 4}.py"
        files[rel] = files.get(rel, "") + f"\n\ndef {marker(i)}(x):\n    return x * {i} + len('{rel}')\n"
        extra = {"README.md": f"# Sample\n\nRelease {i}.\n"} if i % 5 == 0 else {}
        b.commit(f"Add {marker(i)}", {rel: files[rel], **extra})
    return b


def git_commits(b: RepoBuilder) -> list[tuple[str, int, str, str]]:
    """(hash, committer epoch, ISO committer date, subject), oldest first, as git prints them."""
    out = b.git("log", "--reverse", "--topo-order", "--format=%H%x09%ct%x09%cI%x09%s")
    return [(h, int(t), iso, s) for h, t, iso, s in (line.split("\t") for line in out.splitlines())]


def repo_chunks(b: RepoBuilder, tok, ratios=(0.85, 0.10, 0.05)) -> list[dict]:
    """Stage 2's chunks: a diff chunk per changed file, then snapshots at the train cut-off."""
    chunks = []
    commits = git_commits(b)
    for order, (h, t, _, subject) in enumerate(commits):
        paths = b.git("diff-tree", "-r", "--root", "--no-commit-id", "--name-only", h).splitlines()
        for path in sorted(paths):
            text = f"commit {h[:10]} {subject}\n" + b.git("show", "--format=", h, "--", path)
            chunks.append({"id": f"{h[:12]}:{path}", "kind": "diff", "commit": h, "order": order,
                           "timestamp": t, "path": path, "text": text})
    for c in chunks:
        c["n_tokens"] = len(encode_batch(tok, [c["text"]])[0])
    plan = split_commits(sorted(commit_token_counts(chunks).items()), ratios)
    cut_hash, cut_time = commits[plan.train_last_order][:2]
    snaps = []
    for path in b.git("ls-tree", "-r", "--name-only", cut_hash).splitlines():
        text = b.git("show", f"{cut_hash}:{path}")
        snaps.append({"id": f"snap:{path}", "kind": "snapshot", "commit": cut_hash, "order": plan.train_last_order,
                      "timestamp": cut_time, "path": path, "text": text,
                      "n_tokens": len(encode_batch(tok, [text])[0])})
    return snaps + chunks  # snapshots first in the input: the builder must still put them at the cut-off


def write_stage3(out: Path, tok, tok_dir: Path, chunks: list[dict], seq_len: int = 16, overlap: int = 4) -> Path:
    """chunks_tokenized.json + .ids.npy + .sequences.npy for `chunks` (each with text)."""
    out.mkdir(parents=True, exist_ok=True)
    identity = tokenizer_identity(tok)
    identity["files"] = os.path.relpath(tok_dir, out)
    all_ids, seqs, index, offset = [], [], [], 0
    for k, (c, ids) in enumerate(zip(chunks, encode_batch(tok, [c["text"] for c in chunks]))):
        first = len(seqs)
        start = 0
        while start < len(ids):
            seqs.append((k, start, min(seq_len, len(ids) - start)))
            if start + seq_len >= len(ids):
                break
            start += seq_len - overlap
        index.append({key: c[key] for key in ("id", "kind", "commit", "order", "timestamp", "path")}
                     | {"n_tokens": len(ids), "offset": offset, "first_sequence": first, "n_sequences": len(seqs) - first})
        all_ids.extend(ids)
        offset += len(ids)
    np.save(out / "chunks_tokenized.ids.npy", np.array(all_ids, dtype=np.uint16))
    np.save(out / "chunks_tokenized.sequences.npy", np.array(seqs, dtype=np.int64).reshape(-1, 3))
    meta = {"format": "chunks_tokenized", "version": 1, "tokenizer": identity, "sequence_length": seq_len,
            "overlap": overlap, "ids_file": "chunks_tokenized.ids.npy",
            "sequences_file": "chunks_tokenized.sequences.npy", "chunks": index, "stats": {}}
    (out / "chunks_tokenized.json").write_text(json.dumps(meta), encoding="utf-8")
    return out / "chunks_tokenized.json"


@pytest.fixture(scope="module", params=["writer", "stage3"])
def world(request, tmp_path_factory, trained_tokenizer_dir):
    """A repository, its history file as stage 1 writes it, and stage 3's output for it.

    Stage 3's output comes from this module's `write_stage3`, and from stage 3 itself.
    """
    base = tmp_path_factory.mktemp("ds")
    b = build_repo(base / "repo")
    tok = load_tokenizer(str(trained_tokenizer_dir))
    chunks = repo_chunks(b, tok)
    if request.param == "writer":
        tokens = write_stage3(base / "data", tok, trained_tokenizer_dir, chunks)
    else:
        write_jsonl(base / "data" / "chunks_semantic.jsonl", chunks)
        tokens = base / "data" / "chunks_tokenized.json"
        stage3.run(stage3.TokenizeConfig(input=str(base / "data" / "chunks_semantic.jsonl"), sequences=str(tokens),
                                         model=str(trained_tokenizer_dir), sequence_length=16, overlap=4,
                                         progress=False))
    history = base / "data" / "git_history_rich.jsonl"
    write_jsonl(history, ({"hash": h, "order": o, "timestamp": t, "committed_at": iso, "subject": s}
                          for o, (h, t, iso, s) in enumerate(git_commits(b))))
    return {"repo": b, "tok": tok, "chunks": chunks, "tokens": tokens, "history": history, "base": base}


def build(world, out: Path, **kw) -> dict:
    cfg = DatasetConfig(vocab=world["tokens"], commits=world["history"], context_window=CTX, target_window=TGT,
                        output_dir=out, progress=False, **kw)
    return run(cfg)


def load_split(out: Path, split: str) -> tuple[dict, np.ndarray]:
    meta = json.loads((out / f"training_data_{split}.json").read_text(encoding="utf-8"))
    return meta, np.load(out / meta["tokens_file"])


def expected_streams(world) -> dict[str, list[int]]:
    """Each split's own tokens, built independently: chunks by (order, diffs before snapshots), + separator."""
    chunks, tok = world["chunks"], world["tok"]
    plan = split_commits(sorted(commit_token_counts(chunks).items()), (0.85, 0.10, 0.05))
    sep = tokenizer_identity(tok)["separator_id"]
    streams = {s: [] for s in SPLITS}
    keyed = sorted(enumerate(chunks), key=lambda ic: (ic[1]["order"], ic[1]["kind"] == "snapshot", ic[0]))
    for _, c in keyed:
        split = "train" if c["kind"] == "snapshot" else plan.split_of(c["order"])
        streams[split] += encode_batch(tok, [c["text"]])[0] + [sep]
    return streams


@pytest.fixture(scope="module")
def built(world):
    out = world["base"] / "out"
    return build(world, out), out


def test_plan_windows_targets_each_position_once():
    for first, end, ctx, tgt in [(1, 100, 16, 8), (5, 6, 16, 8), (3, 64, 2, 7), (16, 17, 16, 1), (1, 9, 4, 8)]:
        start, c, t = plan_windows(first, end, ctx, tgt, tgt)
        hits = np.zeros(end, dtype=int)
        for s, cc, tt in zip(start, c, t):
            assert s >= 0 and 1 <= cc <= ctx and 1 <= tt <= tgt and s + cc + tt <= end
            hits[s + cc:s + cc + tt] += 1
        assert hits[:first].sum() == 0 and np.all(hits[first:] == 1)
    start, c, t = plan_windows(1, 101, 16, 8, 2)  # stride 2: every target covered, each up to 4 times
    hits = np.zeros(101, dtype=int)
    for s, cc, tt in zip(start, c, t):
        hits[s + cc:s + cc + tt] += 1
    assert np.all(hits[1:] >= 1) and hits.max() == 4 and t[-1] == 8


def test_splits_hold_exactly_their_commits_in_order(world, built):
    manifest, out = built
    expected = expected_streams(world)
    earlier: list[int] = []
    for split in SPLITS:
        meta, stream = load_split(out, split)
        p = meta["prefix_tokens"]
        assert stream[p:].tolist() == expected[split]  # its own tokens, nothing more
        assert p == (min(CTX, len(earlier)) if expected[split] else 0)
        assert stream[:p].tolist() == earlier[len(earlier) - p:]  # the prefix: the end of earlier splits only
        earlier += expected[split]
    assert all(manifest["splits"][s]["tokens"] > 0 for s in SPLITS)


def test_chronology_against_git(world, built):
    manifest, _ = built
    git_log = {h: (o, t, iso, s) for o, (h, t, iso, s) in enumerate(git_commits(world["repo"]))}
    st = manifest["splits"]
    for a, b in zip(SPLITS, SPLITS[1:]):
        last, first = st[a]["last_commit"], st[b]["first_commit"]
        assert last["order"] < first["order"] and last["timestamp"] <= first["timestamp"]
    for s in SPLITS:
        for k in ("first_commit", "last_commit"):
            c = st[s][k]
            o, t, iso, subject = git_log[c["hash"]]
            assert (c["order"], c["timestamp"], c["committed_at"], c["subject"]) == (o, t, iso, subject)
    assert st["train"]["first_commit"]["order"] == 0
    assert st["test"]["last_commit"]["order"] == N_COMMITS - 1


def test_every_target_once_and_no_leak(world, built):
    manifest, out = built
    tok = world["tok"]
    train_meta, train_stream = load_split(out, "train")
    train_targets = []
    for split in SPLITS:
        meta, stream = load_split(out, split)
        hits = np.zeros(len(stream), dtype=int)
        for ex in meta["examples"]:
            s, c, t = ex["start"], ex["context_length"], ex["target_length"]
            assert s >= 0 and c >= 1 and t >= 1 and s + c + t <= len(stream)
            hits[s + c:s + c + t] += 1
            if split == "train":
                train_targets += stream[s + c:s + c + t].tolist()
        first_target = max(meta["prefix_tokens"], 1)
        assert hits[:first_target].sum() == 0 and np.all(hits[first_target:] == 1)
    train_text = tok.decode(train_targets)
    later_markers = [marker(i) for i in range(N_COMMITS) if i > manifest["splits"]["train"]["last_commit"]["order"]]
    assert later_markers and not any(m in train_text for m in later_markers)
    val_meta, val_stream = load_split(out, "val")
    val_text = tok.decode(val_stream[val_meta["prefix_tokens"]:].tolist())
    assert marker(manifest["splits"]["val"]["first_commit"]["order"]) in val_text
    assert manifest["snapshot"]["split"] == "train" and manifest["snapshot"]["chunks"] > 0
    assert train_text.endswith(tok.decode(train_stream[-40:].tolist()))  # train ends with the snapshots


def test_example_commits_belong_to_the_split(world, built):
    manifest, out = built
    orders = {h: o for o, (h, *_rest) in enumerate(git_commits(world["repo"]))}
    for split in SPLITS:
        meta, _ = load_split(out, split)
        lo, hi = manifest["splits"][split]["first_commit"]["order"], manifest["splits"][split]["last_commit"]["order"]
        for ex in meta["examples"]:
            assert orders[ex["first_commit"]] <= orders[ex["last_commit"]] <= hi
            if ex["start"] >= meta["prefix_tokens"]:
                assert orders[ex["first_commit"]] >= lo


def test_manifest_counts_and_hashes_match_files(built):
    manifest, out = built
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert sorted(manifest["files"]) == sorted(p.name for p in out.iterdir() if p.name != "dataset_stats.json")
    for split in SPLITS:
        meta, stream = load_split(out, split)
        st = manifest["splits"][split]
        assert meta["n_examples"] == st["examples"] == len(meta["examples"])
        assert meta["n_tokens"] == len(stream) == st["tokens"] + st["prefix_tokens"]
        assert meta["target_tokens"] == st["target_tokens"] == sum(e["target_length"] for e in meta["examples"])
        assert st["repeated_target_fraction"] == 0.0
        assert meta["dtype"] == "uint16" == stream.dtype.name and meta["stride"] == TGT
        assert (out / meta["tokenizer_dir"] / "tokenizer.json").is_file()


def test_byte_identical_reruns(world, built):
    _, out = built
    again = world["base"] / "again"
    build(world, again)
    build(world, again)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in again.iterdir())
    for p in out.iterdir():
        assert p.read_bytes() == (again / p.name).read_bytes(), p.name


def test_stride_duplication_and_inline_ids(world, caplog):
    out = world["base"] / "stride"
    with caplog.at_level("WARNING"):
        manifest = build(world, out, stride=2, inline_ids=True)
    assert "are targets more than once" in caplog.text
    for split in SPLITS:
        meta, stream = load_split(out, split)
        st = manifest["splits"][split]
        hits = np.zeros(len(stream), dtype=int)
        pos = max(meta["prefix_tokens"], 1)
        for k, ex in enumerate(meta["examples"]):
            c, t = ex["context_length"], ex["target_length"]
            s = pos + 2 * k - c  # inline examples have no start: target blocks advance by the stride
            assert ex["input_ids"] == stream[s:s + c + t].tolist()
            hits[s + c:s + c + t] += 1
        repeated = int(hits.sum() - (hits > 0).sum())
        assert st["repeated_target_fraction"] == pytest.approx(repeated / hits.sum()) and repeated > 0


def test_snapshot_after_cutoff_is_refused(world, tmp_path):
    chunks = [dict(c) for c in world["chunks"]]
    for c in chunks:
        if c["kind"] == "snapshot":
            c["order"] = N_COMMITS - 1
    tokens = write_stage3(tmp_path / "data", world["tok"], tmp_path, chunks)
    with pytest.raises(UserError, match="after the train cut-off"):
        run(DatasetConfig(vocab=tokens, output_dir=tmp_path / "out", progress=False))


def test_check_sequences_finds_gaps():
    seq = np.array([[0, 0, 4], [0, 3, 4], [1, 0, 5]], dtype=np.int64)
    args = (np.array([0, 1]), np.array([7, 5]), np.array([0, 2]), np.array([2, 1]))
    assert check_sequences(*args, seq) is None
    gap = seq.copy()
    gap[1] = (0, 5, 2)  # tokens 4 and 5 in no sequence
    assert "gap" in check_sequences(*args, gap)
    short = seq.copy()
    short[2, 2] = 4
    assert "end" in check_sequences(*args, short)


def test_cli_one_line_errors(world, tmp_path, capsys):
    assert main(["--vocab", str(tmp_path / "missing.json"), "--output-dir", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["--vocab", str(world["tokens"]), "--stride", "9", "--target-window", "8",
                 "--output-dir", str(tmp_path / "o")]) == 2
    assert "--stride" in capsys.readouterr().err
    rc = main(["--vocab", str(world["tokens"]), "--chunks", str(world["tokens"]), "--commits", str(world["history"]),
               "--context-window", "64", "--target-window", "16", "--train-ratio", "0.9", "--val-ratio", "0.05",
               "--test-ratio", "0.05", "--output-dir", str(tmp_path / "o"), "--no-progress"])
    assert rc == 0
    stats = json.loads((tmp_path / "o" / "dataset_stats.json").read_text(encoding="utf-8"))
    assert stats["settings"]["context_window"] == 64 and stats["settings"]["split_ratios"] == [0.9, 0.05, 0.05]


def test_pipeline_check_and_trainer_read_both_forms(world, built):
    """The orchestrator's check and the trainer's reader accept the files, offsets and inline alike."""
    from pipeline.checks import check_dataset
    from training.data import load_split as trainer_load

    manifest, out = built
    assert check_dataset(out)["val"]["examples"] == manifest["splits"]["val"]["examples"]
    inline = world["base"] / "inline"
    build(world, inline, inline_ids=True)
    for split in SPLITS:
        a, b = trainer_load(out / f"training_data_{split}.json"), trainer_load(inline / f"training_data_{split}.json")
        assert len(a) == len(b) == manifest["splits"][split]["examples"]
        for i in (0, len(a) - 1):
            wa = a.tokens[a.starts[i]:a.starts[i] + a.context[i] + a.target[i]]
            wb = b.tokens[b.starts[i]:b.starts[i] + b.context[i] + b.target[i]]
            assert np.array_equal(wa, wb) and (a.context[i], a.target[i]) == (b.context[i], b.target[i])


def test_empty_val_split_and_vocab_as_tokenizer_dir(world, trained_tokenizer_dir, tmp_path):
    from core.tokenizer import train_fallback_tokenizer

    out = tmp_path / "noval"
    manifest = run(DatasetConfig(vocab=trained_tokenizer_dir, chunks=world["tokens"], split_ratios=(0.9, 0.0, 0.1),
                                 context_window=CTX, target_window=TGT, output_dir=out, progress=False))
    val_meta, val_stream = load_split(out, "val")
    assert val_meta["examples"] == [] and len(val_stream) == 0 and manifest["splits"]["val"]["first_commit"] is None
    test_meta, test_stream = load_split(out, "test")
    train_stream = load_split(out, "train")[1]
    assert test_meta["prefix_tokens"] == CTX and test_stream[:CTX].tolist() == train_stream[-CTX:].tolist()
    train_fallback_tokenizer(["fn main() {}\n", "def f(x):\n    return x\n"] * 4, tmp_path / "other", vocab_size=300)
    with pytest.raises(UserError, match="tokenizer differs"):
        run(DatasetConfig(vocab=tmp_path / "other", chunks=world["tokens"], output_dir=out, progress=False))


def test_chunk_map_names_the_file_of_every_token(world, built):
    """training_data_{split}.chunks.jsonl: each chunk's tokens sit at its `start`, in split order."""
    from core.languages import category_of, language_of
    _, out = built
    by_id = {c["id"]: c for c in world["chunks"]}
    seen = 0
    for split in ("train", "val", "test"):
        meta, stream = load_split(out, split)
        rows = [json.loads(x) for x in (out / meta["chunks_file"]).read_text(encoding="utf-8").splitlines()]
        for row, nxt in zip(rows, rows[1:] + [None]):
            want = encode_batch(world["tok"], [by_id[row["id"]]["text"]])[0]
            assert stream[row["start"]:row["start"] + row["n_tokens"]].tolist() == want
            assert row["start"] + row["n_tokens"] + 1 == (nxt["start"] if nxt else len(stream))  # + separator
            assert (row["language"], row["category"]) == (language_of(row["path"]), category_of(row["path"]))
        assert not rows or rows[0]["start"] == meta["prefix_tokens"]
        seen += len(rows)
    assert seen == len(world["chunks"])
