"""The layers of docs/architecture.md run one way: this test reads every import of the product code
(with `ast`, function-level imports included) and fails on an import upward, on one stage importing
another, on a private name imported across packages, and on any import cycle between modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import its own layer's modules and anything below.
GROUND, STAGES, ORCHESTRATION, ENTRY = range(4)
# Each stage is one group: a stage never imports another stage.
STAGE_OF = {"scrapers": "scrape", "chunking": "chunk", "semantic_chunker": "chunk", "tokenizers_": "tokenize",
            "dataset_builder": "dataset", "reporting": "report"}
LAYER_OF = {"core": GROUND, **{top: STAGES for top in STAGE_OF}, "pipeline": ORCHESTRATION,
            "multirepo": ORCHESTRATION, "comprehensive_pipeline": ENTRY, "training": ENTRY, "bench": ENTRY}


def product_modules() -> dict[str, Path]:
    """Every product module by dotted name (tests are not product code)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", ".venv", ".git") or rel.parts[0] not in LAYER_OF and len(rel.parts) > 1:
            continue
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        if name.split(".")[0] in LAYER_OF:
            modules[name] = path
    return modules


def imports_of(path: Path, known: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(module imported, name imported or "", line) for every import of a project module in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] in LAYER_OF]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in LAYER_OF:
                continue
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.append((sub, "", node.lineno) if sub in known else (node.module, a.name, node.lineno))
    return found


def graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, str, int]]]]:
    modules = product_modules()
    return modules, {m: [i for i in imports_of(p, modules) if i[0] in modules] for m, p in modules.items()}


def test_the_walk_sees_the_whole_product():
    modules, edges = graph()
    for expected in ("core.io", "core.git_runner", "scrapers.git_scraper_rich", "semantic_chunker",
                     "dataset_builder", "training.model_trainer_unified", "multirepo.runner", "bench.bench_pipeline",
                     "pipeline.orchestrator", "core.split_file"):
        assert expected in modules
    assert ("core.io", "UserError") in {(m, n) for m, n, _ in edges["semantic_chunker"]}
    assert sum(len(v) for v in edges.values()) > 150


def violations() -> list[str]:
    modules, edges = graph()
    bad = []
    for src, targets in edges.items():
        src_top = src.split(".")[0]
        for dst, name, line in targets:
            dst_top = dst.split(".")[0]
            where = f"{modules[src].relative_to(ROOT)}:{line} imports {dst}" + (f".{name}" if name else "")
            if src_top == "training" and dst_top not in ("core", "training"):
                bad.append(f"{where}: the trainer reads files; it imports only core/ and training/")
            elif LAYER_OF[dst_top] > LAYER_OF[src_top]:
                bad.append(f"{where}: an import upward")
            elif LAYER_OF[src_top] == STAGES == LAYER_OF[dst_top] and STAGE_OF[src_top] != STAGE_OF[dst_top]:
                bad.append(f"{where}: stage {STAGE_OF[src_top]} imports stage {STAGE_OF[dst_top]}")
            if name.startswith("_") and src_top != dst_top:
                bad.append(f"{where}: a private name across packages")
    return bad


def cycles() -> list[list[str]]:
    """Every cycle of module imports, found by depth-first search (one cycle per back edge)."""
    _, edges = graph()
    succ = {m: sorted({d for d, _, _ in t if d != m}) for m, t in edges.items()}
    state, stack, found = {}, [], []

    def visit(m: str) -> None:
        state[m] = "open"
        stack.append(m)
        for d in succ[m]:
            if state.get(d) == "open":
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(succ):
        if m not in state:
            visit(m)
    return found


def test_no_import_runs_upward_or_across_stages():
    assert violations() == []


def test_no_import_cycle():
    assert cycles() == []


@pytest.mark.parametrize("src, line, expected", [
    ("core/x.py", "from pipeline.state import RunState", "an import upward"),
    ("scrapers/x.py", "from chunking.units import Block", "stage scrape imports stage chunk"),
    ("multirepo/x.py", "from dataset_builder import _write_split", "a private name across packages"),
    ("training/x.py", "from semantic_chunker import run", "imports only core/ and training/"),
])
def test_the_rules_catch_what_the_old_tree_did(tmp_path, monkeypatch, src, line, expected):
    """Each rule fails on an import the tree had at 17a167a, written into a copy of the walk's input."""
    fake = ROOT / src
    modules, edges = graph()
    name = src.removesuffix(".py").replace("/", ".")
    monkeypatch.setitem(globals(), "graph", lambda: (
        {**modules, name: fake},
        {**edges, name: [i for i in imports_of_text(line, modules) if i[0] in modules]}))
    assert any(expected in v for v in violations())


def test_a_cycle_is_found(monkeypatch):
    modules, edges = graph()
    edges = {**edges, "core.io": edges["core.io"] + [("core.schema", "", 1)],
             "core.schema": edges["core.schema"] + [("core.io", "", 1)]}
    monkeypatch.setitem(globals(), "graph", lambda: (modules, edges))
    assert any({"core.io", "core.schema"} <= set(c) for c in cycles())


def imports_of_text(source: str, known: dict[str, Path]) -> list[tuple[str, str, int]]:
    tmp = ast.parse(source)
    node = tmp.body[0]
    return [(f"{node.module}.{a.name}", "", 1) if f"{node.module}.{a.name}" in known else (node.module, a.name, 1)
            for a in node.names]
