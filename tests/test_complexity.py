"""Changed functions' cyclomatic complexity (tree-sitter) against lizard's CCN, on real code.

lizard is the oracle here only (the scraper no longer runs it). The real repositories come from
the bundles in `../shared/repos/`; TypeScript, Java and C++ from small samples in tests/data.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lizard import analyze_file

from scrapers.complexity import FunctionIndex, FunctionMeter, changed_line_ranges
from core.git_runner import BlobReader, Git
from scrapers.git_scraper_rich import ScrapeConfig, scrape
from core.parsers import parser_language

BUNDLES = Path(__file__).resolve().parents[1].parent / "shared" / "repos"
DATA = Path(__file__).resolve().parent / "data" / "complexity"
SAMPLE_BYTES = 120_000  # per language: enough for a few hundred functions, seconds of lizard


def agreement(files: list[tuple[str, str]]) -> tuple[int, int, list[str]]:
    """(functions lizard finds, how many of them get lizard's CCN here, the first differences)."""
    total = same = 0
    diffs = []
    for path, text in files:
        ours = FunctionIndex(text.encode(), parser_language(path)).touching(None)
        by_start = {}
        for f in ours:
            by_start.setdefault(f.start_line, []).append(f)
        for fn in analyze_file.analyze_source_code(path, text).function_list:
            total += 1
            # lizard starts a C function at its name, tree-sitter at its return type: same end line then
            cands = by_start.get(fn.start_line) or [f for f in ours if f.end_line == fn.end_line
                                                     and f.start_line <= fn.start_line]
            named = [f for f in cands if f.name.split(".")[-1].split("::")[-1] == fn.name.split("::")[-1]]
            f = (named or cands or [None])[-1]
            if f is not None and f.ccn == fn.cyclomatic_complexity:
                same += 1
            elif len(diffs) < 10:
                diffs.append(f"{path}:{fn.start_line} {fn.name} lizard {fn.cyclomatic_complexity}, "
                             f"here {f and f.ccn}")
    return total, same, diffs


def clone_bundle(name: str, tmp_path: Path) -> Path:
    """A clone of the shared bundle `name` in tmp_path; the test is skipped when the bundles are absent."""
    bundle = BUNDLES / f"{name}.bundle"
    if not bundle.exists():
        pytest.skip(f"{bundle} not found (the shared bundles of the real repositories)")
    repo = tmp_path / name
    subprocess.run(["git", "clone", "-q", str(bundle), str(repo)], check=True)
    return repo


@pytest.mark.parametrize("name, exts", [("click", (".py",)), ("express", (".js",)), ("cobra", (".go",)),
                                        ("log", (".rs",)), ("cJSON", (".c", ".h"))])
def test_ccn_matches_lizard_on_real_repositories(tmp_path, name, exts):
    repo = clone_bundle(name, tmp_path)
    paths = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True,
                           check=True).stdout.split("\n")
    # cJSON vendors the Unity test framework, whose "functions" are macros tree-sitter cannot see
    # (79% agreement there); the sample is the repository's own code.
    files, size = [], 0
    for p in sorted(p for p in paths if p.endswith(exts) and "/unity/" not in p):
        text = (repo / p).read_text(encoding="utf-8", errors="replace")
        files.append((p, text))
        size += len(text)
        if size > SAMPLE_BYTES:
            break
    total, same, diffs = agreement(files)
    assert total >= 100, f"sample too small: {total} functions"
    print(f"{name}: {same}/{total} functions agree with lizard")
    assert same / total >= 0.95, f"{name}: {same}/{total} functions agree with lizard; e.g. {diffs}"


@pytest.mark.parametrize("sample", ["sample.ts", "Sample.java", "sample.cpp"])
def test_ccn_matches_lizard_on_samples(sample):
    total, same, diffs = agreement([(sample, (DATA / sample).read_text())])
    assert total >= 5 and same / total >= 0.95, diffs


def test_only_touched_functions_and_each_blob_parsed_once():
    text = b"def a(x):\n    return x\n\n\ndef b(x):\n    if x:\n        return 1\n    return 2\n"
    reads = []

    def content_of(blob):
        reads.append(blob)
        return text

    meter = FunctionMeter()
    patch = b"@@ -5,3 +5,5 @@\n def b(x):\n+    if x:\n+        return 1\n     return 2\n"
    fns = meter.measure("m.py", "1" * 40, content_of, changed_line_ranges(patch))[0]
    assert [(f["name"], f["cyclomatic_complexity"], f["start_line"], f["end_line"]) for f in fns] == [("b", 2, 5, 8)]
    again = meter.measure("m.py", "1" * 40, content_of, None)[0]
    assert [f["name"] for f in again] == ["a", "b"]
    assert reads == ["1" * 40] and meter.parsed == 1


def test_nested_functions_and_rust_rules():
    py = FunctionIndex(b"def outer(a):\n    def inner(b):\n        return b or a\n    return [x for x in a if x]\n",
                       "python").touching(None)
    assert [(f.name, f.ccn) for f in py] == [("outer", 3), ("outer.inner", 2)]
    rs = FunctionIndex(b"fn f(x: Option<u8>) -> Option<u8> {\n    let Some(y) = x else { return None };\n"
                       b"    match y { 0 => None, 1 => Some(1), _ => Some(y?) }\n}\n", "rust").touching(None)
    # lizard: 1 + let-else + 2 more match arms + `?`
    assert [(f.name, f.ccn) for f in rs] == [("f", 5)]


