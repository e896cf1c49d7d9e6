"""Interactive explorers for lessons 02-09: move a control, see the run change at once.

Every explorer comes in two halves that never mix:

    compute_<name>(**params) -> dict   a plain function: runs the library's `run` loop and
                                       returns numbers, arrays and a short text "readout"
                                       (tests and nbval call it without any widget)
    <name>_explorer() -> Explorer      the ipywidgets front end: controls, the readout and a
                                       matplotlib figure drawn with Agg into an Image widget

Drawing: the picture is a row of panels, each its own small matplotlib Figure rendered
with Agg, built once. A panel's axes, ticks, contours and heatmap form a cached background;
the data (paths, curves, markers, messages) are "animated" artists whose data is replaced
with set_data and drawn over it (blitting); legends are pasted from cached pixels. A
panel's background is redrawn only when one of its axis ranges changes (ranges move in
coarse steps), so a typical update costs a few milliseconds of drawing plus the PNG
encoding. The PNG goes into an ipywidgets Image: no ipympl or other extension is needed.
``measure_update_times()`` reports the median and 95th percentile per explorer.

Extreme settings never raise inside a widget: divergence, inf and nan end up as a message
in the readout and on the figure. The compute functions raise ValueError (with the
library's clear message) only for settings outside their domain, such as lr <= 0.
"""
from __future__ import annotations

import functools
import html
import io
import math
import time
from typing import Callable

import ipywidgets as widgets
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .optimizers import SGD, Adam, AdamW, EMAMomentum
from .plotting import contour
from .precision import FP16_SMALLEST_NORMAL, DynamicLossScaler
from .runner import Trace, run
from .schedules import warmup_cosine
from .surfaces import COURSE, START, Quadratic
from .validation import check_int, check_nonnegative, check_positive, check_unit_interval

__all__ = [
    "compute_sgd", "sgd_explorer",
    "compute_momentum", "momentum_heatmap", "momentum_explorer",
    "compute_adam", "adam_explorer",
    "compute_adamw", "adamw_explorer",
    "compute_schedule", "schedule_explorer",
    "compute_clipping", "clipping_explorer",
    "compute_loss_scaling", "loss_scaling_explorer",
    "compute_race", "race_explorer", "tune_race", "RACE_DEFAULTS",
    "Explorer", "EXPLORERS", "measure_update_times",
]

DPI = 90
LIM = (-1.5, 1.5)            # the (a, b) window of every contour plot
START_LOSS = float(COURSE.loss(START))
COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]


# ----------------------------------------------------------------------------- helpers

def _num(x, digits: int = 4) -> str:
    """A number for a readout: 4 significant digits, 'nan'/'inf' spelled out; positional
    between 1e-4 and 1e6 (10000, not 1e+04), scientific outside."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 or 1e-4 <= abs(x) < 1e6:
        return np.format_float_positional(x, precision=digits, unique=True, fractional=False, trim="-")
    return f"{x:.{digits}g}"


def _vec(values, digits: int = 4) -> str:
    return "[" + ", ".join(_num(v, digits) for v in np.ravel(values)) + "]"


def _quiet(fn):
    """Run a compute function with numpy's overflow/invalid warnings silenced (they become
    a 'diverged' message instead of red stderr text in the notebook)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    return wrapper


def _real(name: str, value) -> float:
    """A finite float (rejects text, None, inf and nan with a clear message)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return x


def _pos(name, value, hint=""):
    return float(check_positive(name, _real(name, value), hint=hint))


def _summary(trace) -> dict:
    """A run for drawing: positions, losses, divergence step, final loss (nan if it diverged)."""
    return {"params": trace.params, "losses": trace.losses, "diverged_at": trace.diverged_at,
            "final_loss": float("nan") if trace.diverged else float(trace.final_loss)}


def _steps_taken(trace, steps: int) -> int:
    return int(trace.diverged_at) if trace.diverged else steps


def _outcome(trace, steps: int) -> str:
    """'final loss 0.1169 after 40 steps' or 'diverged at step 7'."""
    if trace.diverged:
        return f"diverged at step {trace.diverged_at}"
    return f"final loss {_num(trace.final_loss)} after {steps} steps"


def _leaves_window(params) -> bool:
    p = np.asarray(params)[..., :2]
    p = p[np.all(np.isfinite(p), axis=-1)]
    return bool(np.any(np.abs(p) > LIM[1]))


def _positive_or_nan(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v) & (v > 0), v, np.nan)


def _log_limits(*arrays, top_at_least=None, floor=1e-30):
    """Limits for a log axis, in steps of 3 decades below (1e-3, 1e-6, ...) and whole decades
    above, so the axis stays put while a slider moves and only occasionally rescales."""
    vals = np.concatenate([np.ravel(_positive_or_nan(a)) for a in arrays])
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


def _log_tick(v, _pos=None) -> str:
    """Tick label for a log axis: 0.001 .. 1000 written out, 1e-6 / 1e8 beyond."""
    if v <= 0:
        return ""
    e = math.log10(v)
    if -3 <= e <= 3:
        return f"{v:g}"
    return f"1e{round(e)}" if abs(e - round(e)) < 1e-9 else f"{v:.0e}"


def _plain_log(ax):
    """A log y-axis with plain tick labels (1e-06, 0.01, 100): cheaper to draw than mathtext."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=7))
    ax.yaxis.set_major_formatter(FuncFormatter(_log_tick))
    ax.yaxis.set_minor_formatter(NullFormatter())


# ----------------------------------------------------------------------------- drawing

class _Panel:
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


class _Canvas:
    """The explorer's picture: a row of panels (one small figure each, so a rescaled axis
    redraws only its own panel) under a one-line notice strip, composed into one PNG."""

    def __init__(self, widths=(3.4, 3.3, 3.3), height=3.3, panel_margins=None, **adjust):
        margins = dict(left=0.24, right=0.96, bottom=0.15, top=0.89)
        margins.update(adjust)
        extra = panel_margins or [{}] * len(widths)
        self.panels = [_Panel(w, height, **{**margins, **m}) for w, m in zip(widths, extra)]
        self.axes = [p.fig.add_subplot() for p in self.panels]
        total_px = sum(int(round(w * DPI)) for w in widths)
        self.strip = _Panel(total_px / DPI, 0.3)
        self._panel_of = {id(p.fig): p for p in self.panels + [self.strip]}
        self.notice = self.dyn(self.strip.fig.text(0.008, 0.5, "", ha="left", va="center", fontsize=10,
                                                   color="crimson", fontweight="bold"))

    @property
    def full_redraws(self) -> int:
        return sum(p.full_redraws for p in self.panels)

    def dyn(self, artist):
        """Register an artist that changes between updates (drawn over the background)."""
        artist.set_animated(True)
        self._panel_of[id(artist.figure)].dynamic.append(artist)
        return artist

    def bump(self, ax):
        """Say that static content of ax's panel changed (forces its background redraw)."""
        self._panel_of[id(ax.figure)].static_version += 1

    def path_axes(self, ax, title):
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


def _dress(ax, xlabel, ylabel, title):
    """Label a panel the same way everywhere: axis labels, a title and a light grid."""
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)


def _line(canvas, ax, *args, **kw):
    (ln,) = ax.plot([], [], *args, **kw)
    return canvas.dyn(ln)


def _set_path(line, positions):
    p = np.asarray(positions, dtype=float)[..., :2]
    p = p[np.all(np.isfinite(p), axis=-1)]
    line.set_data(p[:, 0], p[:, 1])


def _set_curve(line, y, x=None):
    y = np.asarray(y, dtype=float)
    line.set_data(np.arange(len(y)) if x is None else x, y)


# ----------------------------------------------------------------------------- the widget shell

