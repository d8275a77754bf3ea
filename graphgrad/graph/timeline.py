"""A picture of a run: when each node ran and on which worker, drawn as a self-contained SVG.

Events are plain dicts, one per node (``Event.as_dict()`` in schedule.py gives them)::

    {"node": 3, "name": "u", "worker": "worker-1", "start": 0.0012, "end": 0.0031,
     "state": "done"}                      # or "failed" or "skipped"; times in seconds

:func:`to_timeline_svg` draws one lane per worker ("main" and "coordinator" first, then the others
by name, numbers in names compared as numbers), one bar per event from its start to its end,
coloured by state, with a tooltip; a time axis in milliseconds from the first start; and a footer
with the wall time and how long each lane was busy. Events that overlap on one worker go on
separate rows of its lane, so that none hides another.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

# (fill, border) per state
STATE_COLOURS = {
    "done": ("#2a9d8f", "#1b6b61"),
    "failed": ("#e05252", "#9b2226"),
    "skipped": ("#cfcfcf", "#8c8c8c"),
}
LANES_FIRST = {"main": 0, "coordinator": 1}  # then every other worker

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FONT_SIZE = 12
BAR_FONT_SIZE = 11
CHAR_WIDTH = 0.62 * FONT_SIZE  # a generous estimate for a proportional font
MAX_LANE_NAME_CHARS = 24
MARGIN = 20
ROW_HEIGHT = 22
BAR_HEIGHT = 16
LANE_PADDING = 4
AXIS_HEIGHT = 26
MIN_PLOT_WIDTH, MAX_PLOT_WIDTH = 720, 2400
PLOT_WIDTH_PER_EVENT = 16  # in the busiest lane, so that dense runs get a wider plot
TICKS_WANTED = 8


@dataclass(frozen=True, slots=True)
class _Run:
    """One event, checked."""

    node: int
    name: str
    worker: str
    start: float
    end: float
    state: str


def to_timeline_svg(events: Iterable[Mapping[str, Any]], title: str | None = None) -> str:
    """An SVG timeline of ``events``: a lane per worker, a bar per event.

    >>> svg = to_timeline_svg([
    ...     {"node": 0, "name": "x", "worker": "main", "start": 0.0, "end": 0.002,
    ...      "state": "done"},
    ...     {"node": 1, "name": "y", "worker": "worker-1", "start": 0.001, "end": 0.004,
    ...      "state": "failed"}], title="one run")
    >>> svg.count('class="bar"'), svg.count('class="lane-label"'), "wall time 4.000 ms" in svg
    (2, 2, True)
    >>> "no events" in to_timeline_svg([])
    True
    """
    runs = [_checked(event) for event in events]
    if not runs:
        return _empty_document(title)
    lanes = _lanes(runs)
    origin = min(run.start for run in runs)
    wall = max(run.end for run in runs) - origin
    busiest = max(sum(len(row) for row in rows) for _, rows in lanes)
    plot_width = min(MAX_PLOT_WIDTH, max(MIN_PLOT_WIDTH, PLOT_WIDTH_PER_EVENT * busiest))
    label_width = max(len(_short(worker)) for worker, _ in lanes) * CHAR_WIDTH + 12
    plot_left = MARGIN + label_width
    # An instant run (all events of zero length) still gets an axis: one millisecond wide.
    scale = plot_width / (wall if wall > 0 else 1e-3)

    top = MARGIN
    header = _header(title, top)
    top += _header_height(title)
    axis = _axis(plot_left, plot_width, top, scale, lanes_height=_lanes_height(lanes))
    top += AXIS_HEIGHT
    body, top = _lane_elements(lanes, plot_left, plot_width, top, origin, scale)
    width = math.ceil(max(plot_left + plot_width + 2 * MARGIN, _title_width(title) + 2 * MARGIN))
    footer_lines = _footer_lines(lanes, wall, len(runs), width - 2 * MARGIN)
    footer = _footer(footer_lines, top + 12)
    height = math.ceil(top + 12 + len(footer_lines) * (FONT_SIZE + 6) + MARGIN)
    return _document(width, height, title, header + axis + body + footer)


# ---------------------------------------------------------------------- events and lanes


def _checked(event: Mapping[str, Any]) -> _Run:
    run = _Run(
        node=event["node"],
        name=str(event["name"]),
        worker=str(event["worker"]),
        start=float(event["start"]),
        end=float(event["end"]),
        state=str(event["state"]),
    )
    if not (math.isfinite(run.start) and math.isfinite(run.end)):
        raise ValueError(f"event of node {run.node} has a non-finite time: {event!r}")
    if run.end < run.start:
        raise ValueError(f"event of node {run.node} ends before it starts: {event!r}")
    if run.state not in STATE_COLOURS:
        known = ", ".join(STATE_COLOURS)
        raise ValueError(f"event of node {run.node} has unknown state {run.state!r} ({known})")
    return run


def _lane_order(worker: str) -> tuple:
    """``main``, ``coordinator``, then by name with numbers as numbers (worker-2 < worker-10)."""
    pieces = re.split(r"(\d+)", worker.lower())
    natural = [int(piece) if index % 2 else piece for index, piece in enumerate(pieces)]
    return (LANES_FIRST.get(worker, len(LANES_FIRST)), natural, worker)


def _lanes(runs: list[_Run]) -> list[tuple[str, list[list[_Run]]]]:
    """Each worker with its events in rows: an event goes on the first row free at its start."""
    by_worker: dict[str, list[_Run]] = {}
    for run in runs:
        by_worker.setdefault(run.worker, []).append(run)
    lanes = []
    for worker in sorted(by_worker, key=_lane_order):
        rows: list[list[_Run]] = []
        for run in sorted(by_worker[worker], key=lambda run: (run.start, run.end)):
            free = next((row for row in rows if row[-1].end <= run.start), None)
            if free is None:
                rows.append([run])
            else:
                free.append(run)
        lanes.append((worker, rows))
    return lanes


def _busy_seconds(rows: list[list[_Run]]) -> float:
    """How long the lane had at least one event running (overlaps counted once)."""
    intervals = sorted((run.start, run.end) for row in rows for run in row)
    busy, current_start, current_end = 0.0, intervals[0][0], intervals[0][1]
    for start, end in intervals[1:]:
        if start > current_end:
            busy += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    return busy + current_end - current_start


def _lane_height(rows: list[list[_Run]]) -> float:
    return len(rows) * ROW_HEIGHT + 2 * LANE_PADDING


def _lanes_height(lanes) -> float:
    return sum(_lane_height(rows) for _, rows in lanes)


# ---------------------------------------------------------------------- text


def _xml(text: str) -> str:
    """``text`` escaped for XML content and double-quoted attributes, minus control characters
    (XML 1.0 cannot carry them)."""
    printable = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]", " ", text)
    return escape(printable, {'"': "&quot;"})


def _short(text: str, limit: int = MAX_LANE_NAME_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.3f} ms"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _title_width(title: str | None) -> float:
    return 0.0 if title is None else len(title) * 0.66 * 16  # bold 16px: a generous estimate


# ---------------------------------------------------------------------- drawing


def _document(width: int, height: int, title: str | None, body: list[str]) -> str:
    return (
        "\n".join(
            [
                '<?xml version="1.0" encoding="UTF-8"?>',
                f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
                f'height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}" '
                f'font-size="{FONT_SIZE}">',
                f"<title>{_xml(title) if title is not None else 'graphgrad timeline'}</title>",
                f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
                *body,
                "</svg>",
            ]
        )
        + "\n"
    )


def _empty_document(title: str | None) -> str:
    top = MARGIN + _header_height(title)
    width = math.ceil(max(MIN_PLOT_WIDTH / 2, _title_width(title) + 2 * MARGIN))
    body = _header(title, MARGIN) + [
        f'<text class="empty" x="{MARGIN}" y="{top + FONT_SIZE}" fill="#555555">no events</text>'
    ]
    return _document(width, math.ceil(top + FONT_SIZE + MARGIN), title, body)


def _header_height(title: str | None) -> float:
    return (30 if title is not None else 0) + 18 + 10


def _header(title: str | None, top: float) -> list[str]:
    """The title, if any, and a legend of the states' colours."""
    parts = []
    if title is not None:
        parts.append(
            f'<text x="{MARGIN}" y="{top + 16}" font-size="16" font-weight="bold" '
            f'fill="#222222">{_xml(title)}</text>'
        )
        top += 30
    left = MARGIN
    for state, (fill, border) in STATE_COLOURS.items():
        parts.append(
            f'<rect class="legend-swatch" x="{left}" y="{top + 2}" width="22" height="12" '
            f'fill="{fill}" stroke="{border}"/>'
        )
        parts.append(f'<text x="{left + 28}" y="{top + 12}" fill="#333333">{state}</text>')
        left += 28 + len(state) * CHAR_WIDTH + 18
    return parts


