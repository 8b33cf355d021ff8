"""What the chunks of real repositories are made of: languages, categories, what was left out and why,
header share, and the share of diff chunks that open on a definition, per language with a parser.

    python3 bench/bench_content.py                                  # every clone in ../repos
    python3 bench/bench_content.py --only click log --max-commits 500 --json /tmp/content.json

Each repository is scraped by stage 1 (no function complexity) and chunked by stage 2 with its
defaults (snapshots at the train cut-off), with a 16k byte-level BPE trained on its first 8 MB of
diffs (the pipeline's offline fallback; with --tokenizer, that one). Then, from the chunks written:
- tokens by language (the chunk's `language`) and by category (`core.languages.category_of`);
  unknown = language `other` (no name, extension, shebang or modeline told it);
- left out, by reason: the files and file changes stage 2 left out (`excluded_by_reason`), as a
  share of all it judged (file changes of the history + files of the snapshot);
- header share: tokens of the diff chunks' headers (`reporting.collect.header_text`: commit line and
  file titles) / tokens of the diff chunks;
- definition openings: a diff chunk opens on a definition when the first non-blank line of its first
  hunk (new side; the old side, in the file at the commit's first parent, for a hunk that shows no
  line of the new file) starts a definition tree-sitter finds in the file at the chunk's commit
  (`core.parsers.definitions` over `git show COMMIT:PATH`, which starts a definition at its doc
  comment, attributes, decorators or template line; the hunk alone where the file cannot be read),
  or only comments, doc comments, attributes or decorators stand between them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import semantic_chunker as sc  # noqa: E402
from core.parsers import definitions, parser_language  # noqa: E402
from core.io import iter_commit_records  # noqa: E402
from reporting.collect import header_text  # noqa: E402
from scrapers.git_scraper_rich import ScrapeConfig, scrape  # noqa: E402
from core.languages import category_of  # noqa: E402
from bench_chunker import history_tokenizer  # noqa: E402
from core.tokenizer import encode_batch, load_tokenizer  # noqa: E402

REPOS = ROOT.parent / "repos"
_LEAD_IN = ("//", "/*", "*", "#[", "#!", "@", "///")  # doc comments, attributes, annotations above a definition
# the functions of the tree measured (before issue 22 they took the path alone)
_CATEGORY_TAKES_LANGUAGE = "language" in inspect.signature(category_of).parameters
_PARSER_TAKES_LANGUAGE = "language" in inspect.signature(parser_language).parameters


def _category(c: dict) -> str:
    if not c.get("path"):
        return "unknown"
    return category_of(c["path"], c.get("language")) if _CATEGORY_TAKES_LANGUAGE else category_of(c["path"])


_NEW_START = re.compile(r"^@@+ (?:-\d+(?:,\d+)? )+\+(\d+)")
_OLD_START = re.compile(r"^@@ -(\d+)")


class FileAt:
    """Files at a commit, read through one `git cat-file --batch`; the last one's definition starts kept."""

    def __init__(self, repo: Path):
        self.proc = subprocess.Popen(["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.key, self.value = None, None

    def starts(self, commit: str, path: str, lang: str) -> tuple[list[str], set[int]] | None:
        """(rows, definition start rows) of `path` at `commit`, or None when git has no such text file."""
        if (commit, path) != self.key:
            self.key, self.value = (commit, path), None
            self.proc.stdin.write(f"{commit}:{path}\n".encode("utf-8", "surrogateescape"))
            self.proc.stdin.flush()
            header = self.proc.stdout.readline().split()
            if len(header) == 3 and header[1] == b"blob":
                data = self.proc.stdout.read(int(header[2]) + 1)[:-1]
                text = data.decode("utf-8", "replace").replace("\r\n", "\n")
                self.value = (text.split("\n"), {r for d in definitions(text, lang) for r in (d.start, d.start + d.lead)})
        return self.value

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def opens_on_definition(text: str, lang: str, files: FileAt | None = None, commit: str = "",
                        path: str = "") -> bool | None:
    """Whether a diff chunk's first hunk opens on a definition (None: the chunk has no hunk). A hunk
    that shows nothing of the new file (a piece of a removed block) is judged on the old one's
    side: the file at the commit's first parent."""
    lines = text.split("\n")
    at = next((i for i, l in enumerate(lines) if l.startswith("@@")), None)
    if at is None:
        return None
    hunk = []
    for line in lines[at + 1:]:
        if line.startswith("@@"):
            break
        hunk.append(line)
    body = [l[1:] for l in hunk if l[:1] in (" ", "+")]
    m = _NEW_START.match(lines[at])
    if not any(l.strip() for l in body) and lines[at].startswith("@@ "):  # a one-parent hunk: its old side
        body = [l[1:] for l in hunk if l[:1] in (" ", "-")]
        m, commit = _OLD_START.match(lines[at]), commit + "^"
    first = next((i for i, l in enumerate(body) if l.strip()), None)
    if first is None:
        return False
    whole = files.starts(commit, path, lang) if files is not None and m else None
    if whole is not None and 0 < int(m.group(1)) and body[first] == \
            (whole[0][int(m.group(1)) - 1 + first] if int(m.group(1)) - 1 + first < len(whole[0]) else None):
        offset = int(m.group(1)) - 1  # the hunk's first new row in the file
        body, starts, first = whole[0], whole[1], offset + first
    else:  # the hunk alone: tree-sitter recovers what it can of a fragment
        starts = {r for d in definitions("\n".join(body), lang) for r in (d.start, d.start + d.lead)}
    lead = ("#",) + _LEAD_IN if lang == "python" else _LEAD_IN
    for row in range(first, len(body)):
        if row in starts:
            return True
        stripped = body[row].strip()
        if stripped and not stripped.startswith(lead):
            return False
    return False


def measure(chunks_path: Path, stats: dict, tok, judged: int, repo: Path) -> dict:
    by_lang, by_cat, header_tokens, diff_tokens = Counter(), Counter(), 0, 0
    opens: dict[str, list[int]] = {}
    headers = []
    files = FileAt(repo)
    with open(chunks_path, encoding="utf-8") as fh:
        for line in fh:
            c = json.loads(line)
            n = c["n_tokens"]
            by_lang[c.get("language") or "none"] += n
            by_cat[_category(c)] += n
            if c["kind"] != "diff":
                continue
            diff_tokens += n
            headers.append(header_text(c))
            lang = (parser_language(c["path"], c.get("language")) if _PARSER_TAKES_LANGUAGE else
                    parser_language(c["path"])) if c.get("path") else None
            if lang is not None:
                o = opens_on_definition(c["text"], lang, files, c["commit"], c["path"])
                if o is not None:
                    lang = "typescript" if lang == "tsx" else lang
                    got = opens.setdefault(lang, [0, 0])
                    got[0] += o
                    got[1] += 1
    files.close()
    for i in range(0, len(headers), 2048):
        header_tokens += sum(map(len, encode_batch(tok, headers[i:i + 2048])))
    total = sum(by_lang.values())
    left = stats["quality"]["excluded_by_reason"]
    return {"tokens": total, "by_language": dict(by_lang.most_common()), "by_category": dict(by_cat.most_common()),
            "unknown_share": by_lang["other"] / total if total else 0.0,
            "judged": judged, "left_out": left,
            "left_out_share": {r: n / judged for r, n in sorted(left.items(), key=lambda kv: -kv[1])},
            "header_share": header_tokens / diff_tokens if diff_tokens else 0.0,
            "definition_openings": {l: (a, n) for l, (a, n) in sorted(opens.items())}}


def run_one(repo: Path, work: Path, max_commits: int | None, tok_dir: Path | None, reuse: bool = False) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    history = work / "git_history_rich.jsonl"
    out = work / "chunks_semantic.jsonl"
    if reuse:  # measure the outputs of an earlier run in `work` again
        stats = json.loads((work / "chunks_semantic.stats.json").read_text(encoding="utf-8"))
        return measure(out, stats, load_tokenizer(str(tok_dir or work / "tokenizer")), _judged(history, stats), repo)
    scrape(ScrapeConfig(repo=str(repo), output=str(history), output_json=None, progress=False,
                        function_complexity=False, max_commits=max_commits))
    tok = history_tokenizer(history, tok_dir or work / "tokenizer")
    stats = sc.run(sc.ChunkConfig(repo=str(repo), commits=str(history), output=str(out), progress=False), tokenizer=tok)
    return measure(out, stats, tok, _judged(history, stats), repo)


def _judged(history: Path, stats: dict) -> int:
    """File changes of the history and files of the snapshot: what stage 2 judged."""
    changes = sum(len(rec.get("files") or []) for rec in iter_commit_records(history))
    return changes + stats.get("snapshot_files", 0) + sum((stats.get("snapshot_filtered") or {}).values())


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def table(results: dict[str, dict]) -> str:
    cats = ("code", "tests", "docs", "config", "data", "translations")
    rows = ["| repo | tokens | unknown % | " + " | ".join(f"{c} %" for c in cats) +
            " | left out % (top reasons) | headers % | opens on a definition % (chunks) |",
            "|---|---:|---:|" + "---:|" * len(cats) + "---|---:|---|"]
    for name, r in results.items():
        t = r["tokens"] or 1
        left = ", ".join(f"{k} {pct(v)}" for k, v in list(r["left_out_share"].items())[:3]) or "-"
        left = f"{pct(sum(r['left_out_share'].values()))} ({left})"
        opens = ", ".join(f"{l} {pct(a / n)} ({n:,})" for l, (a, n) in r["definition_openings"].items() if n) or "-"
        rows.append(f"| {name} | {r['tokens']:,} | {pct(r['unknown_share'])} | " +
                    " | ".join(pct(r["by_category"].get(c, 0) / t) for c in cats) +
                    f" | {left} | {pct(r['header_share'])} | {opens} |")
    return "\n".join(rows)


def language_table(name: str, r: dict, top: int = 8) -> str:
    t = r["tokens"] or 1
    return f"{name}: " + ", ".join(f"{l} {pct(n / t)}" for l, n in list(r["by_language"].items())[:top])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Languages, categories, left-out files, headers and definition openings "
                                            "of the chunks of real repositories.")
    p.add_argument("--repos-dir", type=Path, default=REPOS, help="directory of clones [../repos]")
    p.add_argument("--only", nargs="*", default=None, help="names of the clones to measure [all]")
    p.add_argument("--max-commits", type=int, default=None, help="the first N commits of each [all]")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/bench_content"), help="where to write")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer directory [a fallback BPE per repository]")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--reuse", action="store_true", help="measure the stage outputs already in --work-dir again")
    args = p.parse_args(argv)
    names = args.only or sorted(d.name for d in args.repos_dir.iterdir() if (d / ".git").exists() or (d / "HEAD").exists())
    results = {}
    for name in names:
        results[name] = run_one(args.repos_dir / name, args.work_dir / name, args.max_commits, args.tokenizer,
                                args.reuse)
        print(language_table(name, results[name]), flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
