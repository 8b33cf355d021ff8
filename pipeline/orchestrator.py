"""The orchestrator: the four stages over one repository, resumed, checked between stages, summarised.

    repo, out = validate(cfg)
    with OutputLock(out):
        pipeline = Pipeline(cfg, repo, out)
        info = pipeline.run()          # or pipeline.scrape(), resolve_tokenizer(), chunk(), ... one by one

`run_pipeline(cfg)` does the above; comprehensive_pipeline.py (one repository) and multirepo/ (one
Pipeline per repository, in Ray tasks) both use this module's public names. Stages are called as
functions, never as subprocesses.

  1 scrape    scrapers/git_scraper_rich.py             -> git_history_rich.jsonl / .json
    tokenizer  loaded once (or trained on the history when it cannot be loaded), for 2 and 3
  2 chunk     semantic_chunker.py                      -> chunks_semantic.jsonl
  3 tokenize  tokenizers_/file_snapshot_tokenizer.py   -> chunks_tokenized.json
  4 dataset   dataset_builder.py                       -> dataset/training_data_{train,val,test}.json

A stage whose settings and inputs have not changed since it last finished is skipped (`--force`
redoes all): its key is every setting of the config object it runs with (`core.config.key_settings`)
and the content hashes of its inputs, kept in `.pipeline_state.json` under the stage's id (LABELS).
The report is such a step too; the tokenizer is loaded only when stage 2 or 3 runs (DeferredTokenizer;
where its saved copy is the recorded one, only its Rust tokenizer is read), so an unchanged rerun
reads refs and stat data only (docs/architecture.md, "Resume").
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core import schema
from core.io import UserError, disk_error, iter_jsonl, sha256_file, write_jsonl
from core.splits import SPLITS
from pipeline.checks import check_chunks, check_dataset, check_history, check_tokenized
from core.config import key_settings
from pipeline.config import PIPELINE_VERSION, PipelineConfig, repo_fingerprint, stage_config, validate
from pipeline.state import OutputLock, RunState, output_hashes, stage_key, stat_fingerprint
from reporting import report_and_export
from reporting.export import check_formats

logger = logging.getLogger(__name__)

Trainer = Callable[[list[str]], int]  # the trainer's main(argv) -> exit code


@dataclass
class StageReport:
    stage: str
    seconds: float
    skipped: bool
    records_in: str
    records_out: str
    note: str = ""


# The stages by id (the state file's keys) and the label the summary shows for each.
LABELS = {"scrape": "1 scrape", "tokenizer": "  tokenizer", "chunk": "2 chunk", "tokenize": "3 tokenize",
          "dataset": "4 dataset", "report": "  report"}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DeferredTokenizer:
    """The last run's tokenizer, loaded on first use (`loaded(tok)`), checked against its recorded identity;
    or only its Rust tokenizer (`encoder(tok)`), for stages that only encode."""

    _UNREAD = object()

    def __init__(self, spec: str, identity: dict):
        self.spec, self.identity, self.tok, self._backend = spec, identity, None, self._UNREAD

    def backend(self):
        """The bare Rust tokenizer of `spec` when it is the recorded one (`core.tokenizer.recorded_backend`),
        else None."""
        if self._backend is self._UNREAD:
            from core.tokenizer import recorded_backend

            self._backend = recorded_backend(self.spec, self.identity)
        return self._backend

    def get(self):
        if self.tok is None:
            from core.tokenizer import load_tokenizer, tokenizer_identity

            tok = load_tokenizer(self.spec)
            if tokenizer_identity(tok)["sha256"] != self.identity["sha256"]:
                raise UserError(f"tokenizer {self.spec} changed since the last run without its files' stat data "
                                "changing; rerun with --force")
            self.tok = tok
        return self.tok


class StageChanged(Exception):
    """Raised by a check-only Pipeline where a stage would run: its settings, inputs or outputs changed."""


def loaded(tok):
    """The tokenizer itself, from a loaded one or a DeferredTokenizer."""
    return tok.get() if isinstance(tok, DeferredTokenizer) else tok


def encoder(tok, saved: Path | None = None):
    """What a stage that only encodes is handed: for a DeferredTokenizer not loaded yet, its bare Rust
    tokenizer when its files hold the recorded one (and, with `saved`, when that directory holds it
    too: the stage saves the tokenizer there, which only a loaded one can do); else the loaded tokenizer."""
    if isinstance(tok, DeferredTokenizer) and tok.tok is None:
        from core.tokenizer import recorded_backend

        backend = tok.backend()
        if backend is not None and (saved is None or recorded_backend(saved, tok.identity) is not None):
            return backend
    return loaded(tok)


class Pipeline:
    """The four stages over one repository and output directory, each skipped when already done."""

    def __init__(self, cfg: PipelineConfig, repo: Path, out: Path, check_only: bool = False):
        """`check_only`: raise StageChanged instead of running a stage (a multi-repository run decides
        in its own process which repositories are unchanged, and hands only the others to tasks)."""
        self.cfg, self.repo, self.out, self.check_only = cfg, repo, out, check_only
        self.state = RunState(out)
        self.reports: list[StageReport] = []
        self.fallbacks: list[str] = []
        self.extras: list[tuple[str, Path]] = []  # the report and exports written after stage 4
        self.reused: dict[str, dict] = {}  # stage id -> what it kept of its last output and what it redid
        self.p = {
            "history": out / schema.HISTORY,
            "history_json": out / schema.HISTORY_JSON,
            "history_stats": out / schema.HISTORY_STATS,
            "tokenizer": out / schema.TOKENIZER_DIR,
            "chunks": out / schema.CHUNKS,
            "chunk_tokens": schema.companion(out / schema.CHUNKS, schema.TOKENS_SUFFIX),
            "chunk_stats": schema.companion(out / schema.CHUNKS, schema.STATS_SUFFIX),
            "chunk_index": schema.companion(out / schema.CHUNKS, schema.COMMITS_SUFFIX),
            "raw_chunks": out / schema.RAW_CHUNKS,
            "tokenized": out / schema.TOKENIZED,
            "dataset": out / schema.DATASET_DIR,
        }

    def _stage(self, stage: str, settings: dict, inputs: dict[str, str], outputs: dict[str, Path], work,
               force: bool | None = None) -> dict:
        """Run `work()` unless stage `stage` (an id of LABELS) already finished with the same settings and inputs.

        `work` returns (info, records_in, records_out, note); info is kept in the state file so a
        skipped stage still reports its counts, with the hash of the settings alone (`reusable`); its
        key "shown" is shown in the summary only (how much of the last run's output was kept), so that
        the state file stays the same for a run that reused output and one that did not. `force`
        overrides the config's. Returns the info.
        """
        key = pipeline_key(settings, inputs)
        name, start = LABELS[stage], time.perf_counter()
        if not (self.cfg.force if force is None else force) and self.state.finished(stage, key, outputs) is not None:
            info = self.state.info(stage)
            self.reports.append(StageReport(name, time.perf_counter() - start, True, info.get("in", ""),
                                            info.get("out", ""), info.get("note", "")))
            logger.info("%s: unchanged since its last run, skipped", name)
            return info
        if self.check_only:
            raise StageChanged(stage)
        logger.debug("%s ...", name)
        info, rec_in, rec_out, note = work()
        shown = info.pop("shown", "")
        info = {**info, "in": rec_in, "out": rec_out, "note": note, "settings": pipeline_key(settings, {})}
        self.state.record(stage, key, outputs, info)
        self.reports.append(StageReport(name, time.perf_counter() - start, False, rec_in, rec_out,
                                        "; ".join(n for n in (note, shown) if n)))
        return info

    def reusable(self, stage: str, settings: dict, outputs: dict[str, Path]) -> bool:
        """Whether `stage`'s last output may be kept in part: it finished with these settings (its inputs
        changed since) and its outputs are as it wrote them. The stage decides what it keeps."""
        entry = self.state.stages.get(stage) or {}
        return (not self.cfg.force and entry.get("info", {}).get("settings") == pipeline_key(settings, {})
                and self.state.finished(stage, entry.get("key"), outputs) is not None)

    def _hash(self, stage: str, output: str) -> str:
        return self.state.stages[stage]["outputs"][output]

    # --- 1: scrape ---------------------------------------------------------------------------
    def scrape(self, force: bool | None = None) -> None:
        """Stage 1; `force` overrides the config's (a multi-repository run scrapes first, then not again)."""
        from scrapers.git_scraper_rich import ScrapeConfig, outputs as scrape_outputs, scrape

        cfg = self.cfg
        sc = stage_config(ScrapeConfig, cfg, repo=str(self.repo), output=str(self.p["history"]),
                          output_json=str(self.p["history_json"]), stats_path=str(self.p["history_stats"]))
        outputs, settings = scrape_outputs(sc), key_settings(sc)
        incremental = not (cfg.force if force is None else force) and self.reusable("scrape", settings, outputs)

        def work():
            run = self.reused["scrape"] = {}
            secrets = sum(scrape(sc, incremental, run)["secrets_redacted"].values())
            counts = check_history(self.p["history"], self.p["history_json"])
            shown = (f"{run['commits_read']} new commits read, {run['commits_kept']} kept" if run["commits_kept"]
                     else f"full scrape: {run['full_because']}" if incremental else "")
            return {**counts, "shown": shown}, "all refs" if not cfg.revs else " ".join(cfg.revs), \
                f"{counts['commits']} commits, {counts['file_changes']} file changes", \
                f"{secrets} secrets redacted" if secrets else ""

        self._stage("scrape", settings, {"repo": _sha(repo_fingerprint(self.repo))}, outputs, work, force)

    # --- the tokenizer, resolved once for stages 2 and 3 -------------------------------------
    def resolve_tokenizer(self):
        """The tokenizer for stages 2 and 3 (loaded, or trained on the history when it cannot be) and its identity.

        When the last run's choice still holds (the same --model and fallback setting, the same stat data
        of the files behind --model: its file or directory, or its folder in the Hugging Face cache; for
        the fallback, its trained copy intact and the hub still unreachable), the identity is the one
        recorded then and the tokenizer is loaded only if stage 2 or 3 runs: an unchanged rerun does not
        import transformers.
        """
        from core.tokenizer import load_or_fall_back, load_tokenizer, tokenizer_identity, train_fallback_tokenizer

        cfg, tok_dir = self.cfg, self.p["tokenizer"]
        key = tokenizer_choice_key(cfg)
        last = last_tokenizer_choice(cfg, self.state, key, {})
        fallback_inputs = {"history": self._hash("scrape", "history")}
        if last.get("fallback") is False:
            logger.info("tokenizer %s: unchanged since the last run", cfg.model)
            return DeferredTokenizer(cfg.model, last["identity"]), last["identity"]
        reuse = bool(last) and fallback_holds(cfg, self.state, fallback_inputs, tok_dir)
        tok = None if reuse else load_or_fall_back(cfg.model, cfg.tokenizer_fallback, "this repository")
        if tok is not None:
            identity = tokenizer_identity(tok, source=cfg.model)
            logger.info("tokenizer %s: vocab %d", cfg.model, identity["vocab_size"])
            self.state.record("resolve", key, {}, {"fallback": False, "identity": identity})
            return tok, identity
        def work():
            texts = list(self.fallback_sample())
            trained = train_fallback_tokenizer(texts, tok_dir, vocab_size=cfg.fallback_vocab_size)
            mb = sum(len(t) for t in texts) / 1e6
            return {}, f"{mb:.1f} MB of train-period history", f"vocab {len(trained)}", "fallback tokenizer"

        self._stage("tokenizer", fallback_settings(cfg), fallback_inputs, {"tokenizer": tok_dir}, work)
        self.fallbacks.append(f"tokenizer: {cfg.model} could not be loaded; trained a byte-level BPE "
                              f"on this repository ({tok_dir})")
        if reuse:
            return DeferredTokenizer(str(tok_dir), last["identity"]), last["identity"]
        tok = load_tokenizer(str(tok_dir))
        identity = tokenizer_identity(tok, source=f"fallback-bpe:{self.repo.name}", fallback=True)
        self.state.record("resolve", key, {}, {"fallback": True, "identity": identity})
        return tok, identity

    def fallback_sample(self):
        """Diff text of the train period (the first train_ratio of diff bytes), thinned to the size cap.

        Only train-period text, so that the tokenizer's vocabulary is not learnt from val/test code.
        """
        sizes = [sum(len(f["diff"]) for f in c["files"] if not f["is_binary"]) + len(c["message"])
                 for c in iter_jsonl(self.p["history"])]
        total, limit = sum(sizes), self.cfg.ratios[0] / sum(self.cfg.ratios)
        cum, train_commits = 0, 0
        for train_commits, size in enumerate(sizes, 1):
            cum += size
            if cum >= limit * total:
                break
        step = max(1, round(cum / (self.cfg.fallback_sample_mb * 1e6)))
        for i, c in enumerate(iter_jsonl(self.p["history"])):
            if i >= train_commits:
                break
            if i % step == 0:
                yield c["message"]
                yield from (f["diff"] for f in c["files"] if not f["is_binary"] and f["diff"])

    # --- 2: chunk ----------------------------------------------------------------------------
    def chunk(self, tok, identity: dict) -> Path:
        """Chunks for stage 3: semantic chunks, or raw commit records if chunking fails."""
        import semantic_chunker

        cfg = self.cfg
        cc = stage_config(semantic_chunker.ChunkConfig, cfg, repo=str(self.repo), commits=str(self.p["history"]),
                          output=str(self.p["chunks"]), tokenizer=identity["name_or_path"], split_ratios=cfg.ratios)
        settings = key_settings(cc)
        inputs = {"history": self._hash("scrape", "history"), "tokenizer": identity["sha256"],
                  "repo": _sha(repo_fingerprint(self.repo))}
        outputs = {k: self.p[k] for k in ("chunks", "chunk_tokens", "chunk_stats", "chunk_index")}
        incremental = self.reusable("chunk", settings, outputs)

        def work():
            run = self.reused["chunk"] = {}
            semantic_chunker.run(cc, tokenizer=encoder(tok), identity=identity, incremental=incremental, run_info=run)
            counts = check_chunks(self.p["chunks"])
            kinds = ", ".join(f"{n} {k}" for k, n in counts["kinds"].items())
            shown = (f"{run['commits_chunked']} commits chunked, {run['commits_kept']} kept" if run["commits_kept"]
                     else f"all chunked: {run['full_because']}" if incremental else "")
            return {**counts, "shown": shown}, "commits", \
                f"{counts['chunks']} chunks ({kinds}), {counts['tokens']:,} tokens", ""

        try:
            self._stage("chunk", settings, inputs, outputs, work)
            return self.p["chunks"]
        except (UserError, StageChanged):
            raise
        except Exception as e:  # a bug in chunking must not cost the user the run: fall back, loudly
            if disk_error(e):
                raise
            logger.error("stage 2 (chunk) failed: %s: %s; stage 3 runs on raw commit records instead",
                         type(e).__name__, e)
            logger.debug("stage 2 traceback", exc_info=True)
            self.fallbacks.append(f"chunking failed ({type(e).__name__}: {e}); tokenized raw commits instead")
            n = write_jsonl(self.p["raw_chunks"], self._raw_commit_chunks())
            self.reports.append(StageReport(LABELS["chunk"], 0.0, False, "commits", f"{n} raw commit records",
                                            "FALLBACK: raw commits"))
            return self.p["raw_chunks"]

    def _raw_commit_chunks(self):
        """One `commit` record per commit: message plus diffs, as stage 3 reads chunks."""
        for c in iter_jsonl(self.p["history"]):
            diffs = "".join(f"--- {f['path']} ({f['change_type']})\n{f['diff']}" for f in c["files"]
                            if not f["is_binary"] and f["diff"])
            yield {"id": c["hash"], "kind": "commit", "commit": c["hash"], "timestamp": c["timestamp"],
                   "order": c["order"], "path": None, "language": None, "symbol": None,
                   "text": f"commit {c['short_hash']} {c['committed_at']}\n{c['message']}\n{diffs}"}

    # --- 3: tokenize -------------------------------------------------------------------------
    def tokenize(self, chunks: Path, tok, identity: dict) -> None:
        from tokenizers_ import file_snapshot_tokenizer as fst

        cfg, tokenized = self.cfg, self.p["tokenized"]
        # the tokenizer is resolved above: stage 3's own fallback is not used here
        tc = stage_config(fst.TokenizeConfig, cfg, skip=("fallback_vocab_size",), input=str(chunks),
                          sequences=str(tokenized), model=identity["name_or_path"])
        settings = key_settings(tc)
        chunks_hash = self._hash("chunk", "chunks") if chunks == self.p["chunks"] else sha256_file(chunks)
        inputs = {"chunks": chunks_hash, "tokenizer": identity["sha256"]}
        outputs = {"tokenized": tokenized, "ids": schema.companion(tokenized, schema.IDS_SUFFIX),
                   "sequences": schema.companion(tokenized, schema.SEQUENCES_SUFFIX), "tokenizer": self.p["tokenizer"]}

        def work():
            fst.run(tc, tokenizer=encoder(tok, saved=self.p["tokenizer"]), identity=identity)
            counts = check_tokenized(tokenized)
            return counts, f"{counts['chunks']} chunks", \
                f"{counts['sequences']} sequences, {counts['tokens']:,} tokens, vocab {counts['vocab_size']}", ""

        self._stage("tokenize", settings, inputs, outputs, work)

    # --- 4: dataset --------------------------------------------------------------------------
    def build_dataset(self) -> dict:
        from dataset_builder import DatasetConfig, run as build

        cfg, ds = self.cfg, self.p["dataset"]
        dc = stage_config(DatasetConfig, cfg, vocab=str(self.p["tokenized"]), chunks=str(self.p["tokenized"]),
                          commits=str(self.p["history"]), output_dir=str(ds), split_ratios=cfg.ratios)
        # seed stays in the key: nothing is random here, but the manifest records it
        settings = key_settings(dc)
        inputs = {k: self._hash("tokenize", k) for k in ("tokenized", "ids", "sequences")}
        inputs["history"] = self._hash("scrape", "history")  # commit times and subjects for the manifest
        outputs = {"manifest": ds / schema.MANIFEST}
        for split in SPLITS:
            outputs[split] = ds / schema.split_file(split)
            outputs[f"{split}_tokens"] = ds / schema.split_file(split, schema.TOKENS_SUFFIX)
            outputs[f"{split}_chunks"] = ds / schema.split_file(split, schema.SPLIT_CHUNKS_SUFFIX)

        def work():
            build(dc)
            counts = check_dataset(ds)
            total = sum(c["tokens"] for c in counts.values())
            return {"splits": counts}, f"{total:,} tokens", \
                ", ".join(f"{s} {c['examples']}" for s, c in counts.items()) + " examples", ""

        return self._stage("dataset", settings, inputs, outputs, work)

    def run(self) -> dict:
        self.scrape()
        tok, identity = self.resolve_tokenizer()
        chunks = self.chunk(tok, identity)
        self.tokenize(chunks, tok, identity)
        info = self.build_dataset()
        self.report()
        self.summarize(info, identity)
        return info

    # --- after 4: the report (a resumable step) and the exports (each skips itself) -----------
    def report(self) -> None:
        """report.html and report/*.png unless --no-report, skipped when every file it reads is unchanged."""
        ds = self.p["dataset"]
        if self.cfg.report:
            # every file reporting/collect.py may read: a changed one redraws the report
            read = {k: self.p[k] for k in ("history_stats", "chunks", "chunk_stats", "tokenized", "tokenizer")}
            read.update(manifest=ds / schema.MANIFEST,
                        train_chunks=ds / schema.split_file("train", schema.SPLIT_CHUNKS_SUFFIX))
            inputs = output_hashes({k: p for k, p in read.items() if p.exists()}, self.state.file_hash)
            page = self.out / "report.html"
            outputs = {"page": page, "figures": self.out / "report"}

            def work():
                from reporting.report import write_report  # matplotlib: only when the report is drawn

                outputs["figures"].mkdir(exist_ok=True)
                # draws in as many processes as stage 2 may fork (a multi-repository task asks for none)
                write_report(self.out, progress=self.cfg.progress, workers=self.cfg.chunk_workers)
                figures = len(list(outputs["figures"].glob("*.png")))
                return {}, "dataset, stats, chunks", f"{page.name}, {figures} figures", ""

            self._stage("report", {}, inputs, outputs, work)
            self.extras.append(("report", page))
        self.extras += report_and_export(self.out, False, self.cfg.export, self.cfg.progress)

    def summarize(self, info: dict, identity: dict) -> None:
        rows = [("stage", "time", "in", "out")]
        for r in self.reports:
            rows.append((r.stage, "skipped" if r.skipped else f"{r.seconds:.1f}s", r.records_in,
                         r.records_out + (f"  [{r.note}]" if r.note else "")))
        lines = table(rows)
        size = sum(f.stat().st_size for f in self.out.rglob("*") if f.is_file())
        splits = info["splits"]
        lines += ["",
                  "examples: " + ", ".join(f"{s} {c['examples']:,}" for s, c in splits.items()),
                  "tokens:   " + ", ".join(f"{s} {c['tokens']:,}" for s, c in splits.items())
                  + f" (total {sum(c['tokens'] for c in splits.values()):,})",
                  f"vocab:    {identity['vocab_size']:,} ({identity['name_or_path']})",
                  f"on disk:  {size / 1e6:.1f} MB in {self.out}"]
        lines += [f"FALLBACK: {f}" for f in self.fallbacks]
        lines += [f"{label}: {path}" for label, path in self.extras]
        lines += ["", "train on these splits with:", "  " + " ".join(self.train_argv())]
        print("\n".join(lines))

    def train_argv(self) -> list[str]:
        return train_argv(self.cfg, self.out)


