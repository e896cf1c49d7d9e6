"""Labelled plots for the course: contours with paths, loss curves, schedules, heatmaps.

Every function draws on a given Axes (or a new figure), labels the axes, sets a title and
adds a legend when there is more than one line, and returns the Axes.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from .surfaces import COURSE, Quadratic

PATH_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def _axes(ax, figsize=(6, 4.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def contour(surface: Quadratic = COURSE, ax=None, a_lim=(-1.5, 1.5), b_lim=(-1.5, 1.5),
            levels=None, title="Loss contours of L(a, b) = 0.5 (100 a² + b²)", equal=True):
    """Contour lines of the surface over (a, b), optimum marked with a star."""
    ax = _axes(ax)
    A, B, L = surface.grid(a_lim, b_lim, n=241)
    if levels is None:
        levels = np.geomspace(max(L.min(), 1e-3) if L.min() > 0 else 0.01, L.max(), 14)
    ax.contour(A, B, L, levels=levels, colors="0.75", linewidths=0.8)
    ax.plot(0, 0, marker="*", markersize=14, color="gold", markeredgecolor="k", linestyle="none",
            label="optimum [0, 0]", zorder=5)
    ax.set_xlabel("a  (steep direction, curvature %g)" % surface.curvatures[0])
    ax.set_ylabel("b  (shallow direction, curvature %g)" % surface.curvatures[1])
    ax.set_xlim(*a_lim)
    ax.set_ylim(*b_lim)
    if equal:
        ax.set_aspect("equal")
    ax.set_title(title)
    return ax


def paths(trajectories: dict, surface: Quadratic = COURSE, ax=None, a_lim=(-1.5, 1.5),
          b_lim=(-1.5, 1.5), title="Optimizer paths on the loss contours", equal=True,
          start_label="start", legend_loc="best"):
    """Contours plus one path per entry of {label: array of positions (steps+1, 2)}."""
    ax = contour(surface, ax=ax, a_lim=a_lim, b_lim=b_lim, title=title, equal=equal)
    first = None
    for i, (label, pts) in enumerate(trajectories.items()):
        pts = np.asarray(pts, dtype=float)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        color = PATH_COLORS[i % len(PATH_COLORS)]
        ax.plot(pts[:, 0], pts[:, 1], "-o", color=color, markersize=3, linewidth=1.4, label=label)
        if first is None and len(pts):
            first = pts[0]
    if first is not None:
        ax.plot(*first, marker="s", color="k", markersize=7, linestyle="none", label=start_label, zorder=6)
    ax.legend(loc=legend_loc, fontsize=8)
    return ax


def loss_curves(curves: dict, ax=None, title="Loss per step", log=True, xlabel="step",
                ylabel="loss L(w)"):
    """One line per {label: losses}; log y-axis by default (non-positive values are dropped)."""
    ax = _axes(ax)
    for i, (label, losses) in enumerate(curves.items()):
        y = np.asarray(losses, dtype=float)
        ax.plot(np.arange(len(y)), y, color=PATH_COLORS[i % len(PATH_COLORS)], label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (log scale)" if log else ""))
    ax.set_title(title)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def schedule_curves(schedules: dict, steps: int, ax=None, title="Learning-rate schedules",
                    ylabel="learning rate"):
    """One line per {label: Schedule or array of rates} over `steps` steps."""
    ax = _axes(ax)
    for i, (label, sched) in enumerate(schedules.items()):
        y = sched.values(steps) if hasattr(sched, "values") else np.asarray(sched, dtype=float)
        ax.plot(np.arange(len(y)), y, color=PATH_COLORS[i % len(PATH_COLORS)], label=label)
    ax.set_xlabel("step k")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(schedules) > 1:
        ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax


def heatmap(values, x, y, ax=None, xlabel="x", ylabel="y", title="", colorbar_label="value",
            log=True, mark=None, mark_label=None):
    """A (len(y), len(x)) grid of values; nan cells (e.g. diverged runs) drawn grey.

    mark: optional (x, y) point drawn as a white cross (e.g. the best setting).
    """
    ax = _axes(ax)
    vals = np.asarray(values, dtype=float)
    masked = np.ma.masked_invalid(vals)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    pos = masked.compressed()
    norm = LogNorm(vmin=max(pos[pos > 0].min(), 1e-300), vmax=pos.max()) if log and np.any(pos > 0) else None
    mesh = ax.pcolormesh(x, y, masked, cmap=cmap, norm=norm, shading="auto")
    cb = ax.figure.colorbar(mesh, ax=ax)
    cb.set_label(colorbar_label)
    if mark is not None:
        ax.plot(*mark, marker="x", color="white", markersize=10, markeredgewidth=2.5,
                linestyle="none", label=mark_label or "marked setting")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax
