"""The report's sections: for each, a picture and the tables of the numbers it draws.

    for section in build_sections(collect(Path("data/NAME"))):
        section.title, section.figures, section.tables

Table ids are stable (`splits`, `timeline`, `languages`, ...): tests read the report by them.
Integers print with thousands separators, shares as percentages of all dataset tokens.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.schema import CHUNKS
from core.splits import SPLITS
from reporting import figures
from reporting.collect import Facts
from core.languages import category_of, language_of

TOP = 15           # rows in the top commits / top files tables
TOP_IN_FIGURE = 12  # languages / categories drawn (the table lists all)


@dataclass
class Table:
    id: str
    columns: list[str]
    rows: list[list]


@dataclass
class Section:
    id: str
    title: str
    figures: dict[str, figures.Picture] = field(default_factory=dict)   # PNG file name -> what it draws
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fmt(value) -> str:
    """How a cell prints: 12,345 for ints, 12.3% for Share, '' for None, str otherwise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Share):
        return f"{100 * value.fraction:.1f}%"
    return str(value)


@dataclass(frozen=True)
class Share:
    fraction: float


def share(part: int, whole: int) -> Share:
    return Share(part / whole if whole else 0.0)


def _date(ts: int | None) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc).strftime("%Y-%m-%d") if ts is not None else ""


def _commit_cell(c: dict | None) -> str:
    return f"{c['hash'][:12]} {_date(c.get('timestamp'))}" if c else ""


def _total(facts: Facts) -> int:
    return sum(facts.manifest["splits"][s]["tokens"] for s in SPLITS)


def overview(facts: Facts) -> Section:
    m, total = facts.manifest, _total(facts)
    tok = m["tokenizer"]
    run = Table("run", ["", ""], [
        ["repository", facts.repository], ["tokenizer", tok["name_or_path"]], ["vocab size", tok["vocab_size"]],
        ["fallback tokenizer", bool(tok.get("fallback"))], ["token dtype", m["dtype"]], ["tokens", total],
        ["examples", sum(m["splits"][s]["examples"] for s in SPLITS)], ["chunks", m["input"]["chunks"]],
        ["per-chunk figures from", facts.source]])
    rows = []
    for s in SPLITS:
        st = m["splits"][s]
        rows.append([s, st["commits"], st["chunks"], st["tokens"], share(st["tokens"], total), st["examples"],
                     st["target_tokens"], _commit_cell(st["first_commit"]), _commit_cell(st["last_commit"])])
    splits = Table("splits", ["split", "commits", "chunks", "tokens", "share", "examples", "target tokens",
                              "first commit", "last commit"], rows)
    return Section("overview", "Overview", tables=[run, splits])


def timeline(facts: Facts) -> Section:
    step, buckets = facts.timeline()
    labels = [b for b, _ in buckets]
    per_split = {s: [row[i] for _, row in buckets] for i, s in enumerate(SPLITS)}
    cut_rows, marks = [], []
    for boundary, s in (("train | val", "train"), ("val | test", "val")):
        last = facts.manifest["splits"][s]["last_commit"]
        if not last:
            continue
        cut_rows.append([boundary, last["hash"][:12], last["order"], _date(last["timestamp"]), last.get("subject", "")])
        marks.append((labels.index(facts.bucket_of(last["timestamp"], step)), f"{boundary}: {last['hash'][:12]}"))
    section = Section("timeline", f"Split timeline (tokens per {step})")
    if labels:
        section.figures["timeline.png"] = figures.timeline(step, labels, per_split, marks)
    section.tables += [
        Table("cutoffs", ["cut-off", "last commit before it", "order", "date", "subject"], cut_rows),
        Table("timeline", [step, *SPLITS, "total"], [[b, *row, sum(row)] for b, row in buckets])]
    section.notes.append("Buckets by commit time (UTC); file snapshots count at the train cut-off commit's time. "
                         "The dashed lines sit in the bucket of the last commit before each cut-off.")
    return section