def test_a_held_javascript_function_is_named_once_by_its_holder():
    """`const f = () => {}` is `f`, and what it holds is `f.inner`: the grammar's tags query makes the
    declarator a definition, which once named the function twice (`f.f`, ky's `timeout.timeout`)."""
    js = FunctionIndex(b"const timeout = (ms) => {\n  const inner = () => ms;\n  return inner;\n};\n"
                       b"ky.extend = function (o) {\n  return o ? 1 : 2;\n};\n", "javascript").touching(None)
    assert [(f.name, f.ccn) for f in js] == [("timeout", 1), ("timeout.inner", 1), ("ky.extend", 2)]


def lib_rs_history(tmp_path: Path, count: int) -> list[tuple[str, bytes, bytes]]:
    """`(blob, content, diff from the version before)` of the first `count` versions of the log
    bundle's src/lib.rs along the first parent."""
    repo = clone_bundle("log", tmp_path)

    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout

    log = git("log", "--first-parent", "--reverse", "--format=%x01", "--raw", "--no-abbrev", "-p", "--", "src/lib.rs")
    versions = []
    for entry in log.split(b"\x01")[1:]:
        raw, _, patch = entry.partition(b"\ndiff --git")
        blob = raw.split()[3].decode()
        if set(blob) != {"0"}:
            versions.append((blob, b"diff --git" + patch))
    assert len(versions) > 50
    versions = versions[:count]
    reader = BlobReader(Git(repo))
    reader.request([blob for blob, _ in versions])
    contents = {blob: reader.get(blob) for blob, _ in versions}
    reader.close()
    return [(blob, contents[blob], patch) for blob, patch in versions]


def test_incremental_parse_equals_a_fresh_parse_over_a_real_history(tmp_path):
    previous, reused, clean = None, 0, 0
    versions = lib_rs_history(tmp_path, 80)  # the first 80 versions: seconds
    for blob, content, patch in versions:
        index = FunctionIndex(content, "rust", previous, patch)
        fresh = FunctionIndex(content, "rust")
        assert index.touching(None) == fresh.touching(None), blob
        assert str(index.tree.root_node) == str(fresh.tree.root_node), blob
        # re-parsed from the version before where neither has a syntax error (`reparse`), else from nothing
        clean += previous is not None and not previous.tree.root_node.has_error and not fresh.tree.root_node.has_error
        reused += index.incremental
        previous = index
    assert reused == clean > len(versions) // 2


def test_a_version_changed_from_an_unparsed_one_is_reparsed_from_the_paths_last(tmp_path):
    """After a clean merge (a result never parsed) the next change starts from the path's last parsed version."""
    versions = lib_rs_history(tmp_path, 30)
    contents = {blob: content for blob, content, _ in versions}
    meter = FunctionMeter()
    meter.measure("src/lib.rs", versions[0][0], contents.get, None)
    for k in range(2, len(versions), 2):  # every other version is skipped, as a clean merge's would be
        (old, _, _), (blob, content, patch) = versions[k - 1], versions[k]
        ranges = changed_line_ranges(patch)
        found = meter.measure("src/lib.rs", blob, contents.get, ranges, old, patch)[0]
        fresh = FunctionIndex(content, "rust")
        before = meter.cache[(versions[k - 2][0], "rust")].tree.root_node.has_error
        assert meter.cache[(blob, "rust")].incremental == (not before and not fresh.tree.root_node.has_error), k
        assert found == FunctionMeter._dicts("src/lib.rs", fresh.touching(ranges)), k


def test_worker_processes_give_the_same_records(tmp_path):
    """Function complexity in 2 worker processes (paths split between them) writes the bytes 0 workers write."""
    repo = clone_bundle("log", tmp_path)
    outputs = []
    for jobs in (0, 2):
        out = tmp_path / f"jobs{jobs}" / "h.jsonl"
        scrape(ScrapeConfig(repo=str(repo), output=str(out), max_commits=300, jobs=jobs, progress=False))
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b'"cyclomatic_complexity"') > 500


def test_a_killed_worker_process_is_one_error_line(tmp_path):
    """A worker killed (as the out-of-memory killer would) ends the scrape with one UserError line, no hang."""
    import os
    import signal

    from core.parallel import WorkerDied
    from conftest import RepoBuilder
    from scrapers.complexity import FunctionWorkers

    b = RepoBuilder(tmp_path / "repo")
    b.commit("Add", {"m.py": "def f(x):\n    return x if x else 0\n"})
    blob = b.git("rev-parse", "HEAD:m.py")
    workers = FunctionWorkers(Git(b.path), jobs=1)
    try:
        functions, language, _ = workers.result(workers.submit([("m.py", blob, None, None, b"")]))[0]
        assert functions[0]["cyclomatic_complexity"] == 2 and language is None  # a `.py` is Python by its name
        os.kill(workers.pools[0].submit(os.getpid).result(), signal.SIGKILL)
        with pytest.raises(WorkerDied) as err:
            workers.result(workers.submit([("m.py", blob, [(1, 2)], None, b"")]))
        assert str(err.value).startswith("a function complexity worker process stopped without an answer")
        assert "--jobs 0" in str(err.value) and "\n" not in str(err.value)
    finally:
        workers.close()
