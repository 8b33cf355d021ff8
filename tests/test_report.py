"""The dataset report of a real pipeline run: every number on it equals the manifest's or the data's,
and every picture is a valid PNG, embedded in the page and written beside it."""

from __future__ import annotations

import base64
import datetime as dt
import io
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import comprehensive_pipeline
from pipeline import orchestrator
from conftest import ROOT, build_sample_repo
from core.io import iter_jsonl, read_json
from core.languages import category_of, language_of
from test_pipeline import SMALL
from core.tokenizer import encode_batch, load_tokenizer

SPLITS = ("train", "val", "test")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_pipeline(base: Path, *extra: str) -> Path:
    """The sample repository plus a test file and a planted key, through the whole pipeline."""
    b = build_sample_repo(base / "repo")
    b.commit("Add shape tests", {"tests/test_shapes.py": "from src.shapes import square\n\n\n"
                                 "def test_square():\n    assert square(3) == 9\n"})
    b.commit("Add deploy config", {"deploy/app.ini": "[aws]\naws_access_key_id = " + "AKIA" + "Q3EGWX7ZPLMN4RTY\n"})
    out = base / "out"
    cfg = comprehensive_pipeline.parse_args(["--repo", str(b.path), "--output-dir", str(out), *SMALL, *extra])
    orchestrator.run_pipeline(cfg)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return run_pipeline(tmp_path_factory.mktemp("report"))