def _tick_step(span_ms: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about TICKS_WANTED ticks."""
    raw = span_ms / TICKS_WANTED
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


def _axis(left: float, width: float, top: float, scale: float, lanes_height: float) -> list[str]:
    """Ticks every round number of milliseconds from the first start, with grid lines down
    through the lanes."""
    span_ms = width / scale * 1000
    step = _tick_step(span_ms)
    decimals = max(0, -math.floor(math.log10(step)))
    baseline = top + AXIS_HEIGHT
    parts = [
        '<g class="axis" fill="#444444" stroke="#999999" font-size="11" text-anchor="middle">',
        f'<text x="{left - 8:.1f}" y="{top + 12:.1f}" stroke="none" text-anchor="end">'
        f"time (ms)</text>",
        f'<line x1="{left:.1f}" y1="{baseline:.1f}" x2="{left + width:.1f}" y2="{baseline:.1f}"/>',
    ]
    for index in range(math.floor(span_ms / step * (1 + 1e-9)) + 1):
        value = index * step
        x = left + value / 1000 * scale
        parts.append(
            f'<line class="tick" x1="{x:.1f}" y1="{baseline - 5:.1f}" x2="{x:.1f}" '
            f'y2="{baseline + lanes_height:.1f}" stroke="#e2e2e2"/>'
        )
        parts.append(
            f'<text class="tick-label" x="{x:.1f}" y="{top + 12:.1f}" stroke="none">'
            f"{value:,.{decimals}f}</text>"
        )
    parts.append("</g>")
    return parts


def _lane_elements(
    lanes, left: float, width: float, top: float, origin: float, scale: float
) -> tuple[list[str], float]:
    """Each lane's background, name and bars; returns them and the y below the last lane."""
    parts = []
    for index, (worker, rows) in enumerate(lanes):
        height = _lane_height(rows)
        shade = "#f4f6f8" if index % 2 == 0 else "#ffffff"
        parts.append(
            f'<rect class="lane" x="{left:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}" fill="{shade}" fill-opacity="0.7"/>'
        )
        parts.append(
            f'<text class="lane-label" x="{left - 8:.1f}" y="{top + height / 2 + 4:.1f}" '
            f'text-anchor="end" fill="#222222">{_xml(_short(worker))}</text>'
        )
        for row_index, row in enumerate(rows):
            bar_top = top + LANE_PADDING + row_index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2
            for run in row:
                parts += _bar(run, left + (run.start - origin) * scale, bar_top, scale)
        top += height
    return parts, top


def _bar(run: _Run, x: float, top: float, scale: float) -> list[str]:
    """A bar from the event's start to its end, with a tooltip, and its name inside when it
    fits. A bar under a pixel wide (a skipped node takes no time) also gets a tick, because
    renderers draw nothing for a rectangle of width 0."""
    fill, border = STATE_COLOURS[run.state]
    width = (run.end - run.start) * scale
    tooltip = (
        f"{run.name} (node {run.node})\nworker {run.worker}\n"
        f"{_ms(run.end - run.start)}, {run.state}"
    )
    parts = [
        f'<rect class="bar" x="{x:.3f}" y="{top:.1f}" width="{width:.3f}" '
        f'height="{BAR_HEIGHT}" fill="{fill}" stroke="{border}" stroke-width="0.8">'
        f"<title>{_xml(tooltip)}</title></rect>"
    ]
    if width < 1:
        middle = x + width / 2
        parts.append(
            f'<line class="instant" x1="{middle:.3f}" y1="{top:.1f}" x2="{middle:.3f}" '
            f'y2="{top + BAR_HEIGHT:.1f}" stroke="{border}" stroke-width="2">'
            f"<title>{_xml(tooltip)}</title></line>"
        )
    fitting = math.floor((width - 6) / (0.62 * BAR_FONT_SIZE))
    if fitting >= 3:
        ink = "#ffffff" if run.state != "skipped" else "#222222"
        parts.append(
            f'<text class="bar-label" x="{x + 3:.1f}" y="{top + BAR_HEIGHT - 4:.1f}" '
            f'font-size="{BAR_FONT_SIZE}" fill="{ink}" pointer-events="none">'
            f"{_xml(_short(run.name, fitting))}</text>"
        )
    return parts


def _footer_lines(lanes, wall: float, count: int, width: float) -> list[str]:
    """The wall time, then each lane's busy time, wrapped to ``width``."""
    lines = [f"wall time {_ms(wall)}, {_count(count, 'event')} on {_count(len(lanes), 'lane')}"]
    items = []
    for worker, rows in lanes:
        busy = _busy_seconds(rows)
        share = f" ({busy / wall:.0%})" if wall > 0 else ""
        items.append(f"{_short(worker)} busy {_ms(busy)}{share}")
    line = ""
    for item in items:
        if line and (len(line) + 3 + len(item)) * CHAR_WIDTH > width:
            lines.append(line)
            line = ""
        line = f"{line} · {item}" if line else item
    lines.append(line)
    return lines


def _footer(lines: list[str], top: float) -> list[str]:
    parts = ['<g class="footer" fill="#333333">']
    for index, line in enumerate(lines):
        y = top + FONT_SIZE + index * (FONT_SIZE + 6)
        parts.append(f'<text x="{MARGIN}" y="{y:.1f}">{_xml(line)}</text>')
    parts.append("</g>")
    return parts
