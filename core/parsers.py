"""Function / class / impl boundaries: tree-sitter for the languages it has a grammar for, else a heuristic.

    >>> defs = definitions("class A:\\n    def f(self):\\n        return 1\\n", "python")
    >>> [(d.start, d.end, d.name) for d in defs]
    [(0, 2, 'A'), (1, 2, 'A.f')]

Rows are 0-based line indexes into the text given. A `Definition` spans `start..end` inclusive
and carries its qualified name (`Counter::bump` in Rust and C++, `Shape.area` elsewhere;
`impl Counter` for a Rust impl block). Text that tree-sitter cannot fully parse (a diff hunk
cut out of a file) still yields the definitions it can recognise: tree-sitter recovers from
errors. Languages without a grammar package get `heuristic_boundaries` (a non-blank line at
indentation 0 after a blank line starts a new block) and no symbol names.
"""

from __future__ import annotations

import functools
import importlib
import importlib.resources
import re
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from itertools import accumulate
from operator import add

from tree_sitter import Language, Parser, Point, Query, QueryCursor

from core.languages import language_of

# language -> (module, attribute of the grammar function, node types that are definitions besides the
# ones the grammar package's own tags query (`queries/tags.scm`, its `@definition.*` patterns) names:
# the containers that qualify names (`impl`, C++ namespaces), and kinds a tags query leaves out)
_GRAMMARS = {
    "python": ("tree_sitter_python", "language", ()),
    "rust": ("tree_sitter_rust", "language", ("impl_item", "function_signature_item")),
    "javascript": ("tree_sitter_javascript", "language", ("method_definition",)),  # its tags leave out constructors
    "typescript": ("tree_sitter_typescript", "language_typescript", (
        "method_definition", "type_alias_declaration", "enum_declaration", "internal_module")),
    "go": ("tree_sitter_go", "language", ()),
    "java": ("tree_sitter_java", "language", ("enum_declaration", "record_declaration", "constructor_declaration")),
    # functions listed too: the tags find one by its declarator's name, not `Foo<T>::bar`, `~Foo`, `operator==`
    "c": ("tree_sitter_c", "language", ("function_definition", "preproc_def", "preproc_function_def")),
    "cpp": ("tree_sitter_cpp", "language", ("function_definition", "namespace_definition", "preproc_def",
                                            "preproc_function_def")),
}
_GRAMMARS["tsx"] = ("tree_sitter_typescript", "language_tsx", _GRAMMARS["typescript"][2])
# tags queries written for another grammar that this one extends (TypeScript's names only what it adds)
_TAGS_ALSO = {"typescript": ("tree_sitter_javascript",), "tsx": ("tree_sitter_javascript",)}
# definitions no tags query names: Go's package-level `var` / `const` (its tags query names their
# specs, without a kind), a TypeScript interface member of function type (`parseJson?: (text) => unknown`)
_EXTRA_PATTERNS = {
    "go": "(source_file [(var_declaration) (const_declaration)] @def)",
    "typescript": "(property_signature type: (type_annotation (function_type))) @def",
}
_EXTRA_PATTERNS["tsx"] = _EXTRA_PATTERNS["typescript"]
# definitions that hold no other: C / C++ macros, declarations and typedefs (a tree recovered from an
# error may put a function under one: `FMT_GCC_VERSION::FormatInt`); they do not qualify names
_LEAVES = frozenset({"preproc_def", "preproc_function_def", "declaration", "function_declarator", "type_definition"})
# JavaScript / TypeScript definitions that are a function held by another construct: a call with
# a title (`test('adds', t => {})`, `describe(...)`, `app.get('/', fn)`), an object property
# (`pair: function () {}`), an assignment (`module.exports = function`), a variable
# (`const f = () => {}`), a class field (`m = () => {}`). Such a node is a definition only when it
# holds a function: `held_name` tells.
_HOLDERS = {"javascript": ("call_expression", "pair", "assignment_expression", "variable_declarator",
                           "field_definition"),
            "typescript": ("call_expression", "pair", "assignment_expression", "variable_declarator",
                           "public_field_definition")}