class Explorer(widgets.VBox):
    """An explorer: controls, a text readout and a figure, stacked in one VBox widget.

    Built by the *_explorer() functions; the last value of a cell displays it. Widget API
    (what the tests and the browser test use):
        explorer.controls      {name: ipywidget}; setting ``.value`` updates the view
        explorer.set(**v)      change several controls, then update once
        explorer.readout       the HTML widget holding the readout (CSS class lessons-readout)
        explorer.readout_text  the readout as plain text
        explorer.image         the Image widget holding the PNG (CSS class lessons-plot)
        explorer.result        the last compute result (None after an invalid setting)
        explorer.update_seconds  wall time of every update so far
    """

    def __init__(self, name: str, title: str, controls: dict, compute: Callable,
                 draw: Callable, canvas: _Canvas, fixed=None, layout_rows=None):
        readout = widgets.HTML(value="")
        readout.add_class("lessons-readout")
        image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        image.add_class("lessons-plot")
        header = widgets.HTML(f"<b>{html.escape(title)}</b>")
        rows = layout_rows if layout_rows is not None else [list(controls.values())]
        boxes = [widgets.HBox(list(r), layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
                 for r in rows]
        super().__init__(children=[header, *boxes, readout, image])
        self.add_class("lessons-explorer")
        self.add_class(f"lessons-explorer-{name}")
        self.explorer_name = name
        self.explorer_title = title
        self.controls = controls
        self.readout = readout
        self.image = image
        self.canvas = canvas
        self.fixed = dict(fixed or {})
        self.result = None
        self.error = None
        self.readout_text = ""
        self.update_seconds: list[float] = []
        self.update_cpu_seconds: list[float] = []
        self._compute = compute
        self._draw = draw
        self._hold = False
        for key, ctl in controls.items():
            ctl.add_class(f"lessons-control-{key}")
            ctl.observe(self._on_change, names="value")
        self.update()

    def params(self) -> dict:
        """The compute function's keyword arguments for the current control values."""
        p = dict(self.fixed)
        p.update({k: c.value for k, c in self.controls.items()})
        return p

    def set(self, **values):
        """Set several controls at once and update once."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; this explorer has {sorted(self.controls)}")
        self._hold = True
        try:
            for k, v in values.items():
                self.controls[k].value = v
        finally:
            self._hold = False
        self.update()

    def _on_change(self, change):
        if not self._hold:
            self.update()

    def update(self):
        """One update: compute, redraw the changed artists, publish readout and PNG."""
        t0, c0 = time.perf_counter(), time.process_time()
        params = self.params()
        try:
            self.result = self._compute(**params)
            self.error = None
            text = self.result["readout"]
            self._draw(self.canvas, self.result, params)
            bad = bool(self.result.get("problem"))
        except ValueError as exc:          # a setting outside the domain (e.g. lr <= 0)
            self.result, self.error, bad = None, exc, True
            text = f"invalid setting: {exc}"
            self.canvas.notice.set_text("invalid setting (see the readout)")
        except Exception as exc:           # never let a callback die silently in the browser
            self.result, self.error, bad = None, exc, True
            text = f"could not compute this setting: {type(exc).__name__}: {exc}"
            self.canvas.notice.set_text("could not compute this setting")
        self.readout_text = text
        color = "crimson" if bad else "inherit"
        self.readout.value = (f'<pre style="margin:2px 0; white-space:pre-wrap; color:{color}; '
                              f'font-size:12.5px">{html.escape(text)}</pre>')
        self.image.value = self.canvas.png()
        self.update_seconds.append(time.perf_counter() - t0)
        self.update_cpu_seconds.append(time.process_time() - c0)

    def __repr__(self):
        return f"{self.explorer_title} (interactive: {', '.join(self.controls)})"


_SLIDER_LAYOUT = dict(width="370px")
_STYLE = {"description_width": "120px"}


def _log_slider(desc, value, lo, hi, step=0.05, fmt=".3g"):
    """A base-10 log slider from about 10**lo to 10**hi whose grid passes through `value`
    (the browser snaps the handle to min + k * step and sends the snapped value back, so an
    unaligned grid would turn lr 0.018 into 0.01778 as soon as the widget is shown)."""
    centre = math.log10(value)
    lo = centre - round((centre - lo) / step) * step
    hi = lo + round((hi - lo) / step) * step
    return widgets.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=step, description=desc,
                                  readout_format=fmt, continuous_update=True, style=_STYLE,
                                  layout=widgets.Layout(**_SLIDER_LAYOUT))


def _float_slider(desc, value, lo, hi, step, fmt=".3f"):
    return widgets.FloatSlider(value=value, min=lo, max=hi, step=step, description=desc,
                               readout_format=fmt, continuous_update=True, style=_STYLE,
                               layout=widgets.Layout(**_SLIDER_LAYOUT))


def _int_slider(desc, value, lo, hi, step=1):
    return widgets.IntSlider(value=value, min=lo, max=hi, step=step, description=desc,
                             continuous_update=True, style=_STYLE, layout=widgets.Layout(**_SLIDER_LAYOUT))


def _dropdown(desc, options, value):
    return widgets.Dropdown(options=options, value=value, description=desc, style=_STYLE,
                            layout=widgets.Layout(width="370px"))


# ============================================================================= 02 SGD

@_quiet
def compute_sgd(lr=0.018, steps=40):
    """Plain SGD on the course surface: w <- w - lr * grad L(w).

    Per coordinate the error is multiplied by (1 - lr * curvature) each step; |multiplier| > 1
    means that coordinate grows.
    """
    lr = _pos("lr", lr, hint="try 0.018")
    steps = check_int("steps", steps, 1)
    trace = run(SGD(lr), steps)
    multipliers = 1.0 - lr * COURSE.c
    unstable = [name for name, m in zip("ab", multipliers) if abs(m) > 1]
    head = f"lr {_num(lr)}: multipliers a {_num(multipliers[0])}, b {_num(multipliers[1])}"
    if trace.diverged:
        problem = f"diverged at step {trace.diverged_at}"
        body = f"{problem} (|multiplier| > 1 in {', '.join(unstable)})"
    elif unstable:
        problem = f"unstable: |multiplier| > 1 in {', '.join(unstable)}, the loss grows"
        body = f"{problem}; loss {_num(trace.final_loss)} after {steps} steps (start {_num(START_LOSS)})"
    else:
        problem = None
        body = _outcome(trace, steps)
    return {
        "lr": lr, "steps": steps,
        "params": trace.params, "losses": trace.losses,
        "multipliers": multipliers.tolist(),
        "final_loss": float(trace.final_loss) if not trace.diverged else float("nan"),
        "diverged_at": trace.diverged_at,
        "problem": problem,
        "readout": f"{head}; {body}",
    }


def _draw_sgd(cv, r, params):
    if not hasattr(cv, "sgd"):
        ax_p, ax_l, ax_m = cv.axes
        cv.path_axes(ax_p, "SGD path on the loss contours")
        _plain_log(ax_l)
        _dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
        ax_m.axhspan(-1, 1, color="tab:green", alpha=0.12)
        ax_m.text(0.5, 1.6, "green band: stable, |multiplier| < 1", ha="center", va="center", fontsize=7.5)
        ax_m.axhline(0, color="0.5", linewidth=0.8)
        ax_m.set_xlim(-0.6, 1.6)
        ax_m.set_ylim(-2.5, 1.85)
        ax_m.set_xticks([0, 1], ["a (curv. 100)", "b (curv. 1)"], fontsize=8)
        ax_m.set_ylabel("1 - lr * curvature", fontsize=9)
        ax_m.set_title("Per-step multiplier of the error", fontsize=10)
        path = _line(cv, ax_p, "-o", color=COLORS[0], markersize=3, linewidth=1.3, label="path w_0 .. w_k")
        end = _line(cv, ax_p, "o", color=COLORS[3], markersize=6, label="last finite point")
        loss = _line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5)
        bars = [cv.dyn(b) for b in ax_m.bar([0, 1], [0, 0], width=0.55, color=[COLORS[1], COLORS[2]])]
        labels = [cv.dyn(ax_m.text(i, 0, "", ha="center", va="bottom", fontsize=8)) for i in range(2)]
        cv.legend(ax_p, [path, end], loc="lower left")
        cv.sgd = (path, end, loss, bars, labels)
    path, end, loss, bars, labels = cv.sgd
    ax_p, ax_l, _ = cv.axes
    _set_path(path, r["params"])
    finite = r["params"][np.all(np.isfinite(r["params"]), axis=-1)]
    end.set_data(finite[-1:, 0], finite[-1:, 1])
    _set_curve(loss, _positive_or_nan(r["losses"]))
    ax_l.set_xlim(0, _step_limit(r["steps"]))
    ax_l.set_ylim(*_log_limits(r["losses"], top_at_least=100))
    for bar, lab, m, x in zip(bars, labels, r["multipliers"], (0, 1)):
        shown = float(np.clip(m, -2.5, 1.85))
        bar.set_height(shown)
        bar.set_color("crimson" if abs(m) > 1 else ("tab:orange" if x == 0 else "tab:green"))
        lab.set_text(_num(m, 3))
        lab.set_position((x, shown + 0.05 if shown >= 0 else 0.05))
    note = r["problem"] or ""
    if _leaves_window(r["params"]):
        note = (note + "; " if note else "") + "the path leaves the plotted window"
    cv.notice.set_text(note)


def sgd_explorer(lr=0.018, steps=40) -> Explorer:
    """Lesson 02: SGD's learning rate (log slider) and number of steps."""
    controls = {"lr": _log_slider("lr", lr, -4, 1, step=0.025),
                "steps": _int_slider("steps", steps, 1, 200)}
    return Explorer("sgd", "SGD on L(a, b) = 0.5 (100 a² + b²): learning rate and steps",
                    controls, compute_sgd, _draw_sgd, _Canvas((3.5, 3.6, 2.9)))


# ============================================================================= 03 momentum

MOMENTUM_CONVENTIONS = {
    "ema": "EMA: m = beta m + (1 - beta) g from 0, w -= lr m",
    "dampened": "framework, dampening = beta: buffer starts at g1",
    "heavy-ball": "heavy-ball: v = beta v + g, w -= lr v",
}
HEATMAP_LR = np.geomspace(1e-4, 1.0, 64)
HEATMAP_BETA = np.linspace(0.0, 0.99, 64)


def _momentum_optimizer(lr, beta, convention):
    if convention == "ema":
        return EMAMomentum(lr, beta)
    if convention == "dampened":
        return SGD(lr, momentum=beta, dampening=beta)
    if convention == "heavy-ball":
        return SGD(lr, momentum=beta)
    raise ValueError(f"convention must be one of {sorted(MOMENTUM_CONVENTIONS)}; got {convention!r}")


@functools.lru_cache(maxsize=16)
def _momentum_heatmap_cached(convention, steps):
    L, B = np.meshgrid(HEATMAP_LR, HEATMAP_BETA)          # rows: beta, columns: lr
    opt = _momentum_optimizer(L.ravel(), B.ravel(), convention)
    with np.errstate(all="ignore"):
        trace = run(opt, steps)
    final = np.where(trace.diverged, np.nan, trace.losses[-1]).reshape(L.shape)
    final.flags.writeable = False
    return final


def momentum_heatmap(convention="ema", steps=40):
    """Final loss after `steps` for a 64 x 64 grid of lr (log, 1e-4..1) x beta (0..0.99).

    One vectorised batch of 4096 runs, cached per (convention, steps). Returns
    (lrs, betas, final) with final[i, j] for beta i and lr j; nan where the run diverged.
    """
    if convention not in MOMENTUM_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(MOMENTUM_CONVENTIONS)}; got {convention!r}")
    steps = check_int("steps", steps, 1)
    return HEATMAP_LR, HEATMAP_BETA, _momentum_heatmap_cached(convention, steps)


