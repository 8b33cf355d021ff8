"""Stage 2 on hand-written commit records and on real repositories scraped by stage 1."""

from __future__ import annotations

import difflib
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import semantic_chunker as sc
from conftest import PY_V1, PY_V2, RS_V1
from core.io import iter_commit_records
from core.tokenizer import encode_batch, load_tokenizer

AWS = "AKIA" + "QWERTYUIOPASDFGH"


@pytest.fixture(scope="module")
def tok(trained_tokenizer_dir):
    return load_tokenizer(str(trained_tokenizer_dir))


def udiff(old: str, new: str) -> str:
    return "".join(list(difflib.unified_diff(old.splitlines(True), new.splitlines(True), n=3))[2:])


def record(order: int, subject: str, files: list[dict]) -> dict:
    h = f"{order + 1:x}" * 40
    return {"hash": h[:40], "order": order, "timestamp": 1700000000 + order * 86400,
            "committed_at": f"2024-01-{order + 1:02d}T12:00:00+02:00", "subject": subject, "message": subject + "\n",
            "files": [dict({"change_type": "modified", "language": None, "is_binary": False, "truncated": False}, **f)
                      for f in files]}


def change(path: str, old: str, new: str, **kw) -> dict:
    return dict(path=path, diff=udiff(old, new), change_type="added" if not old else "modified", **kw)


def chunk_run(tmp_path, tok, commits, name="out", **kw) -> tuple[dict, list[dict]]:
    kw.setdefault("snapshot_at", "none")
    cfg = sc.ChunkConfig(output=str(tmp_path / name / "chunks_semantic.jsonl"), progress=False, **kw)
    stats = sc.run(cfg, tokenizer=tok, commits=commits)
    chunks = [json.loads(l) for l in open(cfg.output, encoding="utf-8")]
    return stats, chunks


def check_tokens(tmp_path, tok, chunks, name="out"):
    """n_tokens is the exact encoding of the text; the .npy holds every chunk's ids in file order."""
    ids = encode_batch(tok, [c["text"] for c in chunks])
    assert [len(i) for i in ids] == [c["n_tokens"] for c in chunks]
    arr = np.load(tmp_path / name / "chunks_semantic.tokens.npy")
    assert arr.dtype == np.uint32
    assert arr.tolist() == [t for i in ids for t in i]


def test_change_to_one_function_names_it_and_sizes_stay_in_budget(tmp_path, tok):
    big_rs = RS_V1 + "".join(f"\npub fn f{i}(x: u64) -> u64 {{\n    x * {i} + {i}\n}}\n" for i in range(40))
    commits = [record(0, "Add code", [change("src/geometry.py", "", PY_V1), change("rust/src/lib.rs", "", big_rs)]),
               record(1, "Validate area input", [change("src/geometry.py", PY_V1, PY_V2)]),
               record(2, "Bump by two", [change("rust/src/lib.rs", big_rs, big_rs.replace("+= 1", "+= 2"))])]
    # git prints the enclosing unindented line after the hunk header; difflib does not
    commits[2]["files"][0]["diff"] = commits[2]["files"][0]["diff"].replace(" @@\n", " @@ impl Counter {\n", 1)
    stats, chunks = chunk_run(tmp_path, tok, commits, max_chunk_tokens=160, min_chunk_tokens=40)
    check_tokens(tmp_path, tok, chunks)
    assert all(c["n_tokens"] <= 160 for c in chunks)
    assert stats["chunks_under_min"] == {} and stats["fallback_commits"] == 0
    by_order = {o: [c for c in chunks if c["order"] == o] for o in range(3)}
    assert [c["symbol"] for c in by_order[1]] == ["area"]
    assert [c["symbol"] for c in by_order[2]] == ["Counter::bump"]
    first = by_order[1][0]["text"].split("\n")
    assert first[0] == "commit 2024-01-02 Validate area input"
    assert first[1] == "file src/geometry.py (modified)"
    assert "+    if width < 0 or height < 0:" in first
    # the big added file was split at function boundaries: every piece starts a hunk at a definition
    rs = [c for c in by_order[0] if c["path"] == "rust/src/lib.rs"]
    assert len(rs) > 3
    for c in rs[1:]:
        lines = c["text"].split("\n")  # (the commit line opens only the commit's first chunk)
        hunk_first = lines[next(i for i, l in enumerate(lines) if l.startswith("@@")) + 1]
        assert hunk_first.startswith(("+pub fn ", "+    pub fn ")), hunk_first
    assert "f39" in rs[-1]["symbol"]
    # ids are unique and the stats name the cut-off the snapshots would use
    assert len({c["id"] for c in chunks}) == len(chunks)
    assert stats["cutoff"]["commit"] in {c["hash"] for c in commits}


