"""Run today's per-repository pipeline on many repositories, as Ray tasks, and merge the results.

    python3 comprehensive_pipeline.py --repo A --repo B --output-dir data/team [--workers 2]
    python3 comprehensive_pipeline.py --repos-file repos.txt --ray-address ray://head:10001

1. Plan: one job per repository, named after its directory (two `app` directories get the
   first 8 hex digits of a hash of their path appended), each with its own output directory
   `<out>/repos/<name>/`, its own resume state and its own lock.
2. Settle, in this process: while the last run's tokenizer choice holds, every repository whose
   refs and outputs' stat data are as its last run left them is `unchanged` and gets no task
   (nothing is loaded, Ray is not started for it).
3. The tokenizer, unless settled, is resolved once, in this process: `--model` saved to
   `<out>/tokenizer/`, or, when it cannot be loaded, a fallback BPE trained on a sample of every
   repository's train period (stage 1 runs first, as tasks, and `Pipeline.fallback_sample` draws
   each sample).
4. Every other repository's stages 1-4 run as one Ray task each (at most `--workers` at a time); a
   repository that fails is one line in the summary and the others go on.
5. `multirepo.merge` joins the splits in repository-name order, so the dataset does not depend
   on which task finished first.

`--workers 1` without `--ray-address` runs the same tasks one after another in this process,
without Ray: the reference the Ray run must equal byte for byte.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import resource
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from core.io import UserError
from core.repository import fetch_source, is_url, repo_name
from core.schema import DATASET_DIR, REPOS_DIR, SOURCES_DIR, TOKENIZER_DIR
from pipeline.config import PipelineConfig, check_settings, validate
from pipeline.orchestrator import (DeferredTokenizer, Pipeline, StageChanged, Trainer, fallback_holds,
                                   fallback_settings, last_tokenizer_choice, pipeline_key, table,
                                   tokenizer_choice_key, train_after, train_argv)
from pipeline.state import OutputLock, RunState

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
EXIT_SOME_FAILED = 3  # the dataset was built from the others; 2 (UserError) when none could be built


@dataclass(frozen=True)
class RepoJob:
    name: str       # unique within the run: the directory under <out>/repos/
    source: str     # the repository as the user gave it (recorded in the manifest)
    path: str       # resolved path, or the URL to clone
    out: str        # <out>/repos/<name>
    clone: str | None = None  # a URL's bare mirror, <out>/sources/<name>.git, made by the task


def read_repos_file(path: str) -> list[str]:
    """Repositories from a list file: one per line, `#` starts a comment; a path is relative to the file.

    repos.txt holds "# ours\\nclick\\n/srv/git/cobra.git\\n":

    >>> read_repos_file("repos.txt")  # doctest: +SKIP
    ['.../click', '/srv/git/cobra.git']
    """
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--repos-file {path}: {getattr(e, 'strerror', None) or e}") from None
    entries = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [e if is_url(e) or Path(e).expanduser().is_absolute() else str(p.parent / Path(e).expanduser())
            for e in entries if e]


def plan_jobs(cfg: PipelineConfig) -> tuple[list[RepoJob], Path]:
    """The jobs, sorted by name, and the dataset's output directory."""
    sources = list(cfg.repos) + (read_repos_file(cfg.repos_file) if cfg.repos_file else [])
    if not sources:
        raise UserError(f"--repos-file {cfg.repos_file}: lists no repository")
    resolved = [s if is_url(s) else str(Path(s).expanduser().resolve()) for s in sources]
    seen: dict[str, str] = {}
    for s, r in zip(sources, resolved):
        if r in seen:
            raise UserError(f"repository {s} is listed twice (also as {seen[r]})")
        seen[r] = s
    base = [repo_name(r) for r in resolved]
    names = [b if base.count(b) == 1 else f"{b}-{hashlib.sha256(r.encode()).hexdigest()[:8]}"
             for b, r in zip(base, resolved)]
    if cfg.output_dir:
        out = Path(cfg.output_dir)
    else:
        out = Path("data") / (Path(cfg.repos_file).stem if cfg.repos_file else "multi")
    # Absolute: a Ray worker's working directory is not this process's.
    jobs = [RepoJob(n, s, r, str((out / REPOS_DIR / n).resolve()),
                    str((out / SOURCES_DIR / f"{n}.git").resolve()) if is_url(r) else None)
            for n, s, r in zip(names, sources, resolved)]
    return sorted(jobs, key=lambda j: j.name), out


