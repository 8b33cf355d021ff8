"""Several repositories into one dataset (multirepo/): Ray with 2 CPUs against one-after-another.

One Ray session serves the whole module (started once, shut down at the end); the pipeline
reuses a session that is already running.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import comprehensive_pipeline
from conftest import ROOT, RepoBuilder, build_sample_repo
from core.io import read_json
from core.splits import SPLITS
from pipeline.state import STATE_FILE, OutputLock
from test_pipeline import SMALL, tree_bytes

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_local():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             object_store_memory=100 << 20, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}})
    yield
    ray.shutdown()


def build_lib_repo(path: Path) -> Path:
    """A third, different history: a small Python library growing over six commits."""
    b = RepoBuilder(path)
    body = ""
    for i in range(6):
        body += f"\n\ndef step_{i}(x):\n    \"\"\"Step {i} of the pipeline.\"\"\"\n    return x * {i + 2} + {i}\n"
        b.commit(f"Add step {i}", {"lib/steps.py": body, "README.md": f"# lib\n\n{i + 1} steps.\n"})
    return path


@pytest.fixture(scope="module")
def three_repos(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two repositories both named `app` (one with an extra commit), a third named `lib`, and a bad one."""
    base = tmp_path_factory.mktemp("multi")
    build_sample_repo(base / "one" / "app")
    b = build_sample_repo(base / "two" / "app")
    b.commit("Document the counter", {"rust/README.md": "# Counter\n\nCounts things, starting at five.\n"})
    build_lib_repo(base / "lib")
    (base / "not-a-repo").mkdir()
    (base / "not-a-repo" / "file.txt").write_text("plain directory\n")
    return base, ["one/app", "lib", "not-a-repo", "two/app"]


def run_main(base: Path, out: str, *extra: str, repos: list[str]) -> int:
    old = Path.cwd()
    os.chdir(base)  # relative --repo paths, as a user types them
    try:
        args = [a for r in repos for a in ("--repo", r)]
        return comprehensive_pipeline.main([*args, "--output-dir", out, *SMALL, *extra])
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def sequential(three_repos):
    """The reference: every repository one after another in this process, no Ray."""
    base, repos = three_repos
    code = run_main(base, "seq/team", "--workers", "1", repos=repos)
    return base / "seq" / "team", code


