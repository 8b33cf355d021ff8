"""Resume and lock for comprehensive_pipeline.py: skip finished stages, refuse a second run.

A stage is finished when `.pipeline_state.json` in the output directory records, under the
stage's id, the key it ran with (a hash of the config object it runs with, from `core.config.key_settings`,
and of its inputs' contents) and every output it wrote still has
the content hash recorded then. Anything else (a killed run, a changed input, a deleted or
edited output) makes the stage run again; since every output is written atomically and
deterministically, a killed run started again ends byte-identical to an uninterrupted one.

An output's content hash is read again only when its stat data changed: beside each file's sha256,
`.pipeline_stat.json` keeps its size, mtime_ns, ctime_ns and inode (apart from the state file, which
stays byte-identical between equal runs), and a file whose four are as recorded is taken as unchanged
without reading it (as git's index and make do). Editing a file moves its ctime, which no user call
can set back (`touch -d` and `os.utime` set mtime and atime, and move ctime to now), and replacing it
changes the inode. What is trusted, then, is the clock: an edit that keeps the size within the same
ctime tick as the recorded one would pass, so a file whose times are not older than the stat file's
own mtime (written after them, on the same file system and clock) is "racy", as git calls it, and is
hashed again, then recorded with its now settled stat data.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from core.io import UserError, dumps, read_json, sha256_file, write_json

logger = logging.getLogger(__name__)

STATE_FILE = ".pipeline_state.json"
# The outputs' stat data beside their hashes: a cache local to this machine and file system (deleting it
# costs one re-hash), kept apart so that the state file stays a function of the content alone.
STAT_FILE = ".pipeline_stat.json"
LOCK_FILE = ".pipeline.lock"
# What a killed run leaves: `atomic_write` temporaries.
STALE_PATTERNS = (".*.tmp-*",)
# Lock descriptors this process holds. A forked child (a stage's worker process) closes its copies at
# once: a flock belongs to the open file, so a worker that outlives a killed run would keep the
# output directory locked and refuse the rerun.
_HELD_LOCKS: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in _HELD_LOCKS:
        os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def stage_key(settings: dict, inputs: dict[str, str]) -> str:
    """Hash of a stage's settings and its inputs' content hashes."""
    return hashlib.sha256(dumps({"settings": settings, "inputs": inputs}).encode("utf-8")).hexdigest()


def output_hashes(paths: dict[str, Path], file_hash=sha256_file) -> dict[str, str]:
    """Content hash of each output; a directory hashes the names and contents of its files."""
    hashes = {}
    for name, path in paths.items():
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(f.relative_to(path).as_posix().encode() + b"\0" + file_hash(f).encode())
            hashes[name] = h.hexdigest()
        else:
            hashes[name] = file_hash(path)
    return hashes


def stat_fingerprint(path: Path | None) -> str:
    """A hash of the names and stat data of `path` (a file, or each file under a directory); "" for None.

    Reads no content: for a cache key whose miss costs only time (the tokenizer's source files).
    """
    if path is None:
        return ""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    data = [[f.relative_to(path).as_posix() if f != path else "", *_stat_data(f.stat())] for f in files]
    return hashlib.sha256(dumps(data).encode("utf-8")).hexdigest()


def _stat_data(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class RunState:
    """The record of finished stages, kept in `<output_dir>/.pipeline_state.json`."""

    def __init__(self, out_dir: Path):
        self.path, self.stat_path = out_dir / STATE_FILE, out_dir / STAT_FILE
        self.files: dict[str, list] = {}  # path from out_dir -> [size, mtime_ns, ctime_ns, inode, sha256]
        self.written_ns = 0               # the stat file's mtime: stat data not older than it is racy
        self.hashed = 0                   # files read and hashed by this process (for tests and the bench)
        try:
            self.stages: dict = read_json(self.path)["stages"] if self.path.exists() else {}
        except (UserError, KeyError, TypeError):
            logger.warning("%s is unreadable; every stage will run", self.path)
            self.stages = {}
        try:
            self.files = read_json(self.stat_path)["files"]
            self.written_ns = self.stat_path.stat().st_mtime_ns
        except (UserError, KeyError, TypeError):
            pass  # no usable stat cache: every output is hashed once

    def file_hash(self, path: Path) -> str:
        """sha256 of `path`, read from the record when its stat data is as recorded and settled."""
        st = path.stat()
        now = _stat_data(st)
        name = os.path.relpath(path, self.path.parent)  # the same for a relative and an absolute --output-dir
        known = self.files.get(name)
        if known and known[:4] == now and max(st.st_mtime_ns, st.st_ctime_ns) < self.written_ns:
            return known[4]
        self.hashed += 1
        digest = sha256_file(path)
        self.files[name] = now + [digest]
        return digest

    def _save(self) -> None:
        write_json(self.path, {"stages": self.stages})
        self._save_stats()

    def _save_stats(self) -> None:
        write_json(self.stat_path, {"files": self.files}, indent=None)
        self.written_ns = self.stat_path.stat().st_mtime_ns

    def finished(self, stage: str, key: str, outputs: dict[str, Path]) -> dict[str, str] | None:
        """The recorded output hashes if `stage` already ran with `key` and its outputs are intact."""
        entry = self.stages.get(stage)
        if not entry or entry.get("key") != key or set(entry.get("outputs", {})) != set(outputs):
            return None
        if not all(p.exists() for p in outputs.values()):
            return None
        hashed = self.hashed
        current = output_hashes(outputs, self.file_hash)
        if current != entry["outputs"]:
            return None
        if self.hashed > hashed:  # racy or moved files, read and found intact: keep their settled stat data
            self._save_stats()
        return current

    def record(self, stage: str, key: str, outputs: dict[str, Path], info: dict) -> dict[str, str]:
        hashes = output_hashes(outputs, self.file_hash)
        self.stages[stage] = {"key": key, "outputs": hashes, "info": info}
        self._save()
        return hashes

    def info(self, stage: str) -> dict:
        return self.stages.get(stage, {}).get("info", {})


class OutputLock:
    """An exclusive lock on the output directory, released when the process ends however it ends."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> "OutputLock":
        """Take the lock, then remove temporary files that a killed run left behind."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise UserError(f"another pipeline run is writing to {self.path.parent} (lock {self.path.name}); "
                            "wait for it or use another --output-dir") from None
        _HELD_LOCKS.add(self.fd)
        for stale in [p for pattern in STALE_PATTERNS for p in self.path.parent.rglob(pattern)]:
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self.fd is not None:
            _HELD_LOCKS.discard(self.fd)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
