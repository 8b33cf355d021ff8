"""How complex a commit is: one score from its size and spread, and the changed functions' CCN.

    >>> commit_complexity([(10, 0), (5, 5)])["score"]
    8.785
    >>> [(f.name, f.ccn) for f in FunctionIndex(b"def f(x):\\n    return 1 if x and x > 2 else 0\\n", "python").touching(None)]
    [('f', 3)]

The score is `log2(1 + lines changed) * (1 + H)`, where H is the Shannon entropy (bits) of how
the changed lines spread over the files: big changes score higher, and a change spread evenly
over many files scores higher than the same number of lines in one file.

Changed functions: every language stage 2 has a tree-sitter grammar for (`core.parsers`:
Python, Rust, JavaScript, TypeScript, Go, Java, C, C++; the file's language as stage 2 decides it,
from the blob where its name leaves it open: a `.h` header that shows C++ is C++) is parsed once
per blob (an LRU keyed by blob id; a blob changed from one still kept is re-parsed from that one's tree, only where the
hunks changed it; one changed from a blob never parsed, such as a clean merge's result, from the
tree of its path's last parsed version), and only the functions that overlap an added or changed
line get a cyclomatic complexity (the tree is queried over each changed range and each such
function, not over the text between them): McCabe's 1 + the decision points in the function's own body (nested functions are
measured on their own), counted on the syntax tree's tokens the way lizard counts its tokens
(`if`, `for`, `while`, `catch`, `case`, `&&`, `||`, `?`, per language; Python's `elif`,
`except`, `finally`, `and`, `or`; Rust's `where`, `?`, `let ... else` and every match arm after
the first). tests/test_complexity.py checks it against lizard on real code.

The same tree gives stage 2 what its widening needs of the blob (`definitions_for`: the
definitions near the change's hunks, recorded with the file change), so that stage 2 need not
parse it again.

`FunctionWorkers` does this work beside the caller: in `jobs` worker processes (each with its
own cache and its own `git cat-file --batch`; every version of one path goes to the same worker,
so that its re-parses start from the tree of the version before), or, with `jobs=0`, in the
caller's process with the blobs asked a few commits ahead. Results come back in request order:
the output does not depend on `jobs`.
"""

from __future__ import annotations

import functools
import math
import re
import os
import zlib
from bisect import bisect_right
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from tree_sitter import Point, QueryCursor

from core.languages import content_may_decide, language_of, language_of_blob
from core.parallel import answer, die_with_parent, usable_cpus
from core.settings import MAX_CHUNK_TOKENS
from core.parsers import (LineStarts, container_types, definition_windows, definitions_near, file_rows, grammar,
                          hunk_spans, own_name, parser_language, qualified_name, query, reparse, row_ends, widen_chars)
from core.git_runner import BlobReader, Git

# `@@ -a,b +c,d @@` and combined `@@@ -a,b -c,d +e,f @@@`: the new side's start and length.
_HUNK = re.compile(rb"^@@@? (?:-\d+(?:,\d+)? )+\+(\d+)(?:,(\d+))? @@", re.M)

# Per language: the nodes that are functions (each gets its own CCN) and the tokens that are decision points.
_JS_FUNCTIONS = ("function_declaration", "function_expression", "function", "generator_function",
                 "generator_function_declaration", "arrow_function", "method_definition")