_HOLDERS["tsx"] = _HOLDERS["typescript"]
_FUNCTION_VALUES = ("arrow_function", "function_expression", "generator_function", "class")
_TITLES = frozenset({"string", "template_string"})
# A definition starts at what wraps it alone (a Python decorated definition, a C++ template; on its
# first row: an `export`, the statement of a held function, Go's `type`) and at the comments, doc
# comments, attributes and decorators directly above it, each on a line of its own, without a
# blank line between.
_WRAPPERS = frozenset({"decorated_definition", "template_declaration"})
_ROW_WRAPPERS = frozenset({"export_statement", "expression_statement", "lexical_declaration", "variable_declaration",
                           "type_declaration"})
_LEAD = frozenset({"comment", "line_comment", "block_comment", "attribute_item", "decorator"})
_SEPARATOR = {"rust": "::", "cpp": "::"}
_NAME_NODES = ("identifier", "field_identifier", "qualified_identifier", "destructor_name", "operator_name",
               "type_identifier", "property_identifier")


@dataclass(frozen=True, slots=True)
class Definition:
    start: int  # first row (0-based), its lead included: doc comment, attributes, decorators, template line
    end: int  # last row, inclusive
    name: str  # qualified: enclosing definitions joined with the language's separator
    lead: int = 0  # rows of comments, doc comments and attributes above its own first row (start + lead)


_LOCAL = threading.local()  # a tree-sitter Parser is not thread-safe: one set per thread that parses


def parser_language(path: str, language: str | None = None) -> str | None:
    """The tree-sitter grammar of a path: its language (`language` when its content told it, else
    `core.languages.language_of(path)`), TSX apart; None when there is no grammar.

    >>> parser_language("src/App.tsx"), parser_language("lib/x.H"), parser_language("README.md")
    ('tsx', 'c', None)
    """
    lang = language or language_of(path)
    if lang == "typescript" and path.lower().endswith(".tsx"):
        return "tsx"
    return lang if lang in _GRAMMARS else None


def grammar(lang: str) -> Language:
    """The tree-sitter Language of a parser language name (`python`, `rust`, `tsx`, ...)."""
    languages = _LOCAL.__dict__.setdefault("languages", {})
    if lang not in languages:
        module, attr, _ = _GRAMMARS[lang]
        languages[lang] = Language(getattr(importlib.import_module(module), attr)())
    return languages[lang]


def parser(lang: str) -> Parser:
    """This thread's parser for `lang`, created on first use and kept (the one place parsers are made)."""
    parsers = _LOCAL.__dict__.setdefault("parsers", {})
    if lang not in parsers:
        parsers[lang] = Parser(grammar(lang))
    return parsers[lang]


def query(lang: str, source: str) -> Query:
    """A compiled query for `lang`, kept per thread (the one place queries are made)."""
    queries = _LOCAL.__dict__.setdefault("queries", {})
    key = (lang, source)
    if key not in queries:
        queries[key] = Query(grammar(lang), source)
    return queries[key]


@functools.cache
def definition_types(lang: str) -> frozenset:
    """The node types that are definitions (functions, classes, impls, ...) in `lang`: the grammar's
    tags query's and `_GRAMMARS`'."""
    return frozenset(_GRAMMARS[lang][2]) | frozenset(t for _, t in _tags_definitions(lang))


@functools.cache
def container_types(lang: str) -> frozenset:
    """The definitions whose names qualify the names of those inside them."""
    return definition_types(lang) - _LEAVES


@functools.cache
def _tags_definitions(lang: str) -> list[tuple[str, str]]:
    """(pattern, node type captured) of each `@definition.*` pattern of the tags queries the grammar
    package of `lang` ships, its capture renamed `@def`; others (`@reference.*`) are left out.

    >>> sorted({t for _, t in _tags_definitions("c")})
    ['declaration', 'enum_specifier', 'function_declarator', 'struct_specifier', 'type_definition']
    """
    out = []
    for module in (_GRAMMARS[lang][0], *_TAGS_ALSO.get(lang, ())):
        tags = importlib.resources.files(module) / "queries" / "tags.scm"
        if tags.is_file():
            out.extend(_definition_patterns(tags.read_text(encoding="utf-8")))
    return out


