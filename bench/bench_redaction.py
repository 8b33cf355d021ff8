"""Benchmark the redactor against detect-secrets: recall, false alarms and time on one corpus.

    python3 bench/bench_redaction.py [--repeat 20]
    python3 bench/bench_redaction.py --tree REPO... [--review FILE] [--no-detect-secrets]

The corpus (tests/secrets_corpus.py, the one the tests use) is ordinary code with 80+ planted
secrets of 50+ kinds, harmless look-alikes (`SECRET_KEY = 'dev'`, `'testkey'`, hashes, UUIDs,
`${VAR}`) and 100+ lines of typed code. Both tools see the same files on disk; detect-secrets
runs with its default plugins and filters (`SecretsCollection.scan_file`), ours is
`redact(text, path)` on the file's text.
- recall: planted secrets found (ours: no piece of the value left in the output; detect-secrets:
  a finding on a line the value spans);
- false alarms: findings on the same corpus with the planted secrets taken out;
- time: both over every file of the corpus, `--repeat` times, file reading included.

`--tree REPO...` takes checkouts or git bundles (`../shared/repos/*.bundle`, cloned to a temporary
directory): per repository, both tools over the tracked text files at HEAD (findings and time on
the same files), then ours over `git log --all -p` file by file with each file's path (the text
stage 1 reads). Every line redaction changed goes to the review file (tab-separated: repository,
where, kind, the line before, the line after); the counts per repository are printed.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from core.redaction import redact  # noqa: E402
from secrets_corpus import build_corpus  # noqa: E402


def write_tree(base: Path, files: list[tuple[str, str]]) -> list[Path]:
    out = []
    for rel, text in files:
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        out.append(p)
    return out


def lines_of(text: str, value: str) -> range:
    """The 1-based line numbers `value` spans in `text`."""
    i = text.find(value)
    first = text.count("\n", 0, i) + 1
    return range(first, first + value.count("\n") + 1)


def ours(paths: list[Path], rels: list[str]) -> tuple[dict[str, str], Counter]:
    outputs, counts = {}, Counter()
    for p, rel in zip(paths, rels):
        text, found = redact(p.read_text(encoding="utf-8"), rel)
        outputs[rel] = text
        counts.update(found)
    return outputs, counts


def detect_secrets_scan(paths: list[Path], base: Path) -> dict[str, list[tuple[int, str, str]]]:
    """rel path -> [(line, type, value)] as detect-secrets reports them (default plugins and filters)."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        sc = SecretsCollection()
        for p in paths:
            sc.scan_file(str(p))
    found: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for name, secrets in sc.data.items():
        rel = str(Path(name).resolve().relative_to(base.resolve()))
        found[rel] += [(s.line_number, s.type, s.secret_value or "") for s in secrets]
    return found