def run_pipeline(cfg: PipelineConfig, train: Trainer | None = None) -> dict:
    """Run every stage for `cfg`; returns the dataset manifest's counts. Raises UserError on bad input.

    With `cfg.train`, `train(argv)` (the trainer's `main`, given by the entry point: the
    orchestrator does not import training/) runs on the splits while the output is still locked.
    """
    repo, out = validate(cfg)
    check_formats(cfg.export)
    with OutputLock(out):
        pipeline = Pipeline(cfg, repo, out)
        info = pipeline.run()
        train_after(cfg, pipeline.train_argv(), train)
    return info


def train_after(cfg: PipelineConfig, argv: list[str], train: Trainer | None) -> None:
    """`--train`: the trainer on `argv` (as `train_argv` gives it); a UserError when it fails."""
    if not cfg.train:
        return
    assert train is not None, "--train needs the trainer's main from the entry point"
    code = train(argv[2:])
    if code:
        raise UserError(f"training failed (exit code {code})")


def train_argv(cfg: PipelineConfig, out: Path) -> list[str]:
    """The command that trains on the splits in `out/dataset/` (printed in the summary, run by --train)."""
    return ["python3", "training/model_trainer_unified.py", "--config", cfg.training_config,
            "--sequences", str(out / schema.DATASET_DIR / schema.split_file("train")), "--epochs", "1",
            "--output", str(Path("models") / out.name)]