_SCM_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|;[^\n]*|[()\[\]]|[^\s()\[\]";]+')


def _definition_patterns(source: str) -> list[tuple[str, str]]:
    """The top-level patterns of a tags query that capture `@definition.*`, as (pattern text with that
    capture renamed `@def`, a node type it captures), one pair per type an alternation captures.
    Constants (`@definition.constant`: Python's module-level assignments) are left out: in a hunk
    parsed alone, every assignment of a function's body would be one.

    >>> _definition_patterns('(a (b) @name) @definition.class\\n; note\\n(c) @reference.call\\n'
    ...                      '((x)* @doc . [(d) (e)] @definition.f)')
    [('(a (b) @name) @def', 'a'), ('((x)* @doc . [(d) (e)] @def)', 'd'), ('((x)* @doc . [(d) (e)] @def)', 'e')]
    """
    starts, ends, captured, stack, closed = [], [], [], [], []
    for m in _SCM_TOKEN.finditer(source):
        tok = m.group()
        if tok.startswith(";"):
            continue
        if tok in ("(", "[") and not stack:
            starts.append(m.start())
            ends.append(m.end())
            captured.append([])
        if starts:
            ends[-1] = m.end()
        if tok in ("(", "["):
            stack.append([tok, None, []])  # opener, node type, types of the alternatives
        elif tok in (")", "]"):
            opener, node_type, inner = stack.pop()
            closed = [node_type] if opener == "(" else inner
            if stack and stack[-1][0] == "[":
                stack[-1][2].extend(closed)
        elif stack and stack[-1][1] is None and stack[-1][0] == "(" and not tok.startswith(("@", '"')):
            stack[-1][1] = tok
        elif tok.startswith("@definition.") and tok != "@definition.constant" and starts \
                and not (stack and str(stack[-1][1]).startswith("#")):
            captured[-1].extend(closed)
    return [(re.sub(r"@definition\.[\w.]+", "@def", source[a:b]), t)
            for a, b, types in zip(starts, ends, captured) for t in types if t]


def held_name(node) -> str | None:
    """The name of a JavaScript / TypeScript construct of `_HOLDERS` that holds a function (the
    test's title, the property, member or variable), else None.

    >>> [d.name for d in definitions("describe('x', () => { it('adds', t => {}) })", "javascript")]
    ['x', 'x.adds']
    """
    if node.type == "call_expression":
        args = node.child_by_field_name("arguments")
        given = args.named_children if args is not None else []
        if len(given) > 1 and given[0].type in _TITLES and any(a.type in _FUNCTION_VALUES for a in given[1:]):
            return _text(given[0])[1:-1].strip() or None
        return None
    name, value = {"pair": ("key", "value"), "assignment_expression": ("left", "right")}.get(node.type, ("name", "value"))
    held = node.child_by_field_name(value)
    if held is None or held.type not in _FUNCTION_VALUES:
        return None
    named = node.child_by_field_name(name) or node.child_by_field_name("property")  # JS `field_definition`
    own = _text(named)
    return (own[1:-1] if named is not None and named.type == "string" else own) or None


def _held_query(holders: tuple) -> str:
    """Query patterns for the `holders` that may hold a function (`held_name` decides), so that
    tree-sitter leaves out the calls without a title and the values that are no function."""
    values = "[" + " ".join(f"({v})" for v in _FUNCTION_VALUES) + "]"
    fields = {"pair": "value", "assignment_expression": "right"}
    return "".join(f" ({h} arguments: (arguments . [(string) (template_string)])) @def" if h == "call_expression"
                   else f" ({h} {fields.get(h, 'value')}: {values}) @def" for h in holders)


def _text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def own_name(node, lang: str) -> str | None:
    """The name a definition node declares, or None (anonymous / unparsable)."""
    t = node.type
    if t in _HOLDERS.get(lang, ()):
        return held_name(node)
    if t == "impl_item":
        trait, typ = node.child_by_field_name("trait"), node.child_by_field_name("type")
        return f"impl {_text(trait)} for {_text(typ)}" if trait is not None else f"impl {_text(typ)}"
    if t == "type_declaration":
        spec = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
        return _text(spec.child_by_field_name("name")) if spec is not None else None
    if t == "method_declaration" and lang == "go":
        receiver = node.child_by_field_name("receiver")
        rtype = re.sub(r"^\(\s*(?:\w+\s+)?\*?|\)$", "", _text(receiver)).strip() if receiver is not None else ""
        name = _text(node.child_by_field_name("name"))
        return f"{rtype}.{name}" if rtype else name
    if t in ("var_declaration", "const_declaration"):  # Go: its (first) spec's name
        if node.start_point.column:
            return None  # in a hunk parsed alone, a function's local variable
        spec = next((c for c in node.named_children if c.type in ("var_spec", "const_spec")), None)
        if spec is None:  # a parenthesized group (`var ( ... )`)
            group = next((c for c in node.named_children if c.type.endswith("_spec_list")), None)
            spec = next((c for c in group.named_children if c.type.endswith("_spec")), None) if group else None
        return _text(spec.child_by_field_name("name")) if spec is not None else None
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name)
    declarator = node.child_by_field_name("declarator")  # C / C++ functions: dig to the identifier
    while declarator is not None and declarator.type not in _NAME_NODES:
        declarator = declarator.child_by_field_name("declarator")
    return _text(declarator) if declarator is not None else None


