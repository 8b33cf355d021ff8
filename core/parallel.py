"""Run a function over items in a few forked processes, results in input order, a bounded number in flight.

    with ProcessMap(2, start_worker, (config, tok)) as pool:   # forks 2 workers now
        for result in pool.map(job, items, ahead=6):
            ...   # job(items[0]) as worker state made by start_worker(config, tok) computed it, then job(items[1]), ...

Stage 2 is mostly tree-sitter and Python work, which hold the GIL (threads gained little; only
the Rust tokenizer releases it). Each item goes to one of `workers` forked processes, each with
its own state made by `initializer` after the fork (its own git pipes and caches: a pipe must not
be shared between processes). Items are taken from the iterator only as results are consumed, so
at most `ahead` items (and their results) are held at once.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Callable, Iterable, Iterator, TypeVar

from core.io import UserError

T = TypeVar("T")
R = TypeVar("R")

TOKENIZERS_PARALLELISM = "TOKENIZERS_PARALLELISM"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class WorkerDied(UserError):
    """A worker process ended without an answer (killed, out of memory)."""

    def __init__(self, what: str, fewer: str):
        super().__init__(f"{what} stopped without an answer (killed, or out of memory?): run again with "
                         f"fewer workers ({fewer})")


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity where the system has one (Linux), else all of
    them (macOS and Windows have no `os.sched_getaffinity`)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def die_with_parent(parent: int) -> None:
    """In a forked worker: end (SIGTERM) when `parent`, the process that forked it, ends however it ends.

    A run killed with SIGKILL cannot shut its pool down, and a worker waiting on its queue would
    live on (its own copy of the pipe keeps the queue open). Linux's parent-death signal ends it;
    elsewhere a worker still ends when it next finds its queue broken.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent ended before the signal was asked for
        os._exit(1)


def _start(parent: int, initializer: Callable, initargs: tuple) -> None:
    die_with_parent(parent)
    initializer(*initargs)


def answer(future, what: str, fewer: str):
    """`future.result()`, a dead worker process made one `WorkerDied` line naming `what` and the flag for `fewer`."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise WorkerDied(what, fewer) from None


class ProcessMap:
    """`workers` processes forked when this is made, each set up by `initializer(*initargs)`.

    Forking, unlike spawning, does not re-run the caller's `__main__` (stdin, a notebook, a script
    without a main guard) and hands `initargs` (a loaded tokenizer) over without pickling them;
    `fn`, the items and the results cross by pickle. Make this before opening pipes the workers
    must not inherit. The Hugging Face tokenizer is told not to start its thread pool in the
    workers (`TOKENIZERS_PARALLELISM=false` while they are forked): one worker is one core, and a
    pool from before the fork would deadlock. A worker that dies ends `map` with `WorkerDied`.
    """

    def __init__(self, workers: int, initializer: Callable, initargs: tuple = (), what: str = "a worker process"):
        self.workers, self.what = workers, what
        before = os.environ.get(TOKENIZERS_PARALLELISM)
        os.environ[TOKENIZERS_PARALLELISM] = "false"
        gc.freeze()  # the objects from before the fork: the workers' collections leave them (and their pages) alone
        try:
            self.pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_start,
                                            initargs=(os.getpid(), initializer, initargs))
            self._result(self.pool.submit(int))  # forks every worker now, before the caller opens its pipes
        finally:
            gc.unfreeze()
            if before is None:
                del os.environ[TOKENIZERS_PARALLELISM]
            else:
                os.environ[TOKENIZERS_PARALLELISM] = before

    def _result(self, future):
        return answer(future, self.what, "--workers 1: none")

    def map(self, fn: Callable[[T], R], items: Iterable[T], ahead: int = 6) -> Iterator[R]:
        """`map(fn, items)` in the workers, yielded in input order."""
        pending: deque = deque()
        for item in items:
            pending.append(self.pool.submit(fn, item))
            if len(pending) >= ahead:
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "ProcessMap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
