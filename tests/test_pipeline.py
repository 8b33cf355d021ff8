"""End to end: comprehensive_pipeline.py on a generated repository, offline, small settings."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import comprehensive_pipeline
from pipeline.orchestrator import Pipeline, run_pipeline
from conftest import ROOT, build_sample_repo
from pipeline.config import PipelineConfig
from pipeline.state import LOCK_FILE, STAT_FILE
from core.io import UserError, iter_jsonl, read_json

SMALL = ["--model", "no-such-org/no-such-tokenizer", "--fallback-vocab-size", "400",
         "--max-chunk-tokens", "96", "--min-chunk-tokens", "8", "--sequence-length", "64", "--overlap", "16",
         "--context-window", "48", "--target-window", "16", "--no-progress"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "comprehensive_pipeline.py"), *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def tree_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in (LOCK_FILE, STAT_FILE)}  # the stat cache is this machine's, not output


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full run of the pipeline (through the command line) on the sample repository."""
    base = tmp_path_factory.mktemp("pipeline")
    repo = build_sample_repo(base / "sample").path
    result = run_cli("--repo", str(repo), *SMALL, cwd=base)
    assert result.returncode == 0, result.stderr
    return repo, base / "data" / "sample", result


def test_default_output_layout_and_summary(built):
    repo, out, result = built
    for name in ["git_history_rich.jsonl", "git_history_rich.json", "chunks_semantic.jsonl",
                 "chunks_tokenized.json", "dataset/training_data_train.json", "dataset/training_data_val.json",
                 "dataset/training_data_test.json", "dataset/dataset_stats.json", "tokenizer/tokenizer.json"]:
        assert (out / name).is_file(), name
    # The summary names every stage, the fallback taken and the training command.
    for text in ["1 scrape", "2 chunk", "3 tokenize", "4 dataset", "FALLBACK: tokenizer",
                 "training/model_trainer_unified.py", "training_data_train.json"]:
        assert text in result.stdout, text
    assert "no-such-org/no-such-tokenizer" in result.stderr  # the one-line reason for the fallback


def test_every_commit_reaches_the_history(built):
    repo, out, _ = built
    git_hashes = subprocess.run(["git", "-C", str(repo), "rev-list", "--all"], capture_output=True,
                                text=True, check=True).stdout.split()
    commits = list(iter_jsonl(out / "git_history_rich.jsonl"))
    assert sorted(c["hash"] for c in commits) == sorted(git_hashes)
    assert [c["order"] for c in commits] == list(range(len(commits)))


def test_dataset_is_chronological_and_uses_the_fallback_tokenizer(built):
    _, out, _ = built
    manifest = read_json(out / "dataset" / "dataset_stats.json")
    assert manifest["tokenizer"]["fallback"] is True
    tokenized = read_json(out / "chunks_tokenized.json")
    assert manifest["tokenizer"]["sha256"] == tokenized["tokenizer"]["sha256"]
    splits = manifest["splits"]
    assert splits["train"]["examples"] > 0
    assert splits["train"]["last_order"] < splits["val"]["first_order"] <= splits["val"]["last_order"] \
        < splits["test"]["first_order"]
    vocab = manifest["tokenizer"]["vocab_size"]
    for split in ("train", "val", "test"):
        data = read_json(out / "dataset" / f"training_data_{split}.json")
        stream = np.load(out / "dataset" / data["tokens_file"])
        assert stream.size and int(stream.max()) < vocab


