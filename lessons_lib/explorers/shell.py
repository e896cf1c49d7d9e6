"""The explorer widget shell: controls, a readout and a picture that follow the controls.

Every explorer comes in two halves that never mix:

    compute_<name>(**params) -> dict   a plain function: runs the library's `run` loop and
                                       returns numbers, arrays and a short text "readout"
                                       (tests and nbval call it without any widget)
    <name>_explorer() -> Explorer      the ipywidgets front end: controls, the readout and a
                                       Canvas picture (canvas.py) in an Image widget

This module holds the shell (Explorer), the slider factories, and the helpers the compute
halves share: warnings silenced into messages, read-only caches, run summaries and readout
phrases. Extreme settings never raise inside a widget: divergence, inf and nan end up as a
message in the readout and on the figure.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import html
import math
import time
from typing import Callable

import ipywidgets as widgets
import numpy as np

from ..formatting import readout_number
from ..optimizers import SGD, AdamW
from ..runner import Trace
from ..surfaces import COURSE, START
from .canvas import Canvas, leaves_window

__all__ = [
    "Explorer", "COALESCE_SECONDS", "log_slider", "float_slider", "int_slider", "dropdown",
    "quiet", "freeze", "frozen_cache", "clear_caches", "START_LOSS", "final_loss", "run_summary", "steps_taken",
    "outcome", "growth_problem", "notice_text", "sgd_or_adamw",
]

COALESCE_SECONDS = 0.005
"""How long a change from the browser waits before its update runs: long enough for the slider
messages already queued in the kernel to arrive (only the latest value is drawn), far below
what a hand can notice."""


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
        explorer.update_seconds  wall time of every update so far (update_compute_seconds:
                               the compute part of it; update_cpu_seconds: process CPU time)

    Changes made from Python (a cell, a test, ``set``) update at once, so the readout is right
    on the next line. Changes from the browser while the kernel's event loop runs (a dragged
    slider) are coalesced: the first schedules one update COALESCE_SECONDS later, and changes
    that arrive before it runs only move the controls, so the picture shows the latest value
    and never replays the values the hand has left behind.
    """

    def __init__(self, name: str, title: str, controls: dict, compute: Callable,
                 draw: Callable, canvas: Canvas, fixed=None, layout_rows=None):
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
        self.update_compute_seconds: list[float] = []
        self.update_cpu_seconds: list[float] = []
        self._compute = compute
        self._draw = draw
        self._hold = False
        self._pending = None          # the scheduled (coalesced) update, if any
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

    @property
    def update_pending(self) -> bool:
        """True while a coalesced update from a browser change waits to run."""
        return self._pending is not None

    def _on_change(self, change):
        if self._hold:
            return
        if self._from_browser():
            self._schedule_update()
        else:
            self.update()

    def _from_browser(self) -> bool:
        """Whether ipywidgets is applying a state update sent by the browser right now.

        Widget.set_state (ipywidgets 8) fires the change notifications inside
        ``_lock_property``, which holds the values received in ``widget._property_lock`` (so
        they are not echoed back); a change made from Python finds every lock empty. Any
        control counts: a browser change may move another control (the schedule explorer's
        total steps clamps its warmup slider).
        """
        return any(getattr(c, "_property_lock", None) for c in self.controls.values())

    def _schedule_update(self):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:           # no event loop runs: nothing could deliver a later update
            self.update()
            return
        if self._pending is None:      # later changes just wait for the update already scheduled
            self._pending = loop.call_later(COALESCE_SECONDS, self._run_pending)

    def _run_pending(self):
        self._pending = None
        self.update()

    def update(self):
        """One update: compute, redraw the changed artists, publish readout and PNG."""
        if self._pending is not None:  # this update shows the latest values already
            self._pending.cancel()
            self._pending = None
        t0, c0 = time.perf_counter(), time.process_time()
        computed = None
        params = self.params()
        try:
            self.result = self._compute(**params)
            computed = time.perf_counter()
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
        self.update_compute_seconds.append((computed or time.perf_counter()) - t0)
        self.readout_text = text
        color = "crimson" if bad else "inherit"
        self.readout.value = (f'<pre style="margin:2px 0; white-space:pre-wrap; color:{color}; '
                              f'font-size:12.5px">{html.escape(text)}</pre>')
        self.image.value = self.canvas.png()
        self.update_seconds.append(time.perf_counter() - t0)
        self.update_cpu_seconds.append(time.process_time() - c0)

    def __repr__(self):
        return f"{self.explorer_title} (interactive: {', '.join(self.controls)})"


# ----------------------------------------------------------------------------- controls

_SLIDER_LAYOUT = dict(width="370px")
_STYLE = {"description_width": "120px"}


