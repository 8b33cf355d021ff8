"""Odd histories, paths, settings and output directories: each built here with real git, checked against git.

Every case ends with correct outputs or with exit code 2 and one line; none with a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

import comprehensive_pipeline
import semantic_chunker
from chunking.snapshots import MISSING, TreeReader
from conftest import RepoBuilder
from pipeline.config import PipelineConfig, validate
from core.io import UserError, iter_jsonl
from pipeline.state import OutputLock
from core.git_runner import resolve_repo
from scrapers.git_scraper_rich import ScrapeConfig, iter_commits, scrape
from core.tokenizer import load_tokenizer

SMALL = ["--model", "no-such-org/no-such-tokenizer", "--fallback-vocab-size", "400", "--max-chunk-tokens", "96",
         "--min-chunk-tokens", "8", "--sequence-length", "64", "--overlap", "16", "--context-window", "48",
         "--target-window", "16", "--no-progress"]
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 12345\n"


def git(repo: Path, *args: str, input: bytes | None = None, env: dict | None = None) -> str:
    """Plain git as a user would run it (the oracle), without the project's runner."""
    return subprocess.run(["git", "-C", str(repo), *args], input=input, capture_output=True, check=True,
                          env={**os.environ, **(env or {})}).stdout.decode("utf-8", "surrogateescape")


def raw_commit(repo: Path, tree: str, parent: str, author: str, committer: str, message: str) -> str:
    """A commit object written as given (git accepts dates that `git commit` would never write)."""
    body = f"tree {tree}\nparent {parent}\nauthor {author}\ncommitter {committer}\n\n{message}\n"
    return git(repo, "hash-object", "-t", "commit", "-w", "--stdin", "--literally", input=body.encode()).strip()


def chunk(repo: Path, history: Path, out: Path, tok_dir: Path, snapshot_at: str = "head") -> dict:
    cfg = semantic_chunker.ChunkConfig(repo=str(repo), commits=str(history), output=str(out / "chunks.jsonl"),
                                       max_chunk_tokens=96, min_chunk_tokens=8, snapshot_at=snapshot_at,
                                       split_ratios=(1.0, 0.0, 0.0), progress=False)
    return semantic_chunker.run(cfg, tokenizer=load_tokenizer(str(tok_dir)), identity={"sha256": "t"})


def run_pipeline_cli(capsys, *args: str) -> tuple[int, str]:
    code = comprehensive_pipeline.main([*args])
    return code, capsys.readouterr().err


# --- dates -------------------------------------------------------------------------------------

def test_odd_dates_keep_the_raw_offset_and_never_fail(tmp_path):
    b = RepoBuilder(tmp_path / "dates")
    base = b.commit("start", {"a.py": "x = 1\n"})
    tree = git(b.path, "rev-parse", "HEAD^{tree}").strip()
    odd = raw_commit(b.path, tree, base, "A <a@x> 1315449530 +51800", "C <c@x> 1315449530 +51800", "odd zone")
    old = raw_commit(b.path, tree, odd, "A <a@x> -100000000 -0500", "C <c@x> -100000000 -0500", "1966")
    none = raw_commit(b.path, tree, old, "A <a@x> 1315449530 +0100", "C <c@x>", "no committer date")
    git(b.path, "update-ref", "refs/heads/main", none)
    out = tmp_path / "out" / "h.jsonl"
    stats = scrape(ScrapeConfig(repo=str(b.path), output=str(out), progress=False))
    records = {r["hash"]: r for r in iter_jsonl(out)}
    for h, r in records.items():  # the raw dates are git's own header lines
        header = dict(line.split(" ", 1) for line in git(b.path, "cat-file", "commit", h).split("\n\n")[0].split("\n"))
        assert r["author_date_raw"] == header["author"].rpartition(">")[2].strip()
        assert r["committer_date_raw"] == header["committer"].rpartition(">")[2].strip()
    assert records[odd]["timestamp"] == 1315449530
    assert records[odd]["committed_at"] == "2011-09-08T02:38:50+00:00"  # a malformed offset: UTC, said so
    assert any("+51800" in p for p in records[odd]["date_problems"])
    assert records[old]["timestamp"] == -100000000
    assert records[old]["committed_at"] == "1966-10-31T09:13:20-05:00" and records[old]["date_problems"] == []
    assert records[none]["timestamp"] == 1315449530 and records[none]["date_problems"] == ["committer date missing"]
    assert records[none]["authored_at"] == git(b.path, "log", "-1", "--format=%aI", none).strip()
    assert records[base]["committed_at"] == git(b.path, "log", "-1", "--format=%cI", base).strip()
    assert stats["counts"]["malformed_dates"] == 2


