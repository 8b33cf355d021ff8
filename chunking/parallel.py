"""Run a function over items on a few threads, results in input order, a bounded number in flight.

    for result in ordered_map(work, items, workers=2, ahead=6):
        ...   # result of work(items[0]), then of work(items[1]), ...

Stage 2 spends most of its time in the Rust tokenizer, which releases the GIL while it
encodes: with two threads, one commit's Python work (diff parsing, tree-sitter, text building)
runs while another commit's texts are being encoded. Items are taken from the iterator only
as results are consumed, so at most `ahead` items (and their results) are held at once.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 2, ahead: int = 6) -> Iterator[R]:
    """`map(fn, items)` on `workers` threads, yielded in input order; `workers` 0 or 1 runs inline."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunker")
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= max(ahead, workers):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
