"""What a training run leaves behind: ``History`` (one record per epoch, optional per-step
records, the verdict and the diagnostic notes) and ``Verdict`` (why a run was stopped)."""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._files import atomic_write


@dataclass
class Verdict:
    """Why ``fit`` stopped a run that went wrong, in numbers and in plain words.

    ``kind`` is ``"diverged"`` (the loss rose far above its best) or ``"non_finite"`` (the loss
    or a gradient became NaN or infinite); ``cause`` and ``remedy`` are sentences chosen from
    the evidence, and ``message`` joins everything into one paragraph.

    >>> v = Verdict("diverged", 4, 3.2e19, 4.1e20, 0.1, "the lr is too high", "lower it", "...")
    >>> v.kind, v.epoch
    ('diverged', 4)
    """

    kind: str
    epoch: int
    loss: float
    grad_norm: float
    lr: float
    cause: str
    remedy: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class History:
    """The record of one ``fit``: ``epochs`` (a dict per epoch), ``steps`` (a dict per optimizer
    step when ``step_history=True``), ``verdict``, ``notes``, ``stopped_early`` and
    ``metric_name`` (what the summary, the CSV and the plot call the ``metric``, e.g.
    ``"accuracy"``).

    Each epoch record holds ``epoch, train_loss, val_loss, metric, lr`` (the rate the epoch
    trained with), ``grad_norm`` (global L2 norm of the gradients before clipping, averaged over
    the epoch's steps), ``layer_grad_norms`` (the same per parameter), ``update_ratio``
    (``||delta w|| / ||w||`` per parameter at the epoch's last step) and ``time`` (seconds).

    >>> h = History(epochs=[{"epoch": 1, "train_loss": 2.0, "val_loss": None},
    ...                     {"epoch": 2, "train_loss": 1.0, "val_loss": None}])
    >>> h.best_epoch, History.from_dict(h.to_dict()) == h
    (2, True)
    """

    epochs: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    verdict: Verdict | None = None
    notes: list = field(default_factory=list)
    stopped_early: bool = False
    metric_name: str | None = None

    @property
    def monitor(self) -> str:
        """The loss that ranks epochs: ``val_loss`` when there was validation data."""
        has_val = any(r.get("val_loss") is not None for r in self.epochs)
        return "val_loss" if has_val else "train_loss"

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the lowest finite monitored loss (None before any)."""
        key = self.monitor
        finite = [r for r in self.epochs if _finite(r.get(key))]
        return min(finite, key=lambda r: r[key])["epoch"] if finite else None

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict:
        """Plain lists, dicts and numbers (what checkpoints and ``to_json`` store)."""
        return {
            "epochs": [dict(r) for r in self.epochs],
            "steps": [dict(r) for r in self.steps],
            "verdict": None if self.verdict is None else asdict(self.verdict),
            "notes": list(self.notes),
            "stopped_early": self.stopped_early,
            "metric_name": self.metric_name,
        }

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """The inverse of :meth:`to_dict`."""
        verdict = data.get("verdict")
        return cls(
            epochs=[dict(r) for r in data.get("epochs", [])],
            steps=[dict(r) for r in data.get("steps", [])],
            verdict=None if verdict is None else Verdict(**verdict),
            notes=list(data.get("notes", [])),
            stopped_early=bool(data.get("stopped_early", False)),
            metric_name=data.get("metric_name"),
        )

    def to_json(self, path) -> None:
        """Write :meth:`to_dict` as JSON (non-finite losses as ``NaN``/``Infinity``, which
        Python's ``json`` reads back)."""
        with atomic_write(path, "w", encoding="utf-8") as out:
            json.dump(self.to_dict(), out, indent=1)

    def to_csv(self, path) -> None:
        """Write one row per epoch; nested dicts become columns ``name/key``
        (``layer_grad_norms/0.weight``), the metric's column is headed by its name; empty cells
        are None."""
        rows = [_flatten(r) for r in self.epochs]
        name = self.metric_name
        if name and all(name not in row for row in rows):
            rows = [{name if k == "metric" else k: v for k, v in row.items()} for row in rows]
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with atomic_write(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if v is None else repr(v)) for k, v in row.items()})

    def plot(self, path=None):
        """Draw the losses, learning rate and gradient norms to ``path`` (graphgrad.viz);
        without a path, return the picture as a :class:`Picture` (Jupyter shows it inline)."""
        from ..viz import plot_history  # matplotlib is optional: imported only when drawing

        if path is not None:
            plot_history(self, path)
            return None
        with tempfile.TemporaryDirectory() as folder:
            return Picture(plot_history(self, Path(folder, "history.png")).read_bytes())

    def _repr_html_(self) -> str:
        """The summary, the epochs as a table (the first and last ten of a long run) and the
        plot inline when matplotlib is installed: what Jupyter shows for a History.

        >>> h = History(epochs=[{"epoch": 1, "train_loss": 0.5, "val_loss": None, "lr": 0.1}])
        >>> "<td>0.5</td>" in h._repr_html_()
        True
        """
        columns = [c for c in _HTML_COLUMNS if any(r.get(c) is not None for r in self.epochs)]
        rows = self.epochs if len(self.epochs) <= 20 else [*self.epochs[:10], None,
                                                           *self.epochs[-10:]]
        body = []
        for record in rows:
            cells = ["…"] * len(columns) if record is None else [
                "" if record.get(c) is None else _num(record[c]) for c in columns]
            body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        names = [self.metric_name or c if c == "metric" else c for c in columns]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in names)
        summary = "<br>".join(html.escape(line) for line in self.summary().splitlines())
        parts = [f"<p>{summary}</p>",
                 f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"]
        if self.epochs:
            try:
                png = base64.b64encode(self.plot().data).decode("ascii")
                parts.append(f'<img alt="training history" src="data:image/png;base64,{png}">')
            except ImportError:
                pass  # no matplotlib: the table says it all
        return '<div class="graphgrad-history">' + "".join(parts) + "</div>"

    def summary(self) -> str:
        """A few lines: final losses, the best epoch, the verdict and the notes.

        >>> print(History(epochs=[{"epoch": 1, "train_loss": 0.5, "val_loss": None}]).summary())
        1 epoch; final train loss 0.5
        best epoch 1 (train_loss 0.5)
        """
        if not self.epochs:
            return "no epoch completed"
        last, n = self.epochs[-1], len(self.epochs)
        line = f"{n} epoch{'s' if n > 1 else ''}; final train loss {_num(last['train_loss'])}"
        if last.get("val_loss") is not None:
            line += f", val loss {_num(last['val_loss'])}"
        if last.get("metric") is not None:  # measured on the validation data when there is some
            where = "val " if last.get("val_loss") is not None else "train "
            line += f", {where}{self.metric_name or 'metric'} {_num(last['metric'])}"
        lines = [line + (" (stopped early)" if self.stopped_early else "")]
        best = self.best_epoch
        if best is not None:
            key = self.monitor
            record = next(r for r in self.epochs if r["epoch"] == best)
            lines.append(f"best epoch {best} ({key} {_num(record[key])})")
        if self.verdict is not None:
            lines.append(self.verdict.message)
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


_HTML_COLUMNS = ("epoch", "train_loss", "val_loss", "metric", "lr", "grad_norm")


@dataclass(frozen=True)
class Picture:
    """A PNG picture that shows itself in Jupyter; ``data`` holds the file's bytes."""

    data: bytes

    def _repr_png_(self) -> bytes:
        return self.data


def name_of_metric(metric) -> str | None:
    """What to call ``fit``'s ``metric``: its name (``"accuracy"``), a function's name, or
    ``"metric"`` for a lambda or a callable object.

    >>> def f1(output, target): ...
    >>> name_of_metric("accuracy"), name_of_metric(f1), name_of_metric(lambda o, t: 0.0)
    ('accuracy', 'f1', 'metric')
    """
    if metric is None or isinstance(metric, str):
        return metric
    name = getattr(metric, "__name__", "")
    return name if name.isidentifier() else "metric"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _num(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _flatten(record: dict) -> dict:
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update({f"{key}/{inner}": v for inner, v in value.items()})
        else:
            flat[key] = value
    return flat
