"""The one way this project runs git: pinned configuration, no lazy fetches, git's error as one line.

    git = Git(Path("repo"));  out = git.run("rev-parse", "HEAD")          # bytes; GitError on failure
    top = resolve_repo(Path("repo/src"))                                   # the work tree's top level
    reader = BlobReader(git);  data = reader.read(sha);  reader.close()   # blobs: one `git cat-file --batch`
    sizes = reader.sizes([sha])                                           # sizes alone: `git cat-file --batch-check`

Every stage reads a repository through `Git`, so that what it sees does not depend on who runs
it: `/etc/gitconfig`, `~/.gitconfig`, `$XDG_CONFIG_HOME/git/config` and the global attributes
file are not read, environment variables that redirect or reconfigure git are dropped, and the
repository-local settings that change what `git log`/`git diff` print are pinned on the command
line (which beats every configuration file). The user's `safe.directory` entries are the one
thing kept from their configuration (which repositories git may open, not what it prints).
What stays repository-local: `.gitattributes` in the tree (binary marks), `refs/replace`, and
`submodule.<name>.ignore` in `.gitmodules`.

Partial clones: `GIT_NO_LAZY_FETCH` stops git from fetching missing objects from the promisor
remote (no network, no password prompt: `GIT_TERMINAL_PROMPT=0`); `missing_objects` finds what a
partial or damaged clone lacks, so that callers never ask git for it.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from collections import deque
from pathlib import Path

# Settings whose repository-local values would change the output, pinned to git's defaults.
PINNED_CONFIG = {
    "core.quotepath": "off",            # paths as raw bytes, not C-quoted octal
    "core.abbrev": "auto",
    "core.attributesFile": os.devnull,  # the user's global attributes file
    "core.bigFileThreshold": "512m",    # bigger files are diffed as binary
    "diff.noprefix": "false",
    "diff.mnemonicPrefix": "false",
    "diff.renames": "true",
    "diff.renameLimit": "1000",
    "diff.context": "3",
    "diff.interHunkContext": "0",
    "diff.suppressBlankEmpty": "false",
    "diff.algorithm": "myers",
    "diff.indentHeuristic": "true",
    "diff.orderFile": os.devnull,
    "diff.relative": "false",
    "diff.ignoreSubmodules": "none",
    "diff.external": "",
    "i18n.logOutputEncoding": "UTF-8",  # messages re-encoded to UTF-8 whatever their stored encoding
    "log.showSignature": "false",
    "log.mailmap": "false",
    "color.ui": "never",
}
_GLOBAL = [arg for key, value in PINNED_CONFIG.items() for arg in ("-c", f"{key}={value}")]
_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ATTR_NOSYSTEM": "1",
        "GIT_NO_LAZY_FETCH": "1", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
# Variables that point git elsewhere or add configuration: a run inside a git hook sets some.
_DROPPED_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
                "GIT_CONFIG_COUNT", "GIT_CONFIG_SYSTEM", "GIT_DIFF_OPTS", "GIT_EXTERNAL_DIFF", "GIT_PAGER",
                "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_NO_REPLACE_OBJECTS",
                "GIT_REPLACE_REF_BASE", "GIT_SHALLOW_FILE", "GIT_QUARANTINE_PATH", "GIT_ICASE_PATHSPECS",
                "GIT_LITERAL_PATHSPECS", "GIT_GLOB_PATHSPECS", "GIT_NOGLOB_PATHSPECS")


@functools.cache
def _trusted_directories() -> tuple[str, ...]:
    """The user's `safe.directory` entries, kept: repositories owned by someone else stay readable.

    They are read once from the user's and the system's configuration, which every other git
    call ignores; they only say which repositories git may open, never what it prints.
    """
    try:
        out = subprocess.run(["git", "config", "--show-scope", "--get-all", "safe.directory"], capture_output=True,
                             cwd="/").stdout.decode("utf-8", "surrogateescape")
    except OSError:
        return ()
    entries = [line.split("\t", 1) for line in out.splitlines() if "\t" in line]
    return tuple(arg for scope, d in entries if scope in ("global", "system") and d
                 for arg in ("-c", f"safe.directory={d}"))


class GitError(Exception):
    """A git command failed; the message is git's own first error line."""


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV and not k.startswith("GIT_CONFIG_")}
    return {**env, **_ENV}