def repo_config(cfg: PipelineConfig, job: RepoJob, n_repos: int = 1) -> PipelineConfig:
    """Today's single-repository settings for one job; its share of the fallback tokenizer's sample."""
    # A Ray task holds one CPU: its stages 1 and 2 start no worker processes of their own unless asked to.
    alone = cfg.workers == 1
    jobs = cfg.scrape_jobs if cfg.scrape_jobs is not None or alone else 0
    chunk_workers = cfg.chunk_workers if cfg.chunk_workers is not None or alone else 1
    return dataclasses.replace(cfg, repo=job.clone or job.path, output_dir=job.out, repos=[], repos_file=None,
                               ray_address=None, workers=None, train=False, progress=False, export=[],
                               scrape_jobs=jobs, chunk_workers=chunk_workers,
                               fallback_sample_mb=cfg.fallback_sample_mb / n_repos)


def run_repo(cfg: PipelineConfig, job: RepoJob, tokenizer: tuple[str, dict] | None, scraped: bool = False,
             check_only: bool = False) -> dict | None:
    """One repository's pipeline in `job.out`: stage 1 only when `tokenizer` is None, else stages 1-4.

    `tokenizer` is (saved directory, identity): loaded only if stage 2 or 3 runs. `scraped`: stage 1
    already ran in this run (before the fallback tokenizer), so `--force` does not redo it. Never
    raises: a failure is returned as `error`, so one bad repository stops nothing else.
    `check_only`: run nothing; the result when every stage is as the last run left it (decided from
    the repository's refs and the outputs' stat data), else None (a URL's refs are known only after
    the fetch its task makes: always None).
    """
    start = time.perf_counter()
    result = {"name": job.name, "source": job.source, "error": None, "stages": [], "fallbacks": []}
    pipeline = None
    if check_only and job.clone:
        return None
    try:
        if job.clone:
            fetch_source(job.path, Path(job.clone))
        rcfg = repo_config(cfg, job)
        repo, out = validate(rcfg)
        with OutputLock(out):
            pipeline = Pipeline(rcfg, repo, out, check_only)
            pipeline.scrape(force=rcfg.force and not scraped)
            if tokenizer is not None:
                tok = DeferredTokenizer(*tokenizer)
                chunks = pipeline.chunk(tok, tokenizer[1])
                pipeline.tokenize(chunks, tok, tokenizer[1])
                pipeline.build_dataset()
                pipeline.report()  # its own report.html, as a single run writes (no exports: repo_config)
    except StageChanged:
        return None
    except UserError as e:
        result["error"] = str(e)
    except Exception as e:  # a bug on one repository's data must not cost the others
        logger.debug("%s failed", job.name, exc_info=True)
        result["error"] = f"{type(e).__name__}: {e}"
    if check_only and result["error"] is not None:
        return None  # its task tries again and reports the failure
    if pipeline is not None:
        result["stages"] = [(r.stage.strip(), r.skipped, r.seconds) for r in pipeline.reports]
        result["fallbacks"] = pipeline.fallbacks
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["pid"] = os.getpid()
    return result


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """One line instead of Ray's minutes of retries when nothing listens at `host:port`."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not (host and port.isdigit()):
        return  # "auto" and the like: Ray finds the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise UserError(f"--ray-address {address}: nothing answers there ({e.strerror or e}); start the cluster "
                        "with `ray start --head` or fix the address") from None


@contextlib.contextmanager
def ray_session(cfg: PipelineConfig, workers: int):
    """Ray for this run, or None for one worker in this process; an existing Ray session is reused."""
    if workers == 1 and not cfg.ray_address:
        yield None
        return
    import ray

    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Workers import the pipeline from this checkout, and see the hub the way this process does (the
    # saved tokenizer's config records whether it was loaded offline).
    env = {"PYTHONPATH": str(ROOT), **{k: os.environ[k] for k in ("HF_HUB_OFFLINE", "HF_HOME") if k in os.environ}}
    runtime_env = {"env_vars": env}
    if cfg.ray_address:
        check_reachable(cfg.ray_address)
        try:
            ray.init(address=cfg.ray_address, runtime_env=runtime_env, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UserError(f"--ray-address {cfg.ray_address}: cannot join the Ray cluster ({e})") from None
    else:  # "local": a new instance, even if a cluster started with `ray start` runs on this machine
        ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level=logging.ERROR,
                 object_store_memory=128 << 20, runtime_env=runtime_env)
    try:
        yield ray
    finally:
        ray.shutdown()


def run_jobs(cfg: PipelineConfig, jobs: list[RepoJob], tokenizer: tuple[str, dict] | None,
             workers: int, ray, scraped: bool = False) -> list[dict]:
    """Each job's `run_repo`, at most `workers` at a time (in this process when `ray` is None); in job order."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), unit="repo", desc="stage 1" if tokenizer is None else "repositories",
               disable=not cfg.progress)
    results: dict[str, dict] = {}
    if ray is None:
        for job in jobs:
            results[job.name] = run_repo(cfg, job, tokenizer, scraped)
            bar.update()
    else:
        task = ray.remote(num_cpus=1, max_retries=0)(run_repo)
        queue, running = list(jobs), {}
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                running[task.remote(cfg, job, tokenizer, scraped)] = job
            done, _ = ray.wait(list(running), num_returns=1)
            job = running.pop(done[0])
            try:
                results[job.name] = ray.get(done[0])
            except ray.exceptions.RayError as e:  # the worker died (out of memory, killed)
                results[job.name] = {"name": job.name, "source": job.source, "stages": [], "fallbacks": [],
                                     "error": f"Ray task failed: {str(e).splitlines()[0]}",
                                     "seconds": 0.0, "peak_rss_mb": 0.0, "pid": None}
            bar.update()
    bar.close()
    return [results[j.name] for j in jobs]


