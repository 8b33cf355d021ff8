"""Shared I/O for every stage: atomic writes, JSON / JSON Lines, hashing, the one-line error rule.

    from core.io import UserError, atomic_write, write_jsonl, iter_jsonl, run_main

Every file a stage writes goes through `atomic_write`: the bytes land in a temporary file beside
the target and are renamed over it only when complete, so a killed run never leaves a
half-written file under a final name.

The history `.json` (`{"commits": [...], "repository": {...}}`) is written with one commit per
line, so that `iter_commit_records` can stream it like the `.jsonl` instead of loading a
file that can be hundreds of megabytes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

JSON_COMMITS_OPEN = '{"commits": ['
JSON_COMMITS_CLOSE = '],'


class UserError(Exception):
    """A mistake the user can fix (bad path, bad flag, bad input file).

    `run_main` prints it as one line on stderr and exits with code 2, never a traceback.
    """


def dumps(obj: Any) -> str:
    """The one JSON encoding used for every record: compact, UTF-8, stable key order as built."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds.

    >>> with atomic_write("out.jsonl") as f:   # doctest: +SKIP
    ...     f.write("{}\\n")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write one JSON object per line, atomically. Returns the number of records."""
    n = 0
    with atomic_write(path) as f:
        for record in records:
            f.write(dumps(record))
            f.write("\n")
            n += 1
    return n


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield the objects of a JSON Lines file; a bad line is a UserError naming file and line."""
    for lineno, line in jsonl_lines(path):
        yield parse_jsonl_line(path, lineno, line)


def jsonl_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a JSON Lines file that is not blank, unparsed: for a reader
    that parses only some of them (`parse_jsonl_line`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                yield lineno, line


def parse_jsonl_line(path: str | os.PathLike, lineno: int, line: str) -> Any:
    """The object on line `lineno` of `path`; a UserError naming file and line when it is not JSON."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None


def write_history_json(path: str | os.PathLike, jsonl_path: str | os.PathLike, repository: dict) -> None:
    """Write `{"commits": [...], "repository": {...}}` from an existing JSONL, one commit per line.

    The commits are copied line by line, so memory stays bounded by the largest commit.
    """
    with atomic_write(path) as out, open(jsonl_path, encoding="utf-8") as src:
        out.write(JSON_COMMITS_OPEN + "\n")
        first = True
        for line in src:
            line = line.rstrip("\n")
            if not line:
                continue
            if not first:
                out.write(",\n")
            out.write(line)
            first = False
        out.write("\n" + JSON_COMMITS_CLOSE + "\n")
        out.write('"repository": ' + dumps(repository) + "}\n")


def iter_commit_records(path: str | os.PathLike) -> Iterator[dict]:
    """Yield commit records from the scraper's `.jsonl` or `.json`, oldest first, streaming.

    A `.json` written by `write_history_json` is read line by line; any other `.json` holding
    `{"commits": [...]}` or a plain list is loaded whole.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file (expected the scraper's git_history_rich.json or .jsonl)")
    with open(path, encoding="utf-8") as f:
        head = f.readline().rstrip("\n")
    if path.suffix != ".json":
        yield from iter_jsonl(path)
        return
    if head == JSON_COMMITS_OPEN:
        with open(path, encoding="utf-8") as f:
            f.readline()
            for lineno, line in enumerate(f, 2):
                line = line.rstrip("\n")
                if line == JSON_COMMITS_CLOSE:
                    return
                try:
                    yield json.loads(line.removesuffix(","))
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        raise UserError(f"{path}: truncated (no end of the commit list)")
    data = read_json(path)
    commits = data.get("commits") if isinstance(data, dict) else data
    if not isinstance(commits, list):
        raise UserError(f"{path}: expected a list of commits or {{\"commits\": [...]}}")
    yield from commits


def count_records(path: str | os.PathLike, chunk_size: int = 1 << 20) -> int:
    """About how many commit records `iter_commit_records(path)` yields: the file's lines (one record
    each in the scraper's `.jsonl` and `.json`), counted without parsing them; 0 for a path that is not a
    file (`iter_commit_records` says why)."""
    n = 0
    if not Path(path).is_file():
        return n
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            n += block.count(b"\n")
    return n


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.hexdigest()


def setup_logging(verbose: bool = False) -> None:
    """Configure logging once, from a `main()`; library code only calls `logging.getLogger`."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# Write failures that are the output location's fault, not the program's.
FULL = "free space or pass another --output-dir"
DISK_ERRNOS = {errno.ENOSPC: ("the disk is full", FULL), errno.EDQUOT: ("the disk quota is exceeded", FULL),
               errno.EFBIG: ("the file is too large for the file system", FULL),
               errno.EROFS: ("the file system is read-only", "pass another --output-dir"),
               errno.EACCES: ("permission denied", "pass another --output-dir"),
               errno.EPERM: ("permission denied", "pass another --output-dir")}


def disk_error(e: BaseException) -> str | None:
    """One line for an error caused by where outputs are written (disk full, read-only...), else None.

    Libraries in Rust (tokenizers' `save_pretrained`) raise a plain Exception with the OS message.
    """
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        where = f"{e.filename}: " if e.filename else ""
        what, remedy = DISK_ERRNOS[e.errno]
        return f"{where}{what} ({e.strerror}); {remedy}"
    for n, (what, remedy) in DISK_ERRNOS.items():
        if type(e) is Exception and os.strerror(n) in str(e):
            return f"{what} ({e}); {remedy}"
    return None


def run_main(fn: Callable[[], int | None]) -> int:
    """Run a command-line entry point: a UserError becomes one line on stderr and exit code 2.

    >>> def main(argv=None):                       # doctest: +SKIP
    ...     return run_main(lambda: run(parse_args(argv)))
    """
    try:
        return fn() or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except Exception as e:
        message = disk_error(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


class NpyStream:
    """Write a 1-D .npy of unknown length, atomically: the header is rewritten with the length at the end.

    A version 1.0 header of a 1-D array is 128 bytes for any int64 length, so the final header
    takes the place of the first.
    """

    def __init__(self, path: Path, dtype: np.dtype):
        self._ctx, self._dtype, self._n = atomic_write(path, "wb"), dtype, 0

    def _header(self, n: int) -> bytes:
        import numpy as np  # here: stage 1 imports this module and needs no numpy (50 ms to import)
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {"descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False, "shape": (n,)})
        return buf.getvalue()

    def __enter__(self):
        self._f = self._ctx.__enter__()
        self._f.write(self._header(0))
        return self

    def write(self, arr: np.ndarray) -> None:
        self._f.write(arr.tobytes())
        self._n += len(arr)

    def __exit__(self, *exc):
        if exc[0] is None:
            header = self._header(self._n)
            assert len(header) == len(self._header(0)), "npy header grew"
            self._f.seek(0)
            self._f.write(header)
            self._f.seek(0, os.SEEK_END)
        return self._ctx.__exit__(*exc)
