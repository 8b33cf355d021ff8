"""Resume and lock for comprehensive_pipeline.py: skip finished stages, refuse a second run.

A stage is finished when `.pipeline_state.json` in the output directory records, under the
stage's id, the key it ran with (a hash of the config object it runs with, from `core.config.key_settings`,
and of its inputs' contents) and every output it wrote still has
the content hash recorded then. Anything else (a killed run, a changed input, a deleted or
edited output) makes the stage run again; since every output is written atomically and
deterministically, a killed run started again ends byte-identical to an uninterrupted one.
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


def output_hashes(paths: dict[str, Path]) -> dict[str, str]:
    """Content hash of each output; a directory hashes the names and contents of its files."""
    hashes = {}
    for name, path in paths.items():
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(f.relative_to(path).as_posix().encode() + b"\0" + sha256_file(f).encode())
            hashes[name] = h.hexdigest()
        else:
            hashes[name] = sha256_file(path)
    return hashes


class RunState:
    """The record of finished stages, kept in `<output_dir>/.pipeline_state.json`."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / STATE_FILE
        try:
            self.stages: dict = read_json(self.path)["stages"] if self.path.exists() else {}
        except (UserError, KeyError, TypeError):
            logger.warning("%s is unreadable; every stage will run", self.path)
            self.stages = {}

    def finished(self, stage: str, key: str, outputs: dict[str, Path]) -> dict[str, str] | None:
        """The recorded output hashes if `stage` already ran with `key` and its outputs are intact."""
        entry = self.stages.get(stage)
        if not entry or entry.get("key") != key or set(entry.get("outputs", {})) != set(outputs):
            return None
        if not all(p.exists() for p in outputs.values()):
            return None
        current = output_hashes(outputs)
        return current if current == entry["outputs"] else None

    def record(self, stage: str, key: str, outputs: dict[str, Path], info: dict) -> dict[str, str]:
        hashes = output_hashes(outputs)
        self.stages[stage] = {"key": key, "outputs": hashes, "info": info}
        write_json(self.path, {"stages": self.stages})
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
