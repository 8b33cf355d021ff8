"""The dataset report: one self-contained HTML page with pictures, and the pictures as PNGs.

    python3 -m reporting.report data/NAME

Writes `data/NAME/report.html` (every image embedded as base64: it opens offline from disk, no
JavaScript) and `data/NAME/report/*.png`, from the run's manifest and stats and one streaming
pass over its chunks (reporting/collect.py); prints the page's path. The pipeline calls
`write_report` after stage 4 (unless `--no-report`); this command rebuilds it from a finished run.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import sys
import time
from pathlib import Path

from core.io import UserError, atomic_write, run_main, setup_logging
from core.parallel import ProcessMap, usable_cpus
from core.splits import SPLITS
from reporting import figures
from reporting.collect import collect
from reporting.sections import Section, Share, Table, build_sections, fmt

logger = logging.getLogger(__name__)

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}img{max-width:100%}
.note{color:#555;font-size:.85em}"""


def _table_html(table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(f'<td class="n">{html.escape(fmt(v))}</td>' if isinstance(v, (int, float, Share))
                        and not isinstance(v, bool) else f"<td>{html.escape(fmt(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    return f'<table id="{table.id}"><tr>{head}</tr>\n' + "\n".join(body) + "\n</table>"


def render_html(title: str, sections: list[Section], pngs: dict[str, bytes]) -> str:
    """The page, with each section's figures embedded from `pngs` (file name -> PNG bytes)."""
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>"]
    parts.append("<p>" + " · ".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections) + "</p>")
    for s in sections:
        parts.append(f'<h2 id="{s.id}">{html.escape(s.title)}</h2>\n<div class="row">')
        for name in s.figures:
            data = base64.b64encode(pngs[name]).decode("ascii")
            parts.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
        parts.append("<div>" + "\n".join(_table_html(t) for t in s.tables) + "</div></div>")
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in s.notes]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(out_dir: str | Path, progress: bool = False, workers: int | None = None) -> Path:
    """Write report.html and report/*.png in `out_dir` (a pipeline run's directory); return the page's path.
    `workers`: processes that draw the figures (`_draw`; None: by the CPUs, 1: none forked)."""
    out_dir = Path(out_dir)
    facts = collect(out_dir, progress=progress)
    try:
        sections = build_sections(facts)
    except KeyError as e:
        raise UserError(f"{out_dir}: dataset/dataset_stats.json lacks {e} (written by an older stage 4); "
                        "rerun the pipeline with --force") from None
    png_dir = out_dir / "report"
    pngs, drawn = write_figures(png_dir, sections, workers)
    page = out_dir / "report.html"
    with atomic_write(page) as f:
        f.write(render_html(f"Dataset report: {facts.repository}", sections, pngs))
    logger.info("report: %s (%d figures in %s: %d drawn, %d unchanged)", page, len(pngs), png_dir, len(drawn),
                len(pngs) - len(drawn))
    return page


def write_figures(png_dir: Path, sections: list[Section], workers: int | None = None
                  ) -> tuple[dict[str, bytes], list[str]]:
    """Each section's figure as `png_dir/NAME`: the PNG there when it is that picture already, else drawn
    (by `workers` processes, as `_draw`).

    Removes the PNGs of figures this report does not have. Returns name -> PNG bytes, and the names drawn.
    """
    pictures = {name: picture for s in sections for name, picture in s.figures.items()}
    for stale in png_dir.glob("*.png") if png_dir.is_dir() else []:
        if stale.name not in pictures:  # a figure an earlier run drew and this one does not
            stale.unlink()
    pngs: dict[str, bytes] = {}
    for name, picture in pictures.items():
        path = png_dir / name
        old = path.read_bytes() if path.is_file() else None
        if old is not None and figures.png_key(old) == picture.key:
            pngs[name] = old
    drawn = [name for name in pictures if name not in pngs]
    start = time.perf_counter()
    for name, png in zip(drawn, _draw([pictures[name] for name in drawn], workers)):
        logger.debug("report: drew %s", name)
        pngs[name] = png
        with atomic_write(png_dir / name, "wb") as f:
            f.write(png)
    logger.debug("report: %d figures drawn in %.3fs", len(drawn), time.perf_counter() - start)
    return {name: pngs[name] for name in pictures}, drawn