def test_small_changes_are_merged_within_their_commit(tmp_path, tok):
    files = [change(f"pkg/m{i}.py", "", f"def f{i}(x):\n    return x + {i}\n") for i in range(6)]
    commits = [record(0, "Many small files", files), record(1, "One more", [change("a.py", "", "X = 1\n")])]
    stats, chunks = chunk_run(tmp_path, tok, commits, max_chunk_tokens=400, min_chunk_tokens=150)
    first = [c for c in chunks if c["order"] == 0]
    assert len(first) < 6 and sum(len(c["paths"]) for c in first) == 6
    assert all(c["n_tokens"] >= 150 for c in first[:-1])
    assert stats["chunks_under_min"] == {"diff": 1}  # commit 1 has nothing more to merge with
    check_tokens(tmp_path, tok, chunks)


def test_each_filter_is_counted_and_switchable(tmp_path, tok):
    files = [dict(path="assets/logo.png", is_binary=True, diff=""),
             change("web/node_modules/x/index.js", "", "module.exports = 1;\n"),
             change("target/debug/app.d", "", "app: src/main.rs\n"),
             change("Cargo.lock", "", "version = 3\n"),
             change("gen/api.py", "", "# Code generated by protoc. DO NOT EDIT.\nX = 1\n"),
             change("static/app.js", "", "var a=" + "1+" * 600 + "1;\n"),
             change("data/big.txt", "", "word\n" * 600),
             change("src/ok.py", "", "def ok():\n    return 1\n")]
    stats, chunks = chunk_run(tmp_path, tok, [record(0, "Everything", files)], max_file_bytes=2500)
    assert stats["diff_filtered"] == {"binary": 1, "build_artifact": 2, "lock_file": 1, "generated": 1,
                                      "minified": 1, "too_large": 1}
    assert [c["paths"] for c in chunks] == [["src/ok.py"]]
    stats, chunks = chunk_run(tmp_path, tok, [record(0, "Everything", files)], name="off", max_file_bytes=0,
                              filter_binary=False, filter_build_artifacts=False, filter_lock_files=False,
                              filter_generated=False)
    assert stats["diff_filtered"] == {}
    assert {p for c in chunks for p in c["paths"]} == {f["path"] for f in files}


def test_unreadable_commit_falls_back_to_one_raw_chunk(tmp_path, tok):
    bad = record(1, "Broken diff", [dict(path="x.py", diff="@@ -x +y @@\n+print('hi')\n" + "+z = 1\n" * 300)])
    odd = record(2, "Not a text diff", [dict(path="y.py", diff=123)])  # the batching, in this process, must not fail on it
    commits = [record(0, "Fine", [change("a.py", "", PY_V1)]), bad, odd]
    stats, chunks = chunk_run(tmp_path, tok, commits, max_chunk_tokens=128, min_chunk_tokens=16, workers=2)
    assert stats["fallback_commits"] == 2 and stats["fallback_hashes"] == [bad["hash"], odd["hash"]]
    raw = [c for c in chunks if c["order"] == 1]
    assert [c["kind"] for c in raw] == ["commit"]
    assert raw[0]["n_tokens"] <= 128 and raw[0]["text"].startswith("commit 2024-01-02 Broken diff")
    check_tokens(tmp_path, tok, chunks)


