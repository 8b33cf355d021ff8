"""What `--repo` names, resolved one way for the one command, each stage and the multi-repository mode.

    repo = open_repository("https://github.com/pallets/click", cache=Path("data/click/sources"))

A path to a work tree or any directory inside it, its `.git` directory, a worktree's or
submodule's `.git` file, a bare repository, or a URL (`https://`, `ssh://`, `file://`,
`git@host:path`): a URL is cloned bare (`--mirror`) into `cache/<name>.git` the first time and
fetched on the next run. Anything else is a UserError that says what it is: no such path, a file
that is not a repository, a directory that is not one, git missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from core.git_runner import GitError, resolve_repo
from core.io import UserError


def is_url(source: str) -> bool:
    """A repository to clone (`https://`, `ssh://`, `file://`, `git@host:path`), not a path.

    >>> [is_url(s) for s in ("https://github.com/a/b", "git@github.com:a/b.git", "../b", "C:/b")]
    [True, True, False, False]
    """
    return "://" in source or re.match(r"^[\w.-]+@[\w.-]+:", source) is not None


def repo_name(source: str) -> str:
    """The repository's name, for its output directory: the last part of its path or URL, without `.git`.

    >>> [repo_name(s) for s in ("https://github.com/pallets/click.git", "git@host:a/cobra", "/srv/x/", "r/.git")]
    ['click', 'cobra', 'x', 'r']
    """
    path = source.rstrip("/").split(":")[-1] if is_url(source) else source.rstrip("/")
    path = path.removesuffix("/.git")
    return Path(path).name.removesuffix(".git") or "repo"


def fetch_source(url: str, dest: Path) -> None:
    """A bare mirror of `url` at `dest` (every branch and tag): cloned the first time, fetched after."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a password prompt would hang a worker
    if (dest / "HEAD").is_file():
        cmd, tmp = ["git", "-C", str(dest), "fetch", "-q", "--prune", "origin"], None
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = ["git", "clone", "-q", "--mirror", url, str(tmp)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise UserError("git is not installed or not on PATH") from None
    if proc.returncode:
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"{url}: git {cmd[1] if tmp else 'fetch'} failed ({why})")
    if tmp is not None:
        os.replace(tmp, dest)


def open_repository(source: str, cache: Path | None = None, flag: str = "--repo") -> Path:
    """The repository `source` names (see the module's docstring); a URL needs `cache`, where its clone lives."""
    if is_url(source):
        if cache is None:
            raise UserError(f"{flag} {source}: a URL is cloned by comprehensive_pipeline.py; here give a path")
        dest = cache / f"{repo_name(source)}.git"
        fetch_source(source, dest)
        return resolve(dest, source, flag)
    path = Path(source).expanduser()
    if path.is_file() and path.name == ".git":  # a worktree's or submodule's `gitdir: ...` file
        path = path.parent
    elif path.is_file():
        raise UserError(f"{flag} {source}: is a file, not a repository")
    elif not path.exists():
        raise UserError(f"{flag} {source}: no such directory")
    return resolve(path.resolve(), source, flag)


def resolve(path: Path, source: str, flag: str) -> Path:
    try:
        return resolve_repo(path)
    except FileNotFoundError:
        raise UserError("git is not installed or not on PATH") from None
    except GitError as e:
        raise UserError(f"{flag} {source}: not a git repository ({e})") from None
