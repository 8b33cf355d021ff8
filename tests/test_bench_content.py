"""bench/bench_content.py: what counts as a diff chunk opening on a definition."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import RepoBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_content import FileAt, opens_on_definition  # noqa: E402

ROUTER = ("'use strict';\n\n/**\n * Adds a route.\n */\nfunction route(path) {\n  return path;\n}\n\n"
          "function param(name) {\n  return name;\n}\n")


def test_a_piece_of_a_removed_block_is_judged_on_the_old_side(tmp_path):
    """A first hunk that shows no line of the new file (a piece of a removed block) opens on what it
    removes, read in the file at the commit's first parent; a doc comment opens its definition."""
    b = RepoBuilder(tmp_path / "repo")
    b.commit("Add the router", {"lib/router.js": ROUTER})
    commit = b.commit("Drop param()", {"lib/router.js": ROUTER.split("\nfunction param")[0]})
    files = FileAt(b.path)
    removed = "file lib/router.js (modified)\n@@ -10,3 +9,0 @@\n-function param(name) {\n-  return name;\n-}\n"
    middle = "file lib/router.js (modified)\n@@ -11,2 +9,0 @@\n-  return name;\n-}\n"
    documented = "file lib/router.js (modified)\n@@ -3,3 +3,3 @@\n /**\n- * Adds a route.\n+ * Adds one.\n  */\n"
    try:
        assert opens_on_definition(removed, "javascript", files, commit, "lib/router.js") is True
        assert opens_on_definition(middle, "javascript", files, commit, "lib/router.js") is False
        assert opens_on_definition(documented, "javascript", files, commit, "lib/router.js") is True
    finally:
        files.close()
