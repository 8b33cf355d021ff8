"""Stage 1 on real public histories (the bundles in ../shared/repos), checked against `git log --numstat`.

The three smaller bundles (log: Rust, cobra: Go, cJSON: C) run here, a few seconds each; all five
run in `bench/bench_real_repos.py`.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from scrapers.git_scraper_rich import ScrapeConfig, iter_commits

BUNDLES = Path(__file__).resolve().parents[1].parent / "shared" / "repos"
REVS = ["--branches", "--remotes", "--tags", "HEAD"]
ORACLE_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


def numstat(repo: Path) -> dict[str, Counter]:
    """Per non-merge commit, the multiset of `(path, added, deleted)` git's own numstat prints."""
    out = subprocess.run(["git", "-C", str(repo), "log", "--no-merges", "--numstat", "-z", "-M", "--format=%x01%H",
                          *REVS, "--"], capture_output=True, check=True, env=ORACLE_ENV).stdout
    result: dict[str, Counter] = {}
    for block in out.split(b"\x01")[1:]:
        head, rest = block[:40], block[40:]
        files: Counter = Counter()
        tokens = rest.split(b"\0")
        i = 0
        while i < len(tokens):
            tok = tokens[i].lstrip(b"\n")
            if tok.count(b"\t") < 2:
                i += 1
                continue
            added, deleted, path = tok.split(b"\t", 2)
            if not path:  # a rename: old and new path follow
                path = tokens[i + 2]
                i += 2
            counts = (0, 0) if added == b"-" else (int(added), int(deleted))
            files[(path.decode("utf-8", "backslashreplace"), *counts)] += 1
            i += 1
        result[head.decode()] = files
    return result


@pytest.mark.parametrize("name", ["log", "cobra", "cJSON"])
def test_stage1_matches_git_numstat_on_every_non_merge_commit(tmp_path, name):
    bundle = BUNDLES / f"{name}.bundle"
    if not bundle.is_file():
        pytest.skip(f"{bundle} is absent (the shared real-repository bundles are not beside this clone)")
    repo = tmp_path / name
    subprocess.run(["git", "clone", "-q", str(bundle), str(repo)], check=True, env=ORACLE_ENV)
    expected = numstat(repo)
    seen = {}
    for record in iter_commits(ScrapeConfig(repo=str(repo), redact=False, function_complexity=False, progress=False)):
        if not record["is_merge"]:
            seen[record["hash"]] = Counter((f["path"], f["additions"], f["deletions"]) for f in record["files"])
    assert len(seen) > 500
    assert seen.keys() == expected.keys()
    wrong = [h for h in expected if seen[h] != expected[h]]
    assert wrong == [], f"{len(wrong)} commits differ from git's numstat, first {wrong[:3]}"