def _breakdown(facts: Facts, key: str, name: str, title: str) -> Section:
    splits = facts.manifest["splits"]
    labels: dict[str, list[int]] = {}
    for i, s in enumerate(SPLITS):
        for label, n in splits[s][key].items():
            labels.setdefault(label, [0, 0, 0])[i] += n
    ranked = sorted(labels.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    total = _total(facts)
    shown = ranked[:TOP_IN_FIGURE]
    section = Section(key, title)
    if ranked:
        section.figures[f"{key}.png"] = figures.stacked_bars(
            title, [k for k, _ in shown], {s: [v[i] for _, v in shown] for i, s in enumerate(SPLITS)})
    section.tables.append(Table(key.removeprefix("tokens_by_"), [name, *SPLITS, "total", "share"],
                                [[k, *v, sum(v), share(sum(v), total)] for k, v in ranked]))
    return section


def chunks(facts: Facts) -> Section:
    lengths, settings = facts.chunk_lengths, (facts.chunk_stats or {}).get("settings", {})
    low, high = settings.get("min_chunk_tokens"), settings.get("max_chunk_tokens")
    n = sum(lengths.values())
    values = sorted(lengths)
    mean = sum(k * v for k, v in lengths.items()) / n if n else 0.0
    median = _median_from_counts(lengths) if n else None
    section = Section("chunks", "Chunks: lengths and headers")
    if n:
        section.figures["chunk_lengths.png"] = figures.length_histogram(dict(lengths), low, high)
    section.tables.append(Table("chunk_lengths", ["chunks", "min", "median", "mean", "max", "min bound", "max bound",
                                                  "under min", "over max"],
                                [[n, values[0] if n else None, median, f"{mean:.1f}", values[-1] if n else None, low,
                                  high, sum(v for k, v in lengths.items() if low is not None and k < low),
                                  sum(v for k, v in lengths.items() if high is not None and k > high)]]))
    if facts.header_tokens is not None:
        rows = [[s, facts.header_tokens[s], facts.split_tokens[s], share(facts.header_tokens[s], facts.split_tokens[s])]
                for s in SPLITS]
        section.figures["header_share.png"] = figures.bars(
            "Header share of tokens", list(SPLITS), [round(1000 * r[3].fraction) / 10 for r in rows], "% of tokens")
        section.tables.append(Table("headers", ["split", "header tokens", "tokens", "share"], rows))
        section.notes.append("Header: a chunk's first line (commit or snapshot line) and its `file PATH` titles, "
                             "encoded alone with the dataset's tokenizer.")
    else:
        section.notes.append("Header share not measured: stage 3 did not read chunks_semantic.jsonl.")
    return section


def _median_from_counts(counts) -> int:
    """The lower median of values given as {value: count}."""
    n, seen = sum(counts.values()), 0
    for k in sorted(counts):
        seen += counts[k]
        if 2 * seen >= n:
            return k
    return 0


def top(facts: Facts) -> Section:
    total = _total(facts)
    commits = sorted(facts.commits.items(), key=lambda kv: (-kv[1].tokens, kv[1].order))[:TOP]
    files = sorted(facts.files.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:TOP]
    section = Section("top", "Largest contributors of tokens")
    if commits:
        section.figures["top_commits.png"] = figures.bars(
            "Top commits by tokens", [f"{h[:12]} {c.subject[:40]}" for h, c in commits], [c.tokens for _, c in commits],
            "tokens")
    if files:
        section.figures["top_files.png"] = figures.bars(
            "Top files by tokens", [p[-60:] for p, _ in files], [sum(v) for _, v in files], "tokens")
    section.tables += [
        Table("top_commits", ["rank", "commit", "date", "split", "subject", "tokens", "share"],
              [[i, h[:12], _date(c.timestamp), c.split, c.subject, c.tokens, share(c.tokens, total)]
               for i, (h, c) in enumerate(commits, 1)]),
        Table("top_files", ["rank", "path", "language", "category", *SPLITS, "total", "share"],
              [[i, p, language_of(p), category_of(p), *v, sum(v), share(sum(v), total)]
               for i, (p, v) in enumerate(files, 1)])]
    section.notes.append("A commit's tokens are its diff chunks'; a file's are every chunk whose (first) path "
                         "it is, snapshots included.")
    return section


def left_out(facts: Facts) -> Section:
    h = (facts.history_stats or {}).get("counts", {})
    c = facts.chunk_stats or {}
    rows = [["1 scrape", k.replace("_", " "), h[k], ""] for k in ("binary", "missing_objects", "truncated",
                                                                  "patch_mismatch", "empty_commits") if k in h]
    for where in ("diff", "snapshot"):  # with a few of the paths each reason left out
        examples = c.get(f"{where}_filtered_examples") or {}
        rows += [[f"2 chunk: {where}s", k, v, ", ".join(examples.get(k, []))]
                 for k, v in sorted(c.get(f"{where}_filtered", {}).items())]
    rows += [["2 chunk", k.replace("_", " "), c[k], ""] for k in ("duplicates_dropped", "bad_records") if k in c]
    rows.append(["4 dataset", "malformed chunks skipped", facts.manifest["input"]["skipped_chunks"], ""])
    redactions = [["1 scrape", k, v] for k, v in sorted((facts.history_stats or {}).get("secrets_redacted", {}).items())]
    for where in ("diffs", "snapshots"):
        redactions += [[f"2 chunk: {where}", k, v] for k, v in sorted(c.get("secrets_redacted", {}).get(where, {}).items())]
    tok = facts.manifest["tokenizer"]
    fallbacks = [
        ["tokenizer", bool(tok.get("fallback")), f"byte-level BPE trained on the repository ({tok['name_or_path']})"
         if tok.get("fallback") else tok["name_or_path"]],
        ["stage 2 raw commits", facts.source != CHUNKS,
         "stage 3 read raw commit records" if facts.source != CHUNKS else ""],
        ["commits kept as one raw chunk", c.get("fallback_commits", 0), " ".join(x[:12] for x in c.get("fallback_hashes", []))],
        ["snapshots at HEAD (leak)", bool(c.get("snapshot_leak")), str(c.get("snapshot_leak") or "")]]
    section = Section("left_out", "What was left out, redacted, or fell back")
    if rows:
        section.figures["left_out.png"] = figures.bars("Left out, by reason", [f"{r[0]}: {r[1]}" for r in rows],
                                                       [r[2] for r in rows], "count")
    section.tables += [Table("left_out", ["stage", "reason", "count", "examples"], rows),
                       Table("redactions", ["where", "kind", "count"], redactions),
                       Table("fallbacks", ["fallback", "taken", "detail"], fallbacks)]
    section.notes.append("Stage 1 counts are file changes (binary, unreadable objects, truncated diffs) and "
                         "commits (empty); stage 2 counts file changes and snapshot files by filter reason.")
    return section


def _flatten(prefix: str, value) -> list[list]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(f"{prefix}.{k}" if prefix else k, v)]
    if isinstance(value, list):
        return [[prefix, ", ".join(map(str, value))]]
    return [[prefix, value]]


def settings(facts: Facts) -> Section:
    m = facts.manifest
    rows = _flatten("", m["settings"]) + [["tokenizer_dir", m.get("tokenizer_dir")]]
    rows += _flatten("cutoff", m["cutoff"])
    rows += _flatten("stage 2", (facts.chunk_stats or {}).get("settings", {}))
    rows += _flatten("stage 1", (facts.history_stats or {}).get("settings", {}))
    return Section("settings", "Tokenizer and settings", tables=[
        Table("tokenizer", ["", ""], _flatten("", m["tokenizer"])), Table("settings", ["setting", "value"], rows)])


def build_sections(facts: Facts) -> list[Section]:
    return [overview(facts), timeline(facts),
            _breakdown(facts, "tokens_by_language", "language", "Tokens per language, by split"),
            _breakdown(facts, "tokens_by_category", "category", "Tokens per category, by split"),
            chunks(facts), top(facts), left_out(facts), settings(facts)]
