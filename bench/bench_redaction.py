"""Benchmark the redactor against detect-secrets: recall, false alarms and time on one corpus.

    python3 bench/bench_redaction.py [--repeat 20]
    python3 bench/bench_redaction.py --tree PATH      # both tools on a checkout's tracked files
    python3 bench/bench_redaction.py --history PATH [--samples 3]

The corpus (tests/secrets_corpus.py, the one the tests use) is ordinary code with 40+ planted
secrets of 25 kinds and harmless look-alikes (`SECRET_KEY = 'dev'`, `'testkey'`, hashes, UUIDs,
`${VAR}`). Both tools see the same files on disk; detect-secrets runs with its default plugins
and filters (`SecretsCollection.scan_file`), ours is `redact(text, path)` on the file's text.
- recall: planted secrets found (ours: no piece of the value left in the output; detect-secrets:
  a finding on a line the value spans);
- false alarms: findings on the same corpus with the planted secrets taken out;
- time: both over every file of the corpus, `--repeat` times, file reading included.

`--tree PATH` runs both tools over the tracked text files of a checkout: what each flags in real
code (all of it false alarms in an ordinary project) and the time, again on the same files.
`--history PATH` runs the redactor over `git log --all -p` of a repository (the text stage 1
reads) and prints what it would replace, per kind, with samples: precision on real code.
"""

from __future__ import annotations

import argparse
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
          f"{len(corpus.lookalikes)} look-alike lines; timed over {mb:.2f} MB ({repeat} passes)")
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


def tree(repo: str) -> None:
    """Both tools over the tracked files of a checkout: findings and time."""
    base = Path(repo).resolve()
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
    mb = sum(p.stat().st_size for p in paths) / 1e6
    start = time.perf_counter()
    _, ours_found = ours(paths, rels)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    ds = detect_secrets_scan(paths, base)
    t_ds = time.perf_counter() - start
    print(f"{base.name}: {len(paths)} text files, {mb:.2f} MB")
    print(f"ours: {sum(ours_found.values())} findings {dict(ours_found)} in {t_ours:.3f}s")
    kinds = Counter(t for vs in ds.values() for _, t, _ in vs)
    print(f"detect-secrets: {sum(kinds.values())} findings {dict(kinds)} in {t_ds:.3f}s; speed-up {t_ds / t_ours:.1f}x")


def history(repo: str, samples: int) -> None:
    """Redact `git log --all -p` of `repo` commit by commit; print the counts and samples per kind."""
    proc = subprocess.Popen(["git", "-C", repo, "log", "--all", "-p", "--format=%x00commit %H%n%B"],
                            stdout=subprocess.PIPE)
    raw = proc.stdout.read().decode("utf-8", "replace")
    proc.wait()
    counts: Counter = Counter()
    shown: dict[str, list[str]] = defaultdict(list)
    start = time.perf_counter()
    for commit in raw.split("\0"):
        for part in commit.split("\ndiff --git ")[1:] or [commit]:  # per file, so the path is known
            path = part.split(" b/", 1)[1].split("\n", 1)[0] if " b/" in part.split("\n", 1)[0] else None
            text, found = redact(part, path)
            if not found:
                continue
            counts.update(found)
            for before, after in zip(part.splitlines(), text.splitlines()):
                if before != after:
                    kind = after.split("<SECRET_", 1)[1].split(">", 1)[0] if "<SECRET_" in after else "?"
                    if len(shown[kind]) < samples:
                        shown[kind].append(before.strip()[:110])
    took = time.perf_counter() - start
    print(f"{repo}: {len(raw.encode()) / 1e6:.1f} MB of `git log --all -p`, redacted in {took:.1f}s; "
          f"{sum(counts.values())} replacements: {dict(counts.most_common())}")
    for kind, lines in sorted(shown.items()):
        for line in lines:
            print(f"  {kind:16} {line}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=20, help="passes over the corpus for the timing (default 20)")
    p.add_argument("--tree", type=str, default=None, help="a checkout: both tools over its tracked files")
    p.add_argument("--history", type=str, default=None, help="a repository: redact its `git log --all -p` instead")
    p.add_argument("--samples", type=int, default=3, help="with --history: sample lines per kind (default 3)")
    args = p.parse_args(argv)
    if args.tree:
        tree(args.tree)
    elif args.history:
        history(args.history, args.samples)
    else:
        compare(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