def log_slider(desc, value, lo, hi, step=0.05, fmt=".3g"):
    """A base-10 log slider from about 10**lo to 10**hi whose grid passes through `value`
    (the browser snaps the handle to min + k * step and sends the snapped value back, so an
    unaligned grid would turn lr 0.018 into 0.01778 as soon as the widget is shown)."""
    centre = math.log10(value)
    lo = centre - round((centre - lo) / step) * step
    hi = lo + round((hi - lo) / step) * step
    return widgets.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=step, description=desc,
                                  readout_format=fmt, continuous_update=True, style=_STYLE,
                                  layout=widgets.Layout(**_SLIDER_LAYOUT))


def float_slider(desc, value, lo, hi, step, fmt=".3f"):
    """A linear slider from lo to hi in steps of `step`, updating while it is dragged."""
    return widgets.FloatSlider(value=value, min=lo, max=hi, step=step, description=desc,
                               readout_format=fmt, continuous_update=True, style=_STYLE,
                               layout=widgets.Layout(**_SLIDER_LAYOUT))


def int_slider(desc, value, lo, hi, step=1):
    """An integer slider from lo to hi, updating while it is dragged."""
    return widgets.IntSlider(value=value, min=lo, max=hi, step=step, description=desc,
                             continuous_update=True, style=_STYLE, layout=widgets.Layout(**_SLIDER_LAYOUT))


def dropdown(desc, options, value):
    """A dropdown of (label, value) options."""
    return widgets.Dropdown(options=options, value=value, description=desc, style=_STYLE,
                            layout=widgets.Layout(width="370px"))


# ----------------------------------------------------------------------------- compute helpers

def quiet(fn):
    """Run a compute function with numpy's overflow/invalid warnings silenced (they become
    a 'diverged' message instead of red stderr text in the notebook)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    return wrapper


def freeze(value):
    """Make a cached value read-only: arrays get writeable=False, a Trace's arrays and
    recorded states too (its states list becomes a tuple). Returns the value."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, Trace):
        for f in dataclasses.fields(value):
            freeze(getattr(value, f.name))
        value.states = tuple(value.states)
    elif isinstance(value, tuple):          # NamedTuple states, tuples of arrays
        for item in value:
            freeze(item)
    return value


_CACHES: list = []


def frozen_cache(maxsize: int):
    """functools.lru_cache whose cached results are frozen (see freeze): a caller who writes
    into a result gets numpy's "read-only" error instead of changing every later call."""
    def decorate(fn):
        @functools.lru_cache(maxsize=maxsize)
        @functools.wraps(fn)
        def cached(*args):
            with np.errstate(all="ignore"):
                return freeze(fn(*args))
        _CACHES.append(cached)
        return cached
    return decorate


def clear_caches() -> None:
    """Forget every run the explorers cached: the next call of each computes afresh (the
    benchmark times cold updates this way)."""
    for cached in _CACHES:
        cached.cache_clear()


START_LOSS = float(COURSE.loss(START))


def final_loss(trace) -> float:
    """The last loss of a single run as a float; nan if it diverged."""
    return float("nan") if trace.diverged else float(trace.final_loss)


def run_summary(trace) -> dict:
    """A run for drawing: positions, losses, divergence step, final loss (nan if it diverged)."""
    return {"params": trace.params, "losses": trace.losses, "diverged_at": trace.diverged_at,
            "final_loss": final_loss(trace)}


def steps_taken(trace, steps: int) -> int:
    """How many steps a run took before it stopped (all of them unless it diverged)."""
    return int(trace.diverged_at) if trace.diverged else steps


def outcome(trace, steps: int) -> str:
    """'final loss 0.1169 after 40 steps' or 'diverged at step 7'."""
    if trace.diverged:
        return f"diverged at step {trace.diverged_at}"
    return f"final loss {readout_number(trace.final_loss)} after {steps} steps"


def growth_problem(trace):
    """'diverged at step k', 'unstable: the loss grew above its start value', or None."""
    if trace.diverged:
        return f"diverged at step {trace.diverged_at}"
    if trace.final_loss > START_LOSS:
        return "unstable: the loss grew above its start value"
    return None


def notice_text(problem, params) -> str:
    """The figure's notice: the problem (if any), and a warning when the path leaves the window."""
    note = problem or ""
    if leaves_window(params):
        note = (note + "; " if note else "") + "the path leaves the plotted window"
    return note


def sgd_or_adamw(optimizer: str, lr):
    """The schedule and clipping explorers' two optimizers: 'sgd' (plain) or 'adamw' (weight_decay 0.01)."""
    if optimizer == "sgd":
        return SGD(lr)
    if optimizer == "adamw":
        return AdamW(lr, weight_decay=0.01)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw'; got {optimizer!r}")
