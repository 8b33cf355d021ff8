"""Parse once: stage 1 records, with each blob version it parses for function complexity, the
definitions stage 2's widening needs of it; stage 2 takes them instead of parsing the blob again,
and writes the same bytes as when it parses by itself (real git repositories, a real tokenizer,
tree-sitter's real parser counted through a wrapper)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import core.parsers as parsers
import semantic_chunker as sc
from conftest import RepoBuilder, build_sample_repo
from core.git_runner import BlobReader, Git
from pipeline.checks import StageCheckFailed, check_history
from scrapers.git_scraper_rich import ScrapeConfig, scrape

CLASS = "class Shape:\n    def __init__(self, w, h):\n        self.w = w\n        self.h = h\n\n" + "".join(
    f"    # m{k}: the width or the height\n    def m{k}(self, x):\n        if x > {k}:\n            return self.w * x\n        return self.h + {k}\n\n"
    for k in range(12))
JS = "".join(f"/** f{k} adds {k}. */\nfunction f{k}(a) {{\n  return a + {k}\n}}\n\n" for k in range(10)) + \
    "describe('shapes', () => {\n  it('adds', () => { f1(1) })\n})\n"


def build_repo(path: Path) -> RepoBuilder:
    """The sample history, then files whose methods change in the middle, lose lines, gain methods."""
    b = build_sample_repo(path)
    b.commit("Add shapes", {"py/shape.py": CLASS, "js/f.js": JS})
    b.commit("Change m5, drop a line of m9", {
        "py/shape.py": CLASS.replace("return self.w * x\n        return self.h + 5", "return self.w * x * 2\n"
                                     "        return self.h + 5").replace("        if x > 9:\n", ""),
        "js/f.js": JS.replace("return a + 4", "return a * 4")})
    b.commit("Add m12 and f10", {
        "py/shape.py": CLASS.replace("    def m11", "    def m12(self):\n        return 12\n\n    def m11"),
        "js/f.js": JS + "function f10(a) {\n  return a\n}\n"})
    b.commit("CRLF file", {"py/crlf.py": "def f():\r\n    return 1\r\n"})
    return b


def scrape_history(repo: Path, out: Path) -> Path:
    scrape(ScrapeConfig(repo=str(repo), output=str(out / "h.jsonl"), output_json=str(out / "h.json"), progress=False,
                        jobs=0))
    return out / "h.jsonl"


def without_definitions(history: Path, out: Path) -> Path:
    """The same history as a stage 1 that did not record definitions (an older one) writes it."""
    with open(history, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for line in f:
            record = json.loads(line)
            for change in record["files"]:
                change.pop("definitions", None)
            g.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out


def chunk(repo: Path, history: Path, out: Path, tokenizer: Path, monkeypatch, **settings) -> tuple[dict[str, bytes], list]:
    """Stage 2's files (the per-commit index apart: its keys hash the records) and every text tree-sitter parsed."""
    parsed: list[bytes] = []
    real = parsers.parser

    class Counted:
        def __init__(self, parser):
            self.parser = parser

        def parse(self, content, *tree):
            parsed.append(bytes(content))
            return self.parser.parse(content, *tree)

    monkeypatch.setattr(parsers, "parser", lambda lang: Counted(real(lang)))
    sc.run(sc.ChunkConfig(repo=str(repo), commits=str(history), output=str(out / "chunks_semantic.jsonl"),
                          tokenizer=str(tokenizer), workers=1, progress=False, **settings))
    monkeypatch.undo()
    return {p.name: p.read_bytes() for p in sorted(out.glob("chunks_semantic*")) if ".commits." not in p.name}, parsed


def blobs_with_definitions(repo: Path, history: Path) -> dict[str, bytes]:
    """The blobs whose file changes carry stage 1's definitions, by id, with their bytes."""
    ids = {f["new_blob"] for line in open(history, encoding="utf-8")
           for f in json.loads(line)["files"] if f.get("definitions")}
    reader = BlobReader(Git(repo))
    try:
        return {blob: reader.read(blob) for blob in sorted(ids)}
    finally:
        reader.close()


def test_stage_2_parses_no_blob_stage_1_parsed_and_writes_the_same_bytes(tmp_path, trained_tokenizer_dir, monkeypatch):
    b = build_repo(tmp_path / "repo")
    history = scrape_history(b.path, tmp_path / "h")
    blobs = blobs_with_definitions(b.path, history)
    assert len(blobs) >= 6  # the added and changed Python, Rust and JavaScript versions
    (tmp_path / "with").mkdir()
    (tmp_path / "without").mkdir()
    # the diff chunks alone: snapshots parse the files at the cut-off (stage 1 does not know it)
    given, parsed = chunk(b.path, history, tmp_path / "with", trained_tokenizer_dir, monkeypatch, snapshot_at="none")
    plain = without_definitions(history, tmp_path / "plain.jsonl")
    alone, parsed_alone = chunk(b.path, plain, tmp_path / "without", trained_tokenizer_dir, monkeypatch,
                                snapshot_at="none")
    assert not set(blobs.values()) & set(parsed)  # not one of them parsed again
    assert len(set(blobs.values()) & set(parsed_alone)) >= 6  # without them stage 2 parses them itself
    assert given == alone


