"""The splittable units a chunk is made of: diff hunks (diff chunks) and blocks of a file (snapshots).

    >>> hunks = parse_hunks("@@ -1,2 +1,3 @@ def area(w, h):\\n x = 1\\n-y = 2\\n+y = 3\\n+z = 4\\n", "python")
    >>> hunks[0].render()
    '@@ -1,2 +1,3 @@ def area(w, h):\\n x = 1\\n-y = 2\\n+y = 3\\n+z = 4\\n'
    >>> hunks[0].symbols()
    ['area']

A unit knows its text, the function/class names it touches (`symbols`), and how to cut itself
into smaller units at function/class boundaries (`split`). A diff hunk takes its definitions
from the new file's tree where `widen_hunks` had it parsed whole (`Hunk.known`); otherwise it is
parsed with tree-sitter on its own new-side text (context and added lines; the old side for a
pure deletion): the parser recovers from the partial file, so definitions that start inside the
hunk are found. A changed line outside any of them takes the name git printed after the `@@`
(git's function context). A piece of a split hunk gets its own `@@ -a,b +c,d @@` header with
line numbers recomputed, so every piece is still a valid hunk.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from itertools import accumulate, count
from dataclasses import dataclass
from typing import Callable, NamedTuple

from core.parsers import Definition, definition_boundaries, definition_windows, definitions, file_rows, \
    heuristic_boundaries, qualify, row_ends, symbol_from_context
from chunking.split import cut_text, split_rows

# `@@ -a,b +c,d @@ ctx`, and for a merge's combined diff `@@@ -a,b -c,d +e,f @@@ ctx` (one `-` per parent)
_HUNK_HEADER = re.compile(r"(@@+) ((?:-\d+(?:,\d+)? )+)\+(\d+)(?:,(\d+))? \1 ?(.*)")


class DiffFormatError(ValueError):
    """A diff text this stage cannot read (the commit falls back to one raw chunk)."""


def _join_symbols(names: list[str]) -> list[str]:
    seen = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


@dataclass(slots=True)
class _Parsed:
    """One tree-sitter parse of a unit's lines, shared by every piece cut from it.

    `owner[i]` is the innermost definition around line i (None outside all), `boundaries` the
    sorted line indexes where a cut is clean.
    """

    owner: list[Definition | None]
    boundaries: list[int]
    defs: list[Definition]
    first_line: dict[Definition, int]  # the line each definition starts on
    spans: list[tuple[int, int]]  # [first, end) lines of each definition that starts on a line here

    def cuts(self, a: int, b: int, sizes: list[float], target: float) -> list[int]:
        """Boundaries strictly inside [a, b), relative to a, but those inside a definition that lies in
        [a, b) and fits in `target` by itself (`sizes`: of lines a..b-1): its nested definitions do
        not cut it, so that it stays in one piece.

        >>> p = _Parsed([], [1, 2, 3, 4], [], {}, [(1, 4), (2, 3)])
        >>> p.cuts(0, 5, [1.0] * 5, 3.0), p.cuts(0, 5, [1.0] * 5, 2.0)
        ([1, 4], [1, 2, 3, 4])
        """
        cuts = [i - a for i in self.boundaries[bisect_right(self.boundaries, a):bisect_left(self.boundaries, b)]]
        if not cuts:
            return cuts
        total = list(accumulate(sizes, initial=0.0))
        depth = [0] * (b - a + 1)  # +1 after each fitting definition's first line, -1 at its end
        for first, end in self.spans:
            if a <= first and end <= b and end - first > 1 and total[end - a] - total[first - a] <= target:
                depth[first - a + 1] += 1
                depth[end - a] -= 1
        inside = list(accumulate(depth))
        return [c for c in cuts if not inside[c]]


def _analyse(code_lines: list[str], rows: list[int | None], lang: str | None,
             defs: list[Definition] | None = None) -> _Parsed:
    """Parse `code_lines` (or take their `defs`, known from the whole file: rows relative to
    code_lines[0], a definition may start above it); rows[i] is unit line i's row in that code
    (None: not on this side)."""
    if lang is None:
        bounds, defs = heuristic_boundaries(code_lines), []
    else:
        if defs is None:
            defs = definitions("\n".join(code_lines) + "\n", lang)
        bounds = {_past_blank(code_lines, r) for r in definition_boundaries(defs) if r >= 0}
    by_row: list[Definition | None] = [None] * (len(code_lines) + 1)
    for d in defs:  # outermost first, so inner definitions overwrite
        start = max(d.start, 0)
        by_row[start:d.end + 1] = [d] * max(0, min(d.end, len(code_lines)) + 1 - start)
    line_of_row, owner = {}, []
    for i, r in enumerate(rows):
        if r is not None and r not in line_of_row:
            line_of_row[r] = i
        owner.append(by_row[r] if r is not None and r < len(by_row) else None)
    first_line = {d: line_of_row[d.start] for d in defs if d.start in line_of_row}
    spans = [(first, line_of_row.get(d.end + 1, len(rows))) for d, first in first_line.items()]
    return _Parsed(owner, sorted(line_of_row[r] for r in bounds if r in line_of_row), defs, first_line, spans)


def _past_blank(code_lines: list[str], row: int) -> int:
    """The first non-blank row from `row` on: a piece cut there starts with code, the blank lines end the one before."""
    while row < len(code_lines) and not code_lines[row].strip():
        row += 1
    return row


@dataclass(slots=True)
class _HunkInfo:
    """What the pieces of one original hunk share: its parse, changed lines, old/new line counts."""

    parsed: _Parsed
    changed: list[bool]  # line i is a change on the parsed side
    indented: list[bool]  # line i's code starts with whitespace
    old_before: list[list[int]]  # per parent: its lines before line i
    new_before: list[int]
    whole_file: bool = False  # the definitions are the whole new file's, named with all they are nested in


@dataclass(slots=True)
class Hunk:
    """One `@@` hunk of a file's diff (or a piece of one): start lines, git's function context, lines."""

    old_starts: list[int]  # one per parent (two or more in a merge's combined diff)
    new_start: int
    context: str
    lines: list[str]
    lang: str | None
    base: int = 0  # index of lines[0] in the original hunk
    _info: _HunkInfo | None = None
    _text: str | None = None
    known: list[Definition] | None = None  # the new file's definitions around the hunk (0-based rows), if parsed whole

    def render(self) -> str:
        if self._text is None:
            self._text = self._render()
        return self._text

    def _render(self) -> str:
        w = len(self.old_starts)
        if w == 1:  # an ordinary diff: count by first character (the loops below, in one pass of C)
            firsts = [l[:1] for l in self.lines]
            removed, context = firsts.count("-"), firsts.count(" ")
            new_n = len(firsts) - removed - firsts.count("\\")
            return (f"@@ -{_shown(self.old_starts[0], context + removed)},{context + removed} "
                    f"+{_shown(self.new_start, new_n)},{new_n} @@"
                    f"{' ' + self.context if self.context else ''}\n" + "".join(l + "\n" for l in self.lines))
        old_ns = [sum(1 for l in self.lines if l[k:k + 1] in (" ", "-")) for k in range(w)]
        olds = " ".join(f"-{_shown(start, n)},{n}" for start, n in zip(self.old_starts, old_ns))
        new_n = sum(1 for l in self.lines if _on_new_side(l, w))
        ctx = f" {self.context}" if self.context else ""
        at = "@" * (w + 1)
        return f"{at} {olds} +{_shown(self.new_start, new_n)},{new_n} {at}{ctx}\n" + "".join(l + "\n" for l in self.lines)

    def _parse(self) -> _HunkInfo:
        if self._info is None:
            w = len(self.old_starts)
            if w == 1:
                code, rows, changed, old_before, new_before, new_side = _walk_unified(self.lines)
            else:
                code, rows, changed, old_before, new_before, new_side = _walk_combined(self.lines, w)
            known = None
            if self.known is not None and new_side:  # rows of the whole file, moved to the hunk's first line
                top = self.new_start - 1
                known = [Definition(d.start - top, d.end - top, d.name, d.lead) for d in self.known
                         if d.end >= top and d.start < top + len(code)]
            self._info = _HunkInfo(_analyse(code, rows, self.lang, known), changed,
                                   [l[w:w + 1] in (" ", "\t") for l in self.lines], old_before, new_before,
                                   known is not None)
        return self._info

    def symbols(self) -> list[str]:
        info = self._parse()
        ctx = symbol_from_context(self.context)
        names, last, w = [], object(), len(self.old_starts)
        for i in range(self.base, self.base + len(self.lines)):
            if not info.changed[i]:
                continue
            d = info.parsed.owner[i]
            if d is last:
                continue
            if d is None:
                if not self.lines[i - self.base][w:].strip():
                    continue  # a blank line between definitions is no one's
                names.append(ctx)
            elif not info.whole_file and self._starts_indented(d):  # a method whose class line is above: git named it
                names.append(qualify(d.name, ctx, self.lang))
            else:
                names.append(d.name)
            last = d
        if not names:  # no changed line, or blank ones only
            names.append(ctx)
        return _join_symbols(names)

    def _starts_indented(self, d: Definition) -> bool:
        first = self._info.parsed.first_line.get(d)
        return first is not None and self._info.indented[first]

    def split(self, target: float, ratio: float) -> list["Hunk"]:
        """Pieces of this hunk within `target` estimated tokens, cut at function/class boundaries first.

        A piece with no changed line (context between two changes far apart) is left out.
        """
        info = self._parse()
        sizes = [(len(l) + 1) * ratio for l in self.lines]
        pieces = []
        for a, b in split_rows(sizes, info.parsed.cuts(self.base, self.base + len(self.lines), sizes, target), target):
            if b - a == 1 and sizes[a] > target:  # one line alone over budget: the only mid-line cut
                line, w = self.lines[a], len(self.old_starts)
                pieces.extend(self._piece(a, a + 1, [line[:w] + part])
                              for part in cut_text(line[w:], int(sizes[a] // target) + 1))
            elif any(info.changed[self.base + a:self.base + b]):  # pieces of context alone are left out
                pieces.append(self._piece(a, b, self.lines[a:b]))
        return pieces

    def _piece(self, a: int, b: int, lines: list[str]) -> "Hunk":
        info, i = self._info, self.base + a
        return Hunk([start + before[i] - before[self.base] for start, before in zip(self.old_starts, info.old_before)],
                    self.new_start + info.new_before[i] - info.new_before[self.base],
                    self.context, lines, self.lang, i, info)


def _walk_combined(lines: list[str], w: int) -> tuple:
    """(code, rows, changed, old_before, new_before, new_side) of a hunk's lines with `w` parent columns.

    The code is the new side's lines (the old side's for a pure deletion: `new_side` False) less their
    columns; rows[i] is line i's index in it (None: not on that side); changed[i]: a column marks
    line i; old_before[k][i] / new_before[i]: parent k's / the new side's lines before line i.
    """
    new_side = any("+" in l[:w] for l in lines)  # else a pure deletion: parse the old side
    code, rows, changed, old_before, new_before = [], [], [], [[] for _ in range(w)], []
    n_old, n_new = [0] * w, 0
    for l in lines:
        prefix = l[:w]
        for k in range(w):
            old_before[k].append(n_old[k])
            n_old[k] += prefix[k:k + 1] in (" ", "-")
        new_before.append(n_new)
        first = prefix[:1]
        on_new = "-" not in prefix and first != "\\"  # _on_new_side, inline: this loop sees every line
        n_new += on_new
        if (on_new if new_side else "+" not in prefix) and first != "\\":
            rows.append(len(code))
            code.append(l[w:])
            changed.append(prefix.strip() != "")
        else:
            rows.append(None)
            changed.append(False)
    return code, rows, changed, old_before, new_before, new_side


def _walk_unified(lines: list[str]) -> tuple:
    """`_walk_combined(lines, 1)` in list comprehensions (the loops run in C): most hunks have one parent.

    >>> lines = [" a", "-b", "+c", "\\\\ No newline at end of file"]
    >>> _walk_unified(lines) == _walk_combined(lines, 1)
    True
    """
    firsts = [l[:1] for l in lines]
    new_side = "+" in firsts
    on_new = [f != "-" and f != "\\" for f in firsts]
    kept = on_new if new_side else [f != "+" and f != "\\" for f in firsts]
    code = [l[1:] for l, k in zip(lines, kept) if k]
    at = count()
    rows = [next(at) if k else None for k in kept]
    changed = [k and f != " " and f != "" for f, k in zip(firsts, kept)]
    old_before = list(accumulate((f == " " or f == "-" for f in firsts), initial=0))
    new_before = list(accumulate(on_new, initial=0))
    old_before.pop()
    new_before.pop()
    return code, rows, changed, [old_before], new_before, new_side


def _first_line(start: str, count: str) -> int:
    """The first line of a side of a hunk header: git writes the line *before* the hunk when it has
    no line on that side (`-5,0`: after line 5), and it is kept here as the line after (6), so that
    the starts of widened hunks and of pieces are counted the same way."""
    return int(start) + (count == "0")


def _shown(start: int, count: int) -> int:
    """A side's start as git writes it in a hunk header (the line before, for a side without lines).

    >>> [h.render().split(" @@")[0] for h in parse_hunks("@@ -5,0 +6,2 @@\\n+a\\n+b\\n", None)]
    ['@@ -5,0 +6,2']
    """
    return start - (count == 0)


def _on_new_side(line: str, width: int) -> bool:
    """A hunk line is in the new file when no parent column marks it removed."""
    return "-" not in line[:width] and line[:1] != "\\"


def parse_hunks(diff: str, lang: str | None) -> list[Hunk]:
    """The hunks of one file's unified or combined diff (lines before the first `@@`, such as `---`/`+++`, are dropped)."""
    hunks: list[Hunk] = []
    for line in diff.split("\n"):
        if line.startswith("@@"):
            m = _HUNK_HEADER.match(line)
            if m is None:
                raise DiffFormatError(f"bad hunk header: {line[:80]!r}")
            olds = [_first_line(*part[1:].partition(",")[::2]) for part in m.group(2).split()]
            hunks.append(Hunk(olds, _first_line(m.group(3), m.group(4)), m.group(5).strip(), [], lang))
        elif hunks and line[:1] in (" ", "+", "-", "\\"):
            hunks[-1].lines.append(line)
        elif hunks and line == "":
            continue  # the split's final empty string, or a blank context line stripped of its space
        elif hunks:
            raise DiffFormatError(f"unexpected line in a hunk: {line[:80]!r}")
    return hunks