def test_duplicates_kept_once_and_secrets_redacted(tmp_path, tok):
    same = change("a.py", "", "def f():\n    return 1\n")
    secret = change("settings.py", "", f'AWS_KEY = "{AWS}"\n')
    commits = [record(0, "Add f", [same]), record(1, "Cherry-pick f", [same]), record(2, "Config", [secret])]
    stats, chunks = chunk_run(tmp_path, tok, commits)
    assert stats["duplicates_dropped"] == 1 and [c["order"] for c in chunks] == [0, 2]
    assert stats["secrets_redacted"]["diffs"] == {"AWS_KEY": 1}
    assert AWS not in (tmp_path / "out" / "chunks_semantic.jsonl").read_text()
    assert "<SECRET_AWS_KEY>" in chunks[1]["text"]
    stats, chunks = chunk_run(tmp_path, tok, commits, name="keep", dedup=False)
    assert stats["duplicates_dropped"] == 0 and [c["order"] for c in chunks] == [0, 1, 2]


GH = "ghp_" + "Zx9Yw8Vu7T" * 4


def test_secrets_in_paths_and_config_values_of_unredacted_records(tmp_path, tok):
    # records as a scrape with --no-redact writes them: stage 2 redacts paths, titles and diffs itself
    env = change("deploy/.env", "", "ADMIN_PASSWORD=" + "correcthorse" + "batterystaple\nDEBUG=1\n")
    key = dict(change(f"keys/{GH}.txt", "", "not a key\n", old_path=f"old/{GH}.txt"), change_type="renamed")
    stats, chunks = chunk_run(tmp_path, tok, [record(0, f"Add keys for {GH}", [env, key])], min_chunk_tokens=0)
    text = (tmp_path / "out" / "chunks_semantic.jsonl").read_text(encoding="utf-8")
    assert GH not in text and "correcthorse" not in text
    assert "file keys/<SECRET_GITHUB_TOKEN>.txt (renamed from old/<SECRET_GITHUB_TOKEN>.txt)" in text
    assert "keys/<SECRET_GITHUB_TOKEN>.txt" in [p for c in chunks for p in c["paths"]]
    assert stats["secrets_redacted"]["diffs"] == {"GITHUB_TOKEN": 3, "PASSWORD": 1}
    # placeholders in the chunks written: the commit line heads every chunk of the commit
    shown = sum(c["text"].count("<SECRET_GITHUB_TOKEN>") for c in chunks)
    assert shown >= 3 and stats["secret_placeholders"] == {"GITHUB_TOKEN": shown, "PASSWORD": 1}


def test_snapshot_file_names_are_redacted(tmp_path, tok):
    from conftest import RepoBuilder

    b = RepoBuilder(tmp_path / "repo")
    for i in range(4):
        b.commit(f"Commit {i}", {f"src/m{i}.py": f"def f{i}(x):\n    return x + {i}\n" * 8,
                                 f"keys/{GH}.txt": f"deploy key {i}\n"})
    commits = [dict(record(i, f"Commit {i}", []), hash=h) for i, h in
               enumerate(b.git("rev-list", "--reverse", "HEAD").split())]
    commits = [dict(c, files=[change(f"src/m{c['order']}.py", "", f"def f(x):\n    return {c['order']}\n" * 30)])
               for c in commits]
    stats, chunks = chunk_run(tmp_path, tok, commits, repo=str(b.path), snapshot_at="cutoff", min_chunk_tokens=0)
    snaps = [c for c in chunks if c["kind"] == "snapshot"]
    assert "keys/<SECRET_GITHUB_TOKEN>.txt" in [p for c in snaps for p in c["paths"]]
    assert "file keys/<SECRET_GITHUB_TOKEN>.txt" in "".join(c["text"] for c in snaps)
    for f in (tmp_path / "out").iterdir():
        assert GH.encode() not in f.read_bytes(), f.name
    assert stats["secrets_redacted"]["snapshots"] == {"GITHUB_TOKEN": 1}