def _container_name(name: str) -> str:
    """What a method is qualified by: `impl Counter` -> `Counter`, `impl Display for Counter` -> `Counter`."""
    return name.rsplit(" for ", 1)[-1].removeprefix("impl ") if name.startswith("impl ") else name


def qualify(name: str, context_symbol: str | None, lang: str | None) -> str:
    """Qualify a method found in a hunk by the container git named in the hunk header.

    >>> qualify("bump", "impl Counter", "rust"), qualify("area", "Shape", "python"), qualify("a.b", "C", "python")
    ('Counter::bump', 'Shape.area', 'a.b')
    """
    sep = _SEPARATOR.get(lang or "", ".")
    if not context_symbol or sep in name or context_symbol == name:
        return name
    return f"{_container_name(context_symbol)}{sep}{name}"


def qualified_name(node, own: str, lang: str, types: frozenset, names: dict | None = None) -> str:
    """`own` prefixed by the names of the definitions around `node` (`Counter::bump`, `Shape.area`);
    `names`: the own names of nodes known already, by (start byte, end byte, type), added to as found."""
    chain = []
    outer = node.parent
    while outer is not None:
        if outer.type in types:
            if names is None:
                outer_name = own_name(outer, lang)
            else:
                key = (outer.start_byte, outer.end_byte, outer.type)
                if key not in names:
                    names[key] = own_name(outer, lang)
                outer_name = names[key]
            if outer_name:
                chain.append(_container_name(outer_name))
        outer = outer.parent
    return _SEPARATOR.get(lang, ".").join([*reversed(chain), own])


def definitions(text: str, lang: str) -> list[Definition]:
    """Every definition tree-sitter finds in `text`, outermost first, in source order."""
    return definitions_in(parser(lang).parse(text.encode("utf-8", "surrogatepass")), lang)


def definitions_in(tree, lang: str, rows: tuple[int, int] | None = None) -> list[Definition]:
    """The definitions of a parsed `tree` (those that overlap rows first..last when `rows` is given),
    outermost first, in source order. A definition starts at its lead (`_WRAPPERS`, `_LEAD`)."""
    cursor = QueryCursor(query(lang, _definitions_query(lang)))
    if rows is not None:
        cursor.set_point_range(Point(rows[0], 0), Point(rows[1] + 1, 0))
    nodes = {}
    for node in cursor.captures(tree.root_node).get("def", []):
        if node.type == "decorated_definition":
            node = node.child_by_field_name("definition")
            if node is None:
                continue
        while node.parent is not None and node.parent.child_by_field_name("declarator") == node:
            node = node.parent  # a C / C++ function declarator: its definition or declaration
        if node.type not in ("parameter_declaration", "optional_parameter_declaration"):
            nodes[node.start_byte, node.end_byte, node.type] = node
    types = container_types(lang) | frozenset(_HOLDERS.get(lang, ()))
    names = {key: own_name(node, lang) for key, node in nodes.items()}
    named = {key: own for key, own in names.items() if own}
    out = []
    for key in sorted(named, key=lambda k: (k[0], -k[1])):
        node = nodes[key]
        up = node.parent
        if up is not None and (up.start_byte, up.end_byte, up.type) in named and up.start_point.row == node.start_point.row:
            continue  # the type of its own definition (`typedef struct {...} T;`, Go's `type T struct`)
        end = node.end_point.row - (1 if node.end_point.column == 0 and node.end_point.row > node.start_point.row else 0)
        start, own = _lead_start(node)
        out.append(Definition(start, end, qualified_name(node, named[key], lang, types, names), own - start))
    return out


