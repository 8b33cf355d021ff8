"""core/repository.py: one resolver for `--repo`, one test per case, on real repositories built here.

The URL case is offline: a `file://` URL of a repository in tmp_path, cloned bare into the cache
under the output directory, then reused (fetched, not cloned again) on the next run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import RepoBuilder
from core.io import UserError
from core.repository import open_repository
from pipeline.config import PipelineConfig, validate


@pytest.fixture
def proj(tmp_path) -> tuple[RepoBuilder, Path]:
    b = RepoBuilder(tmp_path / "proj")
    b.commit("one", {"src/pkg/m.py": "x = 0\n", "top.py": "y = 1\n"})
    return b, b.path.resolve()


def test_a_work_tree_path(proj):
    b, top = proj
    assert open_repository(str(b.path)) == top


def test_a_subdirectory_means_its_repository(proj):
    b, top = proj
    assert open_repository(str(b.path / "src" / "pkg")) == top


def test_a_dot_git_directory_means_its_repository(proj):
    b, top = proj
    assert open_repository(str(b.path / ".git")) == top


def test_a_worktrees_dot_git_file_means_that_worktree(proj, tmp_path):
    b, _ = proj
    wt = tmp_path / "wt"
    subprocess.run(["git", "-C", str(b.path), "worktree", "add", "-q", "-b", "side", str(wt)], check=True)
    assert (wt / ".git").is_file()
    assert open_repository(str(wt / ".git")) == wt.resolve()


def test_a_bare_repository(proj, tmp_path):
    b, _ = proj
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(b.path), str(bare)], check=True)
    assert open_repository(str(bare)) == bare.resolve()


def test_a_url_is_cloned_bare_into_the_cache_and_reused(proj, tmp_path, monkeypatch):
    b, _ = proj
    monkeypatch.chdir(tmp_path)
    url = (b.path).resolve().as_uri()  # file:///.../proj
    repo, out = validate(PipelineConfig(repo=url))
    assert out == Path("data") / "proj"
    assert repo == (out / "sources" / "proj.git").resolve()
    assert subprocess.run(["git", "-C", str(repo), "rev-parse", "--is-bare-repository"], capture_output=True,
                          text=True).stdout.strip() == "true"
    marker = repo / "reused"
    marker.write_text("")
    b.commit("two", {"top.py": "y = 2\n"})
    again, _ = validate(PipelineConfig(repo=url))
    assert again == repo and marker.exists()  # the same clone, fetched
    head = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%s", "main"], capture_output=True,
                          text=True).stdout.strip()
    assert head == "two"


def test_a_plain_file_is_a_file_not_a_repository(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match=r"^--repo .*notes.txt: is a file, not a repository$"):
        open_repository(str(tmp_path / "notes.txt"))


def test_a_missing_path_and_a_plain_directory(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        open_repository(str(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="not a git repository"):
        open_repository(str(tmp_path / "plain"))


def test_a_url_that_cannot_be_cloned_is_one_line(tmp_path):
    with pytest.raises(UserError, match="git clone failed"):
        open_repository((tmp_path / "nothing-here").as_uri(), cache=tmp_path / "cache")
