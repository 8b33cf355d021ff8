"""core/io.py: atomic writes, JSON Lines, the .npy stream writer and the one-line error rule."""

from __future__ import annotations

import numpy as np
import pytest

from core.io import (NpyStream, UserError, atomic_write, count_records, iter_commit_records, iter_jsonl, run_main,
                         write_history_json, write_jsonl)


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_jsonl_round_trip_keeps_text_exactly(tmp_path):
    records = [{"text": "caf\u00e9 \u2603\n\ttab", "n": i} for i in range(3)]
    assert write_jsonl(tmp_path / "r.jsonl", records) == 3
    assert list(iter_jsonl(tmp_path / "r.jsonl")) == records


def test_records_are_counted_as_lines_without_parsing(tmp_path):
    records = [{"hash": f"{i:040x}", "message": "two\nlines", "files": []} for i in range(700)]
    write_jsonl(tmp_path / "h.jsonl", records)
    write_history_json(tmp_path / "h.json", tmp_path / "h.jsonl", {"name": "r"})
    assert count_records(tmp_path / "h.jsonl", chunk_size=1000) == len(list(iter_commit_records(tmp_path / "h.jsonl")))
    assert 0 <= count_records(tmp_path / "h.json") - len(list(iter_commit_records(tmp_path / "h.json"))) <= 3
    assert count_records(tmp_path / "missing.jsonl") == 0


@pytest.mark.parametrize("dtype", [np.uint16, np.dtype("<u4")])
def test_npy_stream_writes_what_np_save_writes(tmp_path, dtype):
    parts = [np.arange(5), np.zeros(0), np.arange(70_000, 70_003) % 65_536]
    with NpyStream(tmp_path / "s.npy", np.dtype(dtype)) as out:
        for p in parts:
            out.write(np.asarray(p, dtype=dtype))
    np.save(tmp_path / "ref.npy", np.concatenate(parts).astype(dtype))
    assert (tmp_path / "s.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def test_npy_stream_interrupted_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with NpyStream(tmp_path / "s.npy", np.dtype(np.uint16)) as out:
            out.write(np.arange(3, dtype=np.uint16))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_user_error_is_one_line_and_exit_code_2(capsys):
    def fail():
        raise UserError("--thing: no such file; pass another --thing")
    assert run_main(fail) == 2
    assert capsys.readouterr().err == "error: --thing: no such file; pass another --thing\n"
