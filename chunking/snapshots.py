"""The files of a tree at one commit, read through two git processes whatever the number of files.

    with TreeReader(repo) as tree:
        for path, size, data in tree.files(commit):   # data is None for symlinks and submodules
            ...

`git ls-tree -r -z --long` lists paths, modes and sizes (so size filters need no read), and
one long-running `git cat-file --batch` returns the blobs, one request at a time.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable, Iterator

from pipeline_io import UserError


def git_output(repo: str | Path, *args: str) -> str:
    res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    if res.returncode != 0:
        msg = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(f"{repo}: git {args[0]} failed: {msg[-1] if msg else 'exit ' + str(res.returncode)}")
    return res.stdout.decode("utf-8", "surrogateescape")


class TreeReader:
    def __init__(self, repo: str | Path):
        self.repo = Path(repo)
        if not self.repo.is_dir():
            raise UserError(f"{repo}: no such directory (the repository to take file snapshots from)")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "TreeReader":
        self.proc = subprocess.Popen(["git", "-C", str(self.repo), "cat-file", "--batch"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        self.proc.stdin.close()
        self.proc.wait()

    def _blob(self, sha: str) -> bytes | None:
        assert self.proc is not None
        self.proc.stdin.write(sha.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":  # "<sha> missing": a damaged clone
            return None
        data = self.proc.stdout.read(int(header[2]) + 1)
        return data[:-1]

    def files(self, commit: str, keep: Callable[[str, int], bool] = lambda p, s: True
              ) -> Iterator[tuple[str, int, bytes | None]]:
        """(path, size, content) of every blob at `commit`, in path order; `keep(path, size)` False skips the read.

        Symlinks and submodules come with content None; a missing blob also comes as None with size -1.
        """
        listing = git_output(self.repo, "ls-tree", "-r", "-z", "--long", commit)
        for entry in listing.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            mode, kind, sha, size = meta.split()
            if kind != "blob" or mode == "120000":
                yield path, 0, None
                continue
            if not keep(path, int(size)):
                continue
            data = self._blob(sha)
            yield path, (int(size) if data is not None else -1), data
