"""Stage 1: scrape a repository's whole history into commit records, fast and complete.

    python3 scrapers/git_scraper_rich.py --repo PATH --output data/NAME/git_history_rich.jsonl \\
        --output-json data/NAME/git_history_rich.json --stats

Reads every commit of every branch and tag (oldest first, parents before children, ties by
time) through one `git log` stream, and writes one JSON record per commit as it arrives (fields:
docs/history.md), then the `{"commits": [...], "repository": {...}}` JSON and the statistics.
From Python: `iter_commits(ScrapeConfig(repo=...))` yields the records; `scrape(config)` writes
the files and returns the statistics.
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
from core.io import UserError, atomic_write, dumps, run_main, setup_logging, write_history_json
from core.settings import PROGRESS, REDACT
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

    def records(self) -> Iterator[dict]:
        config = self.config
        branches = self._branches_by_commit()
        tags: dict[str, list[str]] = {}
        for name, commit in sorted(self.tags.items()):
            tags.setdefault(commit, []).append(name)
        try:
            merges = merge_details(self.git, self.hashes)
            merge_diff = merge_diff_option(self.git)
        except GitError as e:
            raise UserError(f"git failed while reading merges: {e}") from None
        jobs = default_jobs() if config.jobs is None else config.jobs
        self.builder = builder = RecordBuilder(self.git, config.max_diff_bytes, config.redact,
                                               config.function_complexity, merges, jobs)
        order = 0
        try:
            bar = _progress(len(self.hashes), config.progress)
            try:
                for index, parsed, missing in self._parsed_ahead(merges, merge_diff):
                    commit = self.hashes[index]
                    record = builder.build(parsed, missing, order, branches.get(commit, []), tags.get(commit, []))
                    self.aggregates.add(record)
                    order += 1
                    bar.update(1)
                    yield record
            except GitError as e:
                raise UserError(f"git failed while reading history: {e}") from None
            finally:
                bar.close()
        finally:
            builder.close()

    def _parsed_ahead(self, merges, merge_diff: str) -> Iterator[tuple]:
        """`(index, parsed commit, unreadable changes)`, parsed LOOKAHEAD commits ahead of the caller
        so that git reads the blobs of the next commits while one is built."""
        ahead: deque = deque()
        for index, raw, missing in stream_commits(self.git, self.hashes, merges, merge_diff):
            parsed = parse_commit(raw)
            self.builder.prefetch(parsed)
            ahead.append((index, parsed, missing))
            if len(ahead) > LOOKAHEAD:
                yield ahead.popleft()
        yield from ahead

    def stats(self) -> dict:
        config = self.config
        counts = dict(sorted(self.builder.counts.items())) if self.builder else {}
        revs = [self.redact_refs(r, "refs") for r in self.revs]
        secrets = Redactor()
        for r in (self.redact_refs, self.builder.redact if self.builder else None):
            if r is not None:
                secrets.add(r)
        return {
            "repository": Path(config.repo).resolve().name,
            "settings": {k: (revs if config.revs else []) if k == "revs" else v for k, v in asdict(config).items()
                         if k in ("revs", "since", "until", "max_commits", "max_diff_bytes", "redact",
                                  "function_complexity")},
            "revs": revs,
            "bare": self.bare,
            "shallow": self.shallow,
            "detached_head": self.detached,
            "counts": counts,
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


def scrape(config: ScrapeConfig) -> dict:
    """Write the `.jsonl` as commits stream in, then the `.json` and the statistics; return the stats."""
    job = _Scrape(config)
    out = config.output_path()
    with atomic_write(out) as f:
        for record in job.records():
            f.write(dumps(record))
            f.write("\n")
    stats = job.stats()
    if config.output_json:
        write_history_json(config.output_json, out, stats["aggregates"])
    with atomic_write(config.stats_file()) as f:  # one dumps, not json.dump's many small writes
        f.write(json.dumps(stats, ensure_ascii=False, indent=2) + "\n")
    logger.info("%d commits, %d file changes -> %s", stats["counts"].get("commits", 0),
                stats["counts"].get("file_changes", 0), out)
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
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    config = from_args(ScrapeConfig, args)
    config.revs = [*config.revs, *args.more_revs]
    return config, args


def main(argv: list[str] | None = None) -> int:
    config, args = parse_args(argv)
    setup_logging(args.verbose)

    def _run() -> None:
        stats = scrape(config)
        if args.stats:
            print(summary(stats))
    return run_main(_run)


if __name__ == "__main__":
    sys.exit(main())
