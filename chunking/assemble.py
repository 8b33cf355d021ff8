"""Turn sections (one file's change or content) into chunks whose exact token count is within budget.

    fitter = Fitter(tok, max_tokens=512, min_tokens=64)
    pieces = fitter.fit(prefix, sections)     # every piece <= max_tokens, measured exactly
    chunks = fitter.merge(prefix, pieces)     # neighbours under min_tokens joined when they fit

A chunk's text is `prefix` (one line: commit or snapshot) followed by one or more sections,
each a title line (`file PATH (change)`) and its units' text. Token counting is the cost, so:
every candidate is encoded whole, in one batch per round (one Rust `encode_batch`; `fit_many`
and `merge_many` share the batches among the commits stage 2 takes together); only a
candidate over budget is cut, with line sizes estimated from its own tokens-per-character
ratio, and only its pieces are encoded again. A piece still over budget (the estimate was
short) is cut again with a smaller target; a single line is cut mid-line only when it alone
is over the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chunking.split import pack
from core.tokenizer import encode_batch

SAFETY = 0.9  # aim below the budget: estimates from characters are close, not exact
SKIP_WHOLE_CHARS_PER_TOKEN = 12  # a text this many characters per budget token is surely over: don't encode it whole
DEFAULT_RATIO = 0.3  # tokens per character until a text has been measured
MAX_ROUNDS = 12


@dataclass(slots=True)
class Section:
    """One file's part of a chunk: what it is, its title line, and its splittable units."""

    path: str
    language: str | None
    change_type: str | None
    title: str
    units: list  # chunking.units.Hunk or Block
    lead: str = ""  # text before the title, in the first piece only (a commit's message, once per commit)

    def text(self) -> str:
        return self.lead + self.title + "\n" + "".join(u.render() for u in self.units)

    def symbols(self) -> list[str]:
        out = []
        for u in self.units:
            out.extend(s for s in u.symbols() if s not in out)
        return out


@dataclass(slots=True)
class Piece:
    """Sections that form one chunk body, with the exact token ids of prefix + body."""

    sections: list[Section]
    body: str
    ids: list[int] = field(default_factory=list)


class Fitter:
    def __init__(self, tok, max_tokens: int, min_tokens: int):
        self.tok, self.max, self.min = tok, max_tokens, min_tokens

    def encode(self, texts: list[str]) -> list[list[int]]:
        return encode_batch(self.tok, texts) if texts else []

    def fit(self, prefix: str, sections: list[Section]) -> list[Piece]:
        """Pieces within max tokens, in section order; each section's pieces in unit order."""
        return self.fit_many(prefix, [sections])[0]

    def fit_many(self, prefix: str, groups: list[list[Section]]) -> list[list[Piece]]:
        """`fit` of each group of sections (the changes of several commits), measured in shared batches:
        one encode per round for all of them, the same pieces as one `fit` per group."""
        # (order key, piece, body target): a cut piece's key extends its parent's, so sorting keys
        # restores text order whatever round a piece was finished in
        todo = [((g, i), Piece([s], s.text()), None)
                for g, sections in enumerate(groups) for i, s in enumerate(sections)]
        done: list[tuple[tuple, Piece]] = []
        rounds = 0
        while todo:
            rounds += 1
            if rounds > MAX_ROUNDS:
                g, i = todo[0][0][:2]
                raise RuntimeError(f"no cut of {groups[g][i].path} fits in {self.max} tokens")
            measure = [t for t in todo if len(t[1].body) <= self.max * SKIP_WHOLE_CHARS_PER_TOKEN]
            ids = dict(zip((id(t[1]) for t in measure), self.encode([prefix + t[1].body for t in measure])))
            again = []
            for key, piece, target in todo:
                got = ids.get(id(piece))
                if got is not None and len(got) <= self.max:
                    piece.ids = got
                    done.append((key, piece))
                    continue
                ratio = len(got) / max(1, len(prefix) + len(piece.body)) if got is not None else DEFAULT_RATIO
                if target is None:  # first cut: the body's share of the budget
                    target = self.max * SAFETY - (len(prefix) + len(piece.sections[0].title) + 1) * ratio
                else:  # a cut piece still over: the estimate was short, aim lower in proportion
                    target *= SAFETY * self.max / len(got) if got is not None else 0.5
                target = max(1.0, target)
                again.extend((key + (j,), p, target) for j, p in enumerate(self._cut(piece.sections[0], target, ratio)))
            todo = again
        done.sort(key=lambda d: d[0])
        out: list[list[Piece]] = [[] for _ in groups]
        for key, p in done:
            out[key[0]].append(p)
        return out

    def _cut(self, section: Section, target: float, ratio: float) -> list[Piece]:
        units = []
        for u in section.units:
            size = len(u.render()) * ratio
            units.extend(u.split(target, ratio) if size > target else [u])
        out = []
        sizes = [len(u.render()) * ratio for u in units]
        if sizes:  # the lead goes with the first unit
            sizes[0] += len(section.lead) * ratio
        for k, (a, b) in enumerate(pack(sizes, target)):
            s = Section(section.path, section.language, section.change_type, section.title, units[a:b],
                        "" if k else section.lead)
            out.append(Piece([s], s.text()))
        return out

    def merge(self, prefix: str, pieces: list[Piece]) -> list[Piece]:
        """Join neighbouring pieces under min tokens when the result stays within max (measured)."""
        return self.merge_many(prefix, [pieces])[0]

    def merge_many(self, prefix: str, lists: list[list[Piece]]) -> list[list[Piece]]:
        """`merge` of each list of pieces (one per commit: pieces of two lists are never joined), the
        joined texts of all of them measured in one batch."""
        head = len(self.encode([prefix])[0]) if any(lists) else 0
        plans = [self._groups(pieces, head) for pieces in lists]
        joined = [Piece([s for q in g for s in q.sections], "".join(q.body for q in g))
                  for groups in plans for g in groups if len(g) > 1]
        ids = self.encode([prefix + j.body for j in joined])
        outs, k = [], 0
        for groups in plans:
            out = []
            for g in groups:
                if len(g) == 1:
                    out.append(g[0])
                    continue
                j, j.ids = joined[k], ids[k]
                k += 1
                out.extend([j] if len(j.ids) <= self.max else g)
            outs.append(out)
        return outs

    def _groups(self, pieces: list[Piece], head: int) -> list[list[Piece]]:
        """Neighbouring pieces to join: a group grows while it is under min tokens and fits with the next."""
        groups: list[list[Piece]] = []
        for k, p in enumerate(pieces):
            cur = groups[-1] if groups else None
            cur_n = sum(len(q.ids) - head for q in cur) + head if cur else 0
            wanted = cur_n < self.min or (k == len(pieces) - 1 and len(p.ids) < self.min)
            if cur and wanted and cur_n + len(p.ids) - head <= self.max * SAFETY:
                cur.append(p)
            else:
                groups.append([p])
        if len(groups) > 1:  # a short tail joins the group before it when they fit together
            tail, prev = groups[-1], groups[-2]
            n_tail = sum(len(q.ids) - head for q in tail) + head
            n_prev = sum(len(q.ids) - head for q in prev) + head
            if n_tail < self.min and n_prev + n_tail - head <= self.max * SAFETY:
                prev.extend(groups.pop())
        return groups