@functools.cache
def _definitions_query(lang: str) -> str:
    """The query whose `@def` captures are `lang`'s definitions (a Python decorated definition stands
    for the one it decorates, so that rows within its decorators find it)."""
    asked = sorted(_GRAMMARS[lang][2]) + (["decorated_definition"] if lang == "python" else [])
    tags = dict.fromkeys(pattern for pattern, _ in _tags_definitions(lang))
    listed = ["[" + " ".join(f"({t})" for t in asked) + "] @def"] if asked else []
    return "\n".join([*listed, *tags, _EXTRA_PATTERNS.get(lang, ""), _held_query(_HOLDERS.get(lang, ()))])


def _lead_start(node) -> tuple[int, int]:
    """(the row a definition starts on, its own first row): that of what wraps it alone (`_WRAPPERS`),
    and of the comments, attributes and decorators (`_LEAD`) directly above that, each on a line of
    its own.

    >>> [(d.start, d.lead) for d in definitions("int x;\\n\\n/** Doc. */\\n// more\\nint f(void) { return x; } // f\\nint g(void);", "c")]
    [(2, 2), (5, 0)]
    """
    while node.parent is not None and (node.parent.type in _WRAPPERS or node.parent.type in _ROW_WRAPPERS
                                       and node.parent.start_point.row == node.start_point.row):
        node = node.parent
    own = start = node.start_point.row
    lead = node.prev_sibling
    while lead is not None and lead.type in _LEAD and _last_row(lead) >= start - 1:
        before = lead.prev_sibling
        if before is not None and _last_row(before) >= lead.start_point.row:
            break  # a comment at the end of a line of code
        start, lead = lead.start_point.row, before
    return start, own


def _last_row(node) -> int:
    """A node's last row (a line comment that takes its newline ends on its own row)."""
    end = node.end_point
    return end.row - (1 if end.column == 0 and end.row > node.start_point.row else 0)


_UNIFIED_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.M)
WIDEN_CHARS_PER_TOKEN = 3.3  # a widened hunk's characters per budget token (code is ~3-4 characters a token)


def widen_chars(max_chunk_tokens: int) -> int:
    """How far (characters) stage 2 widens a hunk to whole definitions, for its chunk budget."""
    return int(max_chunk_tokens * WIDEN_CHARS_PER_TOKEN)


def file_rows(text: str) -> list[str]:
    """A file's lines, without the empty string after a final newline."""
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    return rows


def row_ends(rows: list[str]) -> list[int]:
    """ends[i]: characters of rows[:i] with their newlines, so that a span's size is one subtraction."""
    return [0, *map(add, accumulate(map(len, rows)), range(1, len(rows) + 1))]


def definition_windows(spans: list[tuple[int, int, int | None, int | None]], ends: list[int],
                       max_chars: int) -> list[list[int]]:
    """The stretches of rows `[first, last]` whose definitions widening hunks needs: per hunk `(first row,
    row after it, first changed row, last changed row)` (0-based rows of the new file, None: no change),
    its rows and `max_chars` characters either side of its changes, the stretches that touch joined.

    >>> definition_windows([(0, 3, 1, 1), (40, 43, 41, 41)], list(range(0, 440, 10)), 25)
    [[0, 5], [39, 43]]
    """
    n = len(ends) - 1
    windows: list[list[int]] = []
    for start, end, lo, hi in spans:
        first, last = start, end
        if lo is not None:
            first = min(first, bisect_left(ends, ends[lo] - max_chars))
            last = max(last, bisect_right(ends, ends[min(hi + 1, n)] + max_chars))
        if windows and first <= windows[-1][1] + 1:
            windows[-1][1] = max(windows[-1][1], last)
        else:
            windows.append([first, last])
    return [[first, min(last, n)] for first, last in windows]


def definitions_near(tree, lang: str, windows: list[list[int]]) -> list[Definition]:
    """The definitions of `tree` that overlap any of `windows` (`definitions_in`, one query per window),
    outermost first (a stable sort: ties keep the order they were found in)."""
    found = {d: None for first, last in windows for d in definitions_in(tree, lang, (first, last))}
    return sorted(found, key=lambda d: (d.start, -d.end))


