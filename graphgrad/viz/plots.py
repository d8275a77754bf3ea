"""Pictures of training runs: the per-epoch history, a learning-rate range test and a schedule.

Drawing uses matplotlib's object-oriented API only: each picture is a ``Figure`` with its own
``FigureCanvasAgg``. pyplot is never imported, so no window opens, pyplot's global figure
registry is never touched, and separate threads can draw separate pictures.

Values may be None, nan or inf (a diverged run has them): each curve shows its finite values and
leaves gaps elsewhere. A log axis is used only when every value on it is positive, since a log
axis cannot show zero or negative values.

Files are written atomically: the picture goes to a temporary file in the target folder, which
then replaces the target, so a reader never sees half a picture and a failed save leaves an
existing file as it was.
"""

from __future__ import annotations

import errno
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write

DPI = 110
FORMATS = {"": "png", ".png": "png", ".svg": "svg", ".pdf": "pdf"}
INSTALL_HINT = 'plots need matplotlib, the plot extra: pip install "graphgrad[plot]"'
WIDE_RANGE = 10.0  # a learning rate spanning more than this factor gets a log axis
MESSAGE_CHARS = 110  # a line of a verdict message: as much as fits across the figure
MARKER_LIMIT = 60  # up to this many points get markers, so isolated finite points stay visible
COLOURS = {
    "train": "#1f77b4",
    "val": "#ff7f0e",
    "metric": "#2ca02c",
    "lr": "#9467bd",
    "grad_norm": "#8c564b",
    "momentum": "#17becf",
    "bad": "#d62728",
    "note": "#7f7f7f",
}


def plot_history(history: Any, path: str | os.PathLike, title: str | None = None) -> Path:
    """Draw loss, learning rate and gradient norm per epoch, stacked, into ``path``.

    ``history`` is an object with ``to_dict()`` or a dict ``{"epochs": [...]}``, each epoch a
    dict with ``epoch``, ``train_loss`` and optionally ``val_loss``, ``metric``, ``lr`` and
    ``grad_norm``. The loss panel has a log axis (train and validation loss; the metric on its
    own axis at the right, called by the history's ``metric_name``, e.g. "accuracy"); the
    learning rate gets a log axis if it spans more than 10x; the gradient norm gets a log axis.
    If ``history["verdict"]`` is a dict with ``kind``, the run is marked as diverged at its last
    epoch and the verdict's ``message`` is shown under the title. Returns ``path`` as a Path.

    >>> import tempfile
    >>> epochs = [{"epoch": 1, "train_loss": 2.3, "lr": 0.1, "grad_norm": 4.0},
    ...           {"epoch": 2, "train_loss": 0.9, "lr": 0.05, "grad_norm": 1.5}]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_history({"epochs": epochs}, Path(folder, "history.png")).name
    'history.png'
    """
    target, fmt = _target(path)
    return _save(_history_figure(history, title), target, fmt)