class Git:
    """Runs git in one repository with pinned options; errors become GitError with git's message."""

    def __init__(self, repo: Path | str):
        self.repo = Path(repo)
        self.env = git_env()

    def argv(self, args: list[str]) -> list[str]:
        return ["git", "-C", str(self.repo), *_GLOBAL, *_trusted_directories(), *args]

    def run(self, *args: str, input: bytes | None = None) -> bytes:
        proc = subprocess.run(self.argv(list(args)), input=input, capture_output=True, env=self.env)
        if proc.returncode != 0:
            raise GitError(first_error_line(proc.stderr) or f"git {args[0]} exited with {proc.returncode}")
        return proc.stdout

    def try_run(self, *args: str) -> str | None:
        """Stripped text output, or None when git fails or prints nothing."""
        try:
            return self.run(*args).decode("utf-8", "surrogateescape").strip() or None
        except GitError:
            return None

    def popen(self, args: list[str], stderr=subprocess.DEVNULL) -> subprocess.Popen:
        return subprocess.Popen(self.argv(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, env=self.env)


def first_error_line(stderr: bytes) -> str:
    """git's most telling stderr line (the `fatal:`/`error:` one if any), decoded."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("fatal:", "error:")):
            return ln
    return lines[0] if lines else ""


def resolve_repo(path: Path) -> Path:
    """The repository `path` is in: its work tree's top level, or the git directory of a bare one.

    `repo/src/pkg` and `repo/.git` both give `repo`, so that paths in file snapshots match the
    paths in diffs and the output directory is named after the repository. Raises GitError.
    """
    git = Git(path)
    top = git.try_run("rev-parse", "--show-toplevel")
    if top:
        return Path(top)
    flags = git.run("rev-parse", "--is-bare-repository", "--absolute-git-dir").decode("utf-8", "surrogateescape")
    bare, git_dir = flags.split("\n", 1)
    git_dir = Path(git_dir.strip())
    if bare == "true":
        return git_dir
    # Inside the git directory of a repository with a work tree: `core.worktree` or its parent.
    work_tree = Git(git_dir).try_run("config", "--get", "core.worktree")
    return (git_dir / work_tree).resolve() if work_tree else git_dir.parent


def missing_objects(git: Git, commits: list[str]) -> set[str]:
    """Objects of these commits' trees that the clone does not have (damaged or partial clones).

    `git cat-file --batch-check` dies on the first object a partial clone lacks; `rev-list
    --missing=print` lists them (`?<sha>`) and reads no blob.
    """
    out = git.run("rev-list", "--objects", "--missing=print", "--no-walk", "--stdin",
                  input="".join(c + "\n" for c in commits).encode())
    return {line[1:] for line in out.decode().splitlines() if line.startswith("?")}


class BlobReader:
    """Reads blobs by hash through one `git cat-file --batch` process.

    `request` sends hashes without waiting; a thread reads git's answers as they come, and `get`
    takes one (in any order). Asking for the blobs of the next commits while this one is measured
    keeps git busy instead of a round trip per commit. `read` is request + get. `sizes` asks a
    second process, `git cat-file --batch-check`, which reads object headers and no content, so
    that a blob over a size bound is never read; `bytes_read` counts the content bytes git returned.
    """

    SIZES_BATCH = 256  # hashes written before their answers are read: both stay far below a pipe's buffer

    def __init__(self, git: Git):
        self.git = git
        self.proc = git.popen(["cat-file", "--batch"])
        self.check: subprocess.Popen | None = None  # `--batch-check`, started on the first `sizes`
        self.bytes_read = 0
        self.asked: deque[str] = deque()  # requested, not yet answered, in order
        self.ready: dict[str, list[bytes | None]] = {}  # answered, not yet taken
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._answers, daemon=True)
        self.thread.start()

    def request(self, blobs: list[str]) -> None:
        if not blobs:
            return
        with self.cond:
            self.asked.extend(blobs)
        self.proc.stdin.write("".join(b + "\n" for b in blobs).encode())
        self.proc.stdin.flush()

    def get(self, blob: str) -> bytes | None:
        """A requested blob's content, or None when it is missing or not a blob."""
        with self.cond:
            while not self.ready.get(blob):
                if not self.thread.is_alive():
                    raise RuntimeError("git cat-file --batch stopped")
                self.cond.wait(1.0)
            answers = self.ready[blob]
            data = answers.pop(0)
            if not answers:
                del self.ready[blob]
            return data

    def read(self, blob: str) -> bytes | None:
        self.request([blob])
        return self.get(blob)

    def sizes(self, blobs: list[str]) -> dict[str, int | None]:
        """Each blob's size in bytes from its object header (None when missing or not a blob); no content is read."""
        if self.check is None:
            self.check = self.git.popen(["cat-file", "--batch-check"])
        out: dict[str, int | None] = {}
        for start in range(0, len(blobs), self.SIZES_BATCH):
            batch = blobs[start:start + self.SIZES_BATCH]
            self.check.stdin.write("".join(b + "\n" for b in batch).encode())
            self.check.stdin.flush()
            for blob in batch:
                fields = self.check.stdout.readline().split()  # "<sha> blob <size>" or "<sha> missing"
                if not fields:
                    raise RuntimeError("git cat-file --batch-check stopped")
                out[blob] = int(fields[2]) if len(fields) == 3 and fields[1] == b"blob" else None
        return out

    def _answers(self) -> None:
        out = self.proc.stdout
        while header := out.readline():
            fields = header.split()
            data = None
            if len(fields) == 3:  # else "<sha> missing"
                data = out.read(int(fields[2]) + 1)[:-1]
                if fields[1] != b"blob":
                    data = None
                else:
                    self.bytes_read += len(data)
            with self.cond:
                self.ready.setdefault(self.asked.popleft(), []).append(data)
                self.cond.notify_all()

    def close(self) -> None:
        for proc in (self.proc, self.check):
            if proc is not None:
                proc.stdin.close()
                proc.wait()
        self.thread.join()