class _Page(HTMLParser):
    """Tables by id (rows of cell texts, header row excluded) and the data URIs of the images."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.scripts = 0
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def n(x: int) -> str:
    return f"{x:,}"


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%"


def day(ts: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).date()


def expected_tables(out: Path) -> dict[str, list[list[str]]]:
    """Every table of the report, recomputed here from the manifest, the stats and the chunk records."""
    m = read_json(out / "dataset" / "dataset_stats.json")
    c_stats, h_stats = read_json(out / "chunks_semantic.stats.json"), read_json(out / "git_history_stats.json")
    heads = {s: read_json(out / "dataset" / f"training_data_{s}.json") for s in SPLITS}
    own = {s: heads[s]["n_tokens"] - heads[s]["prefix_tokens"] for s in SPLITS}  # the data's token counts
    assert own == {s: m["splits"][s]["tokens"] for s in SPLITS}
    total = sum(own.values())
    cut = m["cutoff"]

    def split_of(order: int) -> str:
        return "train" if order <= cut["train_last_order"] else "val" if order <= cut["val_last_order"] else "test"

    chunks = list(iter_jsonl(out / "chunks_semantic.jsonl"))
    subjects = {c["hash"]: c["subject"] for c in iter_jsonl(out / "git_history_rich.jsonl")}
    tok = load_tokenizer(str(out / "tokenizer"))
    t = {}
    t["run"] = [["repository", "repo"], ["tokenizer", m["tokenizer"]["name_or_path"]],
                ["vocab size", n(m["tokenizer"]["vocab_size"])], ["fallback tokenizer", "yes"],
                ["token dtype", "uint16"], ["tokens", n(total)],
                ["examples", n(sum(heads[s]["n_examples"] for s in SPLITS))], ["chunks", n(len(chunks))],
                ["per-chunk figures from", "chunks_semantic.jsonl"]]
    date = lambda c: f"{c['hash'][:12]} {day(c['timestamp'])}"  # noqa: E731
    t["splits"] = [[s, n(m["splits"][s]["commits"]), n(sum(split_of(c["order"]) == s for c in chunks)), n(own[s]),
                    pct(own[s], total), n(heads[s]["n_examples"]), n(heads[s]["target_tokens"]),
                    date(m["splits"][s]["first_commit"]), date(m["splits"][s]["last_commit"])] for s in SPLITS]
    # Timeline: the history spans days, so weeks (Monday-start); every week in range.
    weeks: dict[dt.date, list[int]] = {}
    for c in chunks:
        d = day(c["timestamp"])
        weeks.setdefault(d - dt.timedelta(days=d.weekday()), [0, 0, 0])[SPLITS.index(split_of(c["order"]))] += c["n_tokens"] + 1
    w = min(weeks)
    rows = []
    while w <= max(weeks):
        v = weeks.get(w, [0, 0, 0])
        rows.append([w.isoformat(), *map(n, v), n(sum(v))])
        w += dt.timedelta(days=7)
    t["timeline"] = rows
    t["cutoffs"] = [[b, last["hash"][:12], n(last["order"]), str(day(last["timestamp"])), subjects[last["hash"]]]
                    for b, last in (("train | val", m["splits"]["train"]["last_commit"]),
                                    ("val | test", m["splits"]["val"]["last_commit"]))]
    for key, fn in (("language", language_of), ("category", category_of)):
        acc: dict[str, list[int]] = {}
        for c in chunks:
            acc.setdefault(fn(c["path"]) if c["path"] else "unknown", [0, 0, 0])[
                SPLITS.index(split_of(c["order"]))] += c["n_tokens"] + 1
        for i, s in enumerate(SPLITS):  # the manifest holds the same breakdown
            assert m["splits"][s][f"tokens_by_{key}"] == {k: v[i] for k, v in acc.items() if v[i]}
        t[key] = [[k, *map(n, v), n(sum(v)), pct(sum(v), total)]
                  for k, v in sorted(acc.items(), key=lambda kv: (-sum(kv[1]), kv[0]))]
    lengths = sorted(c["n_tokens"] for c in chunks)
    t["chunk_lengths"] = [[n(len(lengths)), n(lengths[0]), n(lengths[(len(lengths) - 1) // 2]),
                           f"{sum(lengths) / len(lengths):.1f}", n(lengths[-1]), "8", "96",
                           n(sum(x < 8 for x in lengths)), n(sum(x > 96 for x in lengths))]]
    header = Counter()
    for c in chunks:  # first line, plus each `file <its path>` title line
        lines = c["text"].split("\n")
        titles = tuple(f"file {p}" for p in c["paths"])
        text = lines[0] + "\n" + "".join(x + "\n" for x in lines[1:] if x.startswith(titles))
        header[split_of(c["order"])] += len(encode_batch(tok, [text])[0])
    t["headers"] = [[s, n(header[s]), n(own[s]), pct(header[s], own[s])] for s in SPLITS]
    commits: dict[str, list] = {}
    for c in chunks:
        if c["kind"] != "snapshot":
            commits.setdefault(c["commit"], [0, c["order"], c["timestamp"]])[0] += c["n_tokens"] + 1
    top = sorted(commits.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[:15]
    t["top_commits"] = [[n(i), h[:12], str(day(ts)), split_of(o), subjects[h], n(tk), pct(tk, total)]
                        for i, (h, (tk, o, ts)) in enumerate(top, 1)]
    files: dict[str, list[int]] = {}
    for c in chunks:
        if c["path"]:
            files.setdefault(c["path"], [0, 0, 0])[SPLITS.index(split_of(c["order"]))] += c["n_tokens"] + 1
    top = sorted(files.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:15]
    t["top_files"] = [[n(i), p, language_of(p), category_of(p), *map(n, v), n(sum(v)), pct(sum(v), total)]
                      for i, (p, v) in enumerate(top, 1)]
    h = h_stats["counts"]
    t["left_out"] = ([["1 scrape", k.replace("_", " "), n(h[k]), ""]
                      for k in ("binary", "missing_objects", "truncated", "patch_mismatch", "empty_commits")]
                     + [["2 chunk: diffs", k, n(v), ", ".join(c_stats["diff_filtered_examples"][k])]
                        for k, v in sorted(c_stats["diff_filtered"].items())]
                     + [["2 chunk: snapshots", k, n(v), ", ".join(c_stats["snapshot_filtered_examples"][k])]
                        for k, v in sorted(c_stats["snapshot_filtered"].items())]
                     + [["2 chunk", "duplicates dropped", n(c_stats["duplicates_dropped"]), ""],
                        ["2 chunk", "bad records", n(c_stats["bad_records"]), ""],
                        ["4 dataset", "malformed chunks skipped", n(m["input"]["skipped_chunks"]), ""]])
    t["redactions"] = ([["1 scrape", k, n(v)] for k, v in sorted(h_stats["secrets_redacted"].items())]
                       + [[f"2 chunk: {w}", k, n(v)] for w in ("diffs", "snapshots")
                          for k, v in sorted(c_stats["secrets_redacted"][w].items())])
    t["fallbacks"] = [["tokenizer", "yes", f"byte-level BPE trained on the repository ({m['tokenizer']['name_or_path']})"],
                      ["stage 2 raw commits", "no", ""],
                      ["commits kept as one raw chunk", n(c_stats["fallback_commits"]),
                       " ".join(x[:12] for x in c_stats["fallback_hashes"])],
                      ["snapshots at HEAD (leak)", "no", ""]]

    def flat(prefix, v):
        if isinstance(v, dict):
            return [r for k, x in v.items() for r in flat(f"{prefix}.{k}" if prefix else k, x)]
        cell = ", ".join(map(str, v)) if isinstance(v, list) else \
            ("yes" if v else "no") if isinstance(v, bool) else n(v) if isinstance(v, int) else "" if v is None else str(v)
        return [[prefix, cell]]

    t["tokenizer"] = flat("", m["tokenizer"])
    t["settings"] = (flat("", m["settings"]) + [["tokenizer_dir", m["tokenizer_dir"]]] + flat("cutoff", cut)
                     + flat("stage 2", c_stats["settings"]) + flat("stage 1", h_stats["settings"]))
    return t


def test_every_number_on_the_report_is_the_manifests_or_the_datas(run):
    page = parse(run / "report.html")
    expected = expected_tables(run)
    assert set(page.tables) == set(expected)
    for table_id, rows in expected.items():
        assert page.tables[table_id] == rows, table_id
    assert page.tables["redactions"], "the planted key is redacted and counted"
    assert {r[0] for r in page.tables["category"]} >= {"code", "tests", "docs", "config"}


def test_pictures_are_valid_pngs_embedded_and_written_beside_the_page(run):
    page = parse(run / "report.html")
    assert page.scripts == 0
    embedded = []
    for src in page.images:
        assert src.startswith("data:image/png;base64,")  # nothing fetched: the page opens offline
        embedded.append(base64.b64decode(src.split(",", 1)[1]))
    written = sorted((run / "report").glob("*.png"))
    assert len(written) == len(embedded) >= 7
    assert sorted(p.read_bytes() for p in written) == sorted(embedded)
    for png in embedded:
        assert png.startswith(PNG_SIGNATURE)
        image = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50 and np.ptp(image) > 0


def test_report_rebuilds_from_a_finished_run_byte_for_byte(run, capsys):
    from reporting.report import main

    before = (run / "report.html").read_bytes()
    (run / "report.html").unlink()
    assert main([str(run), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")
    assert (run / "report.html").read_bytes() == before


def test_no_report_flag_writes_none_and_the_summary_names_the_page(tmp_path, capsys):
    out = run_pipeline(tmp_path / "a", "--no-report")
    assert not (out / "report.html").exists() and not (out / "report").exists()
    assert "report:" not in capsys.readouterr().out
    from reporting.report import main

    assert main([str(tmp_path / "missing")]) == 2  # one line, not a traceback


def test_without_chunk_text_the_report_reads_stage_3s_index(run, tmp_path):
    """As after stage 2's raw-commit fallback: the same token figures, no header share."""
    import shutil

    from reporting.report import write_report

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "chunks_semantic.jsonl").unlink()
    page, full = parse(write_report(copy)), parse(run / "report.html")
    for table_id in ("splits", "timeline", "cutoffs", "language", "category", "top_files"):
        assert page.tables[table_id] == full.tables[table_id], table_id
    # Stage 2's stats are not this run's either: no chunk bounds, no stage-2 counts.
    assert page.tables["chunk_lengths"][0][:5] == full.tables["chunk_lengths"][0][:5]
    assert page.tables["chunk_lengths"][0][5:7] == ["", ""]
    assert not any(r[0].startswith("2 chunk") for r in page.tables["left_out"])
    assert "headers" not in page.tables and ["per-chunk figures from", "chunks_tokenized.json"] in page.tables["run"]
    assert [[r[1], r[5]] for r in page.tables["top_commits"]] == [[r[1], r[5]] for r in full.tables["top_commits"]]