@_quiet
def compute_momentum(lr=0.018, beta=0.9, convention="ema", steps=40):
    """Momentum on the course surface in one of three conventions, plus the lr x beta map.

    ema:        m = beta m + (1 - beta) g (from 0);   w -= lr m       (the course's EMAMomentum)
    dampened:   PyTorch SGD(momentum=beta, dampening=beta): the same EMA but started at g1
    heavy-ball: PyTorch SGD(momentum=beta):  v = beta v + g;  w -= lr v
    """
    lr = _pos("lr", lr, hint="try 0.018")
    beta = float(check_unit_interval("beta", _real("beta", beta), hint="0.9 is a common choice"))
    steps = check_int("steps", steps, 1)
    trace = run(_momentum_optimizer(lr, beta, convention), steps)
    lrs, betas, final = momentum_heatmap(convention, steps)
    if np.all(np.isnan(final)):
        best = None
    else:
        i, j = np.unravel_index(np.nanargmin(final), final.shape)
        best = {"lr": float(lrs[j]), "beta": float(betas[i]), "final_loss": float(final[i, j])}
    problem = f"diverged at step {trace.diverged_at}" if trace.diverged else None
    if not trace.diverged and trace.final_loss > START_LOSS:
        problem = "unstable: the loss grew above its start value"
    readout = f"{convention}, lr {_num(lr)}, beta {_num(beta, 3)}: {_outcome(trace, steps)}"
    if problem and not trace.diverged:
        readout += f" ({problem})"
    if best:
        readout += (f"\nbest on this {len(betas)}x{len(lrs)} map: lr {_num(best['lr'], 3)}, "
                    f"beta {_num(best['beta'], 3)} -> final loss {_num(best['final_loss'])}")
    in_map = bool(lrs[0] <= lr <= lrs[-1])
    if not in_map:
        readout += "\n(the chosen lr is outside the map's range 1e-4..1)"
    return {
        "lr": lr, "beta": beta, "convention": convention, "steps": steps,
        "params": trace.params, "losses": trace.losses,
        "final_loss": float(trace.final_loss) if not trace.diverged else float("nan"),
        "diverged_at": trace.diverged_at,
        "heatmap_lr": lrs, "heatmap_beta": betas, "heatmap_final_loss": final,
        "best": best, "problem": problem, "readout": readout,
    }


def _draw_momentum(cv, r, params):
    ax_p, ax_l, ax_h = cv.axes
    if not hasattr(cv, "mom"):
        cv.path_axes(ax_p, "Momentum path on the loss contours")
        _plain_log(ax_l)
        _dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
        lx = np.log10(HEATMAP_LR)
        dx = (lx[1] - lx[0]) / 2
        db = (HEATMAP_BETA[1] - HEATMAP_BETA[0]) / 2
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.8")
        img = ax_h.imshow(np.zeros((64, 64)), origin="lower", aspect="auto", cmap=cmap,
                          extent=(lx[0] - dx, lx[-1] + dx, HEATMAP_BETA[0] - db, HEATMAP_BETA[-1] + db),
                          vmin=-8, vmax=3, interpolation="nearest")
        cb = ax_h.figure.colorbar(img, ax=ax_h, fraction=0.08, pad=0.03)
        cb.set_label("log10 final loss (grey: diverged)", fontsize=8)
        ax_h.set_xticks([-4, -3, -2, -1, 0], ["1e-4", "1e-3", "0.01", "0.1", "1"], fontsize=8)
        ax_h.set_xlabel("lr (log scale)", fontsize=9)
        ax_h.set_ylabel("beta", fontsize=9)
        ax_h.set_title("", fontsize=10)
        path = _line(cv, ax_p, "-o", color=COLORS[0], markersize=2.5, linewidth=1.2, label="path")
        loss = _line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5)
        chosen = _line(cv, ax_h, "o", markersize=9, markerfacecolor="none", markeredgecolor="red",
                       markeredgewidth=2, label="chosen setting")
        best = _line(cv, ax_h, "X", markersize=9, markerfacecolor="white", markeredgecolor="k",
                     markeredgewidth=1, label="best on the map")
        cv.legend(ax_h, [chosen, best], loc="lower left")
        cv.mom = dict(img=img, path=path, loss=loss, chosen=chosen, best=best, conv=None)
    m = cv.mom
    if m["conv"] != (r["convention"], r["steps"]):
        with np.errstate(all="ignore"):
            m["img"].set_data(np.log10(r["heatmap_final_loss"]))
        ax_h.set_title(f"Final loss after {r['steps']} steps: {r['convention']}", fontsize=10)
        m["conv"] = (r["convention"], r["steps"])
        cv.bump(ax_h)
    _set_path(m["path"], r["params"])
    _set_curve(m["loss"], _positive_or_nan(r["losses"]))
    ax_l.set_xlim(0, r["steps"])
    ax_l.set_ylim(*_log_limits(r["losses"], top_at_least=100))
    x = float(np.clip(np.log10(r["lr"]), -4, 0))
    m["chosen"].set_data([x], [r["beta"]])
    if r["best"]:
        m["best"].set_data([np.log10(r["best"]["lr"])], [r["best"]["beta"]])
    else:
        m["best"].set_data([], [])
    note = r["problem"] or ""
    if _leaves_window(r["params"]):
        note = (note + "; " if note else "") + "the path leaves the plotted window"
    cv.notice.set_text(note)


def momentum_explorer(lr=0.018, beta=0.9, convention="ema") -> Explorer:
    """Lesson 03: lr, beta and the momentum convention; the setting marked on the lr x beta map."""
    options = [(label, key) for key, label in MOMENTUM_CONVENTIONS.items()]
    controls = {"lr": _log_slider("lr", lr, -4, 0, step=0.025),
                "beta": _float_slider("beta", beta, 0.0, 0.99, 0.01, fmt=".2f"),
                "convention": _dropdown("convention", options, convention)}
    controls["convention"].layout.width = "420px"
    return Explorer("momentum", "Momentum: lr, beta and convention, on the lr x beta map (40 steps)",
                    controls, compute_momentum, _draw_momentum,
                    _Canvas((3.5, 3.3, 3.9), panel_margins=[{}, {}, {"left": 0.19, "right": 0.9}]), fixed={"steps": 40})


# ============================================================================= 04 Adam

@functools.lru_cache(maxsize=32)
def _adam_trace(lr, beta1, beta2, eps, steps):
    with np.errstate(all="ignore"):
        return run(Adam(lr, betas=(beta1, beta2), eps=eps), steps, record_states=True)


