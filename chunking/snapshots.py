"""The files of a tree at one commit, read through two git processes whatever the number of files.

    with TreeReader(repo) as tree:
        for path, size, data in tree.files(commit):   # data is None for symlinks and submodules
            ...

`git ls-tree -r -z --long --full-tree` lists paths, modes and sizes (so size filters need no
read), and one long-running `git cat-file --batch` (`git_runner.BlobReader`) returns the blobs.
Blobs the clone lacks (a damaged or partial clone) are never requested: they come back as MISSING.
A path that is not UTF-8 comes with surrogate escapes (`"caf\\udce9.py"`), for the caller to skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from core.io import UserError
from core.git_runner import BlobReader, Git, GitError, missing_objects

MISSING = -1  # the size of a blob the clone does not have


def git_output(repo: str | Path, *args: str) -> str:
    """git's stdout as text (surrogate escapes for bytes that are not UTF-8); a failure is a UserError."""
    try:
        return Git(repo).run(*args).decode("utf-8", "surrogateescape")
    except GitError as e:
        raise UserError(f"{repo}: git {args[0]} failed: {e}") from None


def head_commit(repo: str | Path) -> str:
    """The commit HEAD points at; a UserError when HEAD is unborn (a branch without commits yet)."""
    git = Git(repo)
    commit = git.try_run("rev-parse", "--verify", "-q", "HEAD^{commit}")
    if commit is None:
        branch = git.try_run("symbolic-ref", "-q", "--short", "HEAD") or "HEAD"
        raise UserError(f"--snapshot-at head: {branch} has no commit yet (an unborn HEAD in {repo}); "
                        "use --snapshot-at cutoff or check out a branch with commits")
    return commit


class TreeReader:
    def __init__(self, repo: str | Path):
        self.repo = Path(repo)
        if not self.repo.is_dir():
            raise UserError(f"{repo}: no such directory (the repository to take file snapshots from)")
        self.git = Git(self.repo)
        self.reader: BlobReader | None = None

    def __enter__(self) -> "TreeReader":
        self.reader = BlobReader(self.git)
        return self

    def __exit__(self, *exc) -> None:
        assert self.reader is not None
        self.reader.close()

    def files(self, commit: str, keep: Callable[[str, int], bool] = lambda p, s: True
              ) -> Iterator[tuple[str, int, bytes | None]]:
        """(path, size, content) of every blob at `commit`, in path order; `keep(path, size)` False skips the read.

        Symlinks and submodules come with content None and size 0; a blob the clone does not
        have comes with content None and size MISSING (`git ls-tree --long` prints `-` or `BAD`
        for its size).
        """
        missing: set[str] = set()
        try:
            listing = self.git.run("ls-tree", "-r", "-z", "--long", "--full-tree", commit)
        except GitError:  # a partial clone: sizes need blobs it lacks; list without them, skip those
            missing = missing_objects(self.git, [commit])
            listing = git_output(self.repo, "ls-tree", "-r", "-z", "--full-tree", commit).encode("utf-8", "surrogateescape")
        for entry in listing.decode("utf-8", "surrogateescape").split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            mode, kind, sha, *size = meta.split()
            if kind != "blob" or mode == "120000":
                yield path, 0, None
                continue
            if sha in missing or (size and not size[0].isdigit()):
                yield path, MISSING, None
                continue
            if size and not keep(path, int(size[0])):
                continue
            assert self.reader is not None, "TreeReader is used in a `with` block"
            data = self.reader.read(sha)
            if data is None:
                yield path, MISSING, None
            elif size or keep(path, len(data)):
                yield path, len(data), data