# --- files at the snapshot cut-off, and the same files in diffs ---------------------------------

def test_file_level_problems_cost_the_file_not_the_stage(tmp_path, trained_tokenizer_dir):
    b = RepoBuilder(tmp_path / "files")
    b.commit("code", {"src/ok.py": "def f():\n    return 1\n", "src/gone.py": "def gone():\n    return 2\n"})
    b.commit("odd files", {"caf\udce9.py": b"def cafe():\n    return 3\n", "big.bin": LFS_POINTER.format("a" * 64),
                           "notes.txt": "caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("latin-1"),
                           "win.py": b"def win():\r\n    return 4\r\n"})
    gone = git(b.path, "rev-parse", "HEAD:src/gone.py").strip()
    (b.path / ".git" / "objects" / gone[:2] / gone[2:]).unlink()  # a damaged clone: one blob lost
    history = tmp_path / "out" / "h.jsonl"
    s1 = scrape(ScrapeConfig(repo=str(b.path), output=str(history), progress=False, function_complexity=False))
    assert s1["counts"]["not_utf8_diffs"] == 1 and s1["counts"]["missing_objects"] == 1
    stats = chunk(b.path, history, tmp_path / "out", trained_tokenizer_dir)
    assert stats["fallback_commits"] == 0
    listed = git(b.path, "ls-tree", "-r", "-z", "--name-only", "HEAD").strip("\0").split("\0")
    assert len(listed) == 6
    assert stats["snapshot_filtered"] == {"lfs_pointer": 1, "missing_object": 1, "non_utf8_path": 1, "not_utf8": 1}
    assert stats["snapshot_files"] == 2  # src/ok.py and win.py
    assert stats["diff_filtered"]["lfs_pointer"] == 1 and stats["diff_filtered"]["not_utf8"] == 1
    chunks = list(iter_jsonl(tmp_path / "out" / "chunks.jsonl"))
    texts = "".join(c["text"] for c in chunks)
    assert "\r" not in texts  # one CRLF rule for diffs and snapshots: LF
    assert "def win():\n    return 4" in "".join(c["text"] for c in chunks if c["kind"] == "snapshot")
    assert "def win():\n+    return 4" in "".join(c["text"] for c in chunks if c["kind"] == "diff")
    assert "git-lfs" not in texts


# --- --repo and --output-dir -------------------------------------------------------------------

def test_repo_subdirectory_or_dot_git_means_the_repository(tmp_path, monkeypatch):
    b = RepoBuilder(tmp_path / "proj")
    b.commit("one", {"src/pkg/m0.py": "x = 0\n", "top.py": "y = 1\n"})
    top = Path(git(b.path, "rev-parse", "--show-toplevel").strip())
    assert resolve_repo(b.path / "src" / "pkg") == top
    assert resolve_repo(b.path / ".git") == top
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(b.path), str(bare)], check=True)
    assert resolve_repo(bare) == bare.resolve()
    monkeypatch.chdir(tmp_path)
    repo, out = validate(PipelineConfig(repo=str(b.path / ".git")))
    assert (repo, out) == (top, Path("data") / "proj")
    with TreeReader(b.path / "src" / "pkg") as tree:  # snapshot paths match the diffs' paths
        assert [p for p, _, _ in tree.files("HEAD")] == ["src/pkg/m0.py", "top.py"]
    assert [f["path"] for r in iter_commits(ScrapeConfig(repo=str(b.path / "src"), progress=False))
            for f in r["files"]] == ["src/pkg/m0.py", "top.py"]