@_quiet
def compute_adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, at_step=1, steps=100):
    """Adam on the course surface; m_hat, v_hat and the applied step at step `at_step`.

        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t),
        step  = w_{t-1} - w_t = lr * m_hat / (sqrt(v_hat) + eps)   (per coordinate)
    """
    lr = _pos("lr", lr, hint="1e-3 is Adam's default; the course uses 0.01")
    beta1 = float(check_unit_interval("beta1", _real("beta1", beta1)))
    beta2 = float(check_unit_interval("beta2", _real("beta2", beta2)))
    eps = _pos("eps", eps, hint="1e-8 is the usual value")
    steps = check_int("steps", steps, 1)
    t = check_int("at_step", at_step, 1)
    if t > steps:
        raise ValueError(f"at_step must lie in 1..steps ({steps}); got {t}")
    opt = Adam(lr, betas=(beta1, beta2), eps=eps)
    trace = _adam_trace(lr, beta1, beta2, eps, steps)
    usable = _steps_taken(trace, steps) - (1 if trace.diverged else 0)
    if t <= usable:
        m_hat, v_hat = opt.moments_hat(trace.states[t - 1])
        step = trace.params[t - 1] - trace.params[t]
        grad = trace.grads[t - 1]
        at = (f"step {t}: gradient {_vec(grad)}\n  m_hat {_vec(m_hat)}  v_hat {_vec(v_hat)}\n"
              f"  step per coordinate {_vec(step)}")
    else:
        m_hat = v_hat = step = grad = np.full(2, np.nan)
        at = f"step {t}: no state (the run diverged at step {trace.diverged_at})"
    steps_taken = np.abs(np.diff(trace.params, axis=0))
    problem = f"diverged at step {trace.diverged_at}" if trace.diverged else None
    if not trace.diverged and trace.final_loss > START_LOSS:
        problem = "unstable: the loss grew above its start value"
    return {
        "lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "steps": steps, "at_step": t,
        "params": trace.params, "losses": trace.losses, "step_sizes": steps_taken,
        "grad": np.asarray(grad), "m_hat": np.asarray(m_hat), "v_hat": np.asarray(v_hat),
        "step": np.asarray(step),
        "final_loss": float(trace.final_loss) if not trace.diverged else float("nan"),
        "diverged_at": trace.diverged_at, "problem": problem,
        "readout": f"{at}\n{_outcome(trace, steps)}" + (f" ({problem})" if problem and not trace.diverged else ""),
    }


def _draw_adam(cv, r, params):
    ax_p, ax_s, ax_l = cv.axes
    if not hasattr(cv, "adam"):
        cv.path_axes(ax_p, "Adam path on the loss contours")
        for ax, title, ylabel in ((ax_s, "Size of the step per coordinate", "|w_t - w_(t-1)| (log scale)"),
                                  (ax_l, "Loss per step", "loss L(w) (log scale)")):
            _plain_log(ax)
            _dress(ax, "step t", ylabel, title)
        path = _line(cv, ax_p, "-", color=COLORS[0], linewidth=1.2, label="path")
        here = _line(cv, ax_p, "o", color="crimson", markersize=7, label="w at the chosen step")
        sa = _line(cv, ax_s, "-", color=COLORS[1], linewidth=3.0, alpha=0.6, label="a (curvature 100)")
        sb = _line(cv, ax_s, "--", color=COLORS[2], linewidth=1.4, label="b (curvature 1)")
        loss = _line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5)
        cur_s = cv.dyn(ax_s.axvline(1, color="crimson", linewidth=1, linestyle="--"))
        cur_l = cv.dyn(ax_l.axvline(1, color="crimson", linewidth=1, linestyle="--"))
        cv.legend(ax_p, [path, here], loc="lower left")
        cv.legend(ax_s, [sa, sb], loc="lower left")
        cv.adam = (path, here, sa, sb, loss, cur_s, cur_l)
    path, here, sa, sb, loss, cur_s, cur_l = cv.adam
    _set_path(path, r["params"])
    t = r["at_step"]
    w = r["params"][t]
    here.set_data([w[0]], [w[1]]) if np.all(np.isfinite(w)) else here.set_data([], [])
    x = np.arange(1, r["steps"] + 1)
    _set_curve(sa, _positive_or_nan(r["step_sizes"][:, 0]), x)
    _set_curve(sb, _positive_or_nan(r["step_sizes"][:, 1]), x)
    _set_curve(loss, _positive_or_nan(r["losses"]))
    for ax in (ax_s, ax_l):
        ax.set_xlim(0, r["steps"])
    cur_s.set_xdata([t, t])
    cur_l.set_xdata([t, t])
    ax_s.set_ylim(*_log_limits(r["step_sizes"]))
    ax_l.set_ylim(*_log_limits(r["losses"], top_at_least=100))
    note = r["problem"] or ""
    if _leaves_window(r["params"]):
        note = (note + "; " if note else "") + "the path leaves the plotted window"
    cv.notice.set_text(note)


def adam_explorer(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, at_step=1) -> Explorer:
    """Lesson 04: lr, beta1, beta2, eps and a step slider showing m_hat, v_hat and the step."""
    controls = {"lr": _log_slider("lr", lr, -4, 1, step=0.025),
                "beta1": _float_slider("beta1", beta1, 0.0, 0.999, 0.001),
                "beta2": _float_slider("beta2", beta2, 0.5, 0.9999, 0.0001, fmt=".4f"),
                "eps": _log_slider("eps", eps, -12, 2, step=0.25, fmt=".0e"),
                "at_step": _int_slider("show step t", at_step, 1, 100)}
    return Explorer("adam", "Adam: moments and the step per coordinate (100 steps)",
                    controls, compute_adam, _draw_adam, _Canvas(), fixed={"steps": 100})


# ============================================================================= 05 AdamW

class _WithUntouchedCoordinate:
    """The course surface plus a third weight with zero curvature (no data gradient ever).

        L(a, b, c) = 0.5 * (100 a^2 + b^2 + 0 * c^2),   grad = [100 a, b, 0]

    (Quadratic refuses a zero curvature, so this tiny stand-in provides loss and grad.)
    """

    c = np.array([100.0, 1.0, 0.0])

    def loss(self, w):
        w = np.asarray(w, dtype=float)
        return 0.5 * np.sum(self.c * w * w, axis=-1)

    def grad(self, w):
        return self.c * np.asarray(w, dtype=float)


UNTOUCHED = _WithUntouchedCoordinate()


@_quiet
def compute_adamw(weight_decay=0.1, lr=0.05, steps=100):
    """AdamW vs Adam + L2 with the same decay on a surface with an untouched third weight.

    AdamW:     w <- w (1 - lr wd), then Adam on the data gradient  -> c shrinks by (1 - lr wd)
    Adam + L2: g <- g + wd w goes through m / sqrt(v)             -> c moves about lr per step
    """
    wd = float(check_nonnegative("weight_decay", _real("weight_decay", weight_decay)))
    lr = _pos("lr", lr)
    steps = check_int("steps", steps, 1)
    start = [1.0, 1.0, 1.0]
    runs = {"AdamW": run(AdamW(lr, weight_decay=wd), steps, surface=UNTOUCHED, start=start),
            "Adam + L2": run(Adam(lr, weight_decay=wd), steps, surface=UNTOUCHED, start=start)}
    parts, problems, out = [], [], {}
    for name, tr in runs.items():
        key = "adamw" if name == "AdamW" else "adam_l2"
        out[key] = {"params": tr.params, "losses": tr.losses, "untouched": tr.params[:, 2],
                    "final_loss": float(tr.final_loss) if not tr.diverged else float("nan"),
                    "diverged_at": tr.diverged_at}
        if tr.diverged:
            problems.append(f"{name} diverged at step {tr.diverged_at}")
            parts.append(f"{name}: diverged at step {tr.diverged_at}")
        else:
            parts.append(f"{name}: untouched weight {_num(tr.params[-1, 2])}, loss {_num(tr.final_loss)}")
    readout = (f"weight_decay {_num(wd)}, lr {_num(lr)}, after {steps} steps (untouched weight starts at 1)\n"
               + "\n".join(parts))
    if not runs["AdamW"].diverged:
        readout += f"\nAdamW's factor per step (1 - lr * weight_decay) = {_num(1 - lr * wd)}"
    return {"weight_decay": wd, "lr": lr, "steps": steps, **out,
            "problem": "; ".join(problems) or None, "readout": readout}