_C_DECISIONS = ("if", "for", "while", "catch", "case", "&&", "||", "?")
_PREPROCESSOR = ("#if", "#ifdef", "#ifndef", "#elif")
_JS_DECISIONS = ("if", "for", "while", "catch", "case", "&&", "||", "??")
_FUNCTIONS = {
    "python": ("function_definition",),
    "rust": ("function_item",),
    "javascript": _JS_FUNCTIONS, "typescript": _JS_FUNCTIONS, "tsx": _JS_FUNCTIONS,
    "go": ("function_declaration", "method_declaration", "func_literal"),
    "java": ("method_declaration", "constructor_declaration", "compact_constructor_declaration"),
    "c": ("function_definition",),
    "cpp": ("function_definition",),
}
_DECISIONS = {
    "python": ("if", "elif", "for", "while", "except", "finally", "and", "or", "case"),
    "rust": ("if", "for", "while", "where", "&&", "||", "?"),
    "c": _C_DECISIONS + _PREPROCESSOR, "cpp": _C_DECISIONS + _PREPROCESSOR,
    "javascript": _JS_DECISIONS, "typescript": _JS_DECISIONS, "tsx": _JS_DECISIONS,
}
# Rust: `let ... else` is a branch; a match with n arms adds n - 1 (the arms are captured, each match takes one off).
# A closure without parameters (`|| x`) is the token `||` to lizard. C and C++: lizard counts `#if`,
# `#ifdef`, `#ifndef`, `#elif` but not the operators of their conditions (captured as `x`, left out).
_EXTRA = {"rust": '(let_declaration "else" @d) (match_arm) @d (match_block) @m (closure_parameters) @z'}
_EXTRA["c"] = _EXTRA["cpp"] = "(preproc_if condition: (_) @x) (preproc_elif condition: (_) @x)"
# JavaScript and TypeScript: `?` only as the conditional operator (not `x?: T`), and, as lizard
# does, a default value of a parameter or a destructured name.
_EXTRA["javascript"] = '(ternary_expression "?" @d) (assignment_pattern) @d (object_assignment_pattern) @d'
_EXTRA["typescript"] = _EXTRA["tsx"] = _EXTRA["javascript"] + \
    " (required_parameter value: (_) @d) (optional_parameter value: (_) @d)"
_CODE_LINE = re.compile(rb"^[ \t]*(?![ \t\r\n#]|//|/\*|\*)", re.M)  # a line with code: not blank, not a comment
CACHE_BYTES = 8 << 20  # source bytes of parsed blobs kept (their trees take 10-40x that)
WHOLE_BLOBS = 20_000  # blobs whose every function is kept (an added file's), after their trees have gone
_UNDECIDED = object()  # a grammar that the blob's content decides, not read yet
LANGUAGES_KEPT = 65_536  # blobs whose language their content decided (a `.h` header: C or C++) kept


def commit_complexity(changes: list[tuple[int, int]]) -> dict:
    """Size, spread and score of a commit from its files' `(additions, deletions)`."""
    lines = [a + d for a, d in changes]
    total = sum(lines)
    entropy = -sum(n / total * math.log2(n / total) for n in lines if n) if total else 0.0
    return {
        "lines_added": sum(a for a, _ in changes),
        "lines_deleted": sum(d for _, d in changes),
        "files": len(changes),
        "entropy": round(entropy + 0.0, 3),
        "score": round(math.log2(1 + total) * (1 + entropy), 3),
    }


def changed_line_ranges(patch: bytes) -> list[tuple[int, int]]:
    r"""New-side `(first, last)` line ranges of added lines; a deletion marks the line after it.

    >>> changed_line_ranges(b"@@ -1,3 +1,4 @@\n a\n-b\n+B\n+c\n d\n")
    [(2, 3)]
    """
    ranges: list[tuple[int, int]] = []
    for m in _HUNK.finditer(patch):
        line = int(m.group(1))
        width = m.group(0).count(b"@") // 2  # 1 column of +/- per parent: 1, or 2 in a combined diff
        end = patch.find(b"\n@@", m.end())
        for text in patch[m.end():end if end >= 0 else len(patch)].split(b"\n")[1:]:
            marks = text[:width]
            if b"+" in marks:
                _extend(ranges, line)
                line += 1
            elif b"-" in marks:
                _extend(ranges, line)
            elif text[:1] != b"\\":
                line += 1
    return ranges


def _extend(ranges: list[tuple[int, int]], line: int) -> None:
    if ranges and ranges[-1][1] >= line - 1:
        ranges[-1] = (ranges[-1][0], max(ranges[-1][1], line))
    else:
        ranges.append((line, line))


def measurable(path: str) -> bool:
    """Whether there is a grammar for this file name (the languages of `core.parsers`)."""
    return parser_language(path) is not None


@dataclass(slots=True)
class Function:
    name: str
    start_line: int  # 1-based, inclusive
    end_line: int
    ccn: int
    nloc: int


