"""Benchmark tasks from the repository's future: the test period's code and test changes.

    tasks = build_tasks(Git(repo), test_chunk_map, lines=100, hunks=50, seed=0)
    preds = complete(model, tok, tasks_of(tasks, "line"), max_new_tokens=48, device=device)
    scores(tasks, preds)          # exact match and edit similarity, overall and per language / category

For every (commit, file) of the test split whose category is code or tests, the file's change is
read from the repository (`git diff -U0 PARENT COMMIT -- PATH`, first parent) and its parent's
version (`git show PARENT:PATH`). Each task's prompt starts with a header as the training chunks
have it (`commit DATE SUBJECT`, `file PATH`), then the file:

    line     next-line completion: the parent's version up to the hunk, then the hunk's added lines
             before the chosen one; the answer is the chosen added line (one per hunk at most); the
             prediction is the first non-blank line generated (the answer is never blank)
    infill   fill-in-the-middle for models with FIM tokens: a hunk's added lines (1-8 of them) are
             the middle, the parent's file before and after the hunk the prefix and the suffix

Prediction and answer are compared with whitespace runs collapsed: exact match (%) and edit
similarity (difflib ratio x 100, CodeXGLUE's measure without its rounding).
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import asdict, dataclass

CODE = ("code", "tests")
MAX_INFILL_LINES = 8
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(slots=True)
class Task:
    kind: str             # line or infill
    commit: str
    path: str
    language: str
    category: str
    header: str           # "commit DATE SUBJECT\nfile PATH\n"
    prefix: str           # the file before the answer
    suffix: str           # infill: the file after the middle; line: ""
    answer: str

    def record(self) -> dict:
        d = asdict(self)
        d["prefix"], d["suffix"] = d["prefix"][-200:], d["suffix"][:200]
        return d


def hunks(diff: str) -> list[tuple[int, int, list[str]]]:
    """(old start, old count, added lines) of each hunk of a `git diff -U0`; old start is 1-based.

    >>> hunks("@@ -3,0 +4,2 @@ def f():\\n+    a = 1\\n+    b = 2\\n@@ -9 +10 @@\\n-x\\n+y\\n")
    [(3, 0, ['    a = 1', '    b = 2']), (9, 1, ['y'])]
    """
    out = []
    for line in diff.splitlines():
        m = _HUNK.match(line)
        if m:
            out.append((int(m.group(1)), 1 if m.group(2) is None else int(m.group(2)), []))
        elif out and line.startswith("+"):
            out[-1][2].append(line[1:])
    return out


def _before(old: list[str], start: int, count: int) -> list[str]:
    """The parent's lines before a hunk: git numbers a pure insertion by the line it follows."""
    return old[:start] if count == 0 else old[:start - 1]


def _parent_version(git, parent: str, path: str) -> str:
    """The file as the parent has it; "" when the commit adds it."""
    from core.git_runner import GitError
    try:
        return git.run("show", f"{parent}:{path}").decode("utf-8")
    except GitError:
        git.run("rev-parse", "--verify", "--quiet", parent + "^{commit}")  # no parent at all: GitError again
        return ""


def file_tasks(git, commit: str, path: str, row: dict, rng: random.Random) -> list[Task]:
    """The line and infill tasks of one file of one commit."""
    from core.git_runner import GitError
    try:
        meta = git.run("show", "-s", "--format=%cs%x00%s", commit).decode("utf-8", "replace").strip()
        date, subject = meta.split("\0", 1)
        parent = commit + "^"
        diff = git.run("diff", "-U0", "--no-color", "--no-ext-diff", parent, commit, "--", path).decode("utf-8")
        old_text = _parent_version(git, parent, path)
    except (GitError, UnicodeDecodeError, ValueError):
        return []  # a root commit, a binary or non-UTF-8 file: no task
    old = old_text.split("\n")[:-1] if old_text.endswith("\n") else old_text.split("\n") if old_text else []
    header = f"commit {date} {subject}\nfile {path}\n"
    out = []
    for start, count, added in hunks(diff):
        before = "".join(x + "\n" for x in _before(old, start, count))
        lines = [i for i, x in enumerate(added) if x.strip()]
        common = dict(commit=commit, path=path, language=row.get("language") or "(none)",
                      category=row["category"], header=header)
        if lines:
            i = rng.choice(lines)
            out.append(Task("line", prefix=before + "".join(x + "\n" for x in added[:i]), suffix="",
                            answer=added[i], **common))
        if lines and len(added) <= MAX_INFILL_LINES:
            after_start = len(_before(old, start, count)) + count
            suffix = "".join(x + "\n" for x in old[after_start:])
            if suffix and not old_text.endswith("\n"):
                suffix = suffix[:-1]
            out.append(Task("infill", prefix=before, suffix=suffix, answer="\n".join(added), **common))
    return out