def _draw_adamw(cv, r, params):
    ax_p, ax_u, ax_l = cv.axes
    if not hasattr(cv, "adamw"):
        cv.path_axes(ax_p, "Paths in (a, b)")
        ax_u.set_xlabel("step", fontsize=9)
        ax_u.set_ylabel("untouched weight c", fontsize=9)
        ax_u.set_title("The weight with no data gradient", fontsize=10)
        ax_u.axhline(0, color="0.5", linewidth=0.8)
        ax_u.grid(True, alpha=0.3)
        _plain_log(ax_l)
        _dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
        lines = {}
        for key, label, color in (("adamw", "AdamW (decoupled)", COLORS[0]),
                                  ("adam_l2", "Adam + L2 (coupled)", COLORS[1])):
            lines[key] = (_line(cv, ax_p, "-", color=color, linewidth=1.3, label=label),
                          _line(cv, ax_u, "-", color=color, linewidth=1.5, label=label),
                          _line(cv, ax_l, "-", color=color, linewidth=1.5, label=label))
        cv.legend(ax_u, [lines["adamw"][1], lines["adam_l2"][1]], loc="center right")
        cv.legend(ax_p, [lines["adamw"][0], lines["adam_l2"][0]], loc="lower left")
        cv.adamw = lines
    lo, hi = 0.0, 1.0
    for key, (lp, lu, ll) in cv.adamw.items():
        d = r[key]
        _set_path(lp, d["params"])
        _set_curve(lu, d["untouched"])
        _set_curve(ll, _positive_or_nan(d["losses"]))
        u = d["untouched"][np.isfinite(d["untouched"])]
        if u.size:
            lo, hi = min(lo, float(u.min())), max(hi, float(u.max()))
    pad = 0.05 * (hi - lo)
    ax_u.set_ylim(_round_down(lo - pad), _round_up(hi + pad))
    for ax in (ax_u, ax_l):
        ax.set_xlim(0, r["steps"])
    ax_l.set_ylim(*_log_limits(r["adamw"]["losses"], r["adam_l2"]["losses"], top_at_least=100))
    cv.notice.set_text(r["problem"] or "")


def _round_down(x, q=0.25):
    return math.floor(x / q) * q


def _round_up(x, q=0.25):
    return math.ceil(x / q) * q


def adamw_explorer(weight_decay=0.1, lr=0.05) -> Explorer:
    """Lesson 05: decay strength; AdamW vs Adam + L2 paths and the untouched weight."""
    controls = {"weight_decay": _log_slider("weight_decay", weight_decay, -4, 1, step=0.05),
                "lr": _log_slider("lr", lr, -4, 0, step=0.025)}
    return Explorer("adamw", "AdamW vs Adam + L2: the same decay strength, decoupled or not (100 steps)",
                    controls, compute_adamw, _draw_adamw, _Canvas(), fixed={"steps": 100})


# ============================================================================= 06 schedules

@functools.lru_cache(maxsize=32)
def _long_plain_run(optimizer, lr, steps):
    with np.errstate(all="ignore"):
        return run(_schedule_optimizer(optimizer, lr), steps)


def _plain_run(optimizer, lr, steps):
    """A constant-lr run without clipping (shared by the schedule and clipping explorers).

    Computed once for at least 300 steps and cut to `steps`: a constant-lr run's first n
    steps do not depend on how long it goes on, so dragging a steps slider costs nothing.
    """
    full = _long_plain_run(optimizer, lr, max(steps, 300))
    div = full.diverged_at if full.diverged_at is not None and full.diverged_at <= steps else None
    return Trace(params=full.params[:steps + 1], losses=full.losses[:steps + 1], grads=full.grads[:steps],
                 lrs=full.lrs[:steps], grad_norms=full.grad_norms[:steps], clipped=full.clipped[:steps],
                 skipped=full.skipped[:steps], scales=full.scales[:steps], diverged_at=div)


def _schedule_optimizer(optimizer, lr):
    if optimizer == "sgd":
        return SGD(lr)
    if optimizer == "adamw":
        return AdamW(lr, weight_decay=0.01)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw'; got {optimizer!r}")


@_quiet
def compute_schedule(warmup_steps=10, peak=0.08, final=0.008, total_steps=80, optimizer="adamw"):
    """Warmup-cosine schedule (linear warmup to peak, cosine down to final) vs a constant peak lr.

        k <  W: lr = peak (k + 1) / W;   k >= W: lr = final + (peak - final)(1 + cos(pi p)) / 2
    """
    peak = _pos("peak", peak)
    final = float(check_nonnegative("final", _real("final", final)))
    total = check_int("total_steps", total_steps, 3)
    warmup = check_int("warmup_steps", warmup_steps, 0)
    sched = warmup_cosine(peak, final, warmup, total)
    opt = _schedule_optimizer(optimizer, peak)
    scheduled = run(opt, total, schedule=sched)
    constant = _plain_run(optimizer, peak, total)
    name = "SGD" if optimizer == "sgd" else "AdamW (weight_decay 0.01)"
    readout = (f"{name}, {total} steps: warmup {warmup}, peak {_num(peak)}, final {_num(final)}\n"
               f"warmup-cosine: {_outcome(scheduled, total)}\n"
               f"constant lr {_num(peak)}: {_outcome(constant, total)}")
    problems = [f"{lab} diverged at step {t.diverged_at}"
                for lab, t in (("scheduled run", scheduled), ("constant run", constant)) if t.diverged]
    return {
        "warmup_steps": warmup, "peak": peak, "final": final, "total_steps": total, "optimizer": optimizer,
        "lrs": sched.values(total),
        "scheduled": _summary(scheduled),
        "constant": _summary(constant),
        "problem": "; ".join(problems) or None, "readout": readout,
    }


def _draw_schedule(cv, r, params):
    ax_s, ax_l, ax_p = cv.axes
    if not hasattr(cv, "sched"):
        _dress(ax_s, "step k", "learning rate", "The schedule")
        _plain_log(ax_l)
        _dress(ax_l, "step", "loss L(w) (log scale)", "Its effect on the loss")
        cv.path_axes(ax_p, "Paths on the loss contours")
        s1 = _line(cv, ax_s, "-", color=COLORS[0], linewidth=1.6, label="warmup-cosine")
        s2 = _line(cv, ax_s, "--", color=COLORS[1], linewidth=1.3, label="constant at peak")
        l1 = _line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5, label="warmup-cosine")
        l2 = _line(cv, ax_l, "--", color=COLORS[1], linewidth=1.3, label="constant at peak")
        p1 = _line(cv, ax_p, "-", color=COLORS[0], linewidth=1.2, label="warmup-cosine")
        p2 = _line(cv, ax_p, "--", color=COLORS[1], linewidth=1.0, label="constant at peak")
        cv.legend(ax_s, [s1, s2], loc="lower center")
        cv.legend(ax_l, [l1, l2], loc="lower left")
        cv.sched = (s1, s2, l1, l2, p1, p2)
    s1, s2, l1, l2, p1, p2 = cv.sched
    total = r["total_steps"]
    _set_curve(s1, r["lrs"])
    _set_curve(s2, np.full(total, r["peak"]))
    ax_s.set_xlim(0, _step_limit(total))
    top = r["peak"]
    ax_s.set_ylim(0, _nice_top(top * 1.15))
    _set_curve(l1, _positive_or_nan(r["scheduled"]["losses"]))
    _set_curve(l2, _positive_or_nan(r["constant"]["losses"]))
    ax_l.set_xlim(0, _step_limit(total))
    ax_l.set_ylim(*_log_limits(r["scheduled"]["losses"], r["constant"]["losses"], top_at_least=100))
    _set_path(p1, r["scheduled"]["params"])
    _set_path(p2, r["constant"]["params"])
    cv.notice.set_text(r["problem"] or "")


def _step_limit(n: int) -> int:
    """Right end of a step axis, rounded up (10s, then 25s, then 50s) so that dragging a
    steps slider rescales the axis only now and then."""
    for limit, q in ((50, 10), (200, 25)):
        if n <= limit:
            return max(q, q * math.ceil(n / q))
    return 50 * math.ceil(n / 50)


def _nice_top(x):
    """Round up to 1, 2 or 5 times a power of ten (keeps the axis stable while sliding)."""
    e = 10.0 ** math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if x <= m * e:
            return m * e
    return 10 * e


