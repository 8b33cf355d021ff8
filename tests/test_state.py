"""pipeline/state.py: stage keys come from the config object a stage runs with; finished stages are kept by id."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.config import key_settings
from core.io import read_json
from pipeline.state import STAT_FILE, STATE_FILE, OutputLock, RunState, stage_key
from semantic_chunker import ChunkConfig


def test_every_config_field_is_in_the_key_but_paths_and_dropped_ones():
    cc = ChunkConfig(output="a/chunks_semantic.jsonl")
    settings = key_settings(cc)
    assert set(settings) == {f.name for f in dataclasses.fields(cc)} - {"repo", "commits", "output", "progress",
                                                                        "workers"}
    key = stage_key(settings, {"history": "h"})
    for change in ({"filter_lock_files": False}, {"dedup": False}, {"max_file_bytes": 10}):
        other = key_settings(dataclasses.replace(cc, **change))
        assert stage_key(other, {"history": "h"}) != key, change
    moved = dataclasses.replace(cc, output="b/chunks_semantic.jsonl", workers=4, progress=False)
    assert stage_key(key_settings(moved),
                     {"history": "h"}) == key


def test_a_field_added_to_a_config_changes_the_key():
    wider = dataclasses.make_dataclass("Wider", [("new_setting", int, 7)], bases=(ChunkConfig,))
    assert stage_key(key_settings(wider()), {}) != stage_key(key_settings(ChunkConfig()), {})


def test_finished_stage_is_kept_by_id_and_redone_when_an_output_changes(tmp_path):
    out = tmp_path / "x.json"
    out.write_text("1", encoding="utf-8")
    state = RunState(tmp_path)
    state.record("chunk", "k1", {"x": out}, {"in": "a"})
    again = RunState(tmp_path)
    assert list(again.stages) == ["chunk"] and again.finished("chunk", "k1", {"x": out}) is not None
    assert again.finished("chunk", "k2", {"x": out}) is None
    out.write_text("2", encoding="utf-8")
    assert again.finished("chunk", "k1", {"x": out}) is None


def test_a_worker_that_outlives_a_killed_run_does_not_keep_the_lock(tmp_path):
    """A run killed while a forked worker lives on (the worker is not killed with it): the rerun gets the lock."""
    script = f"""
import os, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from pipeline.state import OutputLock
lock = OutputLock(__import__("pathlib").Path({str(tmp_path)!r})).__enter__()
child = os.fork()
if child == 0:
    open(os.path.join({str(tmp_path)!r}, "worker-ready"), "w").close()  # past fork: its at-fork hook has run
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
os._exit(0)   # the run dies without releasing anything, as under SIGKILL
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())  # not read to its end: the worker holds the pipe open
    proc.wait(timeout=60)
    proc.stdout.close()
    deadline = time.monotonic() + 60  # a loaded machine may not have run the worker yet
    while not (tmp_path / "worker-ready").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        os.kill(worker, 0)  # the worker is still alive
        with OutputLock(tmp_path):
            pass
    finally:
        os.kill(worker, signal.SIGKILL)


def _settled(tmp_path, text="same size"):
    """An output recorded by a finished stage, its stat data settled (older than the stat file)."""
    out = tmp_path / "x.json"
    out.write_text(text, encoding="utf-8")
    state = RunState(tmp_path)
    state.record("chunk", "k", {"x": out}, {})
    assert RunState(tmp_path).finished("chunk", "k", {"x": out}) is not None  # re-hashed once if racy, then settled
    return out


def test_an_output_whose_stat_data_is_unchanged_is_not_read_again(tmp_path):
    out = _settled(tmp_path)
    again = RunState(tmp_path)
    assert again.finished("chunk", "k", {"x": out}) is not None and again.hashed == 0


def test_an_edit_that_restores_size_and_mtime_is_still_seen(tmp_path):
    """Trusted: size, mtime_ns, ctime_ns and inode together. `os.utime` can set mtime back, never ctime."""
    out = _settled(tmp_path)
    st = out.stat()
    out.write_text("SAME SIZE", encoding="utf-8")
    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert out.stat().st_size == st.st_size and out.stat().st_mtime_ns == st.st_mtime_ns
    again = RunState(tmp_path)
    assert again.finished("chunk", "k", {"x": out}) is None and again.hashed == 1


def test_a_racy_output_is_hashed_again(tmp_path):
    """An output whose times are not older than the stat file may have changed within one clock tick: read it."""
    out = _settled(tmp_path)
    state = RunState(tmp_path)
    state.written_ns = out.stat().st_ctime_ns  # as if the stat file had been written in the output's tick
    assert state.finished("chunk", "k", {"x": out}) is not None and state.hashed == 1


def test_the_state_file_holds_no_stat_data(tmp_path):
    _settled(tmp_path)
    assert "files" not in read_json(tmp_path / STATE_FILE) and "files" in read_json(tmp_path / STAT_FILE)
