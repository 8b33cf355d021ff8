"""Reruns after new commits: only the new commits are read, and every output is byte-identical to a
fresh run on the new history; anything that is not a pure append is a full run (real git repositories)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, RepoBuilder, build_sample_repo
from scrapers.git_scraper_rich import ScrapeConfig, scrape


def scrape_into(repo: Path, out: Path, incremental: bool = True, **kw) -> dict:
    """The statistics, with `run`: what the scrape did (`commits_read`, `commits_kept`, `full_because`)."""
    config = ScrapeConfig(repo=str(repo), output=str(out / "h.jsonl"), output_json=str(out / "h.json"),
                          progress=False, jobs=0, **kw)
    run: dict = {}
    return {**scrape(config, incremental, run), "run": run}


def files_of(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def add_history(b: RepoBuilder) -> int:
    """New commits on main, on a second branch started from an old commit, their merge, and tags (one on
    an old commit): the old commits' branches and tags change. Returns how many commits were added."""
    carol = ("Carol New", "carol@example.com")
    b.commit("Add a triangle", {"src/triangle.py": "def triangle(a, b, c):\n    return a + b + c\n"}, author=carol)
    b.git("checkout", "-q", "-b", "topic", "v0.1")  # from an old commit: it now belongs to `topic` too
    b.commit("Topic: document the counter", {"rust/README.md": "# Counter\n"}, author=carol)
    b.commit("Topic: counter goes down", {"rust/src/down.rs": "pub fn down(x: i32) -> i32 {\n    x - 1\n}\n"})
    b.git("checkout", "-q", "main")
    b.commit("Shapes: hexagon", {"src/hexagon.py": "def hexagon(s):\n    if s < 0:\n        return 0\n    return 6 * s\n"})
    b.tick += 1
    date = f"2024-01-{b.tick:02d}T12:00:00+02:00"
    b.git("merge", "-q", "--no-ff", "topic", "-m", "Merge topic",
          env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
    b.git("tag", "v0.0", "HEAD~5")  # an old commit gains a tag
    b.git("tag", "v0.3")
    return 5


def test_new_commits_are_read_alone_and_the_files_equal_a_fresh_scrape(tmp_path):
    b = build_sample_repo(tmp_path / "repo")
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    first = scrape_into(b.path, inc)
    assert first["run"]["commits_kept"] == 0 and first["run"]["full_because"]  # nothing earlier: a full scrape
    old = first["counts"]["commits"]
    added = add_history(b)
    again = scrape_into(b.path, inc)
    assert again["run"] == {**again["run"], "commits_read": added, "commits_kept": old, "full_because": None}
    scrape_into(b.path, fresh, incremental=False)
    assert files_of(inc) == files_of(fresh)
    # the old records changed where the refs changed: the branch started from v0.1 holds its ancestors
    first_record = (inc / "h.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert '"topic"' in first_record and '"v0.0"' not in first_record
    # nothing new: nothing read, nothing changed
    assert scrape_into(b.path, inc)["run"]["commits_read"] == 0
    assert files_of(inc) == files_of(fresh)


def _amend(b: RepoBuilder) -> None:
    b.git("commit", "-q", "--amend", "--allow-empty", "-m", "Empty commit, reworded")


def _old_dated_branch(b: RepoBuilder) -> None:
    b.git("checkout", "-q", "-b", "late", "v0.1")
    b.write("late.txt", "late\n")
    b.git("add", "late.txt")
    old = "2024-01-03T13:00:00+02:00"  # between two scraped commits: it lands before them in the listing
    b.git("commit", "-q", "-m", "Committed long ago", env={"GIT_AUTHOR_DATE": old, "GIT_COMMITTER_DATE": old})
    b.git("checkout", "-q", "main")


def _deleted_branch(b: RepoBuilder) -> None:
    b.git("branch", "-D", "feature")
    b.git("reset", "-q", "--hard", "HEAD~2")


def test_a_new_commit_dated_between_old_ones_is_read_alone_and_moves_the_later_ones(tmp_path):
    b = build_sample_repo(tmp_path / "repo")
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    old = [line[9:49] for line in (scrape_into(b.path, inc) and (inc / "h.jsonl").read_text().splitlines())]
    _old_dated_branch(b)
    again = scrape_into(b.path, inc)
    assert again["run"]["commits_read"] == 1 and again["run"]["full_because"] is None
    new = [line[9:49] for line in (inc / "h.jsonl").read_text().splitlines()]
    assert new != old + new[-1:] and [h for h in new if h in old] == old  # it landed before some old ones
    scrape_into(b.path, fresh, incremental=False)
    assert files_of(inc) == files_of(fresh)


@pytest.mark.parametrize("change, settings, because", [
    (_amend, {}, "gone"),
    (_deleted_branch, {}, "gone"),
    (None, {"max_diff_bytes": 100}, "settings changed"),
])
def test_anything_but_an_append_is_a_full_scrape(tmp_path, change, settings, because):
    b = build_sample_repo(tmp_path / "repo")
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    scrape_into(b.path, inc)
    if change is not None:
        change(b)
    again = scrape_into(b.path, inc, **settings)
    assert again["run"]["commits_kept"] == 0 and because in again["run"]["full_because"]
    assert again["run"]["commits_read"] == again["counts"]["commits"]
    scrape_into(b.path, fresh, incremental=False, **settings)
    assert files_of(inc) == files_of(fresh)


def test_a_deepened_shallow_clone_is_a_full_scrape(tmp_path):
    b = build_sample_repo(tmp_path / "repo")
    shallow = tmp_path / "shallow"
    b.git("clone", "-q", "--depth", "3", "--no-single-branch", f"file://{b.path}", str(shallow))
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    scrape_into(shallow, inc)
    b.git("-C", str(shallow), "fetch", "-q", "--deepen", "2")  # its oldest commits gain their parents
    again = scrape_into(shallow, inc)
    assert again["run"]["commits_kept"] == 0 and "shallow" in again["run"]["full_because"]
    scrape_into(shallow, fresh, incremental=False)
    assert files_of(inc) == files_of(fresh)


def test_an_edited_earlier_output_is_not_appended_to(tmp_path):
    b = build_sample_repo(tmp_path / "repo")
    inc = tmp_path / "inc"
    scrape_into(b.path, inc)
    lines = (inc / "h.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (inc / "h.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")  # a record lost
    again = scrape_into(b.path, inc)
    assert again["run"]["commits_kept"] == 0 and "do not agree" in again["run"]["full_because"]
    shutil.rmtree(inc)
    assert scrape_into(b.path, inc)["run"]["full_because"].startswith("no earlier")


# --- the whole pipeline ----------------------------------------------------------------------

def run_into(repo: Path, out: Path, tokenizer: Path, report: bool = False):
    """One pipeline run (a tokenizer given, as a user's `--model`: it does not change with the history)."""
    from pipeline.config import PipelineConfig, validate
    from pipeline.orchestrator import Pipeline
    from pipeline.state import OutputLock

    cfg = PipelineConfig(repo=str(repo), output_dir=str(out), model=str(tokenizer), max_chunk_tokens=96,
                         min_chunk_tokens=8, sequence_length=64, overlap=16, context_window=48, target_window=16,
                         report=report, progress=False, workers=1, scrape_jobs=0)
    repo, out = validate(cfg)
    with OutputLock(out):
        pipeline = Pipeline(cfg, repo, out)
        pipeline.run()
    return pipeline


def outputs_of(out: Path) -> dict[str, bytes]:
    from pipeline.state import LOCK_FILE, STAT_FILE

    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (LOCK_FILE, STAT_FILE)}  # the stat cache is this machine's


def test_a_pipeline_rerun_after_new_commits_reads_only_them_and_equals_a_fresh_run(tmp_path, trained_tokenizer_dir):
    b = build_sample_repo(tmp_path / "repo")
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    first = run_into(b.path, inc, trained_tokenizer_dir, report=True)
    old = first.reused["scrape"]["commits_read"]
    added = add_history(b)
    again = run_into(b.path, inc, trained_tokenizer_dir, report=True)
    assert again.reused["scrape"] == {**again.reused["scrape"], "commits_read": added, "commits_kept": old}
    assert again.reused["chunk"] == {"commits_chunked": added, "commits_kept": old, "full_because": None}
    assert any("new commits read" in r.note for r in again.reports)
    run_into(b.path, fresh, trained_tokenizer_dir, report=True)
    assert outputs_of(inc) == outputs_of(fresh)  # every file, the state file, report and chunk index included


def test_a_rerun_after_new_commits_encodes_without_importing_transformers(tmp_path, trained_tokenizer_dir):
    """Stages 2 and 3 and the report only encode: with the tokenizer's files as recorded and its copy beside
    the data, they read its Rust tokenizer alone (transformers' import is about 0.8 s of a rerun)."""
    b = build_sample_repo(tmp_path / "repo")
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    run_into(b.path, inc, trained_tokenizer_dir, report=True)
    add_history(b)
    code = ("import sys; from pathlib import Path; from test_incremental import run_into; "
            f"p = run_into(Path({str(b.path)!r}), Path({str(inc)!r}), Path({str(trained_tokenizer_dir)!r}), True); "
            "print('ran:', *(r.stage.strip() for r in p.reports if not r.skipped)); "
            "print('transformers imported:', 'transformers' in sys.modules)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join((str(ROOT), str(ROOT / "tests")))}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ran: 1 scrape 2 chunk 3 tokenize 4 dataset report" in result.stdout
    assert "transformers imported: False" in result.stdout
    run_into(b.path, fresh, trained_tokenizer_dir, report=True)
    assert outputs_of(inc) == outputs_of(fresh)


def test_a_sha256_repository_keeps_its_earlier_records_and_chunks(tmp_path, trained_tokenizer_dir):
    """Commit ids of 64 hex digits: the earlier output is kept as for SHA-1 ones (it was a full run, said as
    "commits scraped before are gone")."""
    b = RepoBuilder(tmp_path / "repo", object_format="sha256")
    b.commit("Add shapes", {"src/shapes.py": "def square(x):\n    return x * x\n"})
    b.commit("Add cube", {"src/shapes.py": "def square(x):\n    return x * x\n\n\ndef cube(x):\n    return x ** 3\n"})
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    run_into(b.path, inc, trained_tokenizer_dir)
    b.commit("Add a README", {"README.md": "# Shapes\n\nSquares and cubes.\n"})
    again = run_into(b.path, inc, trained_tokenizer_dir)
    assert again.reused["scrape"]["full_because"] is None and again.reused["scrape"]["commits_kept"] == 2
    assert again.reused["chunk"] == {"commits_chunked": 1, "commits_kept": 2, "full_because": None}
    run_into(b.path, fresh, trained_tokenizer_dir)
    assert outputs_of(inc) == outputs_of(fresh)


def test_a_new_commit_before_kept_ones_moves_their_chunks_as_a_fresh_run(tmp_path, trained_tokenizer_dir):
    """A commit dated between two chunked ones lands before the later ones: their kept chunks are written
    again with the new `order` (set in their lines as text), byte for byte as a fresh run writes them."""
    from chunking.reuse import with_order

    b = build_sample_repo(tmp_path / "repo")
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    first = run_into(b.path, inc, trained_tokenizer_dir)
    def orders() -> dict[str, int]:
        return {c["commit"]: c["order"] for c in map(json.loads, (inc / "chunks_semantic.jsonl").open(encoding="utf-8"))
                if c["kind"] != "snapshot"}

    before = orders()
    _old_dated_branch(b)
    again = run_into(b.path, inc, trained_tokenizer_dir)
    assert again.reused["chunk"] == {"commits_chunked": 1, "commits_kept": first.reused["scrape"]["commits_read"],
                                     "full_because": None}
    after = orders()
    assert [c for c in before if after[c] != before[c]]  # kept commits that moved
    run_into(b.path, fresh, trained_tokenizer_dir)
    assert outputs_of(inc) == outputs_of(fresh)
    line = (fresh / "chunks_semantic.jsonl").open(encoding="utf-8").readline()
    record = json.loads(line)
    assert with_order(line, 12345) == json.dumps({**record, "order": 12345}, ensure_ascii=False,
                                                 separators=(",", ":")) + "\n"


def test_a_rewritten_history_is_a_full_run_equal_to_a_fresh_one(tmp_path, trained_tokenizer_dir):
    b = build_sample_repo(tmp_path / "repo")
    inc, fresh = tmp_path / "inc", tmp_path / "fresh"
    run_into(b.path, inc, trained_tokenizer_dir)
    _amend(b)
    b.commit("After the rewrite", {"src/after.py": "def after():\n    return 1\n"})
    again = run_into(b.path, inc, trained_tokenizer_dir)
    assert again.reused["scrape"]["commits_kept"] == 0 and "gone" in again.reused["scrape"]["full_because"]
    assert again.reused["chunk"]["commits_kept"] == 0 and "gone" in again.reused["chunk"]["full_because"]
    run_into(b.path, fresh, trained_tokenizer_dir)
    assert outputs_of(inc) == outputs_of(fresh)


def test_an_edited_split_chunk_map_reruns_stage_4(tmp_path, trained_tokenizer_dir):
    b = build_sample_repo(tmp_path / "repo")
    out = tmp_path / "out"
    run_into(b.path, out, trained_tokenizer_dir)
    chunk_map = out / "dataset" / "training_data_train.chunks.jsonl"
    expected = chunk_map.read_bytes()
    chunk_map.write_bytes(expected[: len(expected) // 2])
    again = run_into(b.path, out, trained_tokenizer_dir)
    assert [r.skipped for r in again.reports if r.stage == "4 dataset"] == [False]
    assert chunk_map.read_bytes() == expected


def test_a_history_line_is_keyed_as_its_parsed_record_is(tmp_path):
    """Stage 2 finds the commits it keeps from their lines, unparsed (`line_key`): the same key and order as
    the parsed record's, whatever the ref names hold; a line laid out otherwise is not recognised."""
    import json

    from chunking.reuse import commit_key, line_key

    b = build_sample_repo(tmp_path / "repo")
    add_history(b)
    b.git("tag", 'odd],"x', "HEAD~3")  # quotes and brackets in ref names: valid to git
    b.git("branch", "odd]", "HEAD~2")
    scrape_into(b.path, tmp_path / "h")
    lines = (tmp_path / "h" / "h.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    assert any("odd]" in line for line in lines)
    assert [line_key(line) for line in lines] == [(commit_key(r), r["order"]) for r in map(json.loads, lines)]
    record = json.loads(lines[0])
    assert line_key(json.dumps(record)) != (commit_key(record), record["order"])  # spaces after separators
    assert line_key(json.dumps({k: v for k, v in record.items() if k != "order"})) is None


def chunk_into(repo: Path, history: Path, out: Path, tokenizer: Path, incremental: bool = True, **kw) -> dict:
    """Stage 2 alone; returns what it did (`commits_chunked`, `commits_kept`, `full_because`)."""
    import semantic_chunker

    config = semantic_chunker.ChunkConfig(repo=str(repo), commits=str(history), output=str(out / "chunks.jsonl"),
                                          tokenizer=str(tokenizer), progress=False, workers=1,
                                          **{"max_chunk_tokens": 128, "min_chunk_tokens": 8, **kw})
    run: dict = {}
    semantic_chunker.run(config, incremental=incremental, run_info=run)
    return run


def test_stage_2_keeps_nothing_with_other_settings_or_another_tokenizer(tmp_path, trained_tokenizer_dir):
    from core.tokenizer import train_fallback_tokenizer

    b = build_sample_repo(tmp_path / "repo")
    hist, inc, fresh = tmp_path / "h", tmp_path / "inc", tmp_path / "fresh"
    scrape_into(b.path, hist)
    assert chunk_into(b.path, hist / "h.jsonl", inc, trained_tokenizer_dir)["full_because"].startswith("no readable")
    n = add_history(b)
    scrape_into(b.path, hist)
    assert chunk_into(b.path, hist / "h.jsonl", inc, trained_tokenizer_dir, max_chunk_tokens=120) == {
        "commits_chunked": 10 + n, "commits_kept": 0, "full_because": "the settings or the tokenizer changed"}
    other = tmp_path / "other-tokenizer"
    train_fallback_tokenizer(["def f(x):\n    return x\n"] * 50, other, vocab_size=300)
    assert chunk_into(b.path, hist / "h.jsonl", inc, other)["full_because"] == "the settings or the tokenizer changed"
    assert chunk_into(b.path, hist / "h.jsonl", inc, other) == {
        "commits_chunked": 0, "commits_kept": 10 + n, "full_because": None}
    chunk_into(b.path, hist / "h.jsonl", fresh, other, incremental=False)
    assert files_of(inc) == files_of(fresh)


def test_stage_2_keeps_nothing_from_an_index_of_another_format(tmp_path, trained_tokenizer_dir):
    """An index without this version's `format` (written before its rows per chunk) is not read: a full run."""
    b = build_sample_repo(tmp_path / "repo")
    hist, inc = tmp_path / "h", tmp_path / "inc"
    scrape_into(b.path, hist)
    chunk_into(b.path, hist / "h.jsonl", inc, trained_tokenizer_dir)
    index = inc / "chunks.commits.jsonl"
    head, rest = index.read_text(encoding="utf-8").split("\n", 1)
    index.write_text(json.dumps({k: v for k, v in json.loads(head).items() if k != "format"}) + "\n" + rest,
                     encoding="utf-8")
    assert chunk_into(b.path, hist / "h.jsonl", inc, trained_tokenizer_dir)["full_because"] == \
        "chunks.commits.jsonl was written by another version"
