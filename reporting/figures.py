"""The report's pictures: matplotlib on the headless Agg backend, each a PNG, drawn only when it changed.

    picture = stacked_bars("Tokens per language", labels, {"train": [...], "val": [...], "test": [...]})
    png = picture.png()         # drawn, with picture.key in it: `png_key(png) == picture.key`

Every function takes plain numbers (the same ones the report prints beside the picture) and
draws nothing else, so a picture can never show a figure the tables do not. Calling one draws
nothing: it returns a `Picture`, whose key hashes the function's name, its arguments, this file
and matplotlib's version, and is stored in the PNG itself (a tEXt chunk). A PNG that carries the
key is that picture already drawn, byte for byte, and is reused as it is; matplotlib is imported
only when some picture must be drawn. Each figure is drawn once: its layout engine
("constrained") makes room for the labels within that drawing, and the canvas's pixels are
written as the PNG (savefig would draw a second time, as would bbox_inches="tight").
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

SPLIT_COLORS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}
DPI = 100
KEY_NAME = "Report figure key"   # the PNG tEXt keyword the picture's key is stored under
CHAR_INCHES = 0.065             # about one fontsize-8 character, to widen a figure for its long labels


@functools.cache
def _code_identity() -> str:
    """What else a picture depends on: this file's code and matplotlib's version."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest() + " matplotlib " + version("matplotlib")


@dataclass(frozen=True)
class Picture:
    """One figure to draw: `draw(fig, *args)` on a fresh matplotlib Figure of `size` inches."""

    draw: Callable
    size: tuple[float, float]
    args: tuple

    @functools.cached_property
    def key(self) -> str:
        spec = json.dumps([self.draw.__name__, self.size, self.args, _code_identity()])
        return hashlib.sha256(spec.encode("utf-8")).hexdigest()

    def png(self) -> bytes:
        """This picture drawn, as a PNG that carries its key."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from PIL import Image, PngImagePlugin

        fig = Figure(figsize=self.size, dpi=DPI, layout="constrained")
        canvas = FigureCanvasAgg(fig)
        self.draw(fig, *self.args)
        canvas.draw()  # the layout engine places the axes within this one drawing (savefig would draw twice)
        info = PngImagePlugin.PngInfo()
        info.add_text(KEY_NAME, self.key)
        buf = io.BytesIO()
        Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).save(
            buf, format="png", pnginfo=info)
        return buf.getvalue()


def png_key(png: bytes) -> str | None:
    """The picture key stored in a PNG's text chunk (Pillow reads those before the pixels), or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as image:
            key = image.info.get(KEY_NAME) if image.format == "PNG" else None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):  # not an image, or a broken one
        return None
    return key if isinstance(key, str) else None


def _picture(size: Callable[..., tuple[float, float]]):
    """Make `draw(fig, *args)` a function of `args` that returns their Picture, sized by `size(*args)`."""
    def wrap(draw):
        @functools.wraps(draw)
        def picture(*args) -> Picture:
            return Picture(draw, size(*args), args)
        return picture
    return wrap


def _bar_rows_size(title: str, labels: list[str], *_) -> tuple[float, float]:
    """Horizontal bars: a row per label, and width for the longest label beside the axes."""
    return 5.0 + CHAR_INCHES * max(map(len, labels), default=0), 0.3 * len(labels) + 1.4


@_picture(lambda step, labels, *_: (min(14.0, max(6.0, 0.25 * len(labels) + 3)), 3.6))
def timeline(fig, step: str, labels: list[str], per_split: dict[str, list[int]],
             cutoffs: list[tuple[int, str]]) -> None:
    """Stacked bars of tokens per time bucket; a dashed line at each (bucket index, label) cut-off."""
    from matplotlib.collections import PolyCollection

    ax = fig.subplots()
    bottom, half = [0] * len(labels), 0.85 / 2
    for split, values in per_split.items():  # one collection of bars per split, not a patch per bar
        bars = PolyCollection([[(x - half, b), (x - half, b + v), (x + half, b + v), (x + half, b)]
                               for x, (b, v) in enumerate(zip(bottom, values)) if v],
                              facecolors=SPLIT_COLORS[split], edgecolors="none", label=split)
        bars.sticky_edges.y.append(0)  # as bars: the axis starts at 0, with no margin below
        ax.add_collection(bars)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.autoscale_view()
    top = max(bottom, default=0) or 1
    for k, (index, text) in enumerate(cutoffs):
        ax.axvline(index, color="black", linestyle="--", linewidth=1)
        ax.text(index, top * (0.95 - 0.12 * k), " " + text, fontsize=8, va="top")
    x = range(len(labels))
    ticks = x if len(x) <= 24 else x[:: -(-len(x) // 24)]
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("tokens")
    ax.set_title(f"Tokens per {step}, by split")
    ax.legend(fontsize=8)


@_picture(_bar_rows_size)
def stacked_bars(fig, title: str, labels: list[str], per_split: dict[str, list[int]]) -> None:
    """Horizontal bars, one per label (largest on top), stacked by split."""
    ax = fig.subplots()
    y = list(range(len(labels)))[::-1]
    left = [0] * len(labels)
    for split, values in per_split.items():
        ax.barh(y, values, left=left, color=SPLIT_COLORS[split], label=split)
        left = [a + v for a, v in zip(left, values)]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("tokens")
    ax.set_title(title)
    ax.legend(fontsize=8)


@_picture(_bar_rows_size)
def bars(fig, title: str, labels: list[str], values: list[int], xlabel: str) -> None:
    """Horizontal bars, first label on top."""
    ax = fig.subplots()
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color="#4C72B0")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)


@_picture(lambda *_: (7.0, 3.4))
def length_histogram(fig, lengths: dict[int, int], low: int | None, high: int | None) -> None:
    """Histogram of chunk lengths (tokens -> chunks), with the min/max bounds as dashed lines."""
    ax = fig.subplots()
    values = sorted(lengths)
    ax.hist(values, weights=[lengths[v] for v in values], bins=min(50, max(1, len(values))), color="#4C72B0")
    for bound, name in ((low, "min"), (high, "max")):
        if bound is not None:
            ax.axvline(bound, color="black", linestyle="--", linewidth=1)
            ax.text(bound, ax.get_ylim()[1] * 0.95, f" {name} {bound}", fontsize=8, va="top")
    ax.set_xlabel("tokens per chunk")
    ax.set_ylabel("chunks")
    ax.set_title("Chunk length distribution")