def fallback_note(cfg: PipelineConfig, n_repos: int, tok_dir: Path) -> str:
    return (f"tokenizer: {cfg.model} could not be loaded; trained a byte-level BPE on the train period "
            f"of {n_repos} repositories ({tok_dir})")


def resolve_tokenizer(cfg: PipelineConfig, jobs: list[RepoJob], out: Path, state: RunState, workers: int,
                      ray) -> tuple[tuple[str, dict], list[dict], list[str]]:
    """((saved tokenizer directory, identity), stage-1 results if it ran first, fallback notes), once for all."""
    from core.tokenizer import load_or_fall_back, load_tokenizer, save_tokenizer, tokenizer_identity, \
        train_fallback_tokenizer

    tok_dir = out / TOKENIZER_DIR
    key = tokenizer_choice_key(cfg)
    tok = load_or_fall_back(cfg.model, cfg.tokenizer_fallback, "the train period of every repository")
    if tok is None:
        scraped = run_jobs(cfg, jobs, None, workers, ray)
        ok = [j for j, r in zip(jobs, scraped) if r["error"] is None]
        if not ok:
            raise UserError("no repository could be read: " + "; ".join(f"{r['name']}: {r['error']}" for r in scraped))
        histories = {j.name: RunState(Path(j.out)).stages["scrape"]["outputs"]["history"] for j in ok}
        trained = pipeline_key(fallback_settings(cfg), histories)
        if cfg.force or state.finished("tokenizer", trained, {"tokenizer": tok_dir}) is None:
            # Each repository gives its share of the sample, drawn by the single-repository sampler.
            texts = [t for j in ok for t in Pipeline(repo_config(cfg, j, len(ok)), Path(j.clone or j.path),
                                                      Path(j.out)).fallback_sample()]
            train_fallback_tokenizer(texts, tok_dir, vocab_size=cfg.fallback_vocab_size)
            state.record("tokenizer", trained, {"tokenizer": tok_dir},
                         {"repositories": len(ok), "sample_mb": round(sum(map(len, texts)) / 1e6, 3)})
        tok = load_tokenizer(str(tok_dir))
        identity = tokenizer_identity(tok, source=f"fallback-bpe:{out.name}", fallback=True)
        state.record("resolve", key, {"tokenizer": tok_dir}, {"fallback": True, "identity": identity})
        return (str(tok_dir.resolve()), identity), scraped, [fallback_note(cfg, len(ok), tok_dir)]
    identity = tokenizer_identity(tok, source=cfg.model)
    save_tokenizer(tok, identity, tok_dir)
    state.record("resolve", key, {"tokenizer": tok_dir}, {"fallback": False, "identity": identity})
    return (str(tok_dir.resolve()), identity), [], []