def _file(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("x")
    return tmp_path / "afile"


@pytest.mark.parametrize("make_out, message", [
    (_file, "exists and is not a directory"),
    (lambda tmp_path: Path("/proc/no-such-dir/out"), "cannot write there"),
])
def test_bad_output_dir_is_one_line(tmp_path, capsys, sample_repo, make_out, message):
    code, err = run_pipeline_cli(capsys, "--repo", str(sample_repo.path), "--output-dir", str(make_out(tmp_path)),
                                 *SMALL)
    assert code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_output_dir_is_one_line(tmp_path, capsys, sample_repo):
    out = tmp_path / "ro"
    out.mkdir(mode=0o500)
    code, err = run_pipeline_cli(capsys, "--repo", str(sample_repo.path), "--output-dir", str(out), *SMALL)
    assert code == 2 and err.count("\n") == 1 and "cannot write there" in err, err


def test_disk_full_is_one_line(tmp_path, capsys, sample_repo, monkeypatch):
    def full(fd):  # what fsync says on a full disk; the rest is real
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    code, err = run_pipeline_cli(capsys, "--repo", str(sample_repo.path), "--output-dir", str(tmp_path / "o"), *SMALL)
    assert code == 2 and err.count("\n") == 1 and "disk is full" in err, err


def test_stage2_kill_leftovers_are_removed_on_rerun(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    left = [out / ".chunks_semantic.tokens.npy.tmp-4242", out / ".git_history_rich.jsonl.tmp-4242"]
    for p in left:
        p.write_bytes(b"\0" * 16)
    with OutputLock(out):
        assert not any(p.exists() for p in left)


# --- settings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, yaml_bytes, message", [
    (["--val-ratio", "nan"], None, "--val-ratio must be a finite number"),
    (["--train-ratio", "inf"], None, "--train-ratio must be a finite number"),
    (["--train-ratio", "0.8", "--val-ratio", "0.1", "--test-ratio", "0.05"], None, "must sum to 1"),
    ([], b"seed: forty-two\n", "seed must be an integer"),
    ([], b"max_commits: 1.5\n", "max_commits must be an integer or null"),
    ([], b"revs: main\n", "revs must be a list of strings"),
    ([], b"redact: 1\n", "redact must be true/false"),
    ([], b"1: 2\n", "key 1 is not a setting name"),
    ([], b"model: caf\xe9\n", "not UTF-8"),
    (["--fallback-sample-mb", "0"], None, "--fallback-sample-mb must be a positive number"),
    (["--fallback-vocab-size", "-5"], None, "--fallback-vocab-size must be at least 258"),
    (["--fallback-vocab-size", "0"], None, "--fallback-vocab-size must be at least 258"),
    (["--min-chunk-tokens", "64", "--max-chunk-tokens", "64"], None, "--min-chunk-tokens must be at least 0 and below"),
    (["--snapshot-at", "head"], None, "no commit yet"),
    (["--scrape-jobs", "-1"], None, "--scrape-jobs must be at least 0, got -1"),
], ids=["nan", "inf", "sum", "yaml-str-for-int", "yaml-float-for-int", "yaml-str-for-list", "yaml-int-for-bool",
        "yaml-int-key", "yaml-not-utf8", "sample-mb-0", "vocab-negative", "vocab-0", "min-eq-max", "unborn-head",
        "scrape-jobs-negative"])
def test_each_settings_error_is_one_line_before_stage_1(tmp_path, capsys, monkeypatch, args, yaml_bytes, message):
    b = RepoBuilder(tmp_path / "r")
    b.commit("one", {"a.py": "x = 1\n"})
    git(b.path, "symbolic-ref", "HEAD", "refs/heads/unborn")  # only --snapshot-at head minds
    monkeypatch.chdir(tmp_path)
    config = []
    if yaml_bytes is not None:
        (tmp_path / "c.yaml").write_bytes(yaml_bytes)
        config = ["--config", str(tmp_path / "c.yaml")]
    code, err = run_pipeline_cli(capsys, "--repo", str(b.path), *config, *args, "--no-progress")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "data").exists()  # nothing ran


# --- git configuration ------------------------------------------------------------------------

HOSTILE = {"diff.context": "0", "diff.suppressBlankEmpty": "true", "core.abbrev": "12",
           "i18n.logOutputEncoding": "latin1", "diff.ignoreSubmodules": "all", "diff.algorithm": "histogram",
           "diff.renames": "false", "diff.noprefix": "true", "core.quotePath": "true", "diff.interHunkContext": "9"}


def _config_zoo(path: Path) -> RepoBuilder:
    b = RepoBuilder(path)
    body = "".join(f"def f{i}():\n\n    return {i}\n\n\n" for i in range(12))
    b.commit("Résumé: first", {"src/mod.py": body, "docs/naïve.md": "a\n\nb\n"})
    sub = b.commit("second", {"src/mod.py": body.replace("return 3", "return 33").replace("return 9", "return 99")})
    b.git("mv", "docs/naïve.md", "docs/plain.md")
    moved = b.commit("rename")
    for target in (sub, moved):  # a submodule link (gitlink) added, then moved on: two changes
        b.git("update-index", "--add", "--cacheinfo", f"160000,{target},vendor/lib")
        b.git("commit", "-q", "-m", f"submodule at {target[:7]}")
    return b


