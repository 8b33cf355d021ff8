"""Build a realistic repository for benchmarks by replaying installed Python sources as history.

    python3 bench/make_bench_repo.py --out /tmp/bench-repo --commits 500
    python3 bench/make_bench_repo.py --out /tmp/bench-rust --language rust --source-root DIR_WITH_RUST

Source files of installed packages (site-packages; or of `--language` under `--source-root`,
cycled as copies when there are few) become a few hundred commits by several
authors: new files, edits of a few hunks, renames, deletions, feature branches merged back
(some with a hand-made resolution), tags. The history is written in one `git fast-import`
stream, so building it takes seconds; the same seed gives the same repository (same hashes).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

AUTHORS = [("Ada Lovelace", "ada@example.com"), ("Alan Turing", "alan@example.com"),
           ("Grace Hopper", "grace@example.com"), ("Linus Torvalds", "linus@example.com"),
           ("Barbara Liskov", "barbara@example.com"), ("Donald Knuth", "don@example.com")]
MAX_SOURCE_BYTES = 200_000
LANGUAGES = {"python": "*.py", "rust": "*.rs", "go": "*.go", "javascript": "*.js", "c": "*.c", "java": "*.java"}


def source_pool(root: Path, limit: int, language: str = "python") -> list[Path]:
    files = sorted(p for p in root.rglob(LANGUAGES[language])
                   if p.is_file() and 200 < p.stat().st_size < MAX_SOURCE_BYTES)
    if not files:
        sys.exit(f"error: no {language} sources under {root} (pass --source-root)")
    return files[:limit]


class History:
    """Tracks file contents per branch and writes fast-import commands."""

    def __init__(self, out, rng: random.Random, pool: list[Path]):
        self.out, self.rng, self.pool = out, rng, pool
        self.mark = 0
        self.time = 1_600_000_000
        self.trees: dict[str, dict[str, bytes]] = {"main": {}}
        self.heads: dict[str, int] = {}
        self.next_source = 0

    def _data(self, payload: bytes) -> None:
        self.out.write(b"data %d\n" % len(payload))
        self.out.write(payload)
        self.out.write(b"\n")

    def _source(self) -> tuple[str, bytes]:
        path = self.pool[self.next_source % len(self.pool)]
        self.next_source += 1
        rel = "/".join(path.parts[-3:]) if self.next_source <= len(self.pool) else f"copy{self.next_source}/{path.name}"
        return rel, path.read_bytes()

    def _edit(self, content: bytes) -> bytes:
        lines = content.split(b"\n")
        _, donor = self._source()
        donor_lines = donor.split(b"\n")
        for _ in range(self.rng.randint(1, 4)):  # a few hunks: replace, insert or delete some lines
            at = self.rng.randrange(len(lines) + 1)
            n = self.rng.randint(0, 6)
            start = self.rng.randrange(len(donor_lines))
            lines[at:at + self.rng.randint(0, 4)] = donor_lines[start:start + n]
        return b"\n".join(lines)

    def commit(self, branch: str, message: str, changes: dict[str, bytes | None],
               renames: list[tuple[str, str]] = (), merge: str | None = None) -> int:
        self.mark += 1
        self.time += self.rng.randint(600, 86_400)
        name, email = self.rng.choice(AUTHORS)
        tz = self.rng.choice(["+0000", "+0200", "-0500", "+0530"])
        self.out.write(b"commit refs/heads/%s\nmark :%d\n" % (branch.encode(), self.mark))
        self.out.write(f"author {name} <{email}> {self.time} {tz}\n".encode())
        self.out.write(f"committer {name} <{email}> {self.time} {tz}\n".encode())
        self._data(message.encode())
        if branch in self.heads:
            self.out.write(b"from :%d\n" % self.heads[branch])
        if merge is not None:
            self.out.write(b"merge :%d\n" % self.heads[merge])
        tree = self.trees[branch]
        for old, new in renames:
            self.out.write(f'R "{old}" "{new}"\n'.encode())
            tree[new] = tree.pop(old)
        for path, content in changes.items():
            if content is None:
                self.out.write(f'D "{path}"\n'.encode())
                tree.pop(path, None)
            else:
                self.out.write(f'M 100644 inline "{path}"\n'.encode())
                self._data(content)
                tree[path] = content
        self.heads[branch] = self.mark
        return self.mark

    def work(self, branch: str, n_add: int, n_edit: int) -> None:
        tree = self.trees[branch]
        changes: dict[str, bytes | None] = {}
        for _ in range(n_add):
            rel, content = self._source()
            changes[rel] = content
        existing = sorted(tree)
        for path in self.rng.sample(existing, min(n_edit, len(existing))):
            changes[path] = self._edit(tree[path])
        renames = []
        if existing and self.rng.random() < 0.15:
            old = self.rng.choice(existing)
            if old not in changes:
                renames.append((old, old.rsplit("/", 1)[0] + "/renamed_" + old.rsplit("/", 1)[-1]))
        if len(existing) > 20 and self.rng.random() < 0.1:
            victim = self.rng.choice(existing)
            if victim not in changes and all(victim != o for o, _ in renames):
                changes[victim] = None
        self.commit(branch, f"{branch}: update {len(changes)} files\n\nReplayed edit {self.mark + 1}.", changes,
                    renames)


def build(out_dir: Path, commits: int, seed: int, adds: int, edits: int, source_root: Path,
          language: str = "python") -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        sys.exit(f"error: {out_dir} exists and is not empty")
    subprocess.run(["git", "init", "-q", "-b", "main", str(out_dir)], check=True)
    rng = random.Random(seed)
    pool = source_pool(source_root, limit=commits * (adds + 2) + 200, language=language)
    proc = subprocess.Popen(["git", "-C", str(out_dir), "fast-import", "--quiet"], stdin=subprocess.PIPE)
    h = History(proc.stdin, rng, pool)
    h.commit("main", "Initial import", {h._source()[0]: b"# bench repository\n"})
    made, feature = 1, 0
    while made < commits:
        if made % 25 == 10 and commits - made > 8:  # a feature branch, merged back
            feature += 1
            name = f"feature-{feature}"
            h.trees[name] = dict(h.trees["main"])
            h.heads[name] = h.heads["main"]
            for _ in range(rng.randint(2, 5)):
                h.work(name, max(1, adds // 2), edits)
                made += 1
            h.work("main", adds, edits)
            mine = h.trees["main"]
            theirs = h.trees[name]
            merged = {p: c for p, c in theirs.items() if mine.get(p) != c and p in theirs}
            if feature % 3 == 0 and merged:  # a hand-made resolution: the merge's own change
                path = sorted(merged)[0]
                merged[path] = merged[path] + b"\n# resolved in the merge\n"
            h.commit("main", f"Merge branch '{name}'", merged, merge=name)
            made += 2
            if feature % 2 == 0:
                proc.stdin.write(f"reset refs/tags/v0.{feature}\nfrom :{h.heads['main']}\n\n".encode())
        else:
            h.work("main", adds, edits)
            made += 1
    proc.stdin.close()
    if proc.wait() != 0:
        sys.exit("error: git fast-import failed")
    subprocess.run(["git", "-C", str(out_dir), "checkout", "-q", "main"], check=True)


def ensure_repo(repo: Path, commits: int, language: str = "python", source_root: Path | None = None) -> Path:
    """`repo` as it is if it exists, else a benchmark repository of `commits` commits built there."""
    if not repo.exists():
        extra = ["--language", language] + (["--source-root", str(source_root)] if source_root else [])
        subprocess.run([sys.executable, __file__, "--out", str(repo), "--commits", str(commits), *extra], check=True,
                       stdout=subprocess.DEVNULL)
    return repo


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build a benchmark repository from installed sources.")
    p.add_argument("--out", type=Path, required=True, help="directory to create (must be empty or absent)")
    p.add_argument("--commits", type=int, default=400, help="number of commits (default: 400)")
    p.add_argument("--adds", type=int, default=12, help="new files per commit (default: 12)")
    p.add_argument("--edits", type=int, default=40, help="files edited per commit (default: 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--language", choices=sorted(LANGUAGES), default="python",
                   help="which source files make the history (default: python)")
    p.add_argument("--source-root", type=Path, default=Path(sysconfig.get_paths()["purelib"]),
                   help="where to take the sources from (default: this Python's site-packages)")
    args = p.parse_args(argv)
    build(args.out, args.commits, args.seed, args.adds, args.edits, args.source_root, args.language)
    print(f"built {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
