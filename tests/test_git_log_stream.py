"""Merges as what the merge itself did (`--remerge-diff`), and merge bases from one walk, against git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import semantic_chunker as sc
from chunking.units import parse_hunks
from conftest import RepoBuilder
from scrapers.git_log_stream import COMBINED_DIFF, Git, list_commits, merge_details, parse_commit, stream_commits
from scrapers.git_scraper_rich import ScrapeConfig, scrape

BUNDLES = Path(__file__).resolve().parents[1].parent / "shared" / "repos"
LINES = "".join(f"line {i}\n" for i in range(1, 21))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout.decode()


@pytest.fixture(scope="module")
def merges(tmp_path_factory):
    """A conflicted merge resolved by hand, an evil merge, an octopus and a clean merge, scraped."""
    tmp = tmp_path_factory.mktemp("merges")
    b = RepoBuilder(tmp / "repo")
    b.commit("base", {"a.txt": LINES, "b.txt": "b\n"})
    b.git("checkout", "-q", "-b", "side")
    b.commit("side edits line 5", {"a.txt": LINES.replace("line 5\n", "line five (side)\n")})
    b.git("checkout", "-q", "main")
    b.commit("main edits line 5", {"a.txt": LINES.replace("line 5\n", "line 5 (main)\n")})
    assert subprocess.run(["git", "-C", str(b.path), "merge", "-q", "side"], capture_output=True).returncode != 0
    b.commit("conflicted merge", {"a.txt": LINES.replace("line 5\n", "line 5, both\n")})
    b.git("checkout", "-q", "-b", "evil", "main~1")
    b.commit("evil side", {"c.txt": "c\n"})
    b.git("checkout", "-q", "main")
    b.git("merge", "-q", "--no-ff", "--no-commit", "evil")
    b.commit("evil merge", {"b.txt": "b\nan edit no side made\n"})
    for name in ("x", "y"):
        b.git("checkout", "-q", "-b", name, "main")
        b.commit(f"on {name}", {f"{name}.txt": f"{name}\n"})
    b.git("checkout", "-q", "main")
    b.git("merge", "-q", "--no-ff", "x", "y", "-m", "octopus")
    b.git("checkout", "-q", "-b", "clean", "main")
    b.commit("clean side", {"a.txt": LINES.replace("line 15\n", "line 15, clean\n")})
    b.git("checkout", "-q", "main")
    b.commit("main moves on", {"b.txt": "b\nan edit no side made\nmore\n"})
    b.git("merge", "-q", "--no-ff", "clean", "-m", "clean merge")
    out = tmp / "out"
    scrape(ScrapeConfig(repo=str(b.path), output=str(out / "h.jsonl"), progress=False))
    records = {r["subject"]: r for r in map(json.loads, (out / "h.jsonl").read_text(encoding="utf-8").splitlines())}
    return b, records, out


def remerge_numstat(repo: Path, commit: str) -> dict[str, tuple[int, int]]:
    out = git(repo, "show", "--remerge-diff", "--numstat", "--format=", commit)
    return {p: (int(a), int(d)) for a, d, p in (ln.split("\t") for ln in out.splitlines() if "\t" in ln)}


@pytest.mark.parametrize("subject", ["conflicted merge", "evil merge", "octopus", "clean merge"])
def test_merge_is_what_git_show_remerge_diff_prints(merges, subject):
    b, records, _ = merges
    r = records[subject]
    parents = r["parents"]
    assert r["is_merge"] and r["merge"]["parents"] == parents
    shown = git(b.path, "show", "--remerge-diff", "--format=", r["hash"])
    if len(parents) > 2:  # git redoes no octopus: it says so (on stdout) and prints no diff
        assert shown == "diff: warning: Skipping remerge-diff for octopus merges.\n"
        shown = ""
    assert "".join(f["diff"] for f in r["files"]) == shown
    assert {f["path"]: (f["additions"], f["deletions"]) for f in r["files"]} == remerge_numstat(b.path, r["hash"])
    base_args = ["merge-base", "--octopus", *parents] if len(parents) > 2 else ["merge-base", *parents]
    assert r["merge"]["merge_base"] == git(b.path, *base_args).split()[0]
    changed = [set(git(b.path, "diff", "--name-only", r["merge"]["merge_base"], p).split()) for p in parents]
    assert r["merge"]["both_sides_changed"] == sorted(p for p in set.union(*changed)
                                                      if sum(p in c for c in changed) > 1)


def test_each_kind_of_merge(merges):
    _, records, _ = merges
    conflicted = records["conflicted merge"]
    assert conflicted["merge"]["resolved_files"] == ["a.txt"] and conflicted["merge"]["both_sides_changed"] == ["a.txt"]
    diff = conflicted["files"][0]["diff"]
    # git's own automatic merge (conflict markers on the `-` side) -> the hand resolution, nothing else
    assert "remerge CONFLICT (content): Merge conflict in a.txt" in diff
    assert "\n-<<<<<<< " in diff and "\n-line 5 (main)\n" in diff and "\n+line 5, both\n" in diff
    assert (conflicted["files"][0]["additions"], conflicted["files"][0]["deletions"]) == (1, 5)
    evil = records["evil merge"]
    assert [f["path"] for f in evil["files"]] == ["b.txt"] and evil["merge"]["resolved_files"] == []
    assert "+an edit no side made" in evil["files"][0]["diff"]
    for subject in ("octopus", "clean merge"):  # git redoes them to the same result: no change of their own
        assert records[subject]["files"] == [] and records[subject]["merge"]["resolved_files"] == []
    assert len(records["octopus"]["parents"]) == 3


def test_stage_two_chunks_a_remerge_diff_and_nothing_for_a_clean_merge(merges, tmp_path, trained_tokenizer_dir):
    _, records, out = merges
    hunks = parse_hunks(records["conflicted merge"]["files"][0]["diff"], None)
    assert len(hunks) == 1 and "-<<<<<<< " + records["conflicted merge"]["parents"][0][:7] in hunks[0].render()
    cfg = sc.ChunkConfig(output=str(tmp_path / "chunks.jsonl"), commits=str(out / "h.jsonl"), snapshot_at="none",
                         progress=False, tokenizer=str(trained_tokenizer_dir))
    sc.run(cfg)
    chunks = [json.loads(line) for line in open(cfg.output, encoding="utf-8")]
    by_commit = {}
    for c in chunks:
        by_commit.setdefault(c["commit"], []).append(c)
    assert records["clean merge"]["hash"] not in by_commit and records["octopus"]["hash"] not in by_commit
    assert any("+line 5, both" in c["text"] for c in by_commit[records["conflicted merge"]["hash"]])


def test_combined_diff_for_older_git(merges):
    b, records, _ = merges
    g = Git(b.path)
    hashes = list_commits(g, ["--all"])
    merge = records["conflicted merge"]["hash"]
    raw = dict((hashes[i], raw) for i, raw, _ in stream_commits(g, hashes, set(), COMBINED_DIFF))[merge]
    parsed = parse_commit(raw)
    assert parsed.combined
    expected = git(b.path, "diff-tree", "--cc", "-p", "--no-commit-id", merge).encode()
    assert b"".join(fc.patch for fc in parsed.files) == expected


def test_merge_bases_equal_git_merge_base_on_a_real_repository(tmp_path):
    bundle = BUNDLES / "cobra.bundle"
    if not bundle.exists():
        pytest.skip(f"{bundle} not found (the shared bundles of the real repositories)")
    repo = tmp_path / "cobra"
    subprocess.run(["git", "clone", "-q", "--mirror", str(bundle), str(repo)], check=True)
    g = Git(repo)
    hashes = list_commits(g, ["--all"])
    details = merge_details(g, hashes)
    assert len(details) > 50
    lines = git(repo, "rev-list", "--parents", "--merges", "--all").splitlines()
    for line in lines:
        merge, *parents = line.split()
        args = ["merge-base", "--octopus", *parents] if len(parents) > 2 else ["merge-base", *parents]
        assert details[merge].base == git(repo, *args).split()[0], merge
