"""Stage 1 on real repositories: exact values against what git itself prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RepoBuilder, build_sample_repo
from core.io import iter_commit_records
from scrapers.git_scraper_rich import ScrapeConfig, iter_commits, main, scrape


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout.decode()


def run_scrape(repo: Path, out: Path, **kw) -> tuple[dict, list[dict]]:
    config = ScrapeConfig(repo=str(repo), output=str(out / "h.jsonl"), output_json=str(out / "h.json"),
                          progress=False, **kw)
    stats = scrape(config)
    return stats, [json.loads(line) for line in (out / "h.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    base = tmp_path_factory.mktemp("scrape")
    b = build_sample_repo(base / "repo")
    stats, records = run_scrape(b.path, base / "out")
    return b, stats, records, base / "out"


def by_subject(records: list[dict], subject: str) -> dict:
    return next(r for r in records if r["subject"] == subject)


def test_every_commit_once_oldest_first(sample):
    b, stats, records, _ = sample
    expected = git(b.path, "rev-list", "--date-order", "--reverse", "--branches", "--tags", "HEAD").split()
    assert [r["hash"] for r in records] == expected
    assert [r["order"] for r in records] == list(range(len(expected)))
    assert stats["counts"]["commits"] == len(expected) == 10
    seen = set()
    for r in records:  # parents always come first
        assert all(p in seen for p in r["parents"])
        seen.add(r["hash"])


def test_header_fields_match_git(sample):
    b, _, records, _ = sample
    for r in records:
        fmt = "%H%n%P%n%an%n%ae%n%aI%n%cn%n%ce%n%cI%n%ct%n%s"
        h, p, an, ae, ai, cn, ce, ci, ct, s = git(b.path, "show", "-s", f"--format={fmt}", r["hash"]).split("\n")[:10]
        assert (r["hash"], r["parents"], r["author"], r["committer"]) == (h, p.split(), {"name": an, "email": ae},
                                                                          {"name": cn, "email": ce})
        assert (r["authored_at"], r["committed_at"], r["timestamp"], r["subject"]) == (ai, ci, int(ct), s)
        assert r["message"] == git(b.path, "show", "-s", "--format=%B", r["hash"]).rstrip("\n")
        assert r["short_hash"] == r["hash"][:7]


def test_additions_and_deletions_equal_git_numstat(sample):
    b, _, records, _ = sample
    for r in records:
        # a merge: what it changed against git's own automatic merge
        tokens = git(b.path, "show", "--remerge-diff", "--numstat", "-z", "--format=", "-M",
                     r["hash"]).strip("\n\0").split("\0")
        expected = {}
        while tokens and tokens[0]:
            a, d, path = tokens.pop(0).split("\t")
            if not path:  # a rename: old and new path follow
                path = tokens[1]
                del tokens[:2]
            expected[path] = (0 if a == "-" else int(a), 0 if d == "-" else int(d))
        assert {f["path"]: (f["additions"], f["deletions"]) for f in r["files"]} == expected, r["subject"]


def test_root_commit_is_diffed_against_the_empty_tree(sample):
    _, _, records, _ = sample
    root = records[0]
    assert root["parents"] == [] and root["subject"] == "Add geometry module"
    files = {f["path"]: f for f in root["files"]}
    assert set(files) == {"src/geometry.py", "README.md"}
    geo = files["src/geometry.py"]
    assert geo["change_type"] == "added" and geo["language"] == "python" and geo["old_blob"] is None
    assert "new file mode 100644" in geo["diff"] and "+def area(width, height):" in geo["diff"]


def test_conflicted_merge_has_base_both_sides_and_remerge_diff(sample):
    b, _, records, _ = sample
    merge = by_subject(records, "Merge feature, counter starts at five")
    assert merge["is_merge"] and len(merge["parents"]) == 2
    m = merge["merge"]
    assert m["parents"] == merge["parents"]
    assert m["merge_base"] == git(b.path, "merge-base", *merge["parents"]).strip()
    assert m["both_sides_changed"] == ["rust/src/lib.rs"]
    assert m["resolved_files"] == ["rust/src/lib.rs"]
    expected = git(b.path, "show", "--remerge-diff", "--format=", merge["hash"])
    assert "".join(f["diff"] for f in merge["files"]) == expected
    assert "-<<<<<<< " in expected and "+        Counter { count: 5 }" in expected
    assert by_subject(records, "Add geometry module")["merge"] is None


def test_rename_binary_and_non_utf8_content(sample):
    _, stats, records, _ = sample
    ren = {f["path"]: f for f in by_subject(records, "Rename geometry to shapes and add square")["files"]}
    assert ren["src/shapes.py"]["change_type"] == "renamed"
    assert ren["src/shapes.py"]["old_path"] == "src/geometry.py"
    assert ren["src/shapes.py"]["additions"] == 4
    files = {f["path"]: f for f in by_subject(records, "Add logo and latin-1 notes")["files"]}
    logo = files["assets/logo.png"]
    assert logo["is_binary"] and (logo["additions"], logo["deletions"]) == (0, 0)
    assert "Binary files /dev/null and b/assets/logo.png differ" in logo["diff"]
    assert "+caf\ufffd cr\ufffdme" in files["docs/notes.txt"]["diff"]
    assert stats["counts"]["binary"] == 1
    assert by_subject(records, "Empty commit for the record")["files"] == []


def test_branches_and_tags(sample):
    b, stats, records, _ = sample
    assert by_subject(records, "Add Rust counter")["tags"] == ["v0.1"]
    assert by_subject(records, "Rename geometry to shapes and add square")["tags"] == ["v0.2"]  # annotated, peeled
    assert by_subject(records, "Feature: add reset")["branches"] == ["feature", "main"]
    assert by_subject(records, "Counter starts at ten")["branches"] == ["main"]
    agg = stats["aggregates"]
    assert agg["branches"] == {"feature": git(b.path, "rev-parse", "feature").strip(),
                               "main": git(b.path, "rev-parse", "main").strip()}
    assert agg["tags"]["v0.2"] == git(b.path, "rev-parse", "v0.2^{commit}").strip()


def test_aggregates_and_json_output(sample):
    _, stats, records, out = sample
    agg = stats["aggregates"]
    lib = agg["files"]["rust/src/lib.rs"]
    assert lib["changes"] == 5
    assert lib["top_owner"] == "Bob Builder <bob@example.com>"
    assert 0.5 < lib["top_owner_share"] <= 1
    assert "src/geometry.py" not in agg["files"]  # its history moved to the new name
    assert agg["files"]["src/shapes.py"]["changes"] == 3
    bob = agg["authors"]["Bob Builder <bob@example.com>"]
    assert (bob["commits"], bob["first_at"]) == (3, "2024-01-02T12:00:00+02:00")
    assert agg["collaboration"] == [{"authors": ["Alice Example <alice@example.com>",
                                                 "Bob Builder <bob@example.com>"], "shared_files": 1}]
    assert list(iter_commit_records(out / "h.json")) == records
    assert json.loads((out / "h.json").read_text())["repository"] == agg
    assert json.loads((out / "git_history_stats.json").read_text()) == stats


def test_collaboration_lists_the_most_shared_pairs_whatever_the_authors(tmp_path):
    """Every pair of a busy file's authors shares it: listed in full, the pairs grow with the square of
    the authors (click: 486 pairs at a quarter of its history, 30,959 at the end). 50 authors on one
    file and 4 of them on a second: 1,225 pairs, the 1,000 most shared listed, the 6 on both first."""
    from scrapers.aggregates import COLLABORATION_PAIRS

    b = RepoBuilder(tmp_path / "repo")
    people = [(f"Dev {i:02d}", f"dev{i:02d}@example.com") for i in range(50)]
    for i, who in enumerate(people):
        b.commit(f"Change {i}", {"hot.py": f"X = {i}\n"}, author=who)
    for i, who in enumerate(people[:4]):
        b.commit(f"Tool {i}", {"tool.py": f"Y = {i}\n"}, author=who)
    stats = scrape(ScrapeConfig(repo=str(b.path), output=str(tmp_path / "h.jsonl"), function_complexity=False,
                                progress=False))
    agg = stats["aggregates"]
    assert COLLABORATION_PAIRS == 1000 and agg["collaboration_pairs"] == 50 * 49 // 2
    pairs = agg["collaboration"]
    assert len(pairs) == COLLABORATION_PAIRS
    names = [f"{n} <{e}>" for n, e in people]
    assert pairs[:7] == [{"authors": [names[i], names[j]], "shared_files": 2} for i, j in
                         ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))] + [
        {"authors": [names[0], names[4]], "shared_files": 1}]
    assert pairs[-1] == {"authors": [names[28], names[34]], "shared_files": 1}


def test_complexity_score_and_changed_functions(sample):
    _, _, records, _ = sample
    c = by_subject(records, "Validate area input")["complexity"]
    assert (c["lines_added"], c["lines_deleted"], c["files"], c["entropy"]) == (2, 0, 1, 0.0)
    assert c["score"] == 1.585  # log2(1 + 2) * (1 + 0)
    assert [(f["name"], f["cyclomatic_complexity"]) for f in c["functions"]] == [("area", 3)]
    fns = by_subject(records, "Rename geometry to shapes and add square")["complexity"]["functions"]
    assert [(f["name"], f["cyclomatic_complexity"]) for f in fns] == [("square", 1)]


def test_iter_commits_matches_the_file(sample):
    b, _, records, _ = sample
    assert list(iter_commits(ScrapeConfig(repo=str(b.path), progress=False))) == records


def test_reruns_are_byte_identical(sample, tmp_path):
    b, _, _, out = sample
    run_scrape(b.path, tmp_path)
    for name in ("h.jsonl", "h.json", "git_history_stats.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_truncation_keeps_exact_counts(sample, tmp_path):
    b, stats, _, _ = sample
    stats, records = run_scrape(b.path, tmp_path, max_diff_bytes=120)
    lib = next(f for f in records[1]["files"] if f["path"] == "rust/src/lib.rs")
    assert lib["truncated"] and len(lib["diff"].encode()) <= 120 and lib["diff"].endswith("\n")
    assert (lib["additions"], lib["deletions"]) == (18, 0)
    assert stats["counts"]["truncated"] == sum(f["truncated"] for r in records for f in r["files"]) > 0


def test_narrowing_flags(sample, tmp_path):
    b, _, _, _ = sample
    _, records = run_scrape(b.path, tmp_path, revs=["v0.1..feature"])
    assert [r["subject"] for r in records] == ["Validate area input", "Add logo and latin-1 notes",
                                               "Feature: counter starts at one", "Feature: add reset"]
    _, records = run_scrape(b.path, tmp_path, max_commits=2)
    assert [r["subject"] for r in records] == ["Add geometry module", "Add Rust counter"]
    _, records = run_scrape(b.path, tmp_path, since="2024-01-08T00:00:00+02:00")
    assert records[0]["subject"] == "Merge feature, counter starts at five"


SECRET = "ghp_" + "Zx9Yw8Vu7T" * 4


def test_secrets_are_redacted_by_default(tmp_path):
    b = RepoBuilder(tmp_path / "repo")
    b.commit(f"Add config with {SECRET}", {"settings.py": f'DB_PASSWORD = "hunter2-db"\nTOKEN = "{SECRET}"\n'})
    stats, records = run_scrape(b.path, tmp_path / "out")
    text = (tmp_path / "out" / "h.jsonl").read_text()
    assert SECRET not in text and "hunter2-db" not in text
    assert records[0]["subject"] == "Add config with <SECRET_GITHUB_TOKEN>"
    assert stats["secrets_redacted"] == {"GITHUB_TOKEN": 2, "PASSWORD": 1}
    _, records = run_scrape(b.path, tmp_path / "raw", redact=False)
    assert SECRET in records[0]["files"][0]["diff"]


def test_secrets_in_paths_ref_names_and_author_fields_are_redacted(tmp_path):
    b = RepoBuilder(tmp_path / "repo")
    b.commit("Add deploy key", {f"keys/{SECRET}.txt": "deploy key\n", "app.py": "def f():\n    return 1\n"},
             author=("Bot " + SECRET, "bot@example.com"))
    b.git("mv", f"keys/{SECRET}.txt", f"keys/old-{SECRET}.txt")
    b.commit("Rename it")
    b.git("tag", f"release-{SECRET}")
    b.git("branch", f"feature/{SECRET}")
    stats, records = run_scrape(b.path, tmp_path / "out")
    for f in (tmp_path / "out").iterdir():
        assert SECRET not in f.read_text(encoding="utf-8"), f.name
    assert "keys/<SECRET_GITHUB_TOKEN>.txt" in [f["path"] for f in records[0]["files"]]
    assert records[1]["files"][0]["old_path"] == "keys/<SECRET_GITHUB_TOKEN>.txt"
    assert records[1]["tags"] == ["release-<SECRET_GITHUB_TOKEN>"]
    assert "feature/<SECRET_GITHUB_TOKEN>" in records[1]["branches"]
    assert records[0]["author"]["name"] == "Bot <SECRET_GITHUB_TOKEN>"
    # paths: the added file, the renamed file's new and old path; diffs: the path in `diff --git a/ b/`
    # and `+++ b/` (3), then in `diff --git`, `rename from`, `rename to` (4); authors: author and committer
    assert stats["secrets_redacted_fields"] == {"authors": 2, "diffs": 7, "paths": 3, "refs": 2}
    assert stats["secrets_redacted"] == {"GITHUB_TOKEN": 14}
    assert "feature/<SECRET_GITHUB_TOKEN>" in stats["aggregates"]["branches"]


def test_damaged_clone_with_a_missing_blob(tmp_path):
    b = build_sample_repo(tmp_path / "repo")
    blob = git(b.path, "rev-parse", "HEAD~2:src/geometry.py").strip()  # PY_V2, read by two commits
    (b.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    broken = subprocess.run(["git", "-C", str(b.path), "log", "-p", "--all"], capture_output=True)
    assert broken.returncode != 0 and b"unable to read" in broken.stderr  # git itself gives up
    stats, records = run_scrape(b.path, tmp_path / "out")
    assert len(records) == 10
    assert stats["counts"]["missing_objects"] == 2
    flagged = [(r["subject"], f["path"], f["change_type"]) for r in records for f in r["files"] if f["missing_object"]]
    assert flagged == [("Validate area input", "src/geometry.py", "modified"),
                       ("Rename geometry to shapes and add square", "src/geometry.py", "deleted")]
    ren = {f["path"]: f for f in by_subject(records, "Rename geometry to shapes and add square")["files"]}
    assert ren["src/shapes.py"]["change_type"] == "added" and "+def square(side):" in ren["src/shapes.py"]["diff"]
    assert by_subject(records, "Merge feature, counter starts at five")["files"][0]["diff"].count("\n-<<<<<<< ") == 1


def test_odd_histories(tmp_path):
    """CRLF, symlink, submodule, octopus merge, non-UTF-8 file name, detached HEAD, shallow, bare."""
    sub = RepoBuilder(tmp_path / "sub")
    sub.commit("sub", {"x.txt": "x\n"})
    b = RepoBuilder(tmp_path / "repo")
    b.commit("crlf", {"win.txt": "a\r\nb\r\n"})
    (b.path / "link").symlink_to("win.txt")
    b.write("caf\xe9.txt".encode("latin-1").decode("utf-8", "surrogateescape"), "latin-1 name\n")
    b.git("clone", "-q", str(sub.path), "vendor/sub")  # committed as a gitlink (a submodule entry)
    b.commit("symlink, submodule and a latin-1 name")
    for name in ("a", "c"):
        b.git("checkout", "-q", "-b", name, "main")
        b.commit(f"on {name}", {f"{name}.txt": f"{name}\n"})
    b.git("checkout", "-q", "main")
    b.git("merge", "-q", "--no-ff", "a", "c", "-m", "octopus")
    b.git("checkout", "-q", "--detach")
    detached = b.commit("detached only", {"d.txt": "d\n"})
    stats, records = run_scrape(b.path, tmp_path / "out")
    assert stats["detached_head"] and records[-1]["hash"] == detached and records[-1]["branches"] == []
    files = {f["path"]: f for f in records[1]["files"]}
    assert files["link"]["new_mode"] == "120000" and files["vendor/sub"]["new_mode"] == "160000"
    assert "caf\\xe9.txt" in files
    assert "+a\r\n" in records[0]["files"][0]["diff"]
    octopus = by_subject(records, "octopus")
    assert len(octopus["merge"]["parents"]) == 3 and octopus["merge"]["merge_base"] == records[1]["hash"]
    assert octopus["merge"]["both_sides_changed"] == [] and octopus["files"] == []

    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "2", "--no-single-branch", f"file://{b.path}", str(shallow)],
                   check=True)
    stats, records = run_scrape(shallow, tmp_path / "out_shallow")
    assert stats["shallow"] and stats["counts"]["commits"] == len(records) > 0
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(b.path), str(bare)], check=True)
    stats, _ = run_scrape(bare, tmp_path / "out_bare")
    assert stats["bare"] and stats["counts"]["commits"] == 6


@pytest.mark.parametrize("case", ["missing", "not_repo", "empty", "bad_rev", "bad_bound"])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys, sample):
    repo = tmp_path / "r"
    args = ["--repo", str(repo), "--output", str(tmp_path / "o.jsonl"), "--no-progress"]
    if case == "not_repo":
        repo.mkdir()
    elif case == "empty":
        RepoBuilder(repo)
    elif case == "bad_rev":
        args = ["--repo", str(sample[0].path), "--output", str(tmp_path / "o.jsonl"), "--rev", "no-such-branch"]
    elif case == "bad_bound":
        args = ["--repo", str(sample[0].path), "--max-diff-bytes", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "o.jsonl").exists()



def test_merges_read_in_runs_give_the_same_records(tmp_path, monkeypatch):
    """Remerge diffs from git runs of 32, 64, ... merges (oldest first) equal those of one run for all."""
    from scrapers import git_log_stream
    bundle = Path(__file__).resolve().parents[1].parent / "shared" / "repos" / "log.bundle"
    if not bundle.exists():
        pytest.skip(f"{bundle} not found (the shared bundles of the real repositories)")
    repo = tmp_path / "log"
    subprocess.run(["git", "clone", "-q", str(bundle), str(repo)], check=True)
    outputs = []
    for first_run in (10**9, 32):
        monkeypatch.setattr(git_log_stream._MergeSpools, "FIRST_RUN", first_run)
        _, records = run_scrape(repo, tmp_path / str(first_run), function_complexity=False)
        outputs.append((tmp_path / str(first_run) / "h.jsonl").read_bytes())
    merges = [r for r in records if r["is_merge"]]
    assert len(merges) > 32 * 3 and sum(bool(r["files"]) for r in merges) >= 1
    assert outputs[0] == outputs[1]


def test_function_workers_start_from_a_script_on_stdin(sample, tmp_path):
    """Workers that re-ran `__main__` (spawned) could not start from stdin; forked ones write the same bytes."""
    b, _, _, out = sample
    root = Path(__file__).resolve().parents[1]
    script = (f"import sys; sys.path.insert(0, {str(root)!r})\n"
              "from scrapers.git_scraper_rich import ScrapeConfig, scrape\n"
              f"scrape(ScrapeConfig(repo={str(b.path)!r}, output={str(tmp_path / 'h.jsonl')!r}, jobs=2, progress=False))\n")
    proc = subprocess.run([sys.executable, "-"], input=script.encode(), capture_output=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert (tmp_path / "h.jsonl").read_bytes() == (out / "h.jsonl").read_bytes()


_CPP_HEADER = """\
// counter.h: a header-only counter
//
// (a licence block: the edits below are far from line 1, so no diff
// shows the file's first lines)
//
//
//
#pragma once
#include <string>