def plot_lr_find(
    lrs: Sequence[float],
    losses: Sequence[float],
    suggestion: float | None,
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Draw the loss against the learning rate (log axis) of a learning-rate range test, with a
    vertical line and label at ``suggestion`` (None for no suggestion). Returns ``path``.

    >>> import tempfile
    >>> lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_lr_find(lrs, [2.3, 2.2, 1.4, 1.9, 40.0], 1e-2, Path(folder, "lr.png")).name
    'lr.png'
    """
    target, fmt = _target(path)
    return _save(_lr_find_figure(lrs, losses, suggestion, title), target, fmt)


def plot_schedule(
    rates: Sequence,
    path: str | os.PathLike,
    title: str | None = None,
    momenta: Sequence | None = None,
) -> Path:
    """Draw the learning rate per step, and the momentum per step in a second panel when
    ``momenta`` is given. A step's entry may be a number or a list with one number per parameter
    group; each group gets its own line. Returns ``path``.

    >>> import tempfile
    >>> rates = [0.1 * 0.5 ** (step // 10) for step in range(40)]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_schedule(rates, Path(folder, "schedule.svg")).suffix
    '.svg'
    """
    target, fmt = _target(path)
    return _save(_schedule_figure(rates, title, momenta), target, fmt)


# --- files -------------------------------------------------------------------------------------


def _target(path: str | os.PathLike) -> tuple[Path, str]:
    """The path and file format, checked before any drawing so that a bad path fails fast."""
    target = Path(path)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot write {target}: unknown picture format {target.suffix!r} "
            "(use .png, .svg or .pdf)"
        )
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "cannot write a picture, no such folder", str(folder))
    return target, fmt


def _save(fig, target: Path, fmt: str) -> Path:
    """Render ``fig`` to a temporary file beside ``target``, then move it into place."""
    try:
        with atomic_write(target) as file:
            fig.savefig(file, format=fmt, dpi=DPI)
    finally:
        fig.clear()  # frees the artists now rather than whenever the collector gets to them
    return target


def _new_figure(size: tuple[float, float], height_ratios: list[int]):
    """A Figure with an Agg canvas and one column of panels sharing the x axis."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(
        len(height_ratios), 1, sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": height_ratios},
    )  # fmt: skip
    for ax in axes[:, 0]:
        ax.grid(True, which="major", alpha=0.3)
    return fig, list(axes[:, 0])


# --- values ------------------------------------------------------------------------------------


def _floats(values) -> np.ndarray:
    """A float array in which None, non-numbers and infinities are nan: gaps in a curve."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[i] = number
    return out


def _table(values, what: str) -> np.ndarray:
    """Steps x groups: each step's entry is a number or one number per parameter group."""
    rows = [list(value) if np.ndim(value) > 0 else [value] for value in values]
    if not rows:
        raise ValueError(f"no {what} to plot")
    if len({len(row) for row in rows}) > 1:
        raise ValueError(f"every step needs the same number of {what} (one per parameter group)")
    return np.array([_floats(row) for row in rows])


def _log_fits(values: np.ndarray, span: float = 0.0) -> bool:
    """Whether the finite values are all positive and the largest exceeds ``span`` x the least."""
    finite = values[np.isfinite(values)]
    return finite.size > 0 and finite.min() > 0 and finite.max() > span * finite.min()


def _shorten(text: str) -> str:
    """At most two lines of MESSAGE_CHARS, ending in an ellipsis if anything was cut."""
    return textwrap.fill(text, MESSAGE_CHARS, max_lines=2, placeholder=" \u2026")


def _line_style(count: int) -> dict:
    return {"marker": "o", "markersize": 3} if count <= MARKER_LIMIT else {}


# --- history -----------------------------------------------------------------------------------


def _history_records(history: Any) -> tuple[list[Mapping], Mapping | None, str]:
    """The epochs, the verdict (None unless it is a dict with a ``kind``) and the metric's
    name."""
    data = history.to_dict() if hasattr(history, "to_dict") else history
    if not isinstance(data, Mapping) or "epochs" not in data:
        raise TypeError(
            "plot_history needs an object with to_dict() or a dict with 'epochs', "
            f"not {type(history).__name__}"
        )
    epochs = list(data["epochs"])
    if not epochs:
        raise ValueError("the history has no epochs to plot")
    verdict = data.get("verdict")
    verdict = verdict if isinstance(verdict, Mapping) and "kind" in verdict else None
    return epochs, verdict, data.get("metric_name") or "metric"


def _column(epochs: list[Mapping], key: str) -> np.ndarray:
    return _floats([epoch.get(key) for epoch in epochs])


def _history_figure(history: Any, title: str | None = None):
    """The Figure that :func:`plot_history` saves; tests inspect it directly."""
    epochs, verdict, metric_name = _history_records(history)
    x = _column(epochs, "epoch")
    if not np.isfinite(x).all():  # epochs without numbers are numbered by position
        x = np.arange(1.0, len(epochs) + 1)
    fig, axes = _new_figure((8.0, 8.5), [2, 1, 1])
    loss_ax, lr_ax, grad_ax = axes
    _loss_panel(loss_ax, x, epochs, metric_name)
    _series_panel(lr_ax, x, _column(epochs, "lr"), "learning rate", COLOURS["lr"], WIDE_RANGE)
    _series_panel(grad_ax, x, _column(epochs, "grad_norm"), "gradient norm",
                  COLOURS["grad_norm"], 0.0)  # fmt: skip
    _integer_ticks(grad_ax, "epoch")
    fig.suptitle(title or "Training history", fontweight="bold")
    if verdict is not None:
        _mark_divergence(axes, x[-1], verdict)
    return fig


def _loss_panel(ax, x: np.ndarray, epochs: list[Mapping], metric_name: str) -> None:
    train, val = _column(epochs, "train_loss"), _column(epochs, "val_loss")
    style = _line_style(len(x))
    lines = ax.plot(x, train, color=COLOURS["train"], label="train", **style)
    if np.isfinite(val).any():
        lines += ax.plot(x, val, color=COLOURS["val"], label="validation", **style)
    if _log_fits(np.concatenate([train, val])):
        _log_axis(ax)
    ax.set_ylabel("loss")
    lines += _mark_nonfinite(ax, x, [epoch.get("train_loss") for epoch in epochs])
    metric = _column(epochs, "metric")
    if np.isfinite(metric).any():
        twin = ax.twinx()
        lines += twin.plot(x, metric, color=COLOURS["metric"], ls="--", label=metric_name,
                           **style)
        twin.set_ylabel(metric_name, color=COLOURS["metric"])
        twin.tick_params(axis="y", colors=COLOURS["metric"])
    if not np.isfinite(np.concatenate([train, val])).any():
        _note(ax, "no finite loss values")
    # Under the panels rather than inside: "best" placement cannot see the metric's twin axis,
    # and above them constrained layout lets a figure legend overlap the title.
    ax.figure.legend(
        lines, [line.get_label() for line in lines], loc="outside lower center",
        ncols=len(lines), fontsize=9, frameon=False,
    )  # fmt: skip


def _mark_nonfinite(ax, x: np.ndarray, raw: list) -> list:
    """Red crosses along the top of the panel at epochs whose loss was recorded as nan or inf;
    a gap alone would not say whether the loss was missing or blew up."""
    bad = np.array([value is not None for value in raw]) & ~np.isfinite(_floats(raw))
    if not bad.any():
        return []
    return ax.plot(
        x[bad], np.full(bad.sum(), 0.97), "x", color=COLOURS["bad"], markersize=7,
        transform=ax.get_xaxis_transform(), clip_on=False, label="non-finite loss",
    )  # fmt: skip


def _series_panel(ax, x, values: np.ndarray, label: str, colour: str, span: float) -> None:
    """One quantity per epoch; a log axis if its finite values are positive and span > ``span``x."""
    ax.set_ylabel(label)
    if not np.isfinite(values).any():
        _note(ax, f"no {label} recorded")
        return
    ax.plot(x, values, color=colour, **_line_style(len(x)))
    if _log_fits(values, span):
        _log_axis(ax)


def _mark_divergence(axes: list, last_epoch: float, verdict: Mapping) -> None:
    for ax in axes:
        ax.axvline(last_epoch, color=COLOURS["bad"], ls=":", lw=1.5)
    # Upright in the margin right of the last epoch, where no curve runs.
    axes[0].annotate(
        "diverged", (last_epoch, 0.5), xycoords=axes[0].get_xaxis_transform(), xytext=(3, 0),
        textcoords="offset points", rotation=90, ha="left", va="center", color=COLOURS["bad"],
        fontweight="bold",
    )  # fmt: skip
    message = verdict.get("message")
    summary = f"{verdict['kind']}: {message}" if message else str(verdict["kind"])
    axes[0].set_title(_shorten(summary), color=COLOURS["bad"], fontsize=9, loc="left")


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            color=COLOURS["note"], fontstyle="italic")  # fmt: skip


def _log_axis(ax) -> None:
    """A log y axis whose tick labels read 0.3 and 2 rather than 3x10^-1 and 2x10^0; over many
    decades matplotlib labels only the powers of ten, and its 10^n labels are kept."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        """matplotlib's choice of which ticks to label, written as plain numbers."""

        def __call__(self, value, pos=None):
            return f"{value:g}" if super().__call__(value, pos) else ""

    ax.set_yscale("log")
    low, high = ax.dataLim.intervaly
    if high < 100 * low:
        ax.yaxis.set_major_formatter(PlainLogFormatter())
        ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def _integer_ticks(ax, label: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label)


# --- learning-rate range test ------------------------------------------------------------------


def _lr_find_figure(lrs, losses, suggestion: float | None, title: str | None):
    lrs, losses = _floats(lrs), _floats(losses)
    if len(lrs) != len(losses):
        raise ValueError(f"plot_lr_find: {len(lrs)} learning rates but {len(losses)} losses")
    lrs[lrs <= 0] = np.nan  # a log axis cannot place them
    fig, (ax,) = _new_figure((7.0, 4.5), [1])
    ax.plot(lrs, losses, color=COLOURS["train"], **_line_style(len(lrs)))
    ax.set_xscale("log")
    if _log_fits(losses, WIDE_RANGE):  # the loss often explodes at the end of the range
        _log_axis(ax)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    if not np.isfinite(lrs + losses).any():
        _note(ax, "no finite (learning rate, loss) pairs")
    elif suggestion is not None and _log_fits(_floats([suggestion])):
        _mark_suggestion(ax, float(suggestion), lrs, losses)
    fig.suptitle(title or "Learning-rate range test", fontweight="bold")
    return fig


def _mark_suggestion(ax, suggestion: float, lrs: np.ndarray, losses: np.ndarray) -> None:
    ax.axvline(suggestion, color=COLOURS["bad"], ls="--", lw=1.2)
    ok = np.isfinite(lrs + losses)
    order = np.argsort(lrs[ok])
    at = np.interp(np.log(suggestion), np.log(lrs[ok][order]), losses[ok][order])
    ax.plot([suggestion], [at], "o", color=COLOURS["bad"], markersize=6)
    # The label goes on whichever side of the line has more room, so it stays inside the axes.
    low, high = np.log(ax.get_xlim())
    right_half = (np.log(suggestion) - low) > 0.5 * (high - low)
    ax.text(
        suggestion, 0.97, f" suggested lr {suggestion:.3g} ", transform=ax.get_xaxis_transform(),
        ha="right" if right_half else "left", va="top", color=COLOURS["bad"],
    )  # fmt: skip


# --- schedules ---------------------------------------------------------------------------------


def _schedule_figure(rates, title: str | None, momenta):
    rates = _table(rates, "learning rates")
    panels = [(rates, "learning rate", COLOURS["lr"], WIDE_RANGE)]
    if momenta is not None:
        panels.append((_table(momenta, "momenta"), "momentum", COLOURS["momentum"], math.inf))
    fig, axes = _new_figure((7.0, 4.0 if momenta is None else 5.5), [2, 1][: len(panels)])
    for ax, (table, label, colour, span) in zip(axes, panels):
        _schedule_panel(ax, table, label, colour, span)
    _integer_ticks(axes[-1], "step")
    fig.suptitle(title or "Learning-rate schedule", fontweight="bold")
    return fig


def _schedule_panel(ax, table: np.ndarray, label: str, colour: str, span: float) -> None:
    steps = np.arange(len(table))
    groups = table.shape[1]
    for group in range(groups):
        ax.plot(
            steps, table[:, group], drawstyle="steps-post", label=f"group {group}",
            color=colour if groups == 1 else None, **_line_style(len(steps)),
        )  # fmt: skip
    ax.set_ylabel(label)
    if not np.isfinite(table).any():
        _note(ax, f"no {label} recorded")
    elif _log_fits(table.ravel(), span):
        _log_axis(ax)
    if groups > 1:
        ax.legend(fontsize=9)