def last_tokenizer(cfg: PipelineConfig, jobs: list[RepoJob], out: Path, state: RunState) -> tuple[str, dict] | None:
    """The last run's tokenizer (saved directory, identity) while its choice still holds, found from stat
    data without loading it: --model's files unchanged; for the fallback, also the hub still unreachable
    and every repository's recorded history the one it was trained on (which holds when each one's
    stage 1 is unchanged: `settle` checks that)."""
    tok_dir = out / TOKENIZER_DIR
    last = last_tokenizer_choice(cfg, state, tokenizer_choice_key(cfg), {"tokenizer": tok_dir})
    if not last:
        return None
    if last["fallback"]:
        histories = {j.name: RunState(Path(j.out)).stages.get("scrape", {}).get("outputs", {}).get("history")
                     for j in jobs}
        if not fallback_holds(cfg, state, histories, tok_dir):
            return None
    return str(tok_dir.resolve()), last["identity"]


def settle(cfg: PipelineConfig, jobs: list[RepoJob], out: Path,
           state: RunState) -> tuple[dict[str, dict], tuple[str, dict] | None]:
    """The repositories whose every stage is as the last run left it, decided here from their refs and
    the outputs' stat data (no Ray, no tokenizer loaded): ({name: result}, the tokenizer) or ({}, None)
    when the tokenizer must be resolved again (with the fallback: when any repository changed, as
    it is trained on all of them)."""
    tokenizer = last_tokenizer(cfg, jobs, out, state)
    if tokenizer is None:
        return {}, None
    settled = {}
    for job in jobs:
        result = run_repo(cfg, job, tokenizer, check_only=True)
        if result is None and tokenizer[1]["fallback"]:
            return {}, None
        if result is not None:
            settled[job.name] = result
    return settled, tokenizer


def build_repos(cfg: PipelineConfig, jobs: list[RepoJob], out: Path, state: RunState,
                tokenizer: tuple[str, dict] | None) -> tuple[list[dict], tuple[str, dict], list[str]]:
    """Every stage of `jobs` as tasks, the tokenizer resolved first unless given: (results, tokenizer, notes)."""
    workers = min(cfg.workers or (len(jobs) if cfg.ray_address else os.cpu_count() or 1), len(jobs))
    scraped, notes = [], []
    with ray_session(cfg, workers) as ray:
        if tokenizer is None:
            tokenizer, scraped, notes = resolve_tokenizer(cfg, jobs, out, state, workers, ray)
        failed = [r for r in scraped if r["error"] is not None]
        todo = [j for j in jobs if j.name not in {r["name"] for r in failed}]
        results = failed + (run_jobs(cfg, todo, tokenizer, workers, ray, bool(scraped)) if todo else [])
    for first, r in ((f, r) for f in scraped for r in results if f["name"] == r["name"] and f is not r):
        r["seconds"] += first["seconds"]  # stage 1 ran as a task of its own, before the tokenizer
        r["peak_rss_mb"] = max(r["peak_rss_mb"], first["peak_rss_mb"])
        r["stages"] = first["stages"] + [s for s in r["stages"] if s[0] != "1 scrape"]
    return results, tokenizer, notes


def write_multi_report_step(cfg: PipelineConfig, out: Path, state: RunState, manifest: dict) -> None:
    """The dataset's report.html and report/*.png, a step like the stages: redrawn only when the merged
    manifest (all it reads) changed or a page or figure was edited or deleted."""
    outputs = {"page": out / "report.html", "figures": out / "report"}
    key = pipeline_key({}, {"manifest": state.stages["merge"]["outputs"]["manifest"]})
    if cfg.force or state.finished("report", key, outputs) is None:
        from reporting.report import write_multi_report  # matplotlib: only when the report is drawn

        write_multi_report(out, manifest)
        state.record("report", key, outputs, {})