def schedule_explorer(warmup_steps=10, peak=0.08, final_fraction=0.1, total_steps=80,
                      optimizer="adamw") -> Explorer:
    """Lesson 06: warmup, peak, final (as a fraction of peak) and total steps."""
    controls = {"warmup_steps": _int_slider("warmup steps", warmup_steps, 0, total_steps - 2),
                "peak": _log_slider("peak lr", peak, -4, 1, step=0.025),
                "final_fraction": _float_slider("final / peak", final_fraction, 0.0, 1.0, 0.01, fmt=".2f"),
                "total_steps": _int_slider("total steps", total_steps, 10, 300),
                "optimizer": _dropdown("optimizer", [("AdamW (wd 0.01)", "adamw"), ("SGD", "sgd")], optimizer)}

    def keep_warmup_valid(change):
        controls["warmup_steps"].max = max(change["new"] - 2, 0)

    controls["total_steps"].observe(keep_warmup_valid, names="value")  # registered before the redraw

    def compute(warmup_steps, peak, final_fraction, total_steps, optimizer):
        return compute_schedule(warmup_steps=min(warmup_steps, total_steps - 2), peak=peak,
                                final=final_fraction * peak, total_steps=total_steps, optimizer=optimizer)

    return Explorer("schedule", "Warmup + cosine schedule and its effect on the loss",
                    controls, compute, _draw_schedule, _Canvas())


# ============================================================================= 07 clipping

@_quiet
def compute_clipping(max_norm=20.0, lr=0.018, optimizer="sgd", steps=60):
    """Global-norm clipping before each step: g <- g * min(1, max_norm / (||g|| + 1e-6)).

    Reports the fraction of steps that clipped, the pre-clip norms and the path with and
    without clipping.
    """
    max_norm = _pos("max_norm", max_norm, hint="the threshold is a gradient length, e.g. 20")
    lr = _pos("lr", lr)
    steps = check_int("steps", steps, 1)
    opt = _schedule_optimizer(optimizer, lr)
    clipped = run(opt, steps, max_norm=max_norm)
    plain = _plain_run(optimizer, lr, steps)
    taken = _steps_taken(clipped, steps)
    n_clipped = int(np.sum(clipped.clipped))
    fraction = n_clipped / taken if taken else 0.0
    norms = clipped.grad_norms
    max_pre = float(np.nanmax(norms)) if np.any(np.isfinite(norms)) else float("nan")
    name = "SGD" if optimizer == "sgd" else "AdamW (wd 0.01)"
    readout = (f"{name}, lr {_num(lr)}, threshold {_num(max_norm)}: clipped {n_clipped} of {taken} steps "
               f"({fraction:.0%}); largest pre-clip norm {_num(max_pre)}\n"
               f"with clipping: {_outcome(clipped, steps)}; without: {_outcome(plain, steps)}")
    if fraction > 0.9 and taken >= 5:
        readout += "\nclipping fires on nearly every step: a symptom (lr or threshold), not a fix"
    problems = [f"{lab} diverged at step {t.diverged_at}"
                for lab, t in (("clipped run", clipped), ("unclipped run", plain)) if t.diverged]
    return {
        "max_norm": max_norm, "lr": lr, "optimizer": optimizer, "steps": steps,
        "clipped_steps": n_clipped, "steps_taken": taken, "clipped_fraction": fraction,
        "grad_norms": norms, "clipped": clipped.clipped, "max_pre_clip_norm": max_pre,
        "params": clipped.params, "losses": clipped.losses,
        "final_loss": float(clipped.final_loss) if not clipped.diverged else float("nan"),
        "diverged_at": clipped.diverged_at,
        "unclipped": _summary(plain),
        "problem": "; ".join(problems) or None, "readout": readout,
    }


def _draw_clipping(cv, r, params):
    ax_n, ax_p, ax_l = cv.axes
    if not hasattr(cv, "clip"):
        _plain_log(ax_n)
        _dress(ax_n, "step", "pre-clip gradient norm (log)", "Pre-clip norms vs threshold")
        cv.path_axes(ax_p, "Paths on the loss contours")
        _plain_log(ax_l)
        _dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
        norm = _line(cv, ax_n, "-", color=COLORS[0], linewidth=1.3, label="pre-clip norm")
        hit = _line(cv, ax_n, "o", color="crimson", markersize=3.5, label="clipped step")
        thr = cv.dyn(ax_n.axhline(1, color="k", linestyle="--", linewidth=1.2, label="threshold"))
        p1 = _line(cv, ax_p, "-o", color=COLORS[0], markersize=2, linewidth=1.2, label="with clipping")
        p2 = _line(cv, ax_p, "--", color=COLORS[1], linewidth=1.0, label="without clipping")
        l1 = _line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5, label="with clipping")
        l2 = _line(cv, ax_l, "--", color=COLORS[1], linewidth=1.2, label="without clipping")
        cv.legend(ax_n, [norm, hit, thr], loc="lower left")
        cv.legend(ax_p, [p1, p2], loc="lower left")
        cv.legend(ax_l, [l1, l2], loc="lower left")
        cv.clip = (norm, hit, thr, p1, p2, l1, l2)
    norm, hit, thr, p1, p2, l1, l2 = cv.clip
    steps = r["steps"]
    k = np.arange(steps)
    _set_curve(norm, _positive_or_nan(r["grad_norms"]))
    hit.set_data(k[r["clipped"]], r["grad_norms"][r["clipped"]])
    thr.set_ydata([r["max_norm"], r["max_norm"]])
    ax_n.set_xlim(0, steps)
    ax_n.set_ylim(*_log_limits(r["grad_norms"], [r["max_norm"]]))
    _set_path(p1, r["params"])
    _set_path(p2, r["unclipped"]["params"])
    _set_curve(l1, _positive_or_nan(r["losses"]))
    _set_curve(l2, _positive_or_nan(r["unclipped"]["losses"]))
    ax_l.set_xlim(0, steps)
    ax_l.set_ylim(*_log_limits(r["losses"], r["unclipped"]["losses"], top_at_least=100))
    cv.notice.set_text(r["problem"] or "")


def clipping_explorer(max_norm=20.0, lr=0.018, optimizer="sgd") -> Explorer:
    """Lesson 07: the clipping threshold (and lr, optimizer); clipped fraction, norms, path."""
    controls = {"max_norm": _log_slider("threshold", max_norm, -3, 3, step=0.05),
                "lr": _log_slider("lr", lr, -4, 0, step=0.025),
                "optimizer": _dropdown("optimizer", [("SGD", "sgd"), ("AdamW (wd 0.01)", "adamw")], optimizer)}
    return Explorer("clipping", "Global-norm clipping: threshold vs pre-clip norms (60 steps)",
                    controls, compute_clipping, _draw_clipping, _Canvas(), fixed={"steps": 60})


# ============================================================================= 08 loss scaling

LOSS_FACTOR = 1e-8
"""The loss-scaling explorer trains on the course surface times 1e-8: gradients of
1e-6 * a and 1e-8 * b, as small as a real network's, so fp16 underflow shows up."""
TINY = Quadratic([100.0 * LOSS_FACTOR, 1.0 * LOSS_FACTOR])


@functools.lru_cache(maxsize=8)
def _float64_reference(lr, steps):
    return run(SGD(lr / LOSS_FACTOR), steps, surface=TINY)


@_quiet
def compute_loss_scaling(log2_scale=16, growth_interval=50, steps=200, lr=0.018):
    """SGD with fp16 gradients and a dynamic loss scaler on the course surface times 1e-8.

    Each step: g16 = fp16(scale * g); an inf/nan skips the step and halves the scale; after
    growth_interval clean steps the scale doubles. SGD uses lr / 1e-8, so the float64 run
    follows exactly the course path at `lr`; losses are reported in course units.
    Underflow: a coordinate whose true gradient is non-zero but arrives as exactly 0.
    """
    log2_scale = _real("log2_scale", log2_scale)
    if not -60 <= log2_scale <= 127:
        raise ValueError(f"log2_scale must lie in [-60, 127] (the scale is a float32, as in torch: "
                         f"2^127 is the largest power of two it holds); got {log2_scale!r}")
    gi = check_int("growth_interval", growth_interval, 1)
    steps = check_int("steps", steps, 1)
    lr = _pos("lr", lr)
    scaler = DynamicLossScaler(init_scale=2.0 ** log2_scale, growth_interval=gi)
    opt = SGD(lr / LOSS_FACTOR)
    mixed = run(opt, steps, surface=TINY, scaler=scaler)
    exact = _float64_reference(lr, steps)
    taken = _steps_taken(mixed, steps)
    true_g = TINY.grad(mixed.params[:-1])
    valid = np.isfinite(mixed.params[:-1]).all(axis=-1) & ~mixed.skipped
    underflow = valid[:, None] & (true_g != 0) & (mixed.grads == 0)
    stored = np.abs(true_g * mixed.scales[:, None])
    subnormal = valid[:, None] & (mixed.grads != 0) & (stored < FP16_SMALLEST_NORMAL)
    skipped = int(np.sum(mixed.skipped))
    losses = COURSE.loss(mixed.params)
    exact_losses = COURSE.loss(exact.params)
    scales = mixed.scales
    last_scale = float(scales[taken - 1]) if taken else float(2.0 ** log2_scale)
    final = float(losses[-1])
    readout = (f"initial scale 2^{_num(log2_scale)}, growth every {gi} clean steps, {steps} steps\n"
               f"underflowed gradient values: a {int(underflow[:, 0].sum())}, b {int(underflow[:, 1].sum())}; "
               f"subnormal (digits lost): {int(subnormal.sum())}; skipped steps (inf): {skipped}\n"
               f"scale at the last step 2^{_num(math.log2(last_scale), 3)}; "
               f"final loss {_num(final)} (float64 gradients: {_num(float(exact_losses[-1]))})")
    problem = None
    if mixed.diverged:
        problem = f"diverged at step {mixed.diverged_at}"
    elif skipped == taken:
        problem = "every step was skipped: the scale never got small enough"
    elif not final <= 1.1 * float(exact_losses[-1]):
        problem = "fp16 gradients cost accuracy: the final loss is more than 10% above float64's"
    return {
        "log2_scale": log2_scale, "growth_interval": gi, "steps": steps, "lr": lr,
        "scales": scales, "skipped": mixed.skipped, "skipped_steps": skipped,
        "underflow": underflow, "underflow_counts": underflow.sum(axis=0).tolist(),
        "subnormal_count": int(subnormal.sum()),
        "params": mixed.params, "losses": losses, "reference_losses": exact_losses,
        "final_loss": final, "reference_final_loss": float(exact_losses[-1]),
        "diverged_at": mixed.diverged_at, "problem": problem, "readout": readout,
    }


