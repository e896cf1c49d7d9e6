"""The explorers' drawing engine: matplotlib panels drawn with Agg, blitted, composed into one PNG.

The picture is a row of panels, each its own small matplotlib Figure rendered with Agg, built
once. A panel's axes, ticks, contours and heatmap form a cached background; the data (paths,
curves, markers, messages) are "animated" artists whose data is replaced with set_data and drawn
over it (blitting); legends are pasted from cached pixels. A panel's background is redrawn only
when one of its axis ranges changes, and the helpers below move ranges in coarse steps, so a
typical update costs a few milliseconds of drawing plus the PNG encoding (5-8x less than a full
redraw). The PNG goes into an ipywidgets Image: no ipympl or other extension is needed.
"""
from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox

from ..plotting import contour
from ..surfaces import COURSE, START

__all__ = [
    "DPI", "LIM", "COLORS", "Panel", "Canvas",
    "dress", "add_line", "set_path", "set_curve", "leaves_window", "positive_or_nan",
    "log_limits", "log_tick", "plain_log", "step_limit", "nice_top", "round_down", "round_up",
]

DPI = 90
LIM = (-1.5, 1.5)            # the (a, b) window of every contour plot
COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]


class Panel:
    """One panel: its own small Agg figure with a cached background and animated artists."""

    def __init__(self, width, height, **margins):
        self.fig = Figure(figsize=(width, height), dpi=DPI)
        self.canvas = FigureCanvasAgg(self.fig)
        if margins:
            self.fig.subplots_adjust(**margins)
        self.dynamic: list = []
        self.overlays: list = []      # legends: drawn once per background, then pasted
        self._overlay_pixels: list = []
        self.background = None
        self.key = None
        self.static_version = 0
        self.full_redraws = 0

    def _layout_key(self):
        return (self.static_version,
                tuple((ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale())
                      for ax in self.fig.axes))

    def invalidate(self):
        """Forget the cached background: the next render redraws the whole panel."""
        self.background = None

    def render(self) -> np.ndarray:
        """Redraw the background only when an axis range (or static content) changed, then
        draw the animated artists over it; returns the RGB pixels."""
        key = self._layout_key()
        if self.background is None or key != self.key:
            self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.fig.bbox)
            self.key = key
            self.full_redraws += 1
            # legends (opaque, square, fixed place): draw them once on the bare background,
            # keep their pixels, and paste those over the data on every render
            renderer = self.canvas.get_renderer()
            self._overlay_pixels = []
            for leg in self.overlays:
                leg.axes.draw_artist(leg)
                bb = leg.get_window_extent(renderer)
                outer = Bbox.from_extents(math.floor(bb.x0) - 1, math.floor(bb.y0) - 1,
                                          math.ceil(bb.x1) + 1, math.ceil(bb.y1) + 1)
                self._overlay_pixels.append(self.canvas.copy_from_bbox(outer))
        self.canvas.restore_region(self.background)
        for artist in self.dynamic:
            if artist.get_visible():
                (artist.axes or self.fig).draw_artist(artist)
        for pixels in self._overlay_pixels:
            self.canvas.restore_region(pixels)
        return np.asarray(self.canvas.buffer_rgba())[..., :3]


class Canvas:
    """The explorer's picture: a row of panels (one small figure each, so a rescaled axis
    redraws only its own panel) under a one-line notice strip, composed into one PNG.

    An explorer's draw function keeps its artists on the canvas (``canvas.built(build)``: built
    on the first draw, returned as they are afterwards) and only changes their data.
    """

    def __init__(self, widths=(3.4, 3.3, 3.3), height=3.3, panel_margins=None, **adjust):
        margins = dict(left=0.24, right=0.96, bottom=0.15, top=0.89)
        margins.update(adjust)
        extra = panel_margins or [{}] * len(widths)
        self.panels = [Panel(w, height, **{**margins, **m}) for w, m in zip(widths, extra)]
        self.axes = [p.fig.add_subplot() for p in self.panels]
        total_px = sum(int(round(w * DPI)) for w in widths)
        self.strip = Panel(total_px / DPI, 0.3)
        self._panel_of = {id(p.fig): p for p in self.panels + [self.strip]}
        self.notice = self.dyn(self.strip.fig.text(0.008, 0.5, "", ha="left", va="center", fontsize=10,
                                                   color="crimson", fontweight="bold"))
        self.artists = None

    def built(self, build):
        """The explorer's artists: ``build(self)`` on the first call, the same objects afterwards."""
        if self.artists is None:
            self.artists = build(self)
        return self.artists

    @property
    def full_redraws(self) -> int:
        """How many panel backgrounds were drawn from scratch so far (blitting saves the rest)."""
        return sum(p.full_redraws for p in self.panels)

    def dyn(self, artist):
        """Register an artist that changes between updates (drawn over the background)."""
        artist.set_animated(True)
        self._panel_of[id(artist.figure)].dynamic.append(artist)
        return artist

    def bump(self, ax):
        """Say that static content of ax's panel changed (forces its background redraw)."""
        self._panel_of[id(ax.figure)].static_version += 1

    def retitle(self, ax, title, fontsize=10):
        """Set ax's title only when it changed: the title is part of the cached background."""
        if ax.get_title() != title:
            ax.set_title(title, fontsize=fontsize)
            self.bump(ax)

    def invalidate(self):
        """Forget every cached background: the next png() is a full redraw."""
        for p in self.panels + [self.strip]:
            p.invalidate()

    def path_axes(self, ax, title):
        """Contours of the course surface in the (a, b) window, the start marked with a square."""
        contour(COURSE, ax=ax, a_lim=LIM, b_lim=LIM, title=title)
        ax.set_xlabel("a  (steep, curvature 100)", fontsize=9)
        ax.set_ylabel("b  (shallow, curvature 1)", fontsize=9)
        ax.plot(*START, marker="s", color="k", markersize=6, linestyle="none", zorder=6)
        ax.title.set_fontsize(10)
        return ax

    def legend(self, ax, handles, loc, **kw):
        """A legend drawn above the data (opaque, square, at a fixed place: cached pixels)."""
        leg = ax.legend(handles=handles, loc=loc, fontsize=7.5, framealpha=1.0, fancybox=False, **kw)
        leg.set_animated(True)
        self._panel_of[id(ax.figure)].overlays.append(leg)
        return leg

    def png(self) -> bytes:
        """Render every panel (blitting where possible) and encode the picture as PNG."""
        row = np.concatenate([p.render() for p in self.panels], axis=1)
        picture = np.concatenate([self.strip.render(), row], axis=0)
        from PIL import Image  # matplotlib depends on Pillow
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(picture)).save(buf, format="png", compress_level=1)
        return buf.getvalue()