def build_multi(cfg: PipelineConfig) -> tuple[Path, list[dict], dict, list[str]]:
    """Build one dataset from every repository of `cfg`: (output dir, per-repository results, manifest, notes).

    The repositories unchanged since the last run are settled here (`settle`); only the others run as
    tasks, and Ray starts only when there are some.
    """
    from multirepo.merge import merge_datasets

    jobs, out = plan_jobs(cfg)
    check_settings(cfg)  # once here rather than once per task
    if cfg.export:
        raise UserError("--export takes one repository's dataset; for several, export each one's "
                        "(python3 -m reporting.export OUT/repos/NAME --format ...); the merged splits are not exported yet")
    with OutputLock(out):
        state = RunState(out)
        settled, tokenizer = settle(cfg, jobs, out, state)
        notes = [fallback_note(cfg, len(jobs), out / TOKENIZER_DIR)] if tokenizer and tokenizer[1]["fallback"] else []
        results = list(settled.values())
        todo = [j for j in jobs if j.name not in settled]
        if todo:
            built, tokenizer, notes = build_repos(cfg, todo, out, state, tokenizer)
            results += built
        results.sort(key=lambda r: r["name"])
        failed = [r for r in results if r["error"] is not None]
        built = [j for j in jobs if j.name not in {r["name"] for r in failed}]
        if not built:
            raise UserError("no repository could be built: " + "; ".join(f"{r['name']}: {r['error']}" for r in failed))
        manifest = merge_datasets(out, built, failed, tokenizer[1], state, force=cfg.force)
        if cfg.report:
            write_multi_report_step(cfg, out, state, manifest)
    return out, results, manifest, notes


def run_multi(cfg: PipelineConfig, train: Trainer | None = None) -> int:
    """The command: build, print the summary, train if asked (`train`: the trainer's main, as for
    `run_pipeline`); exit code 0, or 3 if some repositories failed."""
    start = time.perf_counter()
    out, results, manifest, notes = build_multi(cfg)
    print_summary(cfg, out, results, manifest, notes, time.perf_counter() - start)
    train_after(cfg, train_argv(cfg, out), train)
    return EXIT_SOME_FAILED if any(r["error"] is not None for r in results) else 0


def print_summary(cfg: PipelineConfig, out: Path, results: list[dict], manifest: dict, notes: list[str],
                  seconds: float) -> None:
    """One row per repository (status, time, examples per split), the totals, fallbacks, failures."""
    per_repo = {r["name"]: r for r in manifest["repositories"]}
    rows = [("repository", "status", "time", "train / val / test examples")]
    for r in results:
        if r["error"] is not None:
            status = "FAILED"
        elif r["stages"] and all(skipped for _, skipped, _ in r["stages"]):
            status = "unchanged"
        else:
            status = "built"
        splits = per_repo.get(r["name"], {}).get("splits")
        counts = " / ".join(f"{splits[s]['examples']:,}" for s in ("train", "val", "test")) if splits else "-"
        rows.append((r["name"], status, f"{r['seconds']:.1f}s", counts))
    lines = table(rows)
    splits = manifest["splits"]
    lines += ["",
              f"dataset:  {len(manifest['repositories'])} of {len(results)} repositories, in {seconds:.1f}s",
              "examples: " + ", ".join(f"{s} {c['examples']:,}" for s, c in splits.items()),
              "tokens:   " + ", ".join(f"{s} {c['tokens']:,}" for s, c in splits.items()),
              f"vocab:    {manifest['tokenizer']['vocab_size']:,} ({manifest['tokenizer']['name_or_path']})",
              f"on disk:  {out / DATASET_DIR}"]
    lines += [f"FALLBACK: {n}" for n in notes]
    lines += [f"FALLBACK: {r['name']}: {f}" for r in results for f in r["fallbacks"] if r["error"] is None]
    lines += [f"FAILED:   {r['name']} ({r['source']}): {r['error']}" for r in results if r["error"] is not None]
    if cfg.report:
        lines.append(f"report: {out / 'report.html'}")
    lines += ["", "train on these splits with:", "  " + " ".join(train_argv(cfg, out))]
    print("\n".join(lines))