def _draw_loss_scaling(cv, r, params):
    ax_s, ax_u, ax_l = cv.axes
    if not hasattr(cv, "ls"):
        _dress(ax_s, "step", "log2(loss scale)", "Loss scale over time")
        _dress(ax_u, "step", "underflowed values so far", "Gradients lost to fp16 underflow")
        _plain_log(ax_l)
        _dress(ax_l, "step", "course loss (log scale)", "Loss per step")
        scale = _line(cv, ax_s, "-", color=COLORS[0], linewidth=1.5, label="scale used")
        skip = _line(cv, ax_s, "x", color="crimson", markersize=6, markeredgewidth=1.5, label="skipped step (inf)")
        ua = _line(cv, ax_u, "-", color=COLORS[1], linewidth=1.5, label="a (gradient 1e-6 a)")
        ub = _line(cv, ax_u, "-", color=COLORS[2], linewidth=1.5, label="b (gradient 1e-8 b)")
        l1 = _line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5, label="fp16 + dynamic scaler")
        l2 = _line(cv, ax_l, "--", color="0.3", linewidth=1.2, label="float64 gradients")
        cv.legend(ax_s, [scale, skip], loc="lower right")
        cv.legend(ax_u, [ua, ub], loc="upper left")
        cv.legend(ax_l, [l1, l2], loc="lower left")
        cv.ls = (scale, skip, ua, ub, l1, l2)
    scale, skip, ua, ub, l1, l2 = cv.ls
    steps = r["steps"]
    k = np.arange(steps)
    with np.errstate(all="ignore"):
        ls = np.log2(r["scales"])
    _set_curve(scale, ls)
    skip.set_data(k[r["skipped"]], ls[r["skipped"]])
    fin = ls[np.isfinite(ls)]
    lo = min(-4, 16 * math.floor((fin.min() - 2) / 16)) if fin.size else -4
    hi = max(52, 16 * math.ceil((fin.max() + 2) / 16)) if fin.size else 52
    ax_s.set_ylim(lo, hi)
    cum = np.cumsum(r["underflow"], axis=0)
    _set_curve(ua, cum[:, 0])
    _set_curve(ub, cum[:, 1])
    ax_u.set_ylim(-0.02 * steps, 1.02 * steps)
    _set_curve(l1, _positive_or_nan(r["losses"]))
    _set_curve(l2, _positive_or_nan(r["reference_losses"]))
    ax_l.set_ylim(*_log_limits(r["losses"], r["reference_losses"], top_at_least=100))
    for ax in cv.axes:
        ax.set_xlim(0, steps)
    cv.notice.set_text(r["problem"] or "")


def loss_scaling_explorer(log2_scale=16, growth_interval=50) -> Explorer:
    """Lesson 08: log2 of the initial loss scale and the growth interval."""
    controls = {"log2_scale": _int_slider("log2 init scale", log2_scale, 0, 40),
                "growth_interval": _int_slider("growth interval", growth_interval, 1, 200)}
    return Explorer("loss_scaling",
                    "Dynamic loss scaling with fp16 gradients (surface x 1e-8, SGD, 200 steps)",
                    controls, compute_loss_scaling, _draw_loss_scaling, _Canvas(), fixed={"steps": 200})


# ============================================================================= 09 race

RACE_STEPS = 80
RACE_WINDOW = 10
RACE_DEFAULTS = {
    "sgd_lr": 0.0185,
    "momentum_lr": 0.0316,
    "momentum_beta": 0.67,
    "adam_lr": 0.0369,
    "adamw_lr": 0.0369,
    "adamw_weight_decay": 0.01,
}
"""Each racer's best setting on a grid sweep (tune_race() re-derives these): the lowest
"worst loss over the last 10 of 80 steps" (one lucky final step does not count). lr on
3-significant-digit values of a log grid 1e-4..1 (121 points); momentum's beta on 0..0.99
in steps of 0.01; Adam and AdamW keep betas (0.9, 0.999) and eps 1e-8; AdamW's
weight_decay stays at 0.01 (tuning it would reward decay toward 0, which helps here only
because the optimum happens to be at 0)."""

RACERS = {
    "SGD": lambda p: SGD(p["sgd_lr"]),
    "momentum": lambda p: SGD(p["momentum_lr"], momentum=p["momentum_beta"]),
    "Adam": lambda p: Adam(p["adam_lr"]),
    "AdamW": lambda p: AdamW(p["adamw_lr"], weight_decay=p["adamw_weight_decay"]),
}
RACER_LABELS = {"SGD": "SGD", "momentum": "momentum (heavy-ball)", "Adam": "Adam", "AdamW": "AdamW"}


def _race_lr_grid():
    return np.unique([float(f"{v:.3g}") for v in np.geomspace(1e-4, 1.0, 121)])


def tune_race(steps=RACE_STEPS) -> dict:
    """Re-derive RACE_DEFAULTS: per racer, the grid setting with the lowest final loss.

    Vectorised: each racer's whole grid is one batch of runs.
    """
    steps = check_int("steps", steps, 1)
    lrs = _race_lr_grid()
    betas = np.round(np.arange(0, 1.0, 0.01), 2)

    def best(opt, grid):
        with np.errstate(all="ignore"):
            tr = run(opt, steps)
        worst_late = np.max(tr.losses[-min(RACE_WINDOW, steps):], axis=0)   # nan if diverged
        score = np.where(tr.diverged | ~np.isfinite(worst_late), np.inf, worst_late)
        return grid[int(np.argmin(score))]

    out = {"sgd_lr": float(best(SGD(lrs), lrs))}
    L, B = np.meshgrid(lrs, betas)
    i = best(SGD(L.ravel(), momentum=B.ravel()), np.arange(L.size))
    out["momentum_lr"], out["momentum_beta"] = float(L.ravel()[i]), float(B.ravel()[i])
    out["adam_lr"] = float(best(Adam(lrs), lrs))
    out["adamw_lr"] = float(best(AdamW(lrs, weight_decay=np.full(lrs.size, 0.01)), lrs))
    out["adamw_weight_decay"] = 0.01
    return out


@functools.lru_cache(maxsize=64)
def _race_run(name, values, steps):
    with np.errstate(all="ignore"):
        return run(RACERS[name](dict(values)), steps)


