"""How complex a commit is: one score from its size and spread, and the changed functions' CCN.

    >>> commit_complexity([(10, 0), (5, 5)])["score"]
    8.785

The score is `log2(1 + lines changed) * (1 + H)`, where H is the Shannon entropy (bits) of how
the changed lines spread over the files: big changes score higher, and a change spread evenly
over many files scores higher than the same number of lines in one file.

Changed functions: for Python files Python's own parser (`ast`) counts the decision points (lizard's
Python reader is slow, even quadratic on f-strings); for the other languages lizard parses, (up to 4 files of at most 64 KiB per
commit, in the commit's file order; the rest are counted as skipped), the new file
content is read through one long-running `git cat-file --batch` process and lizard measures the
cyclomatic complexity of every function that overlaps an added or changed line is measured.
"""

from __future__ import annotations

import ast
import math
import re
import subprocess

from lizard import analyze_file
from lizard_languages import get_reader_for

from scrapers.git_log_stream import Git

# lizard reads ~2 MB/s: these bounds keep a commit that rewrites hundreds of files affordable
MAX_FUNCTION_FILE_BYTES = 64 * 1024
MAX_FUNCTION_FILES_PER_COMMIT = 4
# `@@ -a,b +c,d @@` and combined `@@@ -a,b -c,d +e,f @@@`: the new side's start and length.
_HUNK = re.compile(rb"^@@@? (?:-\d+(?:,\d+)? )+\+(\d+)(?:,(\d+))? @@", re.M)


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


class BlobReader:
    """Reads blobs by hash through one `git cat-file --batch` process (one request at a time)."""

    def __init__(self, git: Git):
        self.proc = subprocess.Popen(git.argv(["cat-file", "--batch"]), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=git.env)

    def read(self, blob: str) -> bytes | None:
        """The blob's content, or None when it is missing or not a blob."""
        self.proc.stdin.write(blob.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3:
            return None  # "<sha> missing"
        data = self.proc.stdout.read(int(header[2]) + 1)[:-1]
        return data if header[1] == b"blob" else None

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


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
    """Whether there is a parser for this file name (Python's `ast`, or lizard)."""
    return path.endswith((".py", ".pyi")) or get_reader_for(path) is not None


def changed_functions(path: str, content: bytes, ranges: list[tuple[int, int]] | None) -> list[dict]:
    """Functions in `content` overlapping `ranges` (all of them when `ranges` is None), with CCN."""
    text = content.decode("utf-8", "replace")
    if path.endswith((".py", ".pyi")):
        functions = _python_functions(text)
    else:
        functions = [(fn.name, fn.start_line, fn.end_line, fn.cyclomatic_complexity, fn.nloc)
                     for fn in analyze_file.analyze_source_code(path, text).function_list]
    return [{"path": path, "name": name, "start_line": start, "end_line": end, "cyclomatic_complexity": ccn,
             "nloc": nloc}
            for name, start, end, ccn, nloc in functions
            if ranges is None or any(a <= end and start <= b for a, b in ranges)]


_BRANCHES = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.IfExp, ast.match_case)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _python_functions(text: str) -> list[tuple[str, int, int, int, int]]:
    """`(name, start, end, ccn, nloc)` per function: CCN = 1 + branches + comprehension clauses +
    extra boolean operands, as lizard counts them; nested functions are measured on their own."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.split("\n")
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, _FUNCTIONS):
            continue
        ccn = 1
        stack = list(ast.iter_child_nodes(fn))
        while stack:
            node = stack.pop()
            if isinstance(node, _FUNCTIONS + (ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(node, _BRANCHES):
                ccn += 1
            elif isinstance(node, ast.comprehension):
                ccn += 1 + len(node.ifs)
            elif isinstance(node, ast.BoolOp):
                ccn += len(node.values) - 1
            stack.extend(ast.iter_child_nodes(node))
        body = lines[fn.lineno - 1:fn.end_lineno]
        nloc = sum(1 for ln in body if ln.strip() and not ln.lstrip().startswith("#"))
        out.append((fn.name, fn.lineno, fn.end_lineno, ccn, nloc))
    return sorted(out, key=lambda f: (f[1], f[0]))