class FunctionIndex:
    """One blob parsed once (or re-parsed from its previous version's tree); functions measured on demand.

    `previous` is the index of the blob this one was changed from and `patch` the unified diff
    between them: tree-sitter then re-parses only what the hunks changed (on a copy of the tree).
    Without a patch, what changed is told from the bytes: all but their common start and end.
    """

    def __init__(self, content: bytes, lang: str, previous: "FunctionIndex | None" = None, patch: bytes = b""):
        self.content = content
        self.lang = lang
        self._lines: LineStarts | None = None
        old = (previous.tree, previous.lines() if patch else None, previous.content) if previous is not None else None
        self.tree, self.incremental = reparse(lang, content, old, patch, self.lines() if patch else None)
        self.measured: dict[tuple[int, int], Function] = {}

    def lines(self) -> LineStarts:
        if self._lines is None:
            self._lines = LineStarts(self.content)
        return self._lines

    def touching(self, ranges: list[tuple[int, int]] | None) -> list[Function]:
        """Functions overlapping the 1-based line `ranges` (every function when None), in source order."""
        if ranges is None:  # every function: one query for them and their decision points
            captures = QueryCursor(_decision_query(self.lang)).captures(self.tree.root_node)
            nodes = _in_order(captures.get("f", []))
            if nodes and any((n.start_byte, n.end_byte) not in self.measured for n in nodes):
                self._measure(nodes, captures)
            return [self.measured[(n.start_byte, n.end_byte)] for n in nodes]
        if not ranges:
            return []
        # one query per range: one over the span from the first to the last would visit every node between
        found = {}
        for a, b in ranges:
            cursor = QueryCursor(_function_query(self.lang))
            cursor.set_point_range(Point(a - 1, 0), Point(b, 0))
            for n in cursor.captures(self.tree.root_node).get("f", []):
                found.setdefault((n.start_byte, n.end_byte), n)
        nodes = [n for n in _in_order(found.values())
                 if any(a <= n.end_point.row + 1 and n.start_point.row + 1 <= b for a, b in ranges)]
        new = [n for n in nodes if (n.start_byte, n.end_byte) not in self.measured]
        if new:
            captures: dict[str, list] = {}
            for start, end in _spans(new):  # the decision points of each outermost new function, not between
                cursor = QueryCursor(_decision_query(self.lang))
                cursor.set_byte_range(start, end)
                for name, got in cursor.captures(self.tree.root_node).items():
                    captures.setdefault(name, []).extend(got)
            self._measure(new, captures)
        return [self.measured[(n.start_byte, n.end_byte)] for n in nodes]

    def _measure(self, targets: list, captures: dict) -> None:
        """CCN of `targets` (sorted by start) from the decision query's `captures` over the bytes they span.

        Each decision point counts for the innermost function around it; the functions nested in
        a target are captured too, so that theirs do not count for it.
        """
        lo = targets[0].start_byte
        functions = sorted({(n.start_byte, n.end_byte) for n in captures.get("f", []) if lo <= n.start_byte}
                           | {(n.start_byte, n.end_byte) for n in targets})
        starts = [f[0] for f in functions]
        ccn = dict.fromkeys(functions, 1)
        skip = sorted((n.start_byte, n.end_byte) for n in captures.get("x", []))  # C's `#if` conditions
        for name, found in captures.items():
            weight = _WEIGHT.get(name)
            if weight is None:
                continue
            for n in found:
                b = n.start_byte
                if skip and any(s <= b < e for s, e in skip):
                    continue
                i = bisect_right(starts, b) - 1  # the innermost function around b starts last before it
                while i >= 0 and functions[i][1] <= b:
                    i -= 1
                if i >= 0:
                    ccn[functions[i]] += weight(n)
        for n in targets:
            key = (n.start_byte, n.end_byte)
            self.measured[key] = Function(self._name(n), n.start_point.row + 1, n.end_point.row + 1, ccn[key],
                                          self._nloc(n))

    def _name(self, node) -> str:
        """Its own name, else its holder's (`const f = () => {}`: `f`), qualified by the definitions
        around the holder (the holder is a definition itself: it does not qualify its own value)."""
        own = own_name(node, self.lang)
        if not own:
            parent = node.parent
            holder = parent.child_by_field_name("name") or parent.child_by_field_name("key") \
                or parent.child_by_field_name("left") if parent is not None else None
            own = holder.text.decode("utf-8", "replace") if holder is not None else "(anonymous)"
            node = parent if holder is not None else node
        return qualified_name(node, own, self.lang, container_types(self.lang))

    def _nloc(self, node) -> int:
        """Lines of the function with code on them (not blank, not only a comment)."""
        line_start = self.content.rfind(b"\n", 0, node.start_byte) + 1
        return len(_CODE_LINE.findall(self.content, line_start, node.end_byte))