@_quiet
def compute_race(sgd_lr=RACE_DEFAULTS["sgd_lr"], momentum_lr=RACE_DEFAULTS["momentum_lr"],
                 momentum_beta=RACE_DEFAULTS["momentum_beta"], adam_lr=RACE_DEFAULTS["adam_lr"],
                 adamw_lr=RACE_DEFAULTS["adamw_lr"], adamw_weight_decay=RACE_DEFAULTS["adamw_weight_decay"],
                 at_step=None, steps=RACE_STEPS):
    """SGD, heavy-ball momentum, Adam and AdamW racing from [1, 1] for `steps` steps.

    An invalid setting (e.g. lr <= 0 typed into a box) disqualifies only that racer, with
    the reason in the readout. at_step (0..steps, default steps) picks the step whose losses
    are listed; the standings after the last step are always listed.
    """
    steps = check_int("steps", steps, 1)
    k = steps if at_step is None else check_int("at_step", at_step, 0)
    if k > steps:
        raise ValueError(f"at_step must lie in 0..steps ({steps}); got {k}")
    p = {"sgd_lr": sgd_lr, "momentum_lr": momentum_lr, "momentum_beta": momentum_beta,
         "adam_lr": adam_lr, "adamw_lr": adamw_lr, "adamw_weight_decay": adamw_weight_decay}
    racers, lines_now, finals = {}, [], []
    for name in RACERS:
        mine = {key: val for key, val in p.items() if key.startswith(name.lower() + "_")}
        try:
            clean = tuple((key, _real(key, val)) for key, val in mine.items())
            RACERS[name](dict(clean))                      # validates the hyperparameters
            tr = _race_run(name, clean, steps)
        except ValueError as exc:
            racers[name] = {"error": str(exc), "params": None, "losses": None, "diverged_at": None,
                            "final_loss": float("nan")}
            finals.append((math.inf, 2, name, f"{RACER_LABELS[name]}: invalid setting ({exc})"))
            lines_now.append(f"{RACER_LABELS[name]} -")
            continue
        final = float(tr.final_loss) if not tr.diverged else float("nan")
        racers[name] = {"error": None, "params": tr.params, "losses": tr.losses,
                        "diverged_at": tr.diverged_at, "final_loss": final}
        setting = ", ".join(f"{key.split('_', 1)[1]} {_num(v)}" for key, v in clean)
        if tr.diverged:
            finals.append((math.inf, 1, name, f"{RACER_LABELS[name]} ({setting}): diverged at step {tr.diverged_at}"))
        else:
            finals.append((final, 0, name, f"{RACER_LABELS[name]} ({setting}): {_num(final)}"))
        lines_now.append(f"{RACER_LABELS[name]} {_num(tr.losses[k])}")
    finals.sort(key=lambda t: (t[1], t[0]))
    ranking = [f[2] for f in finals]
    readout = (f"loss at step {k}: " + ", ".join(lines_now) + f"\nafter {steps} steps, lowest first:\n"
               + "\n".join(f"  {i}. {f[3]}" for i, f in enumerate(finals, start=1)))
    problems = [f"{RACER_LABELS[n]}: " + ("invalid setting" if racers[n]["error"] else
                                          f"diverged at step {racers[n]['diverged_at']}")
                for n in RACERS if racers[n]["error"] or racers[n]["diverged_at"] is not None]
    return {"steps": steps, "at_step": k, "racers": racers, "ranking": ranking,
            "settings": {key: p[key] for key in p}, "problem": "; ".join(problems) or None,
            "readout": readout}


def _draw_race(cv, r, params):
    ax_p, ax_l = cv.axes
    if not hasattr(cv, "race"):
        cv.path_axes(ax_p, "The race on the loss contours")
        _plain_log(ax_l)
        _dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
        lines = {}
        for i, name in enumerate(RACERS):
            c = COLORS[i]
            lines[name] = (_line(cv, ax_p, "-", color=c, linewidth=1.1, alpha=0.8, label=RACER_LABELS[name]),
                           _line(cv, ax_p, "o", color=c, markersize=8, markeredgecolor="k"),
                           _line(cv, ax_l, "-", color=c, linewidth=1.5, label=RACER_LABELS[name]))
        cursor = cv.dyn(ax_l.axvline(0, color="k", linewidth=1, linestyle=":"))
        cv.legend(ax_p, [v[0] for v in lines.values()], loc="lower left")
        cv.legend(ax_l, [v[2] for v in lines.values()], loc="lower left")
        cv.race = (lines, cursor)
    lines, cursor = cv.race
    k = r["at_step"]
    all_losses = []
    for name, (path, dot, loss) in lines.items():
        d = r["racers"][name]
        if d["params"] is None:
            for ln in (path, dot, loss):
                ln.set_data([], [])
            continue
        upto = d["params"][: k + 1]
        _set_path(path, upto)
        finite = upto[np.all(np.isfinite(upto), axis=-1)]
        dot.set_data(finite[-1:, 0], finite[-1:, 1])
        _set_curve(loss, _positive_or_nan(d["losses"]))
        all_losses.append(d["losses"])
    cursor.set_xdata([k, k])
    ax_l.set_xlim(0, r["steps"])
    ax_l.set_ylim(*_log_limits(*all_losses, top_at_least=100) if all_losses else (1e-3, 1e2))
    cv.notice.set_text(r["problem"] or "")


def race_explorer(steps=RACE_STEPS, **settings) -> Explorer:
    """Lesson 09: SGD, momentum, Adam and AdamW with tuned (editable) settings; a step slider
    and a play button move the racers along their paths."""
    w = widgets
    values = dict(RACE_DEFAULTS)
    values.update(settings)
    boxes = {}
    for key, label in (("sgd_lr", "SGD lr"), ("momentum_lr", "momentum lr"), ("momentum_beta", "momentum beta"),
                       ("adam_lr", "Adam lr"), ("adamw_lr", "AdamW lr"), ("adamw_weight_decay", "AdamW decay")):
        boxes[key] = w.FloatText(value=values[key], description=label, step=None, continuous_update=False,
                                 style={"description_width": "120px"}, layout=w.Layout(width="250px"))
    step = _int_slider("step", steps, 0, steps)
    play = w.Play(value=steps, min=0, max=steps, step=1, interval=120, description="run the race")
    w.jslink((play, "value"), (step, "value"))
    controls = dict(boxes)
    controls["at_step"] = step
    rows = [list(boxes.values())[:3], list(boxes.values())[3:], [play, step]]
    return Explorer("race", f"The optimizer race: tuned settings, {steps} steps (edit a box, press play)",
                    controls, compute_race, _draw_race, _Canvas((4.0, 4.8), height=3.7),
                    fixed={"steps": steps}, layout_rows=rows)


# ============================================================================= registry + timing

EXPLORERS = {
    "02": ("sgd", sgd_explorer, compute_sgd),
    "03": ("momentum", momentum_explorer, compute_momentum),
    "04": ("adam", adam_explorer, compute_adam),
    "05": ("adamw", adamw_explorer, compute_adamw),
    "06": ("schedule", schedule_explorer, compute_schedule),
    "07": ("clipping", clipping_explorer, compute_clipping),
    "08": ("loss_scaling", loss_scaling_explorer, compute_loss_scaling),
    "09": ("race", race_explorer, compute_race),
}
"""lesson -> (name, widget builder, compute function)."""

# the values a learner sweeps through while dragging each explorer's main control
_SWEEPS = {
    "02": ("lr", list(np.geomspace(1e-3, 0.03, 25))),
    "03": ("lr", list(np.geomspace(1e-3, 0.3, 25))),
    "04": ("at_step", list(range(1, 26))),
    "05": ("weight_decay", list(np.geomspace(1e-3, 1.0, 25))),
    "06": ("warmup_steps", list(range(0, 50, 2))),
    "07": ("max_norm", list(np.geomspace(0.1, 200, 25))),
    "08": ("log2_scale", list(range(0, 40, 2)) + list(range(40, 30, -2))),
    "09": ("at_step", list(range(0, 81, 3))),
}


def measure_update_times(lessons=None, warmup: int = 2) -> dict:
    """Time each explorer's update (compute + draw to Agg + PNG) while its main control sweeps.

    Returns {lesson: {"name", "control", "updates", "median_ms", "p95_ms", "median_cpu_ms",
    "p95_cpu_ms", "panel_redraws"}}: wall-clock and process CPU time per update (CPU time is
    the steadier number on a shared machine), and how many panel backgrounds were redrawn.
    """
    out = {}
    for lesson in lessons or EXPLORERS:
        name, build, _ = EXPLORERS[lesson]
        key, sweep = _SWEEPS[lesson]
        ex = build()
        for v in sweep[:warmup]:
            ex.controls[key].value = v
        ex.update_seconds.clear()
        ex.update_cpu_seconds.clear()
        redraws = ex.canvas.full_redraws
        for v in sweep[warmup:]:
            ex.controls[key].value = v
        ms = np.array(ex.update_seconds) * 1000
        cpu = np.array(ex.update_cpu_seconds) * 1000
        out[lesson] = {"name": name, "control": key, "updates": int(ms.size),
                       "median_ms": round(float(np.median(ms)), 1),
                       "p95_ms": round(float(np.percentile(ms, 95)), 1),
                       "median_cpu_ms": round(float(np.median(cpu)), 1),
                       "p95_cpu_ms": round(float(np.percentile(cpu, 95)), 1),
                       "panel_redraws": ex.canvas.full_redraws - redraws}
    return out
