"""core.parallel.ProcessMap: forked workers with their own state, results in input order, a dead worker is one error."""

from __future__ import annotations

import os
import signal

import pytest

from core.parallel import ProcessMap, WorkerDied
from core.io import UserError

_state: dict = {}


def _start(tag: str) -> None:
    _state.update(tag=tag, pid=os.getpid(), seen=0)


def _job(x: int) -> tuple[int, str, int, int]:
    _state["seen"] += 1
    return x * x, _state["tag"], _state["pid"], _state["seen"]


def _die(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
    return x


def test_results_come_in_input_order_from_workers_with_their_own_state():
    before = os.environ.get("TOKENIZERS_PARALLELISM")
    with ProcessMap(2, _start, ("made in the worker",)) as pool:
        out = list(pool.map(_job, range(40), ahead=5))
    assert [o[0] for o in out] == [x * x for x in range(40)]
    assert {o[1] for o in out} == {"made in the worker"}
    pids = {o[2] for o in out}
    assert os.getpid() not in pids and len(pids) <= 2
    assert sorted(max(o[3] for o in out if o[2] == p) for p in pids) == sorted(
        sum(o[2] == p for o in out) for p in pids)  # each worker kept its state across items
    assert "tag" not in _state  # the caller's state is untouched
    assert os.environ.get("TOKENIZERS_PARALLELISM") == before


def test_a_killed_worker_is_one_error_not_a_hang():
    with ProcessMap(2, _start, ("x",), "a test worker") as pool:
        with pytest.raises(WorkerDied) as err:
            list(pool.map(_die, range(8), ahead=4))
    assert isinstance(err.value, UserError)  # `run_main` prints it as one line, exit code 2
    assert str(err.value).startswith("a test worker stopped without an answer") and "\n" not in str(err.value)