@dataclass(slots=True)
class Block:
    """Consecutive lines [start, end) of one file (a snapshot); `parsed` is the whole file's parse."""

    lines: list[str]  # the whole file's lines, shared
    start: int
    end: int
    parsed: _Parsed
    _text: str | None = None

    @classmethod
    def whole_file(cls, text: str, lang: str | None) -> "Block":
        lines = file_rows(text)
        return cls(lines, 0, len(lines), _analyse(lines, list(range(len(lines))), lang))

    def render(self) -> str:
        if self._text is None:
            self._text = "".join(l + "\n" for l in self.lines[self.start:self.end])
        return self._text

    def symbols(self) -> list[str]:
        """Definitions starting in the block (outermost ones), else the one the block sits inside."""
        inside = [d for d in self.parsed.defs if self.start <= d.start < self.end]
        top = [d.name for d in inside if not any(o is not d and o.start <= d.start and d.end <= o.end
                                                   and (o.start, -o.end) < (d.start, -d.end) for o in inside)]
        if top:
            return _join_symbols(top)
        d = self.parsed.owner[self.start] if self.start < len(self.parsed.owner) else None
        return [d.name] if d is not None else []

    def split(self, target: float, ratio: float) -> list["Block"]:
        sizes = [(len(l) + 1) * ratio for l in self.lines[self.start:self.end]]
        out = []
        for a, b in split_rows(sizes, self.parsed.cuts(self.start, self.end, sizes, target), target):
            if b - a == 1 and sizes[a] > target:
                for part in cut_text(self.lines[self.start + a], int(sizes[a] // target) + 1):
                    out.append(Block([part], 0, 1, _Parsed([None], [], [], {}, [])))
            else:
                out.append(Block(self.lines, self.start + a, self.start + b, self.parsed))
        return out


def _widest(defs: list[Definition], lo: int, hi: int, start: int, end: int, ends: list[int],
            max_chars: int) -> tuple[int, int]:
    """[a, b): from the outermost definition around row `lo` to the outermost around row `hi` that fit
    in `max_chars` together (either side may stay the hunk's own `start` / `end`); a definition from
    its lead (doc comment, attributes) first, else from its own first row."""
    n = len(ends) - 1
    around_lo = [a for d in defs if d.start <= lo <= d.end
                 for a in ((d.start, d.start + d.lead) if d.lead and d.start + d.lead <= lo else (d.start,))] + [None]
    around_hi = [min(d.end + 1, n) for d in defs if d.start <= hi <= d.end] + [None]
    for a in around_lo:  # outermost first: the largest unit that fits
        for b in around_hi:
            if (a, b) != (None, None) and ends[b if b is not None else end] - ends[a if a is not None else start] <= max_chars:
                return (a if a is not None else start), (b if b is not None else end)
    return start, end


def _own_start(defs: list[Definition], lo: int, start: int, rows: list[str]) -> int:
    """Where a hunk (from row `start`, first changed row `lo`) stops showing other code: at a
    definition around `lo` that starts after `start`, or past the definitions that end before `lo`
    and the blank rows after them.

    >>> _own_start([Definition(0, 2, "f"), Definition(4, 9, "g")], 6, 1, ["def f():", " 1", " 2", "", "def g():"])
    4
    """
    own = [d.start for d in defs if start < d.start <= lo <= d.end]
    ended = [d.end + 1 for d in defs if start <= d.end < lo]
    a = max(own + ended, default=start)
    while a < lo and a not in own and not rows[a].strip():
        a += 1
    return a


def widen_hunks(hunks: list[Hunk], text: str, lang: str | None, max_chars: int,
                near: Callable[[list[list[int]]], list[Definition]]) -> list[Hunk]:
    """Hunks of a one-parent diff widened to whole definitions of the new file `text`: the outermost
    definition around the first changed line to the outermost around the last, while the hunk stays
    within `max_chars` (context before / after those definitions is dropped); hunks that come to touch
    become one. A hunk that cannot be widened at its start still drops the leading context lines that
    belong to another definition (`_own_start`).

    Context lines added come from `text`; when the hunks do not match `text` line for line (or a
    language has no grammar) the hunks come back unchanged. `near(windows)` gives the definitions of
    `text` that overlap the stretches of rows `definition_windows` names (0-based `[first, last]`),
    outermost first (`definitions_near`); the hunks that come back keep them (`Hunk.known`) for their
    symbols and cut points.
    """
    if lang is None or not hunks or any(len(h.old_starts) != 1 or h.new_start < 1 for h in hunks):
        return hunks
    rows = file_rows(text)
    ends = row_ends(rows)
    walked = _walk(hunks, rows)
    if walked is None:
        return hunks  # the diff and the blob disagree: leave the file as git showed it
    touched = [r for _, changed, _ in walked for r in changed]
    if not touched:
        return hunks
    # every definition that could fit around a change, and every one a hunk overlaps: one query per
    # stretch of rows near the hunks (not the rows between hunks far apart)
    defs = near(definition_windows([(h.new_start - 1, row, min(changed, default=None), max(changed, default=None))
                                    for h, (_, changed, row) in zip(hunks, walked)], ends, max_chars))
    for h in hunks:
        h.known = defs
    spans: list[Span] = []
    for h, (at, changed, row) in zip(hunks, walked):
        start, end, lines, old = h.new_start - 1, row, h.lines, h.old_starts[0]
        a, b = start, end
        if changed:
            a, b = _widest(defs, min(changed), max(changed), start, end, ends,
                           max_chars - sum(len(l) for l in h.lines if l[:1] == "-"))
            if a == start:  # not widened: the context of another definition before the change is dropped
                a = _own_start(defs, min(changed), start, rows)
            # the hunk's context lines outside [a, b) are dropped (a changed line never is)
            first = next(k for k, r in enumerate(at) if lines[k][:1] != " " or r >= a)
            last = next(k for k in range(len(lines) - 1, -1, -1) if lines[k][:1] != " " or at[k] < b) + 1
            dropped = sum(1 for l in lines[:first] if l[:1] == " ")
            old, start = old + dropped, start + dropped
            end = start + sum(1 for l in lines[first:last] if l[:1] in (" ", "+"))
            lines = lines[first:last] if first or last < len(lines) else lines
            a, b = min(a, start), max(b, end)
        spans.append(Span(a, lines, start, end, b, old))
    if all(sp.lines is h.lines and sp.start == sp.kept_start and sp.kept_end == sp.end
           for sp, h in zip(spans, hunks)) and all(nxt.start > cur.end for cur, nxt in zip(spans, spans[1:])):
        return hunks  # nothing to widen: the caller can tell by identity
    return _joined(spans, hunks, rows, defs)


def _walk(hunks: list[Hunk], rows: list[str]) -> list[tuple[list, list[int], int]] | None:
    """Per hunk: each line's row in the new file (None: a removed line), its changed rows, its end row;
    None when a context or added line differs from `rows`."""
    walked = []
    for h in hunks:
        row, at, changed = h.new_start - 1, [], []
        for line in h.lines:
            c = line[:1]
            at.append(row if c in (" ", "+") else None)
            if c in ("+", "-"):
                changed.append(row)
            if c in (" ", "+"):
                if row >= len(rows) or rows[row] != line[1:]:
                    return None
                row += 1
        walked.append((at, changed, row))
    return walked


class Span(NamedTuple):
    """One hunk widened (rows are 0-based rows of the new file): what `widen_hunks` builds a new hunk from."""

    start: int          # the widened hunk's first row
    lines: list[str]    # the hunk's own lines that are kept (context outside [start, end) dropped)
    kept_start: int     # the first row of those lines
    kept_end: int       # the row after them
    end: int            # the row after the widened hunk
    old_start: int      # the old file's line number of the kept lines' first line


def _joined(spans: list[Span], hunks: list[Hunk], rows: list[str], defs: list[Definition]) -> list[Hunk]:
    """One hunk per run of overlapping spans: the rows between and around them as context lines."""
    out: list[Hunk] = []
    group: list[tuple[Span, Hunk]] = []
    for span, h in zip(spans + [None], hunks + [None]):
        if group and (span is None or span.start > max(g.end for g, _ in group)):
            a, (first, first_hunk) = group[0][0].start, group[0]
            lines = [" " + r for r in rows[a:first.kept_start]]
            for k, (sp, _) in enumerate(group):
                if k:
                    lines.extend(" " + r for r in rows[group[k - 1][0].kept_end:sp.kept_start])
                lines.extend(sp.lines)
            lines.extend(" " + r for r in rows[group[-1][0].kept_end:max(g.end for g, _ in group)])
            grow = first.kept_start - a
            out.append(Hunk([first.old_start - grow], first.kept_start + 1 - grow, first_hunk.context, lines,
                            first_hunk.lang, known=defs))
            group = []
        if span is not None:
            group.append((span, h))
    return out