def build_tasks(git, chunk_map, lines: int, hunks_: int, seed: int) -> list[Task]:
    """Up to `lines` line tasks and `hunks_` infill tasks, drawn with `seed` from the test split's
    code and test changes (`chunk_map` rows of kind diff)."""
    rng = random.Random(seed)
    seen, pool = set(), []
    for row in chunk_map.rows:
        key = (row.get("commit"), row.get("path"))
        if row.get("kind") != "diff" or row.get("category") not in CODE or None in key or key in seen:
            continue
        seen.add(key)
        pool.extend(file_tasks(git, key[0], key[1], row, rng))
    out = []
    for kind, n in (("line", lines), ("infill", hunks_)):
        mine = [t for t in pool if t.kind == kind]
        out.extend(rng.sample(mine, min(n, len(mine))))
    return out


def normalized(text: str) -> str:
    return " ".join(text.split())


def similarity(prediction: str, answer: str) -> float:
    return difflib.SequenceMatcher(None, normalized(prediction), normalized(answer), autojunk=False).ratio()


def scores(tasks: list[Task], predictions: list[str]) -> dict:
    """{"tasks", "exact_match", "edit_similarity", "by_language": {...}, "by_category": {...}}."""
    def score(pairs) -> dict:
        pairs = list(pairs)
        if not pairs:
            return {"tasks": 0, "exact_match": 0.0, "edit_similarity": 0.0}
        exact = sum(normalized(p) == normalized(t.answer) for t, p in pairs)
        return {"tasks": len(pairs), "exact_match": 100.0 * exact / len(pairs),
                "edit_similarity": 100.0 * sum(similarity(p, t.answer) for t, p in pairs) / len(pairs)}

    pairs = list(zip(tasks, predictions))
    result = score(pairs)
    for key in ("language", "category"):
        groups = sorted({getattr(t, key) for t in tasks})
        result[f"by_{key}"] = {g: score((t, p) for t, p in pairs if getattr(t, key) == g) for g in groups}
    return result


def complete(model, tok, tasks: list[Task], max_new_tokens: int, device, fim=None, room: int | None = None,
             progress: bool = False) -> list[str]:
    """Greedy predictions: the next line (up to its first newline), or with `fim` (a FimSpec) the
    middle of each infill task (up to the end-of-text / end-of-middle token).

    The prompt keeps its header and the file's last tokens before the answer (and, for infill, the
    suffix's first tokens), within `room` tokens (the model's positions less `max_new_tokens`).
    """
    import torch
    from tqdm.auto import tqdm

    from core.tokenizer import encode_batch
    from training.fim import infill_prompt

    room = room or 1 << 30
    stop_ids = {i for i in (tok.eos_token_id, getattr(model.generation_config, "eos_token_id", None))
                if isinstance(i, int)}
    out = []
    for task in tqdm(tasks, desc="infill" if fim else "completion", unit="task", disable=not progress, leave=False):
        head, body, tail = encode_batch(tok, [task.header, task.prefix, task.suffix])
        if fim is None:
            ids = head + body[-max(1, room - len(head)):]
        else:
            half = max(1, (room - len(head) - 3) // 2)
            ids = infill_prompt(fim, head + body[-half:], tail[:half])
        x = torch.tensor([ids], device=device)
        with torch.no_grad():
            y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
                               pad_token_id=model.generation_config.pad_token_id,
                               eos_token_id=sorted(stop_ids) or None,
                               stopping_criteria=None if fim else [line_done(tok, len(ids))])
        new = [i for i in y[0, len(ids):].tolist() if i not in stop_ids]
        text = tok.decode(new, skip_special_tokens=True)
        out.append(text.rstrip("\n") if fim else first_line(text))
    return out


def line_done(tok, start: int):
    """Stop generating once a non-blank line is complete (on the decoded text: any tokenizer's newlines)."""
    import torch
    from transformers import StoppingCriteria

    class LineDone(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = ["\n" in tok.decode(row[start:]).lstrip() for row in input_ids]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return LineDone()


def first_line(text: str) -> str:
    """The first line with something on it: the answer is never blank, so blank lines first are skipped.

    >>> first_line("\\n   \\n    return x\\n")
    '    return x'
    """
    return next((x for x in text.split("\n") if x.strip()), "")