def _pngs(run: Path) -> dict[str, tuple[int, int, bytes]]:
    """Each written figure's (inode, mtime in ns, bytes): a figure written again gets a new inode."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in (run / "report").glob("*.png")}


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def test_a_figure_whose_numbers_did_not_change_is_not_drawn_again(run, tmp_path, caplog):
    from reporting.report import write_report

    copy = _copy(run, tmp_path / "run")
    before, page = _pngs(copy), (copy / "report.html").read_bytes()
    with caplog.at_level("INFO", logger="reporting.report"):
        write_report(copy)
    assert _pngs(copy) == before  # the same files, not rewritten
    assert ": 0 drawn, 8 unchanged)" in caplog.text
    assert (copy / "report.html").read_bytes() == page


def test_a_changed_number_redraws_only_its_figure_and_equals_a_fresh_drawing(run, tmp_path, caplog):
    """A new chunk bound changes the length histogram only; a PNG without the figure's key is drawn again."""
    from core.io import write_json
    from reporting.report import write_report

    copy = _copy(run, tmp_path / "run")
    stats = read_json(copy / "chunks_semantic.stats.json")
    stats["settings"]["min_chunk_tokens"] += 7
    write_json(copy / "chunks_semantic.stats.json", stats)
    (copy / "report" / "timeline.png").write_bytes(PNG_SIGNATURE + b"not this picture")
    before = _pngs(copy)
    with caplog.at_level("DEBUG", logger="reporting.report"):
        write_report(copy)
    after = _pngs(copy)
    redrawn = {name for name in after if after[name][:2] != before[name][:2]}
    assert redrawn == {"chunk_lengths.png", "timeline.png"}
    assert [m.split()[2] for m in caplog.messages if m.startswith("report: drew ")] == ["timeline.png",
                                                                                         "chunk_lengths.png"]
    assert ": 2 drawn, 6 unchanged)" in caplog.text
    assert after["chunk_lengths.png"][2] != before["chunk_lengths.png"][2]
    assert after["timeline.png"][2] == run.joinpath("report", "timeline.png").read_bytes()

    fresh = _copy(copy, tmp_path / "fresh")  # the same run with every figure drawn anew
    shutil.rmtree(fresh / "report")
    write_report(fresh)
    assert {name: b for name, (_, _, b) in _pngs(fresh).items()} == {name: b for name, (_, _, b) in after.items()}
    assert (fresh / "report.html").read_bytes() == (copy / "report.html").read_bytes()


