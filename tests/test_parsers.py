"""core/parsers.py: a blob's tree re-parsed from its previous version's tree finds what a full parse finds."""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.parsers import BlobTrees, LineStarts, definitions, definitions_in, parser, reparse

V1 = "".join(f"class C{i}:\n    def m(self, x):\n        return x + {i}\n\n\n" for i in range(40))
V2 = V1.replace("return x + 7\n", "y = x * 7\n        return y\n") \
    .replace("class C30:", "def helper():\n    pass\n\n\nclass C30:")


def git_diff(tmp_path: Path, old: str, new: str) -> bytes:
    """The unified diff git itself writes between two texts."""
    (tmp_path / "a").write_text(old)
    (tmp_path / "b").write_text(new)
    run = subprocess.run(["git", "diff", "--no-index", "--no-color", "a", "b"], cwd=tmp_path, capture_output=True)
    assert run.returncode == 1, run.stderr
    return run.stdout


def test_a_tree_reparsed_from_the_version_before_finds_what_a_full_parse_finds(tmp_path):
    trees = BlobTrees()
    first = trees.tree("blob1", V1, "python")
    assert definitions_in(first, "python") == definitions(V1, "python")
    second = trees.tree("blob2", V2, "python", "blob1", git_diff(tmp_path, V1, V2))
    assert definitions_in(second, "python") == definitions(V2, "python")
    assert [(d.start, d.end, d.name) for d in definitions_in(second, "python", (36, 37))] == \
        [(35, 38, "C7"), (36, 38, "C7.m")]  # the rows asked for and the definitions around them
    assert "helper" in {d.name for d in definitions_in(second, "python", (150, 160))}
    # the tree kept for blob1 was not changed by the edit blob2's parse made on a copy of it
    assert definitions_in(trees.tree("blob1", V1, "python"), "python") == definitions(V1, "python")
    # a diff that does not fit the text kept (rows past its end) is not applied: a full parse instead
    wrong = b"@@ -900,2 +900,3 @@\n x\n+y\n x\n"
    assert definitions_in(trees.tree("blob3", V2, "python", "blob1", wrong), "python") == definitions(V2, "python")


def test_a_version_whose_previous_one_was_not_parsed_here_is_reparsed_from_its_paths_last():
    """Another worker process parsed the version before (or a merge's diff is not from its old
    blob): the path's last tree kept here is edited where the bytes differ, not thrown away."""
    v3 = V2.replace("helper", "assist")
    trees = BlobTrees()
    trees.tree("blob1", V1, "python", path="m.py")
    third = trees.tree("blob3", v3, "python", "blob2", b"@@ -1 +1 @@\n-x\n+y\n", "m.py")  # blob2 not kept
    assert trees.whole == 1  # blob3 re-parsed from blob1's tree
    assert definitions_in(third, "python") == definitions(v3, "python")
    trees.tree("blob4", V1, "python", path="other.py")
    assert trees.whole == 2  # a path never seen: from nothing


def test_a_tree_with_a_syntax_error_is_parsed_from_nothing(tmp_path):
    """Error recovery can end differently on a re-parse than on a fresh parse, and which versions a
    process kept must not change a result: where the old or the new version has an error, the
    result is the fresh parse's, whatever was kept."""
    broken = V1.replace("class C20:", "class C20(:")  # a syntax error in the middle
    fixed = V2
    old = (parser("python").parse(broken.encode()), LineStarts(broken.encode()), broken.encode())
    assert old[0].root_node.has_error
    tree, reused = reparse("python", fixed.encode(), old, git_diff(tmp_path, broken, fixed), LineStarts(fixed.encode()))
    assert not reused and str(tree.root_node) == str(parser("python").parse(fixed.encode()).root_node)
    clean = (parser("python").parse(V1.encode()), LineStarts(V1.encode()), V1.encode())
    tree, reused = reparse("python", broken.encode(), clean, git_diff(tmp_path, V1, broken), LineStarts(broken.encode()))
    assert not reused and str(tree.root_node) == str(parser("python").parse(broken.encode()).root_node)
    tree, reused = reparse("python", V2.encode(), clean, git_diff(tmp_path, V1, V2), LineStarts(V2.encode()))
    assert reused  # both versions clean: re-parsed from the kept tree


def test_rows_inside_a_long_decorator_find_the_definition_below_it():
    cases = "".join(f"        ({i}, {i * i}),\n" for i in range(30))
    text = (f"import pytest\n\n\n@pytest.mark.parametrize(\n    'n, square',\n    [\n{cases}    ],\n)\n"
            "def test_square(n, square):\n    assert n * n == square\n")
    tree = BlobTrees().tree("blob", text, "python")
    assert [(d.start, d.name) for d in definitions_in(tree, "python", (20, 21))] == [(3, "test_square")]


JS_HELD = """import test from 'ava';
const ky = require('ky');

test('retries on 500', async t => {
  t.is(await ky('x'), 1);
});

describe('router', function () {
  it(`handles ${method}`, function (done) {
    done();
  });
});

const helpers = {
  pair: function () { return 1; },
  'quoted': () => 2,
  plain: 3,
};

res.locals = function () {};
exports.compile = function (str) {
  return str;
};
module.exports = function createApp() {};
var toNumber = (x) => Number(x), limit = 10;

class Client {
  onError = (error) => error;
  retries = 2;
}

setTimeout(function () {}, 10);
"""


