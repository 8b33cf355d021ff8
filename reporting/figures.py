"""The report's pictures: matplotlib on the headless Agg backend, each returned as PNG bytes.

    png = stacked_bars("Tokens per language", labels, {"train": [...], "val": [...], "test": [...]})

Every function takes plain numbers (the same ones the report prints beside the picture) and
draws nothing else, so a picture can never show a figure the tables do not.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

SPLIT_COLORS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}
DPI = 100


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def timeline(step: str, labels: list[str], per_split: dict[str, list[int]],
             cutoffs: list[tuple[int, str]]) -> bytes:
    """Stacked bars of tokens per time bucket; a dashed line at each (bucket index, label) cut-off."""
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.25 * len(labels) + 3)), 3.6))
    x = list(range(len(labels)))
    bottom = [0] * len(labels)
    for split, values in per_split.items():
        ax.bar(x, values, bottom=bottom, color=SPLIT_COLORS[split], label=split, width=0.85)
        bottom = [b + v for b, v in zip(bottom, values)]
    top = max(bottom, default=0) or 1
    for k, (index, text) in enumerate(cutoffs):
        ax.axvline(index, color="black", linestyle="--", linewidth=1)
        ax.text(index, top * (0.95 - 0.12 * k), " " + text, fontsize=8, va="top")
    ticks = x if len(x) <= 24 else x[:: -(-len(x) // 24)]
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("tokens")
    ax.set_title(f"Tokens per {step}, by split")
    ax.legend(fontsize=8)
    return _png(fig)


def stacked_bars(title: str, labels: list[str], per_split: dict[str, list[int]]) -> bytes:
    """Horizontal bars, one per label (largest on top), stacked by split."""
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(labels) + 1.4))
    y = list(range(len(labels)))[::-1]
    left = [0] * len(labels)
    for split, values in per_split.items():
        ax.barh(y, values, left=left, color=SPLIT_COLORS[split], label=split)
        left = [a + v for a, v in zip(left, values)]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("tokens")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(fig)


def bars(title: str, labels: list[str], values: list[int], xlabel: str) -> bytes:
    """Horizontal bars, first label on top."""
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(labels) + 1.4))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color="#4C72B0")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _png(fig)


def length_histogram(lengths: dict[int, int], low: int | None, high: int | None) -> bytes:
    """Histogram of chunk lengths (tokens -> chunks), with the min/max bounds as dashed lines."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    values = sorted(lengths)
    ax.hist(values, weights=[lengths[v] for v in values], bins=min(50, max(1, len(values))), color="#4C72B0")
    for bound, name in ((low, "min"), (high, "max")):
        if bound is not None:
            ax.axvline(bound, color="black", linestyle="--", linewidth=1)
            ax.text(bound, ax.get_ylim()[1] * 0.95, f" {name} {bound}", fontsize=8, va="top")
    ax.set_xlabel("tokens per chunk")
    ax.set_ylabel("chunks")
    ax.set_title("Chunk length distribution")
    return _png(fig)