def test_a_report_with_every_figure_unchanged_does_not_import_matplotlib(run, tmp_path):
    copy = _copy(run, tmp_path / "run")
    code = ("import sys; from reporting.report import write_report; write_report(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    done = subprocess.run([sys.executable, "-c", code, str(copy)], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_figures_drawn_in_worker_processes_or_in_this_one_are_the_same_bytes(run, tmp_path):
    """By default the figures are drawn in two forked processes (matplotlib is imported there, not here);
    `workers=1` (a multi-repository task) draws them in this process: the same files either way."""
    import subprocess
    import sys

    from core.parallel import usable_cpus

    if usable_cpus() < 2:
        pytest.skip("one CPU: the figures are drawn in this process anyway")
    imported = {}
    for name, workers in (("alone", 1), ("forked", None)):
        copy = _copy(run, tmp_path / name)
        shutil.rmtree(copy / "report")
        code = (f"import sys; from reporting.report import write_report; write_report({str(copy)!r}, "
                f"workers={workers!r}); print('matplotlib' in sys.modules)")
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        imported[name] = result.stdout.strip()
    assert imported == {"alone": "True", "forked": "False"}
    alone, forked = tmp_path / "alone", tmp_path / "forked"
    assert {n: b for n, (_, _, b) in _pngs(alone).items()} == {n: b for n, (_, _, b) in _pngs(forked).items()}
    assert (alone / "report.html").read_bytes() == (forked / "report.html").read_bytes()
