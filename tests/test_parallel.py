"""core.parallel.ProcessMap: forked workers with their own state, results in input order, a dead worker is one error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("pool", ["ProcessMap", "FunctionWorkers"])
def test_workers_end_with_a_killed_run(tmp_path, pool):
    """SIGKILL of the process that forked the workers (a killed pipeline run) leaves no worker behind."""
    import git

    git.Repo.init(tmp_path / "repo")
    root = Path(__file__).resolve().parents[1]
    make = {"ProcessMap": "from core.parallel import ProcessMap\npool = ProcessMap(2, int)\n"
                          "pids = set(pool.pool._processes)",
            "FunctionWorkers": "from core.git_runner import Git\nfrom scrapers.complexity import FunctionWorkers\n"
                               f"w = FunctionWorkers(Git({str(tmp_path / 'repo')!r}), 2)\n"
                               "pids = {p for pool in w.pools for p in pool._processes}"}[pool]
    script = f"import os, sys, time\nsys.path.insert(0, {str(root)!r})\n{make}\nprint(*pids, flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in workers if _alive(p)]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert not alive, "workers outlived the killed run"


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, ended but not yet reaped by init, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_worker_counts_do_without_cpu_affinity(monkeypatch):
    """macOS and Windows have no os.sched_getaffinity: every CPU counts there (it raised AttributeError)."""
    import os

    import semantic_chunker
    from core.parallel import usable_cpus
    from scrapers.complexity import default_jobs

    assert usable_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert usable_cpus() == 3
    assert semantic_chunker.default_workers() == 3 and default_jobs() == 2