def _spans(nodes: list) -> list[tuple[int, int]]:
    """The byte spans of `nodes` (outer before inner, in source order), those that overlap merged."""
    spans: list[tuple[int, int]] = []
    for n in nodes:
        if spans and n.start_byte < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], n.end_byte))
        else:
            spans.append((n.start_byte, n.end_byte))
    return spans


def _in_order(nodes) -> list:
    """Outer before inner, in source order."""
    return sorted(nodes, key=lambda n: (n.start_byte, -n.end_byte))


_WEIGHT = {
    "d": lambda n: 1,
    "m": lambda n: -any(c.type == "match_arm" for c in n.named_children),
    "z": lambda n: n.text == b"||",
}


@functools.cache
def _function_query_source(lang: str) -> str:
    types = [t for t in _FUNCTIONS[lang] if grammar(lang).id_for_node_kind(t, True)]
    return "[" + " ".join(f"({t})" for t in types) + "] @f"


def _function_query(lang: str):
    return query(lang, _function_query_source(lang))


def _decision_query(lang: str):
    return query(lang, _decision_query_source(lang))


@functools.cache
def _decision_query_source(lang: str) -> str:
    """Decision tokens (`d`), the extra rules of `_EXTRA`, and the functions (`f`) nested inside."""
    tokens = [t for t in _DECISIONS.get(lang, _C_DECISIONS) if grammar(lang).id_for_node_kind(t, False)]
    source = "[" + " ".join('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in tokens) + "] @d"
    return f"{source} {_EXTRA.get(lang, '')} {_function_query_source(lang)}"


def definitions_for(index: FunctionIndex, patch: bytes | None, max_chars: int) -> dict | None:
    """What stage 2 needs of this blob's tree to widen a change's hunks (`chunking.units.widen_hunks`),
    or None: `{"language", "windows", "found"}`, the definitions (`[start, end, name, lead]`, rows 0-based)
    that overlap the stretches of rows `definition_windows` gives for the hunks of `patch` (None: an
    added file, one hunk of every row) at stage 2's reach `max_chars`. Only for a blob that stage 2
    reads as these bytes (UTF-8, no CRLF: it turns CRLF into LF) and a one-parent diff with a change.
    """
    content = index.content
    if b"\r\n" in content:
        return None
    try:
        rows = file_rows(content.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    spans = ([(0, len(rows), 0, len(rows) - 1)] if rows else []) if patch is None else hunk_spans(patch)
    if not spans or all(lo is None for _, _, lo, _ in spans) or any(end > len(rows) for _, end, _, _ in spans):
        return None
    windows = definition_windows(spans, row_ends(rows), max_chars)
    return {"language": index.lang, "windows": windows,
            "found": [[d.start, d.end, d.name, d.lead] for d in definitions_near(index.tree, index.lang, windows)]}


class FunctionMeter:
    """Changed functions of blobs, each blob parsed at most once while it is kept.

    Parsed blobs are kept up to `cache_bytes` of source (their trees take 10-40 times that),
    least recently used out first. A blob changed from a kept one is parsed incrementally from
    that one's tree, which then is the first to leave: the file's newest version is what its
    next change starts from. Every function of a blob (what an added file needs) is kept for
    `WHOLE_BLOBS` blobs after its tree has gone: the same content added again (a copy, a revert)
    is neither read nor parsed.
    """

    def __init__(self, cache_bytes: int = CACHE_BYTES, max_chars: int = widen_chars(MAX_CHUNK_TOKENS)):
        self.cache_bytes = cache_bytes
        self.max_chars = max_chars  # stage 2's widening reach, which the definitions near a change are gathered for
        self.cache: OrderedDict[tuple[str, str], FunctionIndex] = OrderedDict()
        self.cached_bytes = 0
        # every function of a blob, and its definitions as an added file's change needs them
        self.whole: OrderedDict[tuple[str, str], tuple[list[Function], dict | None]] = OrderedDict()
        self.last: dict[str, str] = {}  # path -> the blob of it parsed last
        self.languages: OrderedDict[tuple[str, str], str] = OrderedDict()  # (blob, its name's language) -> language
        self.parsed = 0

    def needs(self, path: str, blob: str, ranges: list[tuple[int, int]] | None) -> bool:
        """Whether `measure` will want this blob's content (a parseable file not in the caches,
        or a file whose content may decide its language, not decided yet)."""
        lang = self._grammar(path, blob)
        if lang is _UNDECIDED:
            return True
        key = (blob, lang)
        return (lang is not None and ranges != [] and key not in self.cache
                and (ranges is not None or key not in self.whole))

    def language(self, path: str, blob: str) -> str | None:
        """The language of `path` at `blob` where its content decided it (`core.languages.content_may_decide`)."""
        return self.languages.get((blob, language_of(path))) if content_may_decide(path) else None

    def _grammar(self, path: str, blob: str):
        """The grammar of `path` at `blob` (None: none), or `_UNDECIDED` while its content must decide it."""
        if not content_may_decide(path):
            return parser_language(path)
        lang = self.languages.get((blob, language_of(path)))
        return _UNDECIDED if lang is None else parser_language(path, lang)

    def measure(self, path: str, blob: str, content_of, ranges: list[tuple[int, int]] | None,
                old_blob: str | None = None, patch: bytes = b"") -> tuple[list[dict], dict | None]:
        """(functions of blob `blob` (file `path`) overlapping `ranges` (all when None), with CCN; the
        definitions stage 2 needs to widen this change's hunks, or None: `definitions_for`).

        `content_of(blob)` gives the bytes (or None) on a cache miss; `patch`, the unified diff from
        `old_blob`, lets tree-sitter re-parse only the changed parts when that blob is cached.
        The grammar is the language of the path, or, where the content may decide it (a `.h`
        header that shows C++), of the blob, decided once per blob as stage 2 decides it.
        """
        lang, content = self._grammar(path, blob), None
        if lang is _UNDECIDED:
            content = content_of(blob)
            if content is None:
                return [], None
            decided = language_of_blob(path, content)
            self.languages[blob, language_of(path)] = decided
            if len(self.languages) > LANGUAGES_KEPT:
                self.languages.popitem(last=False)
            lang = parser_language(path, decided)
        if lang is None or ranges == []:  # no grammar, or only the language was asked (a rename, a file without one)
            return [], None
        key = (blob, lang)
        if ranges is None and key in self.whole:  # the blob again (a copy, a revert, a re-added file)
            self.whole.move_to_end(key)
            functions, defs = self.whole[key]
            return self._dicts(path, functions), defs
        index = self.cache.get(key)
        if index is None:
            content = content if content is not None else content_of(blob)
            if content is None:
                return [], None
            previous = self.cache.get((old_blob, lang)) if old_blob is not None and patch else None
            edits = patch
            if previous is not None:  # the file's next change starts from this version: the old one goes first
                self.cache.move_to_end((old_blob, lang), last=False)
            else:  # e.g. after a clean merge, whose result was not parsed: from this path's last version
                previous, edits = self.cache.get((self.last.get(path), lang)), b""
            index = FunctionIndex(content, lang, previous, edits)
            self.parsed += 1
            self.last[path] = blob
            self.cache[key] = index
            self.cached_bytes += len(content)
            while self.cached_bytes > self.cache_bytes and len(self.cache) > 1:
                self._drop(next(iter(self.cache)))
        else:
            self.cache.move_to_end(key)
        functions = index.touching(ranges)
        defs = definitions_for(index, None if ranges is None else patch, self.max_chars)
        if ranges is None:
            self.whole[key] = (functions, defs)
            if len(self.whole) > WHOLE_BLOBS:
                self.whole.popitem(last=False)
        return self._dicts(path, functions), defs

    @staticmethod
    def _dicts(path: str, functions: list[Function]) -> list[dict]:
        return [{"path": path, "name": f.name, "start_line": f.start_line, "end_line": f.end_line,
                 "cyclomatic_complexity": f.ccn, "nloc": f.nloc} for f in functions]

    def _drop(self, key: tuple[str, str]) -> None:
        self.cached_bytes -= len(self.cache.pop(key).content)


# (path, new blob, changed line ranges or None for all, old blob or None, unified diff from it)
Item = tuple[str, str, "list[tuple[int, int]] | None", "str | None", bytes]


def default_jobs() -> int:
    """Worker processes for function complexity: one per CPU beyond the one the scraper runs on, at most 4."""
    return max(0, min(4, usable_cpus() - 1))


def _ask(meter: FunctionMeter, reader: BlobReader, items: list[Item]) -> list[str]:
    """Request, in one go, the blobs of `items` that are not parsed yet; returns them."""
    asked = list(dict.fromkeys(blob for path, blob, ranges, *_ in items if meter.needs(path, blob, ranges)))
    reader.request(asked)
    return asked


def _measure(meter: FunctionMeter, reader: BlobReader, items: list[Item],
             asked: list[str]) -> tuple[list[tuple[list[dict], str | None, dict | None]], int]:
    """Changed functions of each item, its language where the blob decided it (else None) and the
    definitions stage 2 needs (`definitions_for`), the `asked` blobs taken from `reader`; and the
    blobs parsed so far."""
    contents = {blob: reader.get(blob) for blob in asked}

    def content_of(blob: str) -> bytes | None:
        return contents[blob] if blob in contents else reader.read(blob)
    out = []
    for path, blob, ranges, old, patch in items:
        functions, definitions = meter.measure(path, blob, content_of, ranges, old, patch)
        out.append((functions, meter.language(path, blob), definitions))
    return out, meter.parsed


_worker: tuple[FunctionMeter, BlobReader] | None = None  # in a worker process: its cache and its git reader


def _start_worker(parent: int, repo: str, max_chars: int) -> None:
    global _worker
    die_with_parent(parent)
    _worker = (FunctionMeter(max_chars=max_chars), BlobReader(Git(repo)))


def _work(items: list[Item]) -> tuple[list[tuple[list[dict], str | None, dict | None]], int]:
    assert _worker is not None
    return _measure(*_worker, items, _ask(*_worker, items))


class FunctionWorkers:
    """Changed functions of many commits' files, measured ahead of the caller; results in request order.

        workers = FunctionWorkers(git, jobs=2)
        ticket = workers.submit(items)       # as early as possible (a few commits ahead)
        found = workers.result(ticket)       # per item: (function dicts, its language where its blob decided it,
                                             #            the definitions stage 2 needs or None)

    `jobs` worker processes each own a `FunctionMeter` and a `git cat-file --batch`; an item goes
    to the worker its path hashes to. They are forked when this is made (the scraper makes it
    before it starts its `git log`s, so that no pipe of those is inherited): forking, unlike
    spawning, does not re-run the caller's `__main__`, which may be stdin, a notebook or a script
    without a main guard.
    With `jobs=0` the work is done in `result`, in this process.
    """

    def __init__(self, git: Git, jobs: int, max_chars: int = widen_chars(MAX_CHUNK_TOKENS)):
        self.jobs = jobs
        self.parsed = [0] * max(jobs, 1)  # blobs parsed, per worker
        if jobs:
            context = get_context("fork")
            self.pools = [ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker,
                                              initargs=(os.getpid(), str(git.repo), max_chars)) for _ in range(jobs)]
            for pool in self.pools:
                pool.submit(int)  # forks the worker now, before the caller opens its git pipes
        else:
            self.meter, self.reader = FunctionMeter(max_chars=max_chars), BlobReader(git)

    def submit(self, items: list[Item]) -> list:
        if not self.jobs:
            return [(0, list(range(len(items))), (items, _ask(self.meter, self.reader, items)))]
        parts: dict[int, list[int]] = {}
        for k, (path, *_) in enumerate(items):
            parts.setdefault(zlib.crc32(path.encode("utf-8", "surrogateescape")) % self.jobs, []).append(k)
        return [(w, ks, self.pools[w].submit(_work, [items[k] for k in ks])) for w, ks in sorted(parts.items())]

    def result(self, ticket: list) -> list[tuple[list[dict], str | None, dict | None]]:
        out: list[tuple[list[dict], str | None, dict | None]] = [([], None, None)] * sum(len(ks) for _, ks, _ in ticket)
        for w, ks, job in ticket:
            if isinstance(job, Future):
                functions, self.parsed[w] = answer(job, "a function complexity worker process",
                                                   "--jobs 0, or the pipeline's --scrape-jobs 0: none")
            else:
                functions, self.parsed[w] = _measure(self.meter, self.reader, *job)
            for k, found in zip(ks, functions):
                out[k] = found
        return out

    def close(self) -> None:
        if self.jobs:
            for pool in self.pools:
                pool.shutdown(cancel_futures=True)
        else:
            self.reader.close()