def test_second_run_skips_every_stage_and_changes_nothing(built, tmp_path):
    repo, out, _ = built
    before = tree_bytes(out)
    result = run_cli("--repo", str(repo), "--output-dir", str(out), *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("skipped") >= 4
    assert tree_bytes(out) == before


def test_scrape_jobs_change_no_output_and_redo_no_stage(built, tmp_path):
    repo, out, _ = built
    before = tree_bytes(out)
    result = run_cli("--repo", str(repo), "--output-dir", str(out), *SMALL, "--scrape-jobs", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("skipped") >= 4
    assert tree_bytes(out) == before


def test_killed_run_rerun_is_identical_to_uninterrupted(built, tmp_path):
    repo, out, _ = built
    expected = tree_bytes(out)
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "comprehensive_pipeline.py"), "--repo", str(repo),
                             "--output-dir", str(killed), *SMALL], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "chunks_semantic.jsonl").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = run_cli("--repo", str(repo), "--output-dir", str(killed), *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert tree_bytes(killed) == expected


def test_an_unchanged_rerun_skips_the_report_and_never_imports_transformers(built, tmp_path):
    repo, out, _ = built
    before = tree_bytes(out)
    argv = ["--repo", str(repo), "--output-dir", str(out), *SMALL]
    code = (f"import sys, comprehensive_pipeline as c; code = c.main({argv!r}); "
            "print('transformers imported:', 'transformers' in sys.modules); sys.exit(code)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "transformers imported: False" in result.stdout
    assert re.search(r"^  report +skipped", result.stdout, re.M)
    assert tree_bytes(out) == before


def test_a_deleted_output_reruns_its_stage_with_the_recorded_tokenizer(built, tmp_path):
    """The tokenizer is loaded (and checked against its recorded identity) only when a stage needs it."""
    repo, out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "chunks_tokenized.json").unlink()
    result = run_cli("--repo", str(repo), "--output-dir", str(copy), *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^3 tokenize +[0-9.]+s", result.stdout, re.M)
    assert tree_bytes(copy) == tree_bytes(out)


def test_a_changed_report_input_redraws_the_report(built, tmp_path):
    repo, out, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    cfg = comprehensive_pipeline.parse_args(["--repo", str(repo), "--output-dir", str(copy), *SMALL])
    pipeline = Pipeline(cfg, repo, copy)
    pipeline.report()
    assert [r.skipped for r in pipeline.reports] == [True]
    page = (copy / "report.html").read_bytes()
    stats = copy / "git_history_stats.json"
    stats.write_text(stats.read_text(encoding="utf-8").replace("{", '{"edited": 1, ', 1), encoding="utf-8")
    pipeline = Pipeline(cfg, repo, copy)
    pipeline.report()
    assert [r.skipped for r in pipeline.reports] == [False]
    assert (copy / "report.html").read_bytes() == page  # the key added is not one the report shows
    (copy / "report.html").unlink()
    pipeline = Pipeline(cfg, repo, copy)
    pipeline.report()
    assert [r.skipped for r in pipeline.reports] == [False] and (copy / "report.html").read_bytes() == page


def test_a_second_run_on_a_locked_directory_is_refused(built, tmp_path):
    repo, out, _ = built
    from pipeline.state import OutputLock

    with OutputLock(out):
        result = run_cli("--repo", str(repo), "--output-dir", str(out), *SMALL, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "another pipeline run" in result.stderr


def test_chunking_failure_falls_back_to_raw_commits(built, tmp_path, monkeypatch):
    repo, _, _ = built
    import semantic_chunker

    def broken(*args, **kwargs):
        raise RuntimeError("simulated chunker bug")

    monkeypatch.setattr(semantic_chunker, "run", broken)
    out = tmp_path / "out"
    cfg = comprehensive_pipeline.parse_args(["--repo", str(repo), "--output-dir", str(out), *SMALL])
    info = run_pipeline(cfg)
    assert info["splits"]["train"]["examples"] > 0
    tokenized = read_json(out / "chunks_tokenized.json")
    assert {c["kind"] for c in tokenized["chunks"]} == {"commit"}
    assert not (out / "chunks_semantic.jsonl").exists()


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such directory"),
    (lambda p: (p / "plain").mkdir() or p / "plain", "not a git repository"),
])
def test_bad_repo_is_one_line_and_exit_2(tmp_path, make, message):
    result = run_cli("--repo", str(make(tmp_path)), *SMALL, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr


def test_config_file_is_read_and_flags_win(tmp_path):
    cfg_file = tmp_path / "p.yaml"
    cfg_file.write_text("context_window: 99\ntarget_window: 7\n")
    cfg = comprehensive_pipeline.parse_args(["--config", str(cfg_file), "--target-window", "5"])
    assert (cfg.context_window, cfg.target_window) == (99, 5)
    assert cfg.max_chunk_tokens == PipelineConfig().max_chunk_tokens
    cfg_file.write_text("context_windw: 99\n")
    with pytest.raises(UserError, match="context_windw"):
        comprehensive_pipeline.parse_args(["--config", str(cfg_file)])


def test_every_stage_option_is_reachable_from_the_one_command(tmp_path, capsys):
    """Stage 2's filters, dedup, size bound and workers and stage 4's stride and inline ids, from YAML and flags."""
    repo = build_sample_repo(tmp_path / "sample")
    cfg_file = tmp_path / "p.yaml"
    cfg_file.write_text("filter_lock_files: false\ndedup: false\nmax_file_bytes: 5000\ninline_ids: true\n")
    out = tmp_path / "o"
    code = comprehensive_pipeline.main(["--config", str(cfg_file), "--repo", str(repo.path), "--output-dir", str(out),
                                        *SMALL, "--no-binary", "--chunk-workers", "2", "--stride", "8", "--no-report"])
    assert code == 0, capsys.readouterr().err
    chunking = read_json(out / "chunks_semantic.stats.json")["settings"]
    assert (chunking["filter_lock_files"], chunking["filter_binary"], chunking["dedup"]) == (False, False, False)
    assert chunking["filter_generated"] is True and chunking["max_file_bytes"] == 5000
    dataset = read_json(out / "dataset" / "dataset_stats.json")["settings"]
    assert (dataset["stride"], dataset["inline_ids"]) == (8, True)
    assert "input_ids" in read_json(out / "dataset" / "training_data_train.json")["examples"][0]