def timed(fn, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return time.perf_counter() - start


def compare(repeat: int) -> None:
    corpus = build_corpus()
    text_of = dict(corpus.files)
    rels = [rel for rel, _ in corpus.files]
    with tempfile.TemporaryDirectory() as tmp:
        full, clean = Path(tmp) / "full", Path(tmp) / "clean"
        full_paths = write_tree(full, corpus.files)
        clean_paths = write_tree(clean, corpus.clean)
        # recall
        out, _ = ours(full_paths, rels)
        ds = detect_secrets_scan(full_paths, full)
        missed: dict[str, list[str]] = {"ours": [], "detect-secrets": []}  # "KIND (path)"
        for kind, value, rel in corpus.planted:
            pieces = [p for p in value.replace("\\n", "\n").splitlines() if len(p) >= 8] or [value]
            if any(p in out[rel] for p in pieces):
                missed["ours"].append(f"{kind} ({rel})")
            span = lines_of(text_of[rel], value)
            if not any(line in span for line, _, _ in ds.get(rel, [])):
                missed["detect-secrets"].append(f"{kind} ({rel})")
        # false alarms: findings on the corpus without the planted secrets
        _, ours_clean = ours(clean_paths, rels)
        ds_clean = detect_secrets_scan(clean_paths, clean)
        alarms = {"ours": sum(ours_clean.values()), "detect-secrets": sum(len(v) for v in ds_clean.values())}
        # time, over the same files
        t_ours = timed(lambda: ours(full_paths, rels), repeat)
        t_ds = timed(lambda: detect_secrets_scan(full_paths, full), repeat)

    n, mb = len(corpus.planted), sum(len(t.encode()) for _, t in corpus.files) * repeat / 1e6
    print(f"corpus: {len(corpus.files)} files, {n} planted secrets of {len(corpus.kinds)} kinds, "
          f"{len(corpus.lookalikes)} look-alike lines, {len(corpus.typed)} lines of typed code; "
          f"timed over {mb:.2f} MB ({repeat} passes)")
    print(f"{'':16}{'recall':>12}{'false alarms':>14}{'seconds':>10}{'MB/s':>8}")
    for name, t in (("ours", t_ours), ("detect-secrets", t_ds)):
        found = n - len(missed[name])
        print(f"{name:16}{found:>5}/{n:<6}{alarms[name]:>14}{t:>10.3f}{mb / t:>8.2f}")
    print(f"speed-up: {t_ds / t_ours:.1f}x")
    for name in missed:
        if missed[name]:
            print(f"{name} missed: {', '.join(sorted(missed[name]))}")
    print("detect-secrets false alarms:", ", ".join(f"{v[2][:24]!r} ({v[1]})" for vs in ds_clean.values() for v in vs))
    if ours_clean:
        print("our false alarms:", dict(ours_clean))


def _changed(before: str, after: str) -> list[tuple[int, str, str]]:
    """(line number, line before, line after) of the lines redaction changed; a multi-line secret is
    one entry (its first line, the placeholder)."""
    if before.count("\n") == after.count("\n"):
        return [(i, b, a) for i, (b, a) in enumerate(zip(before.split("\n"), after.split("\n")), 1) if b != a]
    out, old = [], before.split("\n")
    for n, group in enumerate(difflib.SequenceMatcher(None, old, after.split("\n"), autojunk=False).get_opcodes()):
        tag, i1, i2, j1, j2 = group
        if tag != "equal":
            out.append((i1 + 1, "\n".join(old[i1:i2])[:300], "\n".join(after.split("\n")[j1:j2])[:300]))
    return out


def _kind(line: str) -> str:
    return line.split("<SECRET_", 1)[1].split(">", 1)[0] if "<SECRET_" in line else "?"


def _files(base: Path) -> tuple[list[Path], list[str]]:
    names = subprocess.run(["git", "-C", str(base), "ls-files", "-z"], capture_output=True, check=True).stdout
    paths, rels = [], []
    for rel in names.decode("utf-8", "surrogateescape").split("\0"):
        p = base / rel
        if rel and p.is_file() and not p.is_symlink():
            try:
                p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            paths.append(p)
            rels.append(rel)
    return paths, rels


def _history(base: Path, review) -> tuple[Counter, float, int]:
    """Redact `git log --all -p` of `base` file by file, as stage 1 does (with each file's path);
    every changed line goes to `review`. Returns the counts per kind, the seconds, the bytes."""
    raw = subprocess.run(["git", "-C", str(base), "log", "--all", "-p", "--no-color", "--format=%x00commit %H%n%B"],
                         capture_output=True, check=True).stdout.decode("utf-8", "replace")
    counts: Counter = Counter()
    took = 0.0
    for commit in raw.split("\0")[1:]:
        sha = commit[7:47]
        message, *parts = commit.split("\ndiff --git ")
        for part in [message] + ["diff --git " + p for p in parts]:
            head = part.split("\n", 1)[0]
            path = head.split(" b/", 1)[1] if part.startswith("diff --git") and " b/" in head else None
            start = time.perf_counter()
            text, found = redact(part, path)
            took += time.perf_counter() - start
            if found:
                counts.update(found)
                for n, before, after in _changed(part, text):
                    review.write(f"{base.name}\thistory {sha[:10]} {path or '(message)'}:{n}\t{_kind(after)}\t"
                                 f"{before.strip()[:200]!r}\t{after.strip()[:200]!r}\n")
    return counts, took, len(raw.encode())


def tree(repos: list[str], review_path: str, with_detect_secrets: bool) -> None:
    """Per repository (a checkout, or a `.bundle` cloned to a temporary directory): ours and detect-secrets
    over the tracked text files at HEAD, then ours over the whole history; every redaction to `review_path`."""
    with open(review_path, "w", encoding="utf-8") as review, tempfile.TemporaryDirectory() as tmp:
        review.write("repository\twhere\tkind\tline before\tline after\n")
        rows = []
        for repo in repos:
            base = Path(repo).resolve()
            if base.suffix == ".bundle":
                clone = Path(tmp) / base.stem
                subprocess.run(["git", "clone", "-q", "--mirror", str(base), str(clone / ".git")], check=True)
                subprocess.run(["git", "-C", str(clone), "config", "core.bare", "false"], check=True)
                subprocess.run(["git", "-C", str(clone), "checkout", "-q", "-f", "HEAD"], check=True)
                base = clone
            paths, rels = _files(base)
            mb = sum(p.stat().st_size for p in paths) / 1e6
            start = time.perf_counter()
            found: Counter = Counter()
            for p, rel in zip(paths, rels):
                before = p.read_text(encoding="utf-8")
                text, counts = redact(before, rel)
                found.update(counts)
                for n, b, a in _changed(before, text):
                    review.write(f"{base.name}\tfile {rel}:{n}\t{_kind(a)}\t{b.strip()[:200]!r}\t{a.strip()[:200]!r}\n")
            t_ours = time.perf_counter() - start
            ds_n, t_ds = None, None
            if with_detect_secrets:
                start = time.perf_counter()
                ds = detect_secrets_scan(paths, base)
                t_ds = time.perf_counter() - start
                ds_n = sum(len(v) for v in ds.values())
            hist, t_hist, hist_bytes = _history(base, review)
            rows.append((base.name, len(paths), mb, found, t_ours, ds_n, t_ds, hist, t_hist, hist_bytes))
            print(f"{base.name}: files {sum(found.values())} {dict(found)}; history {sum(hist.values())} {dict(hist)}",
                  flush=True)
    print(f"\n{'repository':12}{'files':>7}{'MB':>7}{'ours':>6}{'s':>8}{'d-s':>6}{'d-s s':>8}{'x':>7}"
          f"{'hist MB':>9}{'ours':>6}{'s':>8}{'MB/s':>7}")
    for name, n, mb, found, t_ours, ds_n, t_ds, hist, t_hist, hist_bytes in rows:
        ds_cols = f"{ds_n:>6}{t_ds:>8.2f}{t_ds / t_ours:>6.0f}x" if ds_n is not None else f"{'-':>6}{'-':>8}{'-':>7}"
        print(f"{name:12}{n:>7}{mb:>7.2f}{sum(found.values()):>6}{t_ours:>8.2f}{ds_cols}"
              f"{hist_bytes / 1e6:>9.1f}{sum(hist.values()):>6}{t_hist:>8.1f}{hist_bytes / 1e6 / t_hist:>7.1f}")
    print(f"review file: {review_path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=20, help="passes over the corpus for the timing (default 20)")
    p.add_argument("--tree", nargs="+", default=None, metavar="REPO",
                   help="checkouts or .bundle files: both tools over the files at HEAD, ours over the history")
    p.add_argument("--review", default="redaction_review.tsv",
                   help="with --tree: where every redaction is written with its line (default redaction_review.tsv)")
    p.add_argument("--no-detect-secrets", action="store_true", help="with --tree: leave detect-secrets out")
    args = p.parse_args(argv)
    if args.tree:
        tree(args.tree, args.review, not args.no_detect_secrets)
    else:
        compare(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