def test_bad_input_is_one_line(tmp_path, capsys):
    assert sc.main(["--commits", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o.jsonl"),
                    "--snapshot-at", "none", "--tokenizer", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert sc.main(["--commits", "x", "--output", "y", "--min-chunk-tokens", "600"]) == 2


# --- real repositories, scraped by stage 1 -------------------------------------------------------

LATE_MARKER = "late_feature_marker_value"


def build_code_repo(path: Path):
    """The conftest sample history, then a config file with a secret, then late commits (val/test)."""
    from conftest import build_sample_repo

    b = build_sample_repo(path)
    b.commit("Add settings", {"config/settings.py": f'AWS_KEY = "{AWS}"\nDEBUG = False\n'})
    for i in range(3):
        body = "".join(f"\ndef {LATE_MARKER}_{i}_{k}(x):\n    return x * {k}\n" for k in range(12))
        b.commit(f"Late feature {i}", {f"src/late{i}.py": body})
    return b


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    from scrapers.git_scraper_rich import ScrapeConfig, scrape

    base = tmp_path_factory.mktemp("scraped")
    b = build_code_repo(base / "repo")
    history = base / "git_history_rich.jsonl"
    scrape(ScrapeConfig(repo=str(b.path), output=str(history), output_json=str(base / "git_history_rich.json"),
                        progress=False))
    return b, history


def run_on_repo(out: Path, tok, b, history: Path, **kw) -> tuple[dict, list[dict]]:
    kw.setdefault("split_ratios", (0.6, 0.2, 0.2))
    cfg = sc.ChunkConfig(repo=str(b.path), commits=str(history), output=str(out / "chunks_semantic.jsonl"),
                         max_chunk_tokens=kw.pop("max_chunk_tokens", 256), min_chunk_tokens=kw.pop("min_chunk_tokens", 48),
                         tokenizer=str(tok.name_or_path), progress=False, **kw)
    stats = sc.run(cfg, tokenizer=tok)
    return stats, [json.loads(l) for l in open(cfg.output, encoding="utf-8")]


def test_real_repo_symbols_snapshot_at_cutoff_and_secrets(tmp_path, tok, scraped):
    b, history = scraped
    stats, chunks = run_on_repo(tmp_path / "out", tok, b, history)
    check_tokens(tmp_path, tok, chunks)
    assert all(c["n_tokens"] <= 256 for c in chunks)
    assert sum(c["n_tokens"] < 48 for c in chunks) == sum(stats["chunks_under_min"].values())
    assert stats["fallback_commits"] == 0  # the merge's remerge diff (conflict markers on the `-` side) included
    commits = {rec["subject"]: rec for rec in iter_commit_records(history)}
    hashes = b.git("log", "--all", "--format=%H %s").splitlines()
    assert {h.split(" ", 1)[1]: h.split(" ", 1)[0] for h in hashes}["Validate area input"] == \
        commits["Validate area input"]["hash"]

    def symbols_of(subject):
        return [c["symbol"] for c in chunks if c["kind"] == "diff" and c["commit"] == commits[subject]["hash"]]

    assert symbols_of("Validate area input") == ["area"]
    assert symbols_of("Counter starts at ten") == ["Counter::new"]
    assert "Counter::reset" in symbols_of("Feature: add reset")[0]
    merge = [c for c in chunks if c["commit"] == commits["Merge feature, counter starts at five"]["hash"]]
    assert merge and "\n-<<<<<<< " in merge[0]["text"] and "Counter::new" in merge[0]["symbol"]
    # the Cargo.lock and the PNG were left out, and counted
    assert stats["diff_filtered"]["lock_file"] == 1 and stats["diff_filtered"]["binary"] >= 1

    # snapshots: the tree at the train cut-off, which comes before the late commits
    cut = stats["cutoff"]
    snaps = [c for c in chunks if c["kind"] == "snapshot"]
    assert snaps and chunks[-len(snaps):] == snaps
    assert {c["commit"] for c in snaps} == {cut["commit"]}
    assert {c["order"] for c in snaps} == {cut["train_last_order"]}
    at_cut = set(b.git("ls-tree", "-r", "--name-only", cut["commit"]).splitlines())
    snap_paths = {p for c in snaps for p in c["paths"]}
    assert snap_paths == at_cut - {"rust/Cargo.lock", "assets/logo.png", "docs/notes.txt"}
    snap_text = "".join(c["text"] for c in snaps)
    late = [commits[f"Late feature {i}"] for i in range(3)]
    assert late[-1]["order"] > cut["train_last_order"]
    for i, rec in enumerate(late):  # code first added after the cut-off is not in any snapshot
        assert (f"{LATE_MARKER}_{i}_" in snap_text) == (rec["order"] <= cut["train_last_order"])
    assert "square" in " ".join(c["symbol"] or "" for c in snaps)

    # the planted key: not in any file written, counted where it was redacted
    for f in (tmp_path / "out").iterdir():
        assert AWS.encode() not in f.read_bytes(), f
    assert stats["secrets_redacted"]["snapshots"] == {"AWS_KEY": 1}
    assert any("<SECRET_AWS_KEY>" in c["text"] for c in snaps)


def test_real_repo_is_deterministic_and_head_leak_is_stated(tmp_path, tok, scraped, monkeypatch):
    b, history = scraped
    # in this process, then in 2 and 3 worker processes, 2 commits a batch: the versions of one file
    # go to different workers (a tree re-parsed from another version than the one before), not a byte changes
    monkeypatch.setattr(sc, "COMMITS_PER_BATCH", 2)
    run_on_repo(tmp_path / "w1", tok, b, history, workers=1)
    run_on_repo(tmp_path / "w2", tok, b, history, workers=2)
    json_history = history.with_name("git_history_rich.json")
    assert sc.main(["--repo", str(b.path), "--commits", str(json_history), "--output",
                    str(tmp_path / "w3" / "chunks_semantic.jsonl"), "--max-chunk-tokens", "256",
                    "--min-chunk-tokens", "48", "--train-ratio", "0.6", "--val-ratio", "0.2", "--test-ratio", "0.2",
                    "--tokenizer", str(tok.name_or_path), "--no-progress", "--workers", "3"]) == 0
    for name in ("chunks_semantic.jsonl", "chunks_semantic.tokens.npy", "chunks_semantic.stats.json"):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes() == \
            (tmp_path / "w3" / name).read_bytes(), name
    stats, chunks = run_on_repo(tmp_path / "head", tok, b, history, snapshot_at="head")
    head = b.git("rev-parse", "HEAD")
    assert stats["snapshot_commit"] == head and "HEAD" in stats["snapshot_leak"]
    assert any(LATE_MARKER in c["text"] for c in chunks if c["kind"] == "snapshot")


def _killed(items):
    os.kill(os.getpid(), signal.SIGKILL)  # a worker the kernel kills (out of memory)


def test_a_killed_worker_process_is_one_error_line(tmp_path, tok, scraped, monkeypatch, capsys):
    b, history = scraped
    monkeypatch.setattr(sc, "_worker_batch", _killed)
    assert sc.main(["--repo", str(b.path), "--commits", str(history), "--output", str(tmp_path / "chunks_semantic.jsonl"),
                    "--tokenizer", str(tok.name_or_path), "--no-progress", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "stage 2 worker process stopped without an answer" in err and "--workers 1" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "chunks_semantic.jsonl").exists()


def test_commits_fitted_together_get_the_pieces_each_gets_alone(tok):
    from chunking.assemble import Fitter, Section
    from chunking.units import parse_hunks

    def sections(n: int) -> list[Section]:
        new = PY_V2 + "".join(f"\n\ndef extra_{n}_{i}(x):\n    return x * {i} + {n}\n" for i in range(4 * n))
        return [Section(f"s{n}.py", "python", "modified", f"file s{n}.py (modified)",
                        parse_hunks(udiff(PY_V1, new), "python")),
                Section(f"t{n}.py", "python", "added", f"file t{n}.py (added)", parse_hunks(udiff("", PY_V1), "python"))]

    fitter = Fitter(tok, max_tokens=96, min_tokens=48)
    groups = [sections(n) for n in range(4)]
    together = fitter.merge_many("", fitter.fit_many("", groups))
    alone = [fitter.merge("", fitter.fit("", sections(n))) for n in range(4)]
    assert [[(p.body, p.ids) for p in ps] for ps in together] == [[(p.body, p.ids) for p in ps] for ps in alone]
    assert sum(len(ps) for ps in together) > 8 and all(len(p.ids) <= 96 for ps in together for p in ps)


def test_commit_lead_leaves_room_for_the_file_with_a_tiny_vocabulary(tmp_path):
    from core.tokenizer import train_fallback_tokenizer

    code = "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(4))
    train_fallback_tokenizer([code * 10], tmp_path / "tok", vocab_size=300)  # a token for a character or two
    tiny = load_tokenizer(str(tmp_path / "tok"))
    rec = record(0, "Add helpers", [change("a.py", "", code)])
    rec["message"] = "Add helpers\n\n" + "The helpers are needed by the parser and by the tests of it. " * 4
    stats, chunks = chunk_run(tmp_path, tiny, [rec], max_chunk_tokens=160, min_chunk_tokens=8)
    assert stats["fallback_commits"] == 0 and [c["kind"] for c in chunks] == ["diff"] * len(chunks)
    assert all(c["n_tokens"] <= 160 for c in chunks)
    assert chunks[0]["text"].startswith("commit 2024-01-01 Add helpers\nThe helpers are")
    assert len(encode_batch(tiny, [chunks[0]["text"].split("file a.py")[0]])[0]) <= 160 // 2  # the lead: a half
    assert all(f"+def f{i}(x):" in "".join(c["text"] for c in chunks) for i in range(4))
    check_tokens(tmp_path, tiny, chunks)


def test_a_symlink_that_becomes_a_file_is_chunked_as_the_file_added(tmp_path, tok):
    """Git shows a type change as a deletion and a creation under one path; stage 1 keeps both in one
    diff, which stage 2 read as a hunk followed by an unexpected `diff --git` line: the whole commit
    fell back to one raw chunk (spdlog's `example/jni/example.cpp`, commit bcc1f1d0fe78)."""
    from conftest import RepoBuilder
    from scrapers.git_scraper_rich import ScrapeConfig, scrape

    b = RepoBuilder(tmp_path / "repo")
    b.commit("Add shapes", {"src/shapes.py": PY_V1})
    os.symlink("shapes.py", b.path / "src" / "alias.py")
    b.commit("Link alias")
    (b.path / "src" / "alias.py").unlink()
    b.commit("Alias becomes a module", {"src/alias.py": PY_V2, "src/shapes.py": PY_V2})
    os.remove(b.path / "src" / "shapes.py")
    os.symlink("alias.py", b.path / "src" / "shapes.py")
    b.commit("Shapes becomes a link")
    history = tmp_path / "git_history_rich.jsonl"
    scrape(ScrapeConfig(repo=str(b.path), output=str(history), function_complexity=False, progress=False))
    changes = {(r["subject"], f["path"]): f for r in iter_commit_records(history) for f in r["files"]}
    assert changes[("Alias becomes a module", "src/alias.py")]["change_type"] == "type_changed"
    stats, chunks = run_on_repo(tmp_path / "out", tok, b, history, split_ratios=(1.0, 0.0, 0.0), snapshot_at="none",
                                deleted_content=True)
    assert stats["fallback_commits"] == 0 and {c["kind"] for c in chunks} == {"diff"}
    added = [c for c in chunks if "file src/alias.py (type_changed)" in c["text"]]
    assert len(added) == 1 and "+def area(width, height):" in added[0]["text"]
    assert "-shapes.py" not in added[0]["text"] and added[0]["symbol"] is not None
    deleted = [c for c in chunks if "file src/shapes.py (type_changed)" in c["text"]]
    assert len(deleted) == 1 and "-def area(width, height):" in deleted[0]["text"]
    assert "+alias.py" not in deleted[0]["text"]