def test_stage_2_by_hand_on_a_history_without_definitions(tmp_path, trained_tokenizer_dir, monkeypatch):
    b = build_repo(tmp_path / "repo")
    history = scrape_history(b.path, tmp_path / "h")
    plain = without_definitions(history, tmp_path / "plain.jsonl")
    (tmp_path / "with").mkdir()
    given, _ = chunk(b.path, history, tmp_path / "with", trained_tokenizer_dir, monkeypatch)
    out = tmp_path / "by_hand"
    assert sc.main(["--repo", str(b.path), "--commits", str(plain), "--output", str(out / "chunks_semantic.jsonl"),
                    "--tokenizer", str(trained_tokenizer_dir), "--workers", "2", "--no-progress"]) == 0
    assert {p.name: p.read_bytes() for p in sorted(out.glob("chunks_semantic*")) if ".commits." not in p.name} == given


def test_recorded_definitions_equal_a_parse_from_nothing(tmp_path):
    """Stage 1 re-parses a blob from its previous version's tree: what it records is what a fresh parse gives."""
    b = build_repo(tmp_path / "repo")
    history = scrape_history(b.path, tmp_path / "h")
    blobs = blobs_with_definitions(b.path, history)
    checked = leads = 0
    for line in open(history, encoding="utf-8"):
        for f in json.loads(line)["files"]:
            known = f["definitions"]
            if known:
                tree = parsers.parser(known["language"]).parse(blobs[f["new_blob"]])
                fresh = parsers.definitions_near(tree, known["language"], known["windows"])
                assert known["found"] == [[d.start, d.end, d.name, d.lead] for d in fresh]
                checked += 1
                leads += sum(lead > 0 for *_, lead in known["found"])
    assert checked >= 6 and leads >= 4  # definitions that start at their comment
    records = [json.loads(line) for line in open(history, encoding="utf-8")]
    crlf = next(f for r in records for f in r["files"] if f["path"] == "py/crlf.py")
    assert crlf["definitions"] is None  # stage 2 reads it with LF newlines: other bytes than stage 1 parsed
    m5 = next(f for r in records for f in r["files"] if f["path"] == "py/shape.py" and "Change m5" in r["message"])
    assert ["Shape.m5"] == [name for _, _, name, _ in m5["definitions"]["found"] if name == "Shape.m5"]


def test_the_stage_1_check_reads_the_definitions_as_stage_2_does(tmp_path):
    b = build_repo(tmp_path / "repo")
    history = scrape_history(b.path, tmp_path / "h")
    assert check_history(history, history.with_suffix(".json"))["commits"] > 10
    lines = history.read_text(encoding="utf-8").splitlines()
    k = next(k for k, line in enumerate(lines) if '"definitions":{' in line)
    record = json.loads(lines[k])
    change = next(f for f in record["files"] if f["definitions"])
    change["definitions"]["found"][0] = [0, "end", "f", 0]
    history.write_text("\n".join(lines[:k] + [json.dumps(record)] + lines[k + 1:]) + "\n", encoding="utf-8")
    with pytest.raises(StageCheckFailed, match=rf"stage 1 \(scrape\).*definitions of {change['path']} in commit "):
        check_history(history, history.with_suffix(".json"))


def test_definitions_recorded_for_another_budget_are_not_taken(tmp_path, trained_tokenizer_dir, monkeypatch):
    """Stage 1 records the rows stage 2 widens over at its --max-chunk-tokens; stage 2 with another budget
    asks other rows (in the files longer than either reach), parses those blobs itself, and writes what it
    writes without them."""
    b = build_repo(tmp_path / "repo")
    history = scrape_history(b.path, tmp_path / "h")  # the default budget, 512
    blobs = blobs_with_definitions(b.path, history)
    (tmp_path / "with").mkdir()
    (tmp_path / "without").mkdir()
    given, parsed = chunk(b.path, history, tmp_path / "with", trained_tokenizer_dir, monkeypatch,
                          snapshot_at="none", max_chunk_tokens=128, min_chunk_tokens=16)
    plain = without_definitions(history, tmp_path / "plain.jsonl")
    alone, _ = chunk(b.path, plain, tmp_path / "without", trained_tokenizer_dir, monkeypatch,
                     snapshot_at="none", max_chunk_tokens=128, min_chunk_tokens=16)
    assert len(set(blobs.values()) & set(parsed)) >= 2  # the changed versions of py/shape.py
    assert given == alone