def pipeline_key(settings: dict, inputs: dict[str, str]) -> str:
    """A stage's resume key: its settings (with the pipeline's format version) and its inputs' hashes."""
    return stage_key({"version": PIPELINE_VERSION, **settings}, inputs)


def fallback_settings(cfg: PipelineConfig) -> dict:
    """The settings the fallback tokenizer depends on: its resume key, for one repository or several."""
    return {"fallback_vocab_size": cfg.fallback_vocab_size, "sample_mb": cfg.fallback_sample_mb,
            "train_ratio": cfg.ratios[0] / sum(cfg.ratios)}


def tokenizer_choice_key(cfg: PipelineConfig) -> str:
    """The key of the tokenizer choice (step "resolve"): --model, the fallback setting, the stat data of
    the files behind --model. Nothing is loaded."""
    from core.tokenizer import tokenizer_source

    return pipeline_key({"model": cfg.model, "tokenizer_fallback": cfg.tokenizer_fallback},
                        {"source": stat_fingerprint(tokenizer_source(cfg.model))})


def last_tokenizer_choice(cfg: PipelineConfig, state: RunState, key: str, outputs: dict[str, Path]) -> dict:
    """The last run's tokenizer choice, {"fallback": ..., "identity": ...}, while `key` (tokenizer_choice_key)
    and `outputs` are as recorded then and not --force; else {}."""
    unchanged = not cfg.force and state.finished("resolve", key, outputs) is not None
    return state.info("resolve") if unchanged else {}


def fallback_holds(cfg: PipelineConfig, state: RunState, histories: dict[str, str], tok_dir: Path) -> bool:
    """Whether the fallback tokenizer trained on `histories` (their content hashes) is still the one to use:
    the hub is still unreachable and its trained copy in `tok_dir` is intact."""
    from core.tokenizer import hub_reachable

    return not hub_reachable() and state.finished(
        "tokenizer", pipeline_key(fallback_settings(cfg), histories), {"tokenizer": tok_dir}) is not None


def table(rows: list[tuple[str, ...]]) -> list[str]:
    """Summary rows as lines: the first three columns padded to their widest, the last as it is."""
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return ["  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3] for row in rows]