_pictures: list = []  # in a drawing process: the pictures it may be asked to draw (handed over by the fork)


def _take(pictures: list) -> None:
    global _pictures
    _pictures = pictures


def _draw_nth(k: int) -> bytes:
    return _pictures[k].png()


def _draw(pictures: list, workers: int | None = None) -> list[bytes]:
    """Each picture's PNG. Several are drawn in two forked processes where there are two CPUs and
    `workers` allows (each imports matplotlib and draws every other one; 1: in this process, as a
    multi-repository run's task, which holds one CPU, asks); the bytes do not depend on where one is drawn."""
    workers = min(2, len(pictures), usable_cpus() if workers is None else workers)
    if workers < 2:
        return [picture.png() for picture in pictures]
    with ProcessMap(workers, _take, (pictures,), "a process drawing the report's figures") as pool:
        return list(pool.map(_draw_nth, range(len(pictures)), ahead=len(pictures)))


def multi_sections(manifest: dict) -> list[Section]:
    """The per-repository view of a multi-repository dataset, from its merged manifest alone."""
    repos = manifest["repositories"]
    names = [r["name"] for r in repos]
    per_split = {s: [r["splits"][s]["tokens"] for r in repos] for s in SPLITS}
    rows = [[r["name"], r["source"], *(r["splits"][s][k] for s in SPLITS for k in ("examples", "tokens")),
             (r["splits"]["train"]["last_commit"] or {}).get("hash", "")[:12], f"repos/{r['name']}/report.html"]
            for r in repos]
    columns = ["repository", "source", *(f"{s} {k}" for s in SPLITS for k in ("examples", "tokens")),
               "last train commit", "its own report"]
    totals = [["all", "", *(manifest["splits"][s][k] for s in SPLITS for k in ("examples", "tokens")), "", ""]]
    sections = [Section("repositories", "Repositories",
                        {"repositories.png": figures.stacked_bars("Tokens per repository, by split", names, per_split)},
                        [Table("repositories", columns, rows + totals)],
                        ["Each repository is split at its own cut-off; the splits are joined in name order."])]
    if manifest["failed"]:
        sections.append(Section("failed", "Repositories that failed", {}, [Table(
            "failed", ["repository", "source", "error"], [[f["name"], f["source"], f["error"]] for f in manifest["failed"]])]))
    tok = manifest["tokenizer"]
    sections.append(Section("settings", "Tokenizer and settings", {}, [Table(
        "settings", ["setting", "value"], [["tokenizer", tok.get("name_or_path")], ["vocab size", tok.get("vocab_size")],
                                           ["fallback", bool(tok.get("fallback"))]]
        + [[k, json.dumps(v) if isinstance(v, (list, dict)) else v] for k, v in sorted(manifest["settings"].items())])]))
    return sections


def write_multi_report(out_dir: str | Path, manifest: dict) -> Path:
    """report.html and report/repositories.png of a multi-repository dataset in `out_dir`; the page's path."""
    out_dir = Path(out_dir)
    sections = multi_sections(manifest)
    pngs, _ = write_figures(out_dir / "report", sections)
    page = out_dir / "report.html"
    with atomic_write(page) as f:
        f.write(render_html(f"Dataset report: {len(manifest['repositories'])} repositories", sections, pngs))
    logger.info("report: %s", page)
    return page


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Rebuild the dataset report of a finished pipeline run.")
    p.add_argument("run_dir", type=Path, help="the run's output directory (data/NAME)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    setup_logging(args.verbose)

    def go() -> int:
        print(write_report(args.run_dir, progress=not args.no_progress))
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