# ----------------------------------------------------------------------------- artists

def dress(ax, xlabel, ylabel, title):
    """Label a panel the same way everywhere: axis labels, a title and a light grid."""
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)


def add_line(canvas, ax, *args, **kw):
    """An empty animated line on ax (its data is set on every update)."""
    (ln,) = ax.plot([], [], *args, **kw)
    return canvas.dyn(ln)


def set_path(line, positions):
    """Show the finite (a, b) positions of a run as the line's data."""
    p = np.asarray(positions, dtype=float)[..., :2]
    p = p[np.all(np.isfinite(p), axis=-1)]
    line.set_data(p[:, 0], p[:, 1])


def set_curve(line, y, x=None):
    """Show y against the step index (or x) as the line's data."""
    y = np.asarray(y, dtype=float)
    line.set_data(np.arange(len(y)) if x is None else x, y)


def leaves_window(params) -> bool:
    """Whether a run's finite (a, b) positions go outside the contour window LIM."""
    p = np.asarray(params)[..., :2]
    p = p[np.all(np.isfinite(p), axis=-1)]
    return bool(np.any(np.abs(p) > LIM[1]))


def positive_or_nan(values) -> np.ndarray:
    """The values with non-positive and non-finite entries as nan (gaps on a log axis)."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v) & (v > 0), v, np.nan)


# ----------------------------------------------------------------------------- axes that rarely move

def log_limits(*arrays, top_at_least=None, floor=1e-30):
    """Limits for a log axis, in steps of 3 decades below (1e-3, 1e-6, ...) and whole decades
    above, so the axis stays put while a slider moves and only occasionally rescales."""
    vals = np.concatenate([np.ravel(positive_or_nan(a)) for a in arrays])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return (1e-3, 1e2)
    lo = 10.0 ** (3 * math.floor(math.log10(max(vals.min(), floor)) / 3))
    hi = 10.0 ** (math.floor(math.log10(vals.max())) + 1)
    if top_at_least is not None:
        hi = max(hi, top_at_least)
    if hi / lo < 100:
        lo = hi / 1000
    return (lo, hi)


def log_tick(v, _pos=None) -> str:
    """Tick label for a log axis: 0.001 .. 1000 written out, 1e-6 / 1e8 beyond."""
    if v <= 0:
        return ""
    e = math.log10(v)
    if -3 <= e <= 3:
        return f"{v:g}"
    return f"1e{round(e)}" if abs(e - round(e)) < 1e-9 else f"{v:.0e}"


def plain_log(ax):
    """A log y-axis with plain tick labels (1e-06, 0.01, 100): cheaper to draw than mathtext."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=7))
    ax.yaxis.set_major_formatter(FuncFormatter(log_tick))
    ax.yaxis.set_minor_formatter(NullFormatter())


def step_limit(n: int) -> int:
    """Right end of a step axis, rounded up (10s, then 25s, then 50s) so that dragging a
    steps slider rescales the axis only now and then."""
    for limit, q in ((50, 10), (200, 25)):
        if n <= limit:
            return max(q, q * math.ceil(n / q))
    return 50 * math.ceil(n / 50)


def nice_top(x):
    """Round up to 1, 2 or 5 times a power of ten (keeps the axis stable while sliding)."""
    e = 10.0 ** math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if x <= m * e:
            return m * e
    return 10 * e


def round_down(x, q=0.25):
    """x rounded down to a multiple of q (a linear axis limit that moves in steps of q)."""
    return math.floor(x / q) * q


def round_up(x, q=0.25):
    """x rounded up to a multiple of q."""
    return math.ceil(x / q) * q


def path_middle_loss(cv, middle_ylabel, middle_title):
    """The three-panel layout of a per-coordinate explorer: path on the contours, a log panel, loss per step.

    Returns the path line; the middle panel is dressed and log-scaled, ready for its curves.
    """
    ax_p, ax_m, ax_l = cv.axes
    cv.path_axes(ax_p, "Path on the loss contours")
    plain_log(ax_m)
    dress(ax_m, "step t", middle_ylabel, middle_title)
    plain_log(ax_l)
    dress(ax_l, "step t", "loss L(w) (log scale)", "Loss per step")
    return add_line(cv, ax_p, "-o", color=COLORS[0], markersize=2.5, linewidth=1.2, label="path")
