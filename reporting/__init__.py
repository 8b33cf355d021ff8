"""Looking at a finished run: the dataset report (report.py) and exports for other trainers (export.py)."""

from __future__ import annotations

from pathlib import Path


def report_and_export(run_dir: Path, report: bool, formats, progress: bool = False) -> list[tuple[str, Path]]:
    """What the pipeline does after stage 4: the report unless `report` is false, then each export.

    Returns (label, path) for the summary, e.g. [("report", data/x/report.html), ("export hf", ...)].
    """
    done = []
    if report:
        from reporting.report import write_report

        done.append(("report", write_report(run_dir, progress=progress)))
    if formats:
        from reporting.export import export

        done += [(f"export {fmt}", dest) for fmt, dest in export(run_dir, formats, progress=progress).items()]
    return done