def hunk_spans(patch: bytes) -> list[tuple[int, int, int | None, int | None]] | None:
    r"""Per hunk of a one-parent unified diff: (first row, row after it, first and last changed row) of the
    new file, 0-based, a removed line marking the row after it (None: no change); None for a combined diff.

    >>> hunk_spans(b"@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n@@ -9,2 +9,1 @@\n x\n-y\n")
    [(0, 3, 1, 1), (8, 9, 9, 9)]
    """
    spans: list[list] = []
    for line in patch.split(b"\n"):
        if line.startswith(b"@@"):
            m = _UNIFIED_HUNK.match(line)
            if m is None:
                return None
            first = int(m.group(3)) - 1 + (m.group(4) == b"0")
            spans.append([first, first, None, None])
        elif spans:
            span, kind = spans[-1], line[:1]
            if kind == b"+" or kind == b"-":
                span[3] = span[1]
                if span[2] is None:
                    span[2] = span[1]
            if kind == b" " or kind == b"+":
                span[1] += 1
    return [tuple(span) for span in spans]


class LineStarts:
    """Byte offset where each line starts, from C loops only (split, len, accumulate).

    >>> [LineStarts(b"a\\nbb\\nccc").start(k) for k in range(4)]
    [0, 2, 5, 8]
    """

    def __init__(self, content: bytes):
        self.size = len(content)
        self.before = list(accumulate(map(len, content.split(b"\n")), initial=0))  # bytes before row k, less newlines
        self.rows = len(self.before) - 1

    def start(self, row: int) -> int:
        return min(self.before[row] + row, self.size)


def edit_tree(tree, old: LineStarts, new: LineStarts, patch: bytes) -> bool:
    """Tell `tree` (parsed from `old`) where the unified diff `patch` turns it into `new`; False if it cannot.

    The tree can then be re-parsed from (`parser.parse(new_content, tree)`): tree-sitter reads
    again only what the hunks changed.
    """
    hunks = [tuple(int(g) if g is not None else 1 for g in m.groups()) for m in _UNIFIED_HUNK.finditer(patch)]
    if not hunks:
        return False
    for a, b, c, d in reversed(hunks):  # from the end: the edits before a hunk keep their offsets
        old_row, new_row = (a - 1 if b else a), (c - 1 if d else c)
        if old_row + b > old.rows or new_row + d > new.rows:
            return False
        start = old.start(old_row)
        length = new.start(new_row + d) - new.start(new_row)
        tree.edit(start_byte=start, old_end_byte=old.start(old_row + b), new_end_byte=start + length,
                  start_point=Point(old_row, 0), old_end_point=Point(old_row + b, 0),
                  new_end_point=Point(old_row + d, 0))
    return True


def edit_tree_bytes(tree, old: bytes, new: bytes) -> None:
    """Tell `tree` (parsed from `old`) that all of `old` but its common start and end with `new` changed.

    >>> _common_prefix(b"abcdef", b"abXdef"), _common_prefix(b"fed", b"fedcba")
    (2, 3)
    """
    start = _common_prefix(old, new)
    tail = _common_prefix(old[start:][::-1], new[start:][::-1])
    old_end, new_end = len(old) - tail, len(new) - tail
    tree.edit(start_byte=start, old_end_byte=old_end, new_end_byte=new_end, start_point=_point(old, start),
              old_end_point=_point(old, old_end), new_end_point=_point(new, new_end))