def test_javascript_and_typescript_functions_held_by_calls_properties_and_names_are_definitions():
    expected = [(3, 5, "retries on 500"), (7, 11, "router"), (8, 10, "router.handles ${method}"),
                (14, 14, "pair"), (15, 15, "quoted"), (19, 19, "res.locals"),
                (20, 22, "exports.compile"), (23, 23, "module.exports"), (24, 24, "toNumber"),
                (26, 29, "Client"), (27, 27, "Client.onError")]
    for lang in ("javascript", "typescript", "tsx"):
        assert [(d.start, d.end, d.name) for d in definitions(JS_HELD, lang)] == expected, lang


# Real-shaped openings: a definition's doc comment, attributes, annotations, decorators and template line
LEADS = {
    "rust": ("use std::fmt;\n\n/// A counter.\n///\n/// Counts.\n#[derive(Debug, Clone)]\npub struct Counter {\n"
             "    n: u64,\n}\n\nimpl Counter {\n    /// Bumps it.\n    #[inline]\n    pub fn bump(&mut self) {\n"
             "        self.n += 1; // one more\n    }\n}\n",
             [(2, 8, "Counter"), (10, 16, "impl Counter"), (11, 15, "Counter::bump")]),
    "java": ("package a;\n\n/**\n * A client.\n */\n@Deprecated\npublic class Client {\n    /** Sends. */\n"
             "    @Override\n    public void send() {}\n}\n",
             [(2, 10, "Client"), (7, 9, "Client.send")]),
    "c": ("#include <stdio.h>\n\n/* Parse an object. */\nstatic int parse_object(const char *s)\n{\n"
          "    return 0;\n}\n",
          [(2, 6, "parse_object")]),
    "cpp": ("namespace spdlog {\n/// A sink.\ntemplate <typename Mutex>\nclass base_sink {\n  public:\n"
            "    // Logs.\n    void log(const msg &m) override;\n};\n}  // namespace spdlog\n",
            [(0, 8, "spdlog"), (1, 7, "spdlog::base_sink"), (5, 6, "spdlog::base_sink::log")]),
    "go": ("package cobra\n\nimport \"fmt\"\n\n// Execute runs the command.\n// It returns the error.\n"
           "func (c *Command) Execute() error {\n\treturn nil\n}\n",
           [(4, 8, "Command.Execute")]),
    "typescript": ("import is from './is.js';\n\n/**\nOptions of a request.\n*/\nexport type Options = {\n"
                   "\tretry?: number;\n};\n\nexport class Ky {\n\t// Sends it.\n\t@logged()\n\tasync fetch() {}\n}\n",
                   [(2, 7, "Options"), (9, 13, "Ky"), (10, 12, "Ky.fetch")]),
    "python": ("import os\n\n\n# Reads the file.\n@cache\n@wraps(f)\ndef read(path):\n    return 1\n",
               [(3, 7, "read")]),
}


def test_a_definition_starts_at_its_doc_comment_attributes_decorators_and_template_line():
    """Widening and cut points use a definition's start: its doc comment, attributes, annotations,
    decorators and template line go with it (a comment at the end of a line of code, or one a blank
    line away, does not)."""
    for lang, (text, expected) in LEADS.items():
        assert [(d.start, d.end, d.name) for d in definitions(text, lang)] == expected, lang
    spaced = "// Copyright.\n\nint f(void) { return 0; }  // f\nint g(void) { return 1; }\n"
    assert [(d.start, d.name) for d in definitions(spaced, "c")] == [(2, "f"), (3, "g")]


def test_definition_kinds_come_from_the_grammars_tags_queries():
    """C prototypes, typedefs, enums and macros; Go package-level `var` / `const`; TypeScript interface
    members that are functions: definitions (a C parameter, a struct type named in a declaration, or a
    local `var` in a hunk parsed alone are not)."""
    c = ("#define CJSON_VERSION_MAJOR 1\n#define cJSON_IsTrue(x) ((x) != 0)\n"
         "typedef struct cJSON {\n    struct cJSON *next;\n} cJSON;\n"
         "enum patch_operation { INVALID, ADD };\n"
         "CJSON_PUBLIC(cJSON *) cJSON_Parse(const char *value);\n"
         "static void walk(struct cJSON *item, int (*visit)(cJSON *));\n")
    assert [(d.start, d.end, d.name) for d in definitions(c, "c")] == [
        (0, 0, "CJSON_VERSION_MAJOR"), (1, 1, "cJSON_IsTrue"), (2, 4, "cJSON"), (5, 5, "patch_operation"),
        (6, 6, "cJSON_Parse"), (7, 7, "walk")]
    go = ("package cobra\n\nvar minUsagePadding = 25\n\nconst (\n\tBashComp = \"bash\"\n)\n\n"
          "type (\n\tA struct{}\n\tB int\n)\n")
    assert [(d.start, d.end, d.name) for d in definitions(go, "go")] == [
        (2, 2, "minUsagePadding"), (4, 6, "BashComp"), (9, 9, "A"), (10, 10, "B")]
    assert definitions("\tvar x = 1\n\tx++\n", "go") == []
    ts = ("export interface Options {\n\t/** Parses the body. */\n\tparseJson?: (text: string) => unknown;\n"
          "\tretry?: number;\n\tjson<T>(): Promise<T>;\n}\n")
    assert [(d.start, d.end, d.name) for d in definitions(ts, "typescript")] == [
        (0, 5, "Options"), (1, 2, "Options.parseJson"), (4, 4, "Options.json")]
