"""Stage 1: scrape a repository's whole history into commit records, fast and complete.

    python3 scrapers/git_scraper_rich.py --repo PATH --output data/NAME/git_history_rich.jsonl \\
        --output-json data/NAME/git_history_rich.json --stats

Reads every commit of every branch and tag (oldest first, parents before children, ties by
time) through one `git log` stream, and writes one JSON record per commit as it arrives (fields:
docs/history.md), then the `{"commits": [...], "repository": {...}}` JSON and the statistics.
From Python: `iter_commits(ScrapeConfig(repo=...))` yields the records; `scrape(config)` writes
the files and returns the statistics.

`--incremental` (the pipeline's reruns): when the output of an earlier scrape with the same settings is
there and the history only gained commits since (every commit listed then is listed now, in the same
order among themselves), only the new commits are read from git; the earlier records are copied with
the order, branches and tags each commit has now (a new commit may land between old ones), and the
aggregates are counted again over all of them: the files are byte-identical to a full scrape.
Anything else is a full scrape, said in one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

if __package__ in (None, ""):  # run as a script: make the project root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import PATH, RUN, add_flags, at_least, check_fields, from_args, positive, setting
from core.parsers import widen_chars
from core.io import UserError, atomic_write, dumps, run_main, setup_logging, write_history_json
from core.settings import MAX_CHUNK_TOKENS, PROGRESS, REDACT
from scrapers.aggregates import RepositoryAggregates
from scrapers.commit_record import RecordBuilder
from scrapers.complexity import default_jobs
from scrapers.git_log_stream import list_commits, merge_details, merge_diff_option, parse_commit, stream_commits
from core.git_runner import Git, GitError
from core.repository import open_repository
from core.redaction import Redactor

logger = logging.getLogger(__name__)

DEFAULT_REVS = ["--branches", "--remotes", "--tags"]  # every branch and tag; not refs/stash, not notes
DEFAULT_MAX_DIFF_BYTES = 512 * 1024
LOOKAHEAD = 32  # commits parsed ahead of the one being built, so that their functions are measured meanwhile


@dataclass
class ScrapeConfig:
    """Stage 1's settings, each declared once (`core.config`): the flags below and the one command's come from here."""

    repo: str = setting(".", "path to the git repository", role=PATH)
    output: str | None = setting(None, "JSON Lines output [data/<repo name>/git_history_rich.jsonl]", role=PATH)
    output_json: str | None = setting(None, 'also write {"commits": [...], "repository": {...}} here', role=PATH)
    stats_path: str | None = setting(None, "statistics JSON [git_history_stats.json beside --output]", role=PATH)
    revs: list[str] = setting(help="branch, tag or rev range to read (repeatable) [all refs]", flag="--rev",
                              factory=list)
    since: str | None = setting(None, "only commits after this date (git's --since)")
    until: str | None = setting(None, "only commits before this date (git's --until)")
    max_commits: int | None = setting(None, "read at most this many commits (the oldest)", check=positive)
    max_diff_bytes: int = setting(DEFAULT_MAX_DIFF_BYTES, "per-file bound on diff text", check=positive)
    redact: bool = setting(**REDACT)
    function_complexity: bool = setting(True, "skip measuring the cyclomatic complexity of changed "
                                           "functions")
    max_chunk_tokens: int = setting(MAX_CHUNK_TOKENS, "stage 2's largest chunk, in tokens: the definitions "
                                    "near each change that stage 2 widens hunks to are recorded for this budget "
                                    "(with function complexity)", check=positive)
    jobs: int | None = setting(None, "processes measuring function complexity beside the scraper; the output is "
                               "the same for any number [one per core beyond the first, at most 4; 0: none]",
                               check=at_least(0), role=RUN, pipeline="scrape_jobs")
    progress: bool = setting(**PROGRESS)

    def output_path(self) -> Path:
        if self.output:
            return Path(self.output)
        return Path("data") / Path(self.repo).resolve().name.removesuffix(".git") / "git_history_rich.jsonl"

    def stats_file(self) -> Path:
        return Path(self.stats_path) if self.stats_path else self.output_path().with_name("git_history_stats.json")


class _Scrape:
    """One scrape: validates the repository, lists commits and refs, then streams records."""

    def __init__(self, config: ScrapeConfig):
        check_fields(config)
        self.config = config
        repo = open_repository(config.repo)  # a subdirectory or `X/.git` means the repository X
        try:
            self.git = git = Git(repo)
            flags = git.run("rev-parse", "--is-bare-repository", "--is-shallow-repository").decode().split()
        except FileNotFoundError:
            raise UserError("git is not installed or not on PATH") from None
        except GitError as e:
            raise UserError(f"{repo}: not a git repository ({e})") from None
        config.repo = str(repo)
        self.bare, self.shallow = (f == "true" for f in flags)
        head = self.git.try_run("rev-parse", "--verify", "-q", "HEAD")
        self.detached = head is not None and self.git.try_run("symbolic-ref", "-q", "HEAD") is None
        self.redact_refs = Redactor(config.redact)  # branch and tag names reach the records and the stats
        self.branch_tips, self.tags = self._refs()
        if head is None and not self.branch_tips and not self.tags:
            raise UserError(f"{repo}: the repository has no commits yet")
        revs = config.revs or DEFAULT_REVS + (["HEAD"] if head is not None else [])
        self.revs = revs
        self.shown_revs = [self.redact_refs(r, "refs") for r in revs]  # the statistics show them redacted
        try:
            self.hashes = list_commits(git, revs, config.since, config.until, config.max_commits)
        except GitError as e:
            raise UserError(f"cannot list commits for {' '.join(revs)}: {e}") from None
        if not self.hashes:
            raise UserError(f"no commits match {' '.join(revs)}"
                            + (f" since {config.since}" if config.since else "")
                            + (f" until {config.until}" if config.until else ""))
        self.aggregates = RepositoryAggregates()
        self.builder: RecordBuilder | None = None
        self.labels: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None
        self.read = 0  # commits read from git by `records`
        self.earlier: dict = {}  # an appending run: the earlier statistics (`appendable`)

    def _refs(self) -> tuple[dict[str, str], dict[str, str]]:
        """Branch name -> tip commit (local and remote), tag name -> commit it points at (peeled)."""
        fmt = "--format=%(refname)%00%(objectname)%00%(symref)%00%(objecttype)%00%(*objectname)%00%(*objecttype)"
        out = self.git.run("for-each-ref", fmt, "refs/heads", "refs/remotes", "refs/tags").decode("utf-8", "replace")
        branches: dict[str, str] = {}
        tags: dict[str, str] = {}
        for line in out.splitlines():
            ref, obj, symref, kind, peeled, peeled_kind = line.split("\0")
            if ref.startswith("refs/tags/"):
                if (peeled_kind or kind) == "commit":
                    tags[self.redact_refs(ref[len("refs/tags/"):], "refs")] = peeled or obj
                elif peeled_kind == "tag":  # a tag of a tag: `*` peels one level, rev-parse to the end
                    commit = self.git.try_run("rev-parse", "--verify", "-q", ref + "^{commit}")
                    if commit is not None:
                        tags[self.redact_refs(ref[len("refs/tags/"):], "refs")] = commit
            elif not symref and kind == "commit":
                branches[self.redact_refs(ref.split("/", 2)[2], "refs")] = obj
        return branches, tags

    def _branches_by_commit(self) -> dict[str, list[str]]:
        """Which branches contain each listed commit: labels flow from tips to parents, in one walk."""
        tips: dict[str, set[str]] = {}
        for name, tip in self.branch_tips.items():
            tips.setdefault(tip, set()).add(name)
        if not tips:
            return {}
        wanted = set(self.hashes)
        empty: frozenset[str] = frozenset()
        interned: dict[frozenset[str], frozenset[str]] = {}
        pending: dict[str, frozenset[str]] = {}
        result: dict[str, list[str]] = {}
        sorted_labels: dict[frozenset[str], list[str]] = {}
        out = self.git.run("rev-list", "--topo-order", "--parents", "--stdin",
                           input="".join(t + "\n" for t in sorted(tips)).encode())
        for line in out.decode().splitlines():  # children always come before their parents
            commit, *parents = line.split()
            labels = pending.pop(commit, empty) | tips.get(commit, empty)
            labels = interned.setdefault(labels, labels)
            if commit in wanted:
                result[commit] = sorted_labels.setdefault(labels, sorted(labels))
            for p in parents:
                merged = pending.get(p, empty) | labels
                pending[p] = interned.setdefault(merged, merged)
        return result

    def _labels(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """(branches containing each commit, tags pointing at it), computed once."""
        if self.labels is None:
            tags: dict[str, list[str]] = {}
            for name, commit in sorted(self.tags.items()):
                tags.setdefault(commit, []).append(name)
            self.labels = self._branches_by_commit(), tags
        return self.labels

    def records(self, positions: list[int] | None = None) -> Iterator[dict]:
        """The records of the commits at `positions` in `self.hashes` (default: all), read from git."""
        config = self.config
        branches, tags = self._labels()
        positions = list(range(len(self.hashes))) if positions is None else positions
        todo = [self.hashes[i] for i in positions]
        self.read = len(todo)
        try:
            merges = merge_details(self.git, todo)
            merge_diff = merge_diff_option(self.git)
        except GitError as e:
            raise UserError(f"git failed while reading merges: {e}") from None
        jobs = default_jobs() if config.jobs is None else config.jobs
        self.builder = builder = RecordBuilder(self.git, config.max_diff_bytes, config.redact,
                                               config.function_complexity, merges, jobs,
                                               widen_chars(config.max_chunk_tokens))
        try:
            bar = _progress(len(todo), config.progress)
            try:
                for index, parsed, missing in self._parsed_ahead(todo, merges, merge_diff):
                    commit = todo[index]
                    record = builder.build(parsed, missing, positions[index], branches.get(commit, []),
                                           tags.get(commit, []))
                    self.aggregates.add(record)
                    bar.update(1)
                    yield record
            except GitError as e:
                raise UserError(f"git failed while reading history: {e}") from None
            finally:
                bar.close()
        finally:
            builder.close()

    def _parsed_ahead(self, hashes: list[str], merges, merge_diff: str) -> Iterator[tuple]:
        """`(index in hashes, parsed commit, unreadable changes)`, parsed LOOKAHEAD commits ahead of the
        caller so that git reads the blobs of the next commits while one is built."""
        ahead: deque = deque()
        for index, raw, missing in stream_commits(self.git, hashes, merges, merge_diff):
            parsed = parse_commit(raw)
            self.builder.prefetch(parsed)
            ahead.append((index, parsed, missing))
            if len(ahead) > LOOKAHEAD:
                yield ahead.popleft()
        yield from ahead

    def settings(self) -> dict:
        """The settings the statistics record: what an appending run must find unchanged."""
        config = self.config
        return {k: (self.shown_revs if config.revs else []) if k == "revs" else v for k, v in asdict(config).items()
                if k in ("revs", "since", "until", "max_commits", "max_diff_bytes", "redact", "function_complexity",
                         "max_chunk_tokens")}

    def appendable(self, records: Path, stats: Path) -> tuple[list[int] | None, str | None]:
        """(the positions in `self.hashes` of the commits `records` lacks, or None; why it cannot be kept):
        an earlier scrape's records are kept when its settings are these, every commit it listed is listed
        now, in the same order among themselves, and nothing it redacted depends on its run."""
        try:
            earlier = json.loads(stats.read_text(encoding="utf-8"))
            settings, counts = earlier["settings"], earlier["counts"]
            kinds, fields = earlier["secrets_redacted"], earlier["secrets_redacted_fields"]
        except (OSError, ValueError, KeyError, TypeError):
            return None, f"no earlier statistics in {stats}"
        if settings != self.settings():
            return None, "the settings changed"
        if fields.get("refs") or "PRIVATE_KEY" in kinds:
            # names of refs are redacted afresh each run; a file that held a key changes how its later diffs are read
            return None, "the earlier scrape redacted ref names or a private key"
        if self.shallow or earlier.get("shallow") or counts.get("missing_objects"):
            # a deepened clone gives its boundary commits their parents, a fetched blob its diff: old records change
            return None, "the clone is shallow or lacks objects"
        try:
            with open(records, "rb") as f:
                old = [line[9:line.find(b'"', 9)].decode() if line.startswith(b'{"hash":"') else "" for line in f]
        except OSError:
            return None, f"no earlier records in {records}"
        if not old or len(old) != counts.get("commits"):
            return None, "the earlier records and statistics do not agree"
        position = {h: i for i, h in enumerate(self.hashes)}
        kept = [position.get(h, -1) for h in old]
        if -1 in kept:
            return None, "commits scraped before are gone (rewritten history, removed refs or changed bounds)"
        if any(a >= b for a, b in zip(kept, kept[1:])):
            return None, "commits scraped before come in another order now"
        self.earlier = earlier
        kept_set = set(kept)
        return [i for i in range(len(self.hashes)) if i not in kept_set], None

    def merged_records(self, records: Path, new: list[int]) -> Iterator[str]:
        """Every record, in order, as a line: the earlier `records`' lines (with the order, branches and
        tags each commit has now) and the commits at positions `new` read from git."""
        branches, tags = self._labels()
        read = self.records(new)
        new_set = set(new)
        with open(records, encoding="utf-8") as f:
            for order, commit in enumerate(self.hashes):
                if order in new_set:
                    yield dumps(next(read)) + "\n"
                    continue
                line = f.readline()
                record = json.loads(line)
                assert record["hash"] == commit, (record["hash"], commit)  # `appendable` checked the order
                self.aggregates.add(record)
                now = order, branches.get(commit, []), tags.get(commit, [])
                if (record["order"], record["branches"], record["tags"]) != now:
                    record["order"], record["branches"], record["tags"] = now
                    line = dumps(record) + "\n"
                yield line
        if next(read, None) is not None:  # none is left; this ends the reader (and its workers)
            raise AssertionError("more records read than listed")

    def stats(self) -> dict:
        counts = dict(self.earlier.get("counts", {}))
        for k, n in (self.builder.counts.items() if self.builder else ()):
            counts[k] = counts.get(k, 0) + n
        secrets = Redactor()
        secrets.kinds = dict(self.earlier.get("secrets_redacted", {}))
        secrets.fields = dict(self.earlier.get("secrets_redacted_fields", {}))
        for r in (self.redact_refs, self.builder.redact if self.builder else None):
            if r is not None:
                secrets.add(r)
        return {
            "repository": Path(self.config.repo).resolve().name,
            "settings": self.settings(),
            "revs": self.shown_revs,
            "bare": self.bare,
            "shallow": self.shallow,
            "detached_head": self.detached,
            "counts": dict(sorted(counts.items())),
            "secrets_redacted": secrets.stats()["kinds"],
            "secrets_redacted_fields": secrets.stats()["fields"],
            "aggregates": self.aggregates.result(self.branch_tips, self.tags),
        }


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, shown: bool):
    """A tqdm bar, or without one a stand-in: tqdm is imported only when shown (30 ms of start-up)."""
    if not shown:
        return _NoProgress()
    from tqdm import tqdm
    return tqdm(total=total, unit="commit", desc="scrape")


def iter_commits(config: ScrapeConfig) -> Iterator[dict]:
    """Yield the commit records, oldest first, each with its `order` (0-based index)."""
    yield from _Scrape(config).records()


def outputs(config: ScrapeConfig) -> dict[str, Path]:
    """Every file a scrape writes, by name (the orchestrator records these)."""
    files = {"history": config.output_path(), "history_stats": config.stats_file()}
    if config.output_json:
        files["history_json"] = Path(config.output_json)
    return files


def scrape(config: ScrapeConfig, incremental: bool = False, run_info: dict | None = None) -> dict:
    """Write the `.jsonl` as commits stream in, then the `.json` and the statistics; return the stats.

    `incremental`: keep an earlier scrape's records when the history only gained commits since
    (`_Scrape.appendable`), reading only the new commits. `run_info`, when given, is filled with what
    this run did: `commits_read`, `commits_kept`, `full_because` (why nothing was kept), `blobs_parsed`.
    """
    job = _Scrape(config)
    files = outputs(config)
    out = files["history"]
    new, why = job.appendable(out, files["history_stats"]) if incremental else (None, None)
    kept = len(job.hashes) - len(new) if new is not None else 0
    if incremental:
        logger.info("scrape: %s", f"{len(new)} new commits read, {kept} kept from the last scrape"
                    if new is not None else f"a full scrape: {why}")
    with atomic_write(out) as f:
        if new is not None:
            f.writelines(job.merged_records(out, new))
        else:
            for record in job.records():
                f.write(dumps(record))
                f.write("\n")
    stats = job.stats()
    if "history_json" in files:
        write_history_json(files["history_json"], out, stats["aggregates"])
    with atomic_write(files["history_stats"]) as f:  # one dumps, not json.dump's many small writes
        f.write(json.dumps(stats, ensure_ascii=False, indent=2) + "\n")
    logger.info("%d commits, %d file changes -> %s", stats["counts"].get("commits", 0),
                stats["counts"].get("file_changes", 0), out)
    parsed = sum(job.builder.workers.parsed) if job.builder and job.builder.workers else 0
    logger.debug("%d blobs parsed for function complexity", parsed)
    if run_info is not None:
        run_info.update(commits_read=job.read, commits_kept=kept, full_because=why, blobs_parsed=parsed)
    return stats


run = scrape  # the stage convention's name for the function that does the work


def summary(stats: dict, top: int = 5) -> str:
    """A readable summary of the statistics, for `--stats`."""
    c = stats["counts"]
    agg = stats["aggregates"]
    lines = [f"repository {stats['repository']}: {c.get('commits', 0)} commits ({c.get('merges', 0)} merges), "
             f"{c.get('file_changes', 0)} file changes, {c.get('diff_bytes', 0) / 1e6:.1f} MB of diff",
             f"  binary {c.get('binary', 0)}, truncated {c.get('truncated', 0)}, missing objects "
             f"{c.get('missing_objects', 0)}, empty commits {c.get('empty_commits', 0)}, shallow {stats['shallow']}",
             f"  secrets redacted: {sum(stats['secrets_redacted'].values())} {stats['secrets_redacted'] or ''} "
             f"{stats['secrets_redacted_fields'] or ''}".rstrip(),
             f"  {len(agg['branches'])} branches, {len(agg['tags'])} tags, {len(agg['authors'])} authors, "
             f"{len(agg['files'])} files"]
    lines.append("  most changed files:")
    for path, f in sorted(agg["files"].items(), key=lambda kv: (-kv[1]["changes"], kv[0]))[:top]:
        lines.append(f"    {f['changes']:6d}  {path}  (top owner {f['top_owner']}, {f['top_owner_share']:.0%})")
    lines.append("  most active authors:")
    for key, a in sorted(agg["authors"].items(), key=lambda kv: (-kv[1]["commits"], kv[0]))[:top]:
        lines.append(f"    {a['commits']:6d}  {key}  +{a['additions']} -{a['deletions']}, {a['files_touched']} files")
    if agg["collaboration"]:
        lines.append("  most shared files between two authors:")
        for pair in agg["collaboration"][:top]:
            lines.append(f"    {pair['shared_files']:6d}  {' & '.join(pair['authors'])}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[ScrapeConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(description="Scrape a git repository's history into commit records.")
    add_flags(p, ScrapeConfig)
    p.add_argument("more_revs", nargs="*", default=[], metavar="revs", help="revisions or ranges, as --rev")
    p.add_argument("--stats", action="store_true", help="print a summary of the statistics")
    p.add_argument("--incremental", action="store_true",
                   help="keep the existing output (written by this version, with the same settings) when the "
                        "history only gained commits since: read only the new commits")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    config = from_args(ScrapeConfig, args)
    config.revs = [*config.revs, *args.more_revs]
    return config, args


def main(argv: list[str] | None = None) -> int:
    config, args = parse_args(argv)
    setup_logging(args.verbose)

    def _run() -> None:
        stats = scrape(config, args.incremental)
        if args.stats:
            print(summary(stats))
    return run_main(_run)


if __name__ == "__main__":
    sys.exit(main())
