"""Fill-in-the-middle (FIM) training and prompts, as in the StarCoder and SantaCoder papers.

    spec = fim_tokens(tok)                       # the tokenizer's own FIM tokens, or None
    spec = add_fim_tokens(tok)                   # --fim-add-tokens: <fim_prefix> <fim_suffix> <fim_middle> added
    fim = FimTransform(tok, spec, rate=0.5, spm_rate=0.5, seed=42, separator_id=0)
    ids = fim(key, window_ids)                   # each chunk of the window, with probability `rate`, rearranged

A chunk (the text between two separators) is decoded, cut at two character positions drawn at
random into prefix / middle / suffix, re-encoded and laid out

    PSM  <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
    SPM  <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle     (SantaCoder's SPM variant)

so the model learns to write the middle after seeing both sides. The draws depend only on
(seed, key), so a run is the same whatever the batch size, the processes or a resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.io import UserError

# (prefix, suffix, middle) token names of the code models' tokenizers that have them.
CONVENTIONS = (
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),          # StarCoder, StarCoder2, SmolLM (v1)
    ("<fim-prefix>", "<fim-suffix>", "<fim-middle>"),          # SantaCoder
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),    # Qwen2.5-Coder, CodeGemma
    ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),       # DeepSeek-Coder
)
ADDED = CONVENTIONS[0]


@dataclass(frozen=True)
class FimSpec:
    prefix: int
    suffix: int
    middle: int
    names: tuple[str, str, str]
    added: bool = False            # added to the tokenizer by this run (--fim-add-tokens)

    def record(self) -> dict:
        return {"tokens": list(self.names), "ids": [self.prefix, self.suffix, self.middle], "added": self.added}


def fim_tokens(tok) -> FimSpec | None:
    """The tokenizer's own FIM tokens (one of the known conventions), or None."""
    vocab = tok.get_vocab()
    for names in CONVENTIONS:
        if all(n in vocab for n in names):
            return FimSpec(*(int(vocab[n]) for n in names), names=names)
    return None


def add_fim_tokens(tok) -> FimSpec:
    """Add StarCoder's FIM tokens to `tok` as special tokens; the model's embeddings must grow to len(tok)."""
    tok.add_tokens(list(ADDED), special_tokens=True)
    spec = fim_tokens(tok)
    assert spec is not None
    return FimSpec(spec.prefix, spec.suffix, spec.middle, spec.names, added=True)


def require_fim_tokens(tok, add: bool, what: str) -> FimSpec:
    """The FIM tokens to use, added when `add`; a tokenizer without them is one clear error."""
    spec = fim_tokens(tok) if tok is not None else None
    if spec is not None:
        return spec
    if tok is None:
        raise UserError(f"{what}: FIM needs the dataset's tokenizer, which could not be loaded")
    if not add:
        raise UserError(f"{what}: the tokenizer {tok.name_or_path} has no fill-in-the-middle tokens "
                        f"({', '.join(ADDED)}); add them with --fim-add-tokens (the embeddings grow) or set "
                        "--fim-rate 0")
    return add_fim_tokens(tok)


class FimTransform:
    """`fim(key, ids) -> ids`: the window's chunks, each rearranged for FIM with probability `rate`.

    The result is cut to the window's length (a rearranged chunk gains three tokens); it may also
    come out shorter, when re-encoding the three pieces takes fewer tokens.
    """

    def __init__(self, tok, spec: FimSpec, rate: float, spm_rate: float, seed: int, separator_id: int):
        self.tok, self.spec, self.rate, self.spm_rate = tok, spec, rate, spm_rate
        self.seed, self.sep = seed, separator_id

    def __call__(self, key: tuple[int, ...], ids: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([self.seed, *key])
        cuts = np.flatnonzero(ids == self.sep)
        pieces, begin = [], 0
        for end in [*cuts.tolist(), len(ids)]:
            doc = ids[begin:end]
            if len(doc) and rng.random() < self.rate:
                doc = self.permute(doc, rng)
            pieces.append(doc)
            if end < len(ids):
                pieces.append(ids[end:end + 1])
            begin = end + 1
        return np.concatenate(pieces)[:len(ids)].astype(np.int64)

    def permute(self, doc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from core.tokenizer import encode_batch
        text = self.tok.decode(doc.tolist())
        a, b = sorted(rng.integers(0, len(text) + 1, size=2).tolist())  # character-level cut points
        prefix, middle, suffix = (np.asarray(x, dtype=np.int64) for x in
                                  encode_batch(self.tok, [text[:a], text[a:b], text[b:]]))
        s = self.spec
        if rng.random() < self.spm_rate:
            parts = [[s.prefix, s.suffix], suffix, [s.middle], prefix, middle]
        else:
            parts = [[s.prefix], prefix, [s.suffix], suffix, [s.middle], middle]
        return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])


def infill_prompt(spec: FimSpec, prefix_ids: list[int], suffix_ids: list[int]) -> list[int]:
    """PSM prompt whose continuation is the middle.

    >>> infill_prompt(FimSpec(1, 2, 3, ("p", "s", "m")), [10], [20, 21])
    [1, 10, 2, 20, 21, 3]
    """
    return [spec.prefix, *prefix_ids, spec.suffix, *suffix_ids, spec.middle]
