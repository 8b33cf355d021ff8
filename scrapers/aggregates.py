"""Repository aggregates, accumulated commit by commit as the scraper streams.

    agg = RepositoryAggregates();  agg.add(record) for each commit;  agg.result(branches, tags)

Per file: change frequency and ownership (authors by lines changed, the top owner's share);
a rename carries the old path's history over to the new path. Per author: commits, lines,
first and last time, files touched. Collaboration: the `COLLABORATION_PAIRS` pairs of authors who
changed the most files in common, and how many pairs changed a file in common at all.
Everything in the result is sorted, so reruns are byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from scipy import sparse

# The pairs listed: every pair that shares a file grows with the square of a busy file's authors
# (click: 486 pairs at a quarter of its history, 30,959 at the end, 4.7 of the 6 MB of statistics).
COLLABORATION_PAIRS = 1000


@dataclass(slots=True)
class _FileStats:
    changes: int = 0
    additions: int = 0
    deletions: int = 0
    lines_by_author: dict[str, int] = field(default_factory=dict)
    changes_by_author: dict[str, int] = field(default_factory=dict)

    def merge(self, other: "_FileStats") -> None:
        self.changes += other.changes
        self.additions += other.additions
        self.deletions += other.deletions
        for a, n in other.lines_by_author.items():
            self.lines_by_author[a] = self.lines_by_author.get(a, 0) + n
        for a, n in other.changes_by_author.items():
            self.changes_by_author[a] = self.changes_by_author.get(a, 0) + n


@dataclass(slots=True)
class _AuthorStats:
    name: str
    email: str
    commits: int = 0
    additions: int = 0
    deletions: int = 0
    first: tuple[float, str] | None = None  # (epoch, ISO time as the commit wrote it)
    last: tuple[float, str] | None = None
    files: set[str] = field(default_factory=set)


def author_key(person: dict) -> str:
    return f"{person['name']} <{person['email']}>"


class RepositoryAggregates:
    def __init__(self) -> None:
        self.files: dict[str, _FileStats] = {}
        self.authors: dict[str, _AuthorStats] = {}

    def add(self, record: dict) -> None:
        key = author_key(record["author"])
        a = self.authors.get(key)
        if a is None:
            a = self.authors[key] = _AuthorStats(record["author"]["name"], record["author"]["email"])
        a.commits += 1
        when = (datetime.fromisoformat(record["authored_at"]).timestamp(), record["authored_at"])
        a.first = when if a.first is None or when[0] < a.first[0] else a.first
        a.last = when if a.last is None or when[0] >= a.last[0] else a.last
        for f in record["files"]:
            path = f["path"]
            fs = self.files.get(path)
            if fs is None:
                fs = self.files[path] = _FileStats()
            if f["old_path"] and f["old_path"] != path and f["change_type"] == "renamed":
                old = self.files.pop(f["old_path"], None)
                if old is not None:
                    fs.merge(old)
            lines = f["additions"] + f["deletions"]
            fs.changes += 1
            fs.additions += f["additions"]
            fs.deletions += f["deletions"]
            fs.lines_by_author[key] = fs.lines_by_author.get(key, 0) + lines
            fs.changes_by_author[key] = fs.changes_by_author.get(key, 0) + 1
            a.additions += f["additions"]
            a.deletions += f["deletions"]
            a.files.add(path)

    def result(self, branches: dict[str, str], tags: dict[str, str]) -> dict:
        """The aggregates as plain JSON data, every mapping and list sorted."""
        files = {}
        for path in sorted(self.files):
            fs = self.files[path]
            owners = sorted(fs.changes_by_author, key=lambda k: (-fs.lines_by_author[k], -fs.changes_by_author[k], k))
            total = sum(fs.lines_by_author.values())
            top = owners[0]
            share = fs.lines_by_author[top] / total if total else fs.changes_by_author[top] / fs.changes
            files[path] = {
                "changes": fs.changes, "additions": fs.additions, "deletions": fs.deletions,
                "authors": [{"author": k, "lines": fs.lines_by_author[k], "changes": fs.changes_by_author[k]}
                            for k in owners],
                "top_owner": top, "top_owner_share": round(share, 4),
            }
        authors = {
            k: {"name": a.name, "email": a.email, "commits": a.commits, "additions": a.additions,
                "deletions": a.deletions, "first_at": a.first[1], "last_at": a.last[1], "files_touched": len(a.files)}
            for k, a in sorted(self.authors.items())
        }
        collaboration, pairs = self._collaboration(sorted(self.authors))
        return {
            "files": files,
            "authors": authors,
            "collaboration": collaboration,
            "collaboration_pairs": pairs,
            "branches": dict(sorted(branches.items())),
            "tags": dict(sorted(tags.items())),
        }

    def _collaboration(self, names: list[str]) -> tuple[list[dict], int]:
        """(the `COLLABORATION_PAIRS` pairs of authors with the most files in common, most first, then by
        their names; how many pairs have one file or more in common). The files each pair shares are
        the product of the file-by-author incidence matrix with itself, in scipy's sparse product:
        its cost follows the pairs there are, not the changes of a busy file's authors one by one."""
        index = {name: i for i, name in enumerate(names)}
        rows, cols = [], []
        for row, fs in enumerate(self.files.values()):
            rows.extend([row] * len(fs.changes_by_author))
            cols.extend(index[a] for a in fs.changes_by_author)
        incidence = sparse.csr_matrix((np.ones(len(rows), np.int64), (rows, cols)), shape=(len(self.files), len(names)))
        shared = sparse.triu(incidence.T @ incidence, k=1).tocoo()
        first, second, n = shared.row, shared.col, shared.data  # products of counts of 1: no explicit zeros
        top = np.lexsort((second, first, -n))[:COLLABORATION_PAIRS]  # indices follow the sorted names
        return ([{"authors": [names[first[i]], names[second[i]]], "shared_files": int(n[i])} for i in top.tolist()],
                len(n))