def test_ray_run_is_byte_identical_to_one_after_another(three_repos, sequential, ray_local, capsys):
    base, repos = three_repos
    seq_out, seq_code = sequential
    capsys.readouterr()
    code = run_main(base, "ray/team", "--workers", "2", repos=list(reversed(repos)))  # order must not matter
    captured = capsys.readouterr()
    printed = captured.out
    assert seq_code == code == 3, captured.err[-3000:]  # built from the good ones; non-zero because one failed
    assert tree_bytes(base / "ray" / "team") == tree_bytes(seq_out)
    # The bad repository is one line; the others were built.
    failed = [line for line in printed.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and "not-a-repo" in failed[0] and "not a git repository" in failed[0]
    assert printed.count(" built ") == 3


def test_merged_splits_are_each_repository_split_at_its_own_cutoff(sequential):
    from training.data import load_split

    out, _ = sequential
    manifest = read_json(out / "dataset" / "dataset_stats.json")
    names = [r["name"] for r in manifest["repositories"]]
    assert names == sorted(names) and len(names) == 3 and "lib" in names
    assert len({n for n in names if n.startswith("app-")}) == 2  # two `app` directories, neither overwritten
    assert [f["source"] for f in manifest["failed"]] == ["not-a-repo"]
    for r in manifest["repositories"]:
        s = r["splits"]
        assert s["train"]["last_order"] < s["val"]["first_order"] <= s["val"]["last_order"] < s["test"]["first_order"]
        assert r["cutoff"]["train_last_order"] == s["train"]["last_order"]
    for split in SPLITS:
        merged = load_split(out / "dataset" / f"training_data_{split}.json")
        parts = [load_split(out / "repos" / n / "dataset" / f"training_data_{split}.json") for n in names]
        # Train of all, val of all, test of all: each repository's part, in name order, nothing else.
        assert np.array_equal(np.asarray(merged.tokens), np.concatenate([np.asarray(p.tokens) for p in parts]))
        assert len(merged) == sum(len(p) for p in parts) == manifest["splits"][split]["examples"]
        i = 0
        for p in parts:
            for k in range(len(p)):
                assert np.array_equal(merged.batch([i + k])["input_ids"], p.batch([k])["input_ids"])
            i += len(p)
        assert [r["name"] for r in merged.meta["repositories"]] == names


def test_killed_run_rerun_skips_finished_repositories_and_is_identical(three_repos, sequential, ray_local, capsys):
    base, repos = three_repos
    expected = tree_bytes(sequential[0])
    out = base / "killed" / "team"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    args = [a for r in repos for a in ("--repo", r)]
    proc = subprocess.Popen([sys.executable, str(ROOT / "comprehensive_pipeline.py"), *args, "--workers", "1",
                             "--output-dir", str(out), *SMALL], cwd=base, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = sorted(p for p in expected if p.startswith("repos/app-"))[0].split("/")[1]
    deadline = time.monotonic() + 120
    # The report is its last step: once the state file records it, the first repository is finished
    # (report.html alone is not enough: it is written before its step is recorded).
    state = out / "repos" / first / STATE_FILE
    while not (state.exists() and "report" in json.loads(state.read_text())["stages"]) \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "dataset" / "dataset_stats.json").exists()
    capsys.readouterr()
    assert run_main(base, "killed/team", "--workers", "2", repos=repos) == 3
    printed = capsys.readouterr().out
    assert tree_bytes(out) == expected
    assert any(line.startswith(first) and " unchanged " in line for line in printed.splitlines())


def test_force_redoes_every_stage_once_and_changes_nothing(three_repos, sequential, caplog):
    base, repos = three_repos
    shutil.copytree(sequential[0], base / "forced" / "team")
    caplog.set_level(logging.INFO)
    assert run_main(base, "forced/team", "--workers", "1", "--force", repos=repos) == 3
    # Stage 1 runs before the fallback tokenizer; the per-repository run after it must not redo it.
    scrapes = [r for r in caplog.records if r.name == "scrapers.git_scraper_rich" and " -> " in r.getMessage()]
    assert len(scrapes) == 3
    assert tree_bytes(base / "forced" / "team") == tree_bytes(sequential[0])


def test_second_run_on_a_locked_dataset_is_refused(three_repos, capsys):
    base, repos = three_repos
    with OutputLock(base / "locked"):
        assert run_main(base, "locked", "--workers", "1", repos=repos) == 2
    assert "another pipeline run is writing to" in capsys.readouterr().err


def test_repos_file_and_single_repo_parsing(tmp_path):
    listing = tmp_path / "team.txt"
    listing.write_text("# our repositories\nlib   # the library\n\n/srv/app.git\n", encoding="utf-8")
    cfg = comprehensive_pipeline.parse_args(["--repos-file", str(listing), "--repo", "x"])
    assert cfg.repos == ["x"]  # a --repo beside a list joins it
    from multirepo.runner import plan_jobs, read_repos_file

    assert read_repos_file(str(listing)) == [str(tmp_path / "lib"), "/srv/app.git"]
    jobs, out = plan_jobs(cfg)
    assert out == Path("data") / "team" and [j.name for j in jobs] == ["app", "lib", "x"]
    cfg = comprehensive_pipeline.parse_args(["--repo", "a"])
    assert (cfg.repo, cfg.repos, cfg.repos_file) == ("a", [], None)  # one --repo: today's single run
    cfg = comprehensive_pipeline.parse_args(["--repo", "a", "--repo", "b"])
    assert cfg.repos == ["a", "b"] and plan_jobs(cfg)[1] == Path("data") / "multi"
    from core.io import UserError

    with pytest.raises(UserError, match="listed twice"):
        plan_jobs(comprehensive_pipeline.parse_args(["--repo", "a", "--repo", "./a"]))


def test_a_url_is_cloned_by_the_worker_and_fetched_on_the_next_run(three_repos, capsys):
    base, _ = three_repos
    url = (base / "lib").as_uri()  # file://: a clone from a URL, offline
    listing = base / "urls.txt"
    listing.write_text(f"{url}  # cloned on the worker\none/app\n", encoding="utf-8")
    args = ["--repos-file", str(listing), "--output-dir", str(base / "urls"), "--workers", "1", *SMALL]
    assert comprehensive_pipeline.main(args) == 0
    mirror = base / "urls" / "sources" / "lib.git"
    refs = subprocess.run(["git", "-C", str(mirror), "for-each-ref", "--format=%(refname)"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert refs == ["refs/heads/main"]  # a mirror: the origin's own refs, no remote-tracking copies
    manifest = read_json(base / "urls" / "dataset" / "dataset_stats.json")
    lib = next(r for r in manifest["repositories"] if r["name"] == "lib")
    assert lib["source"] == url and lib["splits"]["test"]["last_order"] == 5  # all six commits
    # The next run fetches instead of cloning, finds nothing new, and leaves everything as it was.
    before = tree_bytes(base / "urls" / "repos")
    capsys.readouterr()
    assert comprehensive_pipeline.main(args) == 0
    assert any(line.startswith("lib ") and " unchanged " in line for line in capsys.readouterr().out.splitlines())
    assert tree_bytes(base / "urls" / "repos") == before


def test_a_ray_task_starts_no_worker_processes_unless_asked(tmp_path):
    from multirepo.runner import RepoJob, repo_config
    from pipeline.config import PipelineConfig

    job = RepoJob("a", "a", str(tmp_path), str(tmp_path / "out"), None)
    assert repo_config(PipelineConfig(), job).scrape_jobs == 0  # Ray: every task holds one CPU
    assert repo_config(PipelineConfig(workers=1), job).scrape_jobs is None  # in process: the scraper's default
    assert repo_config(PipelineConfig(scrape_jobs=3), job).scrape_jobs == 3
    assert repo_config(PipelineConfig(), job).chunk_workers == 1  # stage 2 in the task's own process
    assert repo_config(PipelineConfig(workers=1), job).chunk_workers is None  # in process: the chunker's default
    assert repo_config(PipelineConfig(chunk_workers=3), job).chunk_workers == 3


def test_the_merged_report_has_one_row_per_repository_equal_to_the_manifest(sequential):
    import html as html_lib
    import re

    out, _ = sequential
    manifest = read_json(out / "dataset" / "dataset_stats.json")
    page = (out / "report.html").read_text()
    table = page[page.index('<table id="repositories">'):]
    table = table[:table.index("</table>")]
    rows = [[html_lib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]
    assert [r[0] for r in rows] == [r["name"] for r in manifest["repositories"]] + ["all"]
    for row, repo in zip(rows, manifest["repositories"] + [{"splits": manifest["splits"]}]):
        assert row[2:8] == [f"{repo['splits'][s][k]:,}" for s in SPLITS for k in ("examples", "tokens")]
    assert (out / "report" / "repositories.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "not-a-repo" in page[page.index('<table id="failed">'):]
    for repo in manifest["repositories"]:
        assert (out / "repos" / repo["name"] / "report.html").is_file()


def rerun_elsewhere(base: Path, out: Path, *extra: str, repos: list[str]) -> subprocess.CompletedProcess:
    """The command in a fresh process with 2 workers; it prints which heavy modules it imported."""
    argv = [*(a for r in repos for a in ("--repo", r)), "--output-dir", str(out), "--workers", "2", *SMALL, *extra]
    code = (f"import sys, comprehensive_pipeline as c; code = c.main({argv!r}); "
            "print('imported:', *(m for m in ('ray', 'transformers', 'matplotlib') if m in sys.modules)); "
            "sys.exit(code)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=base, env=env, capture_output=True, text=True, timeout=600)


def statuses(printed: str, names: list[str]) -> dict[str, str]:
    """The summary's status column per repository."""
    return {words[0]: words[1] for words in map(str.split, printed.splitlines()) if words and words[0] in names}


def test_an_unchanged_rerun_is_decided_here_without_ray_the_tokenizer_or_the_report(three_repos):
    """Every repository's refs and outputs' stat data as the last run left them: nothing starts or loads."""
    base, _ = three_repos
    repos = ["one/app", "lib"]
    assert run_main(base, "unchanged/team", "--workers", "1", repos=repos) == 0
    out = base / "unchanged" / "team"
    before = tree_bytes(out)
    result = rerun_elsewhere(base, out, repos=repos)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported:\n" in result.stdout  # neither Ray, nor transformers (the tokenizer), nor matplotlib (the report)
    assert statuses(result.stdout, ["app", "lib"]) == {"app": "unchanged", "lib": "unchanged"}
    assert "FALLBACK: tokenizer: no-such-org/no-such-tokenizer could not be loaded" in result.stdout
    assert tree_bytes(out) == before


@pytest.mark.parametrize("tokenizer", ["trained", "fallback"])
def test_a_repository_that_gained_a_commit_is_redone_and_equals_a_fresh_run(tmp_path, trained_tokenizer_dir, tokenizer):
    """With a tokenizer that loads, the unchanged repository is settled in the command's process and
    only the changed one runs (one task: in that process, no Ray). The fallback tokenizer is trained
    on every repository's history: all run again. Either way the dataset is a fresh run's."""
    app = build_sample_repo(tmp_path / "app")
    build_lib_repo(tmp_path / "lib")
    repos, model = ["app", "lib"], ["--model", str(trained_tokenizer_dir)] if tokenizer == "trained" else []
    assert run_main(tmp_path, "team", "--workers", "1", *model, repos=repos) == 0
    app.commit("Document the counter", {"rust/README.md": "# Counter\n\nCounts things, starting at five.\n"})
    result = rerun_elsewhere(tmp_path, tmp_path / "team", *model, repos=repos)
    assert result.returncode == 0, result.stderr[-3000:]
    assert statuses(result.stdout, repos)["app"] == "built"
    if tokenizer == "trained":
        assert "ray" not in result.stdout.split("imported:")[1].split()
        assert statuses(result.stdout, repos)["lib"] == "unchanged"
    # the same directory name: the fallback tokenizer is named after it
    assert run_main(tmp_path, "fresh/team", "--workers", "1", *model, repos=repos) == 0
    assert tree_bytes(tmp_path / "team") == tree_bytes(tmp_path / "fresh" / "team")