namespace app {

template <typename T>
T clamp(T v, T lo, T hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

class Counter {
public:
    int bump(int by) {
        if (by > 0 && by < 10) {
            n_ += by;
        }
        return n_;
    }
private:
    int n_ = 0;
};

}  // namespace app
"""
_C_HEADER = "/* util.h */\n\n\n\n\n\n\n#pragma once\n\nstatic inline int add(int a, int b) {\n    return a + b;\n}\n"


@pytest.mark.parametrize("jobs", [0, 1])
def test_a_cpp_header_is_cpp_and_measured_with_the_cpp_grammar(tmp_path, jobs):
    """A `.h` that shows C++ is C++ in every record, as stage 2 decides it on the blob (not only where a diff
    shows line 1: a later edit, a rename without a changed line; a deleted file on its old content), and
    its functions are measured with the C++ grammar (a class's method, a template function); a script
    without extension is what its shebang says in every record."""
    b = RepoBuilder(tmp_path / "repo")
    b.commit("add headers", {"include/counter.h": _CPP_HEADER, "include/util.h": _C_HEADER,
                             "tools/gen": "#!/usr/bin/env python3\n" + "import sys\n" * 6})
    b.commit("wider bump", {"include/counter.h": _CPP_HEADER.replace("by < 10", "by < 100"),
                            "include/util.h": _C_HEADER.replace("a + b", "b + a")})
    b.commit("clamp and bump", {"include/counter.h": _CPP_HEADER.replace("by < 10", "by < 100 || by == -1")
                                .replace("v > hi ? hi : v", "hi < v ? hi : v")})
    b.git("mv", "include/counter.h", "include/app.h")  # a rename without a changed line: no diff shows its head
    b.git("rm", "-q", "tools/gen")
    b.commit("rename, and a script goes", {"tools/run": "#!/usr/bin/env python3\n" + "import os\n" * 6 + "print(1)\n"})
    b.commit("script", {"tools/run": "#!/usr/bin/env python3\n" + "import os\n" * 6 + "print(2)\n"})
    _, records = run_scrape(b.path, tmp_path / "out", jobs=jobs)
    languages = [(f["path"], f["language"]) for r in records for f in r["files"]]
    assert languages == [("include/counter.h", "cpp"), ("include/util.h", "c"), ("tools/gen", "python"),
                         ("include/counter.h", "cpp"), ("include/util.h", "c"), ("include/counter.h", "cpp"),
                         ("include/app.h", "cpp"), ("tools/gen", "python"), ("tools/run", "python"),
                         ("tools/run", "python")]
    functions = [[(f["name"], f["cyclomatic_complexity"]) for f in r["complexity"]["functions"]] for r in records]
    assert functions == [[("app::clamp", 3), ("app::Counter::bump", 3), ("add", 1)],
                         [("app::Counter::bump", 3), ("add", 1)],
                         [("app::clamp", 3), ("app::Counter::bump", 4)], [], []]