def test_user_and_repository_git_config_change_nothing(tmp_path, monkeypatch, trained_tokenizer_dir):
    b = _config_zoo(tmp_path / "zoo")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)

    def stages(name: str) -> tuple[bytes, bytes]:
        out = tmp_path / name
        history = out / "h.jsonl"
        scrape(ScrapeConfig(repo=str(b.path), output=str(history), progress=False))
        chunk(b.path, history, out, trained_tokenizer_dir)
        return history.read_bytes(), (out / "chunks.jsonl").read_bytes()

    clean = stages("clean")
    plain = git(b.path, "log", "-p", "--format=%s")
    for key, value in HOSTILE.items():
        git(home, "config", "--file", str(home / ".gitconfig"), key, value)
        git(b.path, "config", key, value)
    assert git(b.path, "log", "-p", "--format=%s") != plain  # plain git does print something else now
    assert stages("hostile") == clean
    records = [json.loads(line) for line in clean[0].decode().splitlines()]
    assert records[0]["subject"] == "Résumé: first"
    assert sum(f["path"] == "vendor/lib" for r in records for f in r["files"]) == 2


# --- refs ---------------------------------------------------------------------------------------

def test_tag_of_a_tag_is_in_the_commits_tags(tmp_path):
    b = RepoBuilder(tmp_path / "tags")
    first = b.commit("one", {"a.py": "x = 1\n"})
    b.git("tag", "-a", "inner", "-m", "inner")
    b.git("tag", "-a", "outer", "inner", "-m", "a tag of a tag")
    b.commit("two", {"a.py": "x = 2\n"})
    record = next(iter_commits(ScrapeConfig(repo=str(b.path), progress=False)))
    assert record["hash"] == first
    assert record["tags"] == sorted(t for t in git(b.path, "tag").split()
                                    if git(b.path, "rev-parse", f"{t}^{{commit}}").strip() == first)
    assert record["tags"] == ["inner", "outer"]


# --- partial clones ---------------------------------------------------------------------------

def test_partial_clone_with_an_unreachable_promisor_is_scraped(tmp_path):
    b = RepoBuilder(tmp_path / "origin")
    b.commit("small", {"s.py": "x = 1\n", "big.txt": "y" * 5000 + "\n"})
    b.commit("more", {"s.py": "x = 2\n", "big.txt": "z" * 5000 + "\n"})
    b.git("config", "uploadpack.allowFilter", "true")
    clone = tmp_path / "partial"
    subprocess.run(["git", "clone", "-q", "--no-checkout", "--filter=blob:limit=1000", f"file://{b.path}", str(clone)],
                   check=True)
    b.path.rename(tmp_path / "gone")  # the promisor remote is unreachable now
    lacking = {line[1:] for line in git(clone, "rev-list", "--objects", "--missing=print", "--all").split()
               if line.startswith("?")}
    assert len(lacking) == 2
    records = list(iter_commits(ScrapeConfig(repo=str(clone), progress=False)))
    assert len(records) == 2
    missing = {f["new_blob"] for r in records for f in r["files"] if f["missing_object"]}
    assert missing == lacking
    assert all(f["diff"] for r in records for f in r["files"] if f["path"] == "s.py")
    with TreeReader(clone) as tree:
        assert [(p, s) for p, s, _ in tree.files("HEAD")] == [("big.txt", MISSING), ("s.py", 6)]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a repository someone else's needs root")
def test_users_safe_directory_is_kept(tmp_path, monkeypatch):
    """`~/.gitconfig` is ignored, except `safe.directory`: a repository owned by another user stays readable."""
    from core import git_runner

    b = RepoBuilder(tmp_path / "theirs")
    b.commit("one", {"a.py": "x = 1\n"})
    subprocess.run(["chown", "-R", "12345:12345", str(b.path)], check=True)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    git_runner._trusted_directories.cache_clear()
    with pytest.raises(UserError, match="dubious ownership"):
        list(iter_commits(ScrapeConfig(repo=str(b.path), progress=False)))
    git(home, "config", "--global", "--add", "safe.directory", str(b.path))
    git_runner._trusted_directories.cache_clear()
    assert len(list(iter_commits(ScrapeConfig(repo=str(b.path), progress=False)))) == 1
    git_runner._trusted_directories.cache_clear()