def reparse(lang: str, content: bytes, old: tuple | None = None, patch: bytes = b"",
            lines: LineStarts | None = None) -> tuple:
    """(tree of `content`, whether it was re-parsed from `old` rather than from nothing).

    `old` is (tree, LineStarts, bytes) of another version of the file: a copy of its tree is told
    what changed, by the unified diff `patch` from it when there is one (`lines`: `content`'s
    LineStarts), else by the bytes, and tree-sitter reads again only that. A diff that does not fit
    the texts means a parse from nothing.

    Where either version has a syntax error (a C++ header read as C, a file mid-edit), the tree
    is parsed from nothing: tree-sitter's error recovery can end differently on a re-parse than
    on a fresh parse (spdlog's bundled fmt/format.h, a7416149 -> 4479421c: 109 definitions
    re-parsed, 108 fresh), and which versions a process happened to keep (worker scheduling, cache
    size) must not change a result. Error-free trees re-parse to the fresh parse's tree.
    """
    tree = None
    if old is not None and not old[0].root_node.has_error:
        tree = old[0].copy()
        if patch:
            if not edit_tree(tree, old[1], lines or LineStarts(content), patch):
                tree = None
        else:
            edit_tree_bytes(tree, old[2], content)
    if tree is not None:
        tree = parser(lang).parse(content, tree)
        if not tree.root_node.has_error:
            return tree, True
    return parser(lang).parse(content), False


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common start of `a` and `b` (a binary search over slice comparisons: C speed)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(text: bytes, offset: int) -> Point:
    row = text.count(b"\n", 0, offset)
    return Point(row, offset - text.rfind(b"\n", 0, offset) - 1)


class BlobTrees:
    """The tree-sitter tree of each blob read whole, kept for the blobs read last (by id, up to
    `KEPT_BYTES` of their text); a blob changed from one still kept is re-parsed from that one's
    tree, where the diff changed it only; else, when the same path's last version is kept (its
    previous version went to another worker process, or a merge's diff is not from its old blob),
    from that one's tree, where the bytes differ.

        trees = BlobTrees()
        tree = trees.tree(new_blob, text, "python", old_blob, patch, path)   # patch: the unified diff, bytes
        definitions_in(tree, "python", (10, 40))
    """

    KEPT_BYTES = 16 << 20  # a tree takes about ten times its text

    def __init__(self):
        self.kept: OrderedDict[str, tuple] = OrderedDict()  # blob -> (lang, tree, LineStarts, content)
        self.kept_bytes = 0
        self.last: dict[str, str] = {}  # path -> the blob of it parsed last
        self.whole = 0  # parses from nothing (the others were re-parses of a kept tree)

    def tree(self, blob: str, text: str, lang: str, old_blob: str | None = None, patch: bytes = b"",
             path: str | None = None):
        hit = self.kept.get(blob)
        if hit is not None and hit[0] == lang:
            self.kept.move_to_end(blob)
            return hit[1]
        content = text.encode("utf-8", "surrogatepass")
        lines = LineStarts(content)
        before = self.kept.get(old_blob) if old_blob and patch else None
        if before is None or before[0] != lang:  # the version before is not kept: the path's last, by its bytes
            before, patch = self.kept.get(self.last.get(path)) if path is not None else None, b""
        tree, reused = reparse(lang, content, before[1:] if before is not None and before[0] == lang else None,
                               patch, lines)
        self.whole += not reused
        if path is not None:
            self.last[path] = blob
        self.kept[blob] = (lang, tree, lines, content)
        self.kept_bytes += lines.size
        while self.kept_bytes > self.KEPT_BYTES and len(self.kept) > 1:
            self.kept_bytes -= self.kept.popitem(last=False)[1][2].size
        return tree


def definition_boundaries(defs: list[Definition]) -> set[int]:
    """Rows where a cut is clean: where a definition starts, and just after one ends."""
    rows = set()
    for d in defs:
        rows.add(d.start)
        rows.add(d.end + 1)
    return rows


def heuristic_boundaries(lines: list[str]) -> set[int]:
    """For languages without a grammar: a non-blank line at indentation 0 that follows a blank line."""
    return {i for i in range(1, len(lines))
            if lines[i][:1] not in ("", " ", "\t", "\n", "\r") and not lines[i - 1].strip()}


_CONTEXT_NAME = re.compile(r"\b(?:def|class|fn|func|function|impl|struct|enum|trait|interface|mod|module|"
                           r"namespace|type)\s+(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*(?:(?:::|\.)[A-Za-z_$][\w$]*)*)")


def symbol_from_context(context: str) -> str | None:
    """A name from the function context git prints after a hunk header (`@@ ... @@ def area(w, h):`).

    >>> symbol_from_context("impl Counter {"), symbol_from_context("    def area(self):")
    ('impl Counter', 'area')
    """
    m = _CONTEXT_NAME.search(context)
    if m is None:
        return None
    return f"impl {m.group(1)}" if re.search(r"\bimpl\s", context[:m.end()]) else m.group(1)
