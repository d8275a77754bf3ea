"""Pictures of a computational graph, drawn with NumPy and the standard library only.

The input is the plain data that ``Graph.to_dict()`` produces (format ``graphgrad.graph/1``)::

    {"format": "graphgrad.graph/1",
     "nodes": [{"id": 0, "kind": "input", "name": "x", "op": None, "inputs": [],
                "shape": [], "dtype": "float64"}, ...],      # in topological order
     "outputs": [3]}

``kind`` is ``input``, ``parameter``, ``constant`` or ``op``; an op's ``name`` may be empty, and
then its label shows the op. ``values`` and ``grads``, when given, map node ids to arrays or
numbers and add ``value=...`` and ``grad=...`` lines to the labels of the nodes they mention.

- :func:`levels` groups node ids by depth.
- :func:`to_dot` writes Graphviz DOT text, for whoever has Graphviz.
- :func:`to_svg` lays the graph out itself and writes a self-contained SVG 1.1 document.

The SVG layout has one column per level, left to right, except that a source (an input,
parameter or constant) is drawn in the column just before its first consumer, so that a layer's
weights sit next to that layer instead of piling up at the far left. An edge that spans several
columns gets a waypoint in each column it crosses, so that it runs between the nodes there
instead of behind them. Barycenter sweeps order each column to reduce edge crossings; then each
node is pulled towards the mean height of its neighbours, as far as the nodes above and below it
in its column allow.

Nothing here recurses: graphs of 100,000 nodes are fine.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

FORMAT = "graphgrad.graph/1"

# (fill, border) per kind. DOT and SVG share them, so the two pictures read alike.
COLOURS = {
    "input": ("#dcf1d6", "#3f8f3a"),
    "parameter": ("#dcf1d6", "#3f8f3a"),
    "constant": ("#ececec", "#8c8c8c"),
    "op": ("#d2eeea", "#1f7a72"),
}
OUTPUT_COLOURS = ("#ebe0f6", "#6a3d9a")
EDGE_COLOUR = "#7d7d7d"

LABEL_FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"  # fixed width: widths are exact
TEXT_FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FONT_SIZE = 12
CHAR_WIDTH = 0.6 * FONT_SIZE  # the advance of a monospace glyph
LINE_HEIGHT = 15
MAX_LABEL_CHARS = 40  # longer label lines end in an ellipsis; the tooltip keeps them whole
PAD_X, PAD_Y = 10, 7  # inside a box, around its text
MIN_NODE_WIDTH = 44
ELLIPSE_STRETCH = 1.25  # an op's ellipse is this much wider than its text (sqrt 2 is rounder)
RING_OFFSET = 3  # the second border of an output node
ROW_GAP = 16  # vertical space between nodes of a column
MIN_COLUMN_GAP, MAX_COLUMN_GAP = 56, 220
COLUMN_GAP_PER_RISE = 0.3  # steep edges get a wider gap, so they stay readable
MARGIN = 20
WAYPOINT = "waypoint"  # the kind of the invisible boxes that carry a long edge across a column
WAYPOINT_HEIGHT = 4
WAYPOINTS_PER_NODE = 2  # the budget: past it, the longest edges go straight, behind the nodes
TITLE_HEIGHT, LEGEND_HEIGHT = 29, 18
TITLE_CHAR_WIDTH = 0.66 * 16  # bold, 16px, proportional: a generous estimate
ORDERING_SWEEPS = 4
PLACEMENT_PASSES = 3

Graph = Mapping[str, Any]
NodeData = Mapping[int, Any]


def levels(graph: Graph) -> list[list[int]]:
    """Node ids grouped by depth: sources at level 0, any other node one level after the deepest
    of its inputs. Within a level, ids keep the graph's (topological) order.

    >>> graph = {"outputs": [3], "nodes": [
    ...     {"id": 0, "kind": "input", "name": "x", "inputs": []},
    ...     {"id": 1, "kind": "op", "name": "", "op": "sin", "inputs": [0]},
    ...     {"id": 2, "kind": "op", "name": "", "op": "cos", "inputs": [0]},
    ...     {"id": 3, "kind": "op", "name": "y", "op": "add", "inputs": [1, 2]}]}
    >>> levels(graph)
    [[0], [1, 2], [3]]
    """
    depth = _checked_depths(graph)
    grouped: list[list[int]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node_id, level in depth.items():
        grouped[level].append(node_id)
    return grouped


def to_dot(
    graph: Graph,
    values: NodeData | None = None,
    grads: NodeData | None = None,
    title: str | None = None,
) -> str:
    r"""Graphviz DOT text for ``graph``, drawn left to right, with nodes styled by kind.

    >>> graph = {"outputs": [2], "nodes": [
    ...     {"id": 0, "kind": "input", "name": "x", "inputs": []},
    ...     {"id": 1, "kind": "parameter", "name": "w", "inputs": []},
    ...     {"id": 2, "kind": "op", "name": "y", "op": "mul", "inputs": [0, 1]}]}
    >>> for line in to_dot(graph, values={2: 1 / 3}).splitlines()[4:]:
    ...     print(line.split(", tooltip")[0])
      0 [label="x"
      1 [label="w"
      2 [label="y\nmul\nvalue=0.333333"
      0 -> 2;
      1 -> 2;
    }
    """
    _checked_depths(graph)
    outputs = set(graph.get("outputs", ()))
    lines = [
        "digraph graphgrad {",
        "  rankdir=LR;",
        f'  node [fontname="Helvetica", fontsize={FONT_SIZE}];',
        f'  edge [color="{EDGE_COLOUR}", arrowsize=0.7];',
    ]
    if title is not None:
        lines.append(f"  labelloc=t; label={_dot_quote([_printable(title)])};")
    for node in graph["nodes"]:
        attributes = _dot_attributes(node, node["id"] in outputs, values, grads)
        lines.append(f"  {node['id']} [{attributes}];")
    for (source, target), count in _edges(graph).items():
        multiplicity = f' [label="×{count}"]' if count > 1 else ""
        lines.append(f"  {source} -> {target}{multiplicity};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(
    graph: Graph,
    values: NodeData | None = None,
    grads: NodeData | None = None,
    title: str | None = None,
) -> str:
    """A self-contained SVG 1.1 picture of ``graph``, laid out by graphgrad itself.

    >>> graph = {"outputs": [2], "nodes": [
    ...     {"id": 0, "kind": "input", "name": "x", "inputs": []},
    ...     {"id": 1, "kind": "parameter", "name": "w", "inputs": []},
    ...     {"id": 2, "kind": "op", "name": "y", "op": "mul", "inputs": [0, 1]}]}
    >>> svg = to_svg(graph, grads={1: [0.5, -2.0]}, title="y = x * w")
    >>> svg.count('class="node-shape"'), svg.count('class="edge"'), "grad=[0.5, -2]" in svg
    (3, 2, True)
    """
    depth = _checked_depths(graph)
    boxes = _measured_boxes(graph, values, grads)
    edges = _edges(graph)
    columns = _columns(depth, edges)
    routes = _routes(edges, columns, boxes)
    before, after = _hop_neighbours(boxes, routes)
    _order_columns(columns, before, after)
    _place_vertically(columns, boxes, before, after)
    _place_horizontally(columns, boxes, after)
    return _svg_document(boxes, edges, routes, title)


# ---------------------------------------------------------------------- reading the graph


def _checked_depths(graph: Graph) -> dict[int, int]:
    """Each node's depth, in the graph's order, after checking that the graph is well formed."""
    graph_format = graph.get("format", FORMAT)
    if graph_format != FORMAT:
        raise ValueError(f"unsupported graph format {graph_format!r}, expected {FORMAT!r}")
    depth: dict[int, int] = {}
    for node in graph["nodes"]:
        node_id = node["id"]
        if isinstance(node_id, bool) or not isinstance(node_id, (int, np.integer)):
            raise TypeError(f"node ids must be integers, got {node_id!r}")
        if node_id in depth:
            raise ValueError(f"node id {node_id} appears twice")
        if node["kind"] not in COLOURS:
            raise ValueError(f"node {node_id} has unknown kind {node['kind']!r}")
        level = 0
        for input_id in node.get("inputs", ()):
            if input_id not in depth:
                raise ValueError(
                    f"node {node_id} uses input {input_id}, which does not appear before it "
                    f"(nodes must be in topological order)"
                )
            level = max(level, depth[input_id] + 1)
        depth[node_id] = level
    for output_id in graph.get("outputs", ()):
        if output_id not in depth:
            raise ValueError(f"output {output_id} is not a node of the graph")
    return depth


def _edges(graph: Graph) -> Counter[tuple[int, int]]:
    """How many times each (input, user) pair is an edge: ``x * x`` draws one arrow, ``×2``."""
    return Counter(
        (input_id, node["id"]) for node in graph["nodes"] for input_id in node.get("inputs", ())
    )


# ---------------------------------------------------------------------- labels

_NOT_XML_TEXT = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _printable(text: object) -> str:
    """``text`` on one line, without the control characters that XML 1.0 cannot carry."""
    return _NOT_XML_TEXT.sub(" ", str(text))


def _format_scalar(number: object, digits: int = 6) -> str:
    if isinstance(number, (bool, np.bool_)):
        return str(bool(number))
    if isinstance(number, (int, float, complex, np.number)):
        return format(number, f".{digits}g")
    return _printable(number)


def _format_element(element: np.generic) -> str:
    return _format_scalar(element.item())


def _format_value(value: object) -> str:
    """A number to 6 significant digits, an array of up to 4 elements in full, a larger one as
    its shape and mean: ``shape (3, 4), mean 0.1234``."""
    array = np.asarray(value)
    if array.ndim == 0:
        return _format_scalar(array.item())
    if array.size <= 4:
        text = np.array2string(array, separator=", ", formatter={"all": _format_element})
        return " ".join(text.split())  # rows of a 2-d array on one line
    summary = f"shape {tuple(array.shape)}"
    if array.dtype.kind in "biufc":
        summary += f", mean {_format_scalar(array.mean(), digits=4)}"
    return summary


def _label_lines(
    node: Mapping[str, Any], values: NodeData | None, grads: NodeData | None
) -> list[str]:
    """``name``, ``op`` (each once, when not empty), then ``value=...`` and ``grad=...``."""
    name, op = _printable(node.get("name") or ""), _printable(node.get("op") or "")
    lines = list(dict.fromkeys(text for text in (name, op) if text)) or [node["kind"]]
    for prefix, data in (("value=", values), ("grad=", grads)):
        value = None if data is None else data.get(node["id"])
        if value is not None:  # None is how a run says "no gradient reached this node"
            lines.append(prefix + _format_value(value))
    return lines


def _tooltip(node: Mapping[str, Any], lines: list[str]) -> list[str]:
    """The whole label, then the node's id, kind, dtype and shape."""
    details = [f"id {node['id']}", node["kind"]]
    if node.get("dtype"):
        details.append(_printable(node["dtype"]))
    if node.get("shape") is not None:
        details.append(f"shape {tuple(node['shape'])}")
    return [*lines, ", ".join(details)]


def _truncated(line: str) -> str:
    return line if len(line) <= MAX_LABEL_CHARS else line[: MAX_LABEL_CHARS - 1] + "…"


# ---------------------------------------------------------------------- DOT


def _dot_quote(lines: list[str]) -> str:
    """A DOT string whose lines are centred: quotes and backslashes escaped, ``\\n`` between."""
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'


def _dot_attributes(node, is_output: bool, values, grads) -> str:
    lines = _label_lines(node, values, grads)
    fill, border = OUTPUT_COLOURS if is_output else COLOURS[node["kind"]]
    shape, style = ("ellipse", "filled") if node["kind"] == "op" else ("box", "rounded,filled")
    attributes = (
        f"label={_dot_quote(lines)}, tooltip={_dot_quote(_tooltip(node, lines))}, "
        f'shape={shape}, style="{style}", fillcolor="{fill}", color="{border}"'
    )
    if is_output:
        attributes += ", peripheries=2"
    return attributes


# ---------------------------------------------------------------------- SVG layout


@dataclass(slots=True)
class _Box:
    """A node as drawn: its label, its style and the centre and size of its shape. A waypoint
    (kind ``waypoint``) is where a long edge crosses a column: no label, as wide as the column.
    """

    kind: str
    is_output: bool
    lines: list[str]
    tooltip: str
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0


def _measured_boxes(graph: Graph, values, grads) -> dict[Hashable, _Box]:
    outputs = set(graph.get("outputs", ()))
    boxes = {}
    for node in graph["nodes"]:
        full_lines = _label_lines(node, values, grads)
        lines = [_truncated(line) for line in full_lines]
        text_width = max(len(line) for line in lines) * CHAR_WIDTH
        text_height = len(lines) * LINE_HEIGHT
        if node["kind"] == "op":  # an ellipse through the corners of the text, plus a margin
            width = text_width * ELLIPSE_STRETCH + 12
            height = text_height / math.sqrt(1 - ELLIPSE_STRETCH**-2) + 8
        else:
            width, height = text_width + 2 * PAD_X, text_height + 2 * PAD_Y
        boxes[node["id"]] = _Box(
            kind=node["kind"],
            is_output=node["id"] in outputs,
            lines=lines,
            tooltip="\n".join(_tooltip(node, full_lines)),
            width=max(width, MIN_NODE_WIDTH),
            height=height,
        )
    return boxes


def _columns(depth: dict[int, int], edges: Counter) -> list[list[Hashable]]:
    """Node ids by column: each node's level, but a source goes just before its first user."""
    has_inputs = {target for _, target in edges}
    first_user_level: dict[int, int] = {}
    for source, target in edges:
        first_user_level[source] = min(first_user_level.get(source, depth[target]), depth[target])
    columns: list[list[Hashable]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node_id, level in depth.items():
        if node_id not in has_inputs and node_id in first_user_level:
            level = first_user_level[node_id] - 1
        columns[level].append(node_id)
    return columns


def _routes(edges: Counter, columns, boxes: dict[Hashable, _Box]) -> dict[tuple, list]:
    """Each edge's hops: its input, a waypoint in each column it crosses, its user. Waypoints
    are added to ``columns`` and ``boxes``; shorter edges get theirs first, within a budget, so
    that a weight read by every step of a long chain cannot make the layout quadratic."""
    column_of = {key: index for index, column in enumerate(columns) for key in column}
    budget = WAYPOINTS_PER_NODE * len(column_of)
    routes = {}
    for source, target in sorted(edges, key=lambda edge: column_of[edge[1]] - column_of[edge[0]]):
        crossed = range(column_of[source] + 1, column_of[target])
        if len(crossed) > budget:
            crossed = range(0)
        budget -= len(crossed)
        hops: list[Hashable] = [source]
        for index in crossed:
            waypoint = (source, target, index)
            boxes[waypoint] = _Box(WAYPOINT, False, [], "", 0.0, WAYPOINT_HEIGHT)
            columns[index].append(waypoint)
            hops.append(waypoint)
        routes[source, target] = [*hops, target]
    return routes


def _hop_neighbours(boxes: dict[Hashable, _Box], routes: dict) -> tuple[dict, dict]:
    """For each node or waypoint, the distinct hops just before it and just after it."""
    before: dict[Hashable, list] = {key: [] for key in boxes}
    after: dict[Hashable, list] = {key: [] for key in boxes}
    for hops in routes.values():
        for first, second in zip(hops, hops[1:]):
            before[second].append(first)
            after[first].append(second)
    return before, after


def _order_columns(columns: list[list[Hashable]], before: dict, after: dict) -> None:
    """Reorder each column, in place, by the mean position of its neighbours in the columns
    already ordered: left to right by inputs, then right to left by users, a few times."""
    position: dict[Hashable, float] = {}
    for column in columns:
        _number(column, position)
    for _ in range(ORDERING_SWEEPS):
        for column in columns[1:]:
            _sort_by_barycentre(column, before, position)
        for column in reversed(columns[:-1]):
            _sort_by_barycentre(column, after, position)


def _number(column: list[Hashable], position: dict[Hashable, float]) -> None:
    """Positions centred on 0, so that columns of different lengths line up in the middle."""
    middle = (len(column) - 1) / 2
    for index, node_id in enumerate(column):
        position[node_id] = index - middle


def _sort_by_barycentre(column: list[Hashable], neighbours_of: dict, position: dict) -> None:
    def barycentre(node_id: Hashable) -> float:
        neighbours = neighbours_of[node_id]
        if not neighbours:  # nothing pulls it: it keeps its place
            return position[node_id]
        return sum(position[n] for n in neighbours) / len(neighbours)

    column.sort(key=barycentre)
    _number(column, position)


def _place_vertically(columns, boxes: dict[Hashable, _Box], before: dict, after: dict) -> None:
    """Set each box's ``y``: columns start stacked around 0; then, pass after pass, each node
    moves towards the mean height of its inputs (or users) as far as its column allows."""
    for column in columns:
        stacked = _stacked_offsets(column, boxes)
        middle = stacked[-1] / 2 if stacked else 0.0
        for node_id, offset in zip(column, stacked):
            boxes[node_id].y = offset - middle
    for _ in range(PLACEMENT_PASSES):
        for column in columns[1:]:
            _pull_towards(column, before, boxes)
        for column in reversed(columns[:-1]):
            _pull_towards(column, after, boxes)
    top = min((box.y - box.height / 2 for box in boxes.values()), default=0.0)
    for box in boxes.values():
        box.y -= top


def _stacked_offsets(column: list[Hashable], boxes: dict[Hashable, _Box]) -> list[float]:
    """The centre of each node when the column is packed tightly from 0: the least distance
    between consecutive centres."""
    offsets: list[float] = []
    for index, node_id in enumerate(column):
        if index == 0:
            offsets.append(0.0)
            continue
        previous = boxes[column[index - 1]]
        offsets.append(offsets[-1] + (previous.height + boxes[node_id].height) / 2 + ROW_GAP)
    return offsets


def _pull_towards(column: list[Hashable], neighbours_of: dict, boxes: dict[Hashable, _Box]) -> None:
    """Move the column's nodes as close as possible (least squares) to where their neighbours
    pull them, keeping their order and the gaps between them."""
    offsets = _stacked_offsets(column, boxes)
    targets = []
    for node_id, offset in zip(column, offsets):
        neighbours = neighbours_of[node_id]
        wanted = boxes[node_id].y
        if neighbours:
            wanted = sum(boxes[n].y for n in neighbours) / len(neighbours)
        targets.append(wanted - offset)
    # y_i = z_i + offset_i keeps the gaps exactly when z is non-decreasing.
    for node_id, offset, z in zip(column, offsets, _non_decreasing_fit(targets)):
        boxes[node_id].y = z + offset


def _non_decreasing_fit(targets: list[float]) -> list[float]:
    """The non-decreasing sequence nearest ``targets`` in least squares (pool adjacent
    violators: merge neighbouring blocks into their mean while they are out of order)."""
    blocks: list[list[float]] = []  # [mean, count]
    for target in targets:
        blocks.append([target, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            merged = blocks[-1]
            merged[0] = (merged[0] * merged[1] + mean * count) / (merged[1] + count)
            merged[1] += count
    fitted: list[float] = []
    for mean, count in blocks:
        fitted.extend([mean] * int(count))
    return fitted


def _place_horizontally(columns, boxes: dict[Hashable, _Box], after: dict) -> None:
    """Set each box's ``x``: centred in its column, and waypoints as wide as the column; the
    gap after a column widens with the steepest edge that leaves it."""
    left = 0.0
    for column in columns:
        width = max((boxes[node_id].width for node_id in column), default=0.0)
        for node_id in column:
            boxes[node_id].x = left + width / 2
            if boxes[node_id].kind == WAYPOINT:
                boxes[node_id].width = width
        rise = max(
            (abs(boxes[user].y - boxes[n].y) for n in column for user in after[n]),
            default=0.0,
        )
        gap = min(MAX_COLUMN_GAP, max(MIN_COLUMN_GAP, COLUMN_GAP_PER_RISE * rise))
        left += width + gap


# ---------------------------------------------------------------------- SVG drawing


def _xml(text: str) -> str:
    """``text`` escaped for XML content and for double-quoted attributes."""
    return escape(text, {'"': "&quot;"})


def _svg_document(boxes: dict[Hashable, _Box], edges: Counter, routes: dict, title) -> str:
    header_height = MARGIN + (TITLE_HEIGHT if title is not None else 0) + LEGEND_HEIGHT + MARGIN
    width, height = _fit_to_canvas(boxes, title, header_height)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_xml(_printable(title)) if title is not None else 'graphgrad graph'}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto">',
        f'<path d="M0,0 L10,5 L0,10 z" fill="{EDGE_COLOUR}"/>',
        "</marker>",
        "</defs>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    top = MARGIN
    if title is not None:
        parts.append(
            f'<text x="{MARGIN}" y="{top + 14}" font-family="{TEXT_FONT}" font-size="16" '
            f'font-weight="bold" fill="#222222">{_xml(_printable(title))}</text>'
        )
        top += TITLE_HEIGHT
    parts += _legend(MARGIN, top)
    if not boxes:
        parts.append(
            f'<text x="{MARGIN}" y="{header_height + FONT_SIZE}" font-family="{TEXT_FONT}" '
            f'font-size="{FONT_SIZE}" fill="#555555">empty graph</text>'
        )
    parts += _edge_elements(boxes, edges, routes)
    parts += _node_elements(boxes)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _fit_to_canvas(boxes: dict[Hashable, _Box], title, header_height: float) -> tuple[int, int]:
    """Move the layout below the header, centred when the header is the wider; return the
    canvas's width and height."""
    title_width = len(title) * TITLE_CHAR_WIDTH if title is not None else 0.0
    content_width = max((box.x + box.width / 2 for box in boxes.values()), default=0.0)
    content_height = max((box.y + box.height / 2 for box in boxes.values()), default=0.0)
    inner_width = max(content_width, _legend_width(), title_width)
    shift_x = MARGIN + (inner_width - content_width) / 2
    for box in boxes.values():
        box.x += shift_x
        box.y += header_height
    width = math.ceil(inner_width + 2 * MARGIN)
    height = math.ceil(header_height + max(content_height, LINE_HEIGHT) + MARGIN)
    return width, height


LEGEND = (("input / parameter", "input"), ("constant", "constant"), ("operation", "op"))
LEGEND_SWATCH = 24
LEGEND_CHAR_WIDTH = 0.62 * FONT_SIZE  # a generous estimate for a proportional font


def _legend_items() -> list[tuple[str, str, bool]]:
    return [(text, kind, False) for text, kind in LEGEND] + [("output", "op", True)]


def _legend_item_width(text: str) -> float:
    return LEGEND_SWATCH + 6 + len(text) * LEGEND_CHAR_WIDTH + 18


def _legend_width() -> float:
    return sum(_legend_item_width(text) for text, _, _ in _legend_items())


def _legend(left: float, top: float) -> list[str]:
    parts = [f'<g class="legend" font-family="{TEXT_FONT}" font-size="{FONT_SIZE}">']
    for text, kind, is_output in _legend_items():
        swatch = _Box(kind, is_output, [], "", LEGEND_SWATCH, 14, left + LEGEND_SWATCH / 2, top + 8)
        parts += _shape_elements(swatch, "legend-shape")
        parts.append(
            f'<text x="{left + LEGEND_SWATCH + 6:.1f}" y="{top + 12:.1f}" fill="#333333">'
            f"{_xml(text)}</text>"
        )
        left += _legend_item_width(text)
    parts.append("</g>")
    return parts


def _shape_elements(box: _Box, css_class: str) -> list[str]:
    """The outline of a box (an ellipse for an op, a rounded rectangle otherwise), and for an
    output a second outline around it."""
    fill, border = OUTPUT_COLOURS if box.is_output else COLOURS[box.kind]
    elements = [_outline(box, 0.0, f'class="{css_class}" fill="{fill}" stroke="{border}"')]
    if box.is_output:
        ring = f'class="{css_class}-ring" fill="none" stroke="{border}"'
        elements.append(_outline(box, RING_OFFSET, ring))
    return elements


def _outline(box: _Box, grow: float, attributes: str) -> str:
    half_width, half_height = box.width / 2 + grow, box.height / 2 + grow
    if box.kind == "op":
        return (
            f'<ellipse {attributes} stroke-width="1.3" cx="{box.x:.1f}" cy="{box.y:.1f}" '
            f'rx="{half_width:.1f}" ry="{half_height:.1f}"/>'
        )
    return (
        f'<rect {attributes} stroke-width="1.3" x="{box.x - half_width:.1f}" '
        f'y="{box.y - half_height:.1f}" width="{2 * half_width:.1f}" '
        f'height="{2 * half_height:.1f}" rx="{5 + grow:.0f}"/>'
    )


def _node_elements(boxes: dict[Hashable, _Box]) -> list[str]:
    parts = [
        f'<g class="nodes" font-family="{LABEL_FONT}" font-size="{FONT_SIZE}" '
        f'text-anchor="middle" fill="#1a1a1a">'
    ]
    for node_id, box in boxes.items():
        if box.kind == WAYPOINT:
            continue
        parts.append(f'<g class="node" id="node-{node_id}">')
        parts.append(f"<title>{_xml(box.tooltip)}</title>")
        parts += _shape_elements(box, "node-shape")
        # Baselines put the middle of capital letters (0.35 em above the baseline) mid-line.
        first_line_top = box.y - len(box.lines) * LINE_HEIGHT / 2
        for index, line in enumerate(box.lines):
            baseline = first_line_top + (index + 0.5) * LINE_HEIGHT + 0.35 * FONT_SIZE
            weight = ' font-weight="bold"' if index == 0 else ""
            parts.append(f'<text x="{box.x:.1f}" y="{baseline:.1f}"{weight}>{_xml(line)}</text>')
        parts.append("</g>")
    parts.append("</g>")
    return parts


def _edge_elements(boxes: dict[Hashable, _Box], edges: Counter, routes: dict) -> list[str]:
    """One path per distinct edge: Bézier curves between columns, straight through the
    columns it crosses, an arrowhead at the user, and ``×n`` when the user reads it n times."""
    parts = [f'<g class="edges" fill="none" stroke="{EDGE_COLOUR}" stroke-width="1.2">']
    labels = []
    arrival = _arrival_rises(boxes, routes)
    for edge, hops in routes.items():
        path, (label_x, label_y) = _edge_path(hops, boxes, arrival[edge])
        parts.append(f'<path class="edge" marker-end="url(#arrow)" d="{path}"/>')
        if edges[edge] > 1:
            labels.append(f'<text x="{label_x:.1f}" y="{label_y - 4:.1f}">×{edges[edge]}</text>')
    parts.append("</g>")
    if labels:
        parts.append(
            f'<g class="edge-labels" font-family="{TEXT_FONT}" font-size="11" '
            f'text-anchor="middle" fill="#444444">'
        )
        parts += labels
        parts.append("</g>")
    return parts


def _arrival_rises(boxes: dict[Hashable, _Box], routes: dict) -> dict[tuple, float]:
    """How far below the centre of its user each edge arrives: a node's incoming edges are
    spread down its left side in the order of the heights they come from, so that they do not
    cross at the arrowheads."""
    arriving: dict[Hashable, list[tuple[float, tuple]]] = {}
    for edge, hops in routes.items():
        arriving.setdefault(edge[1], []).append((boxes[hops[-2]].y, edge))
    rises = {}
    for target, incoming in arriving.items():
        incoming.sort()
        spread = min(boxes[target].height * 0.5, 10.0 * (len(incoming) - 1))
        for index, (_, edge) in enumerate(incoming):
            fraction = index / (len(incoming) - 1) - 0.5 if len(incoming) > 1 else 0.0
            rises[edge] = spread * fraction
    return rises


def _edge_path(hops: list, boxes: dict[Hashable, _Box], rise: float):
    """The path data through ``hops``, and the middle of its first curve (for a label). A
    curve joins each hop to the next; a straight line crosses each waypoint's column."""
    first = boxes[hops[0]]
    curve_starts = [(first.x + first.width / 2, first.y)]
    curve_ends = []
    for hop in hops[1:-1]:
        waypoint = boxes[hop]
        curve_ends.append((waypoint.x - waypoint.width / 2, waypoint.y))
        curve_starts.append((waypoint.x + waypoint.width / 2, waypoint.y))
    user = boxes[hops[-1]]
    curve_ends.append((_left_side(user, rise), user.y + rise))
    commands = []
    for (start_x, start_y), (end_x, end_y) in zip(curve_starts, curve_ends):
        commands.append(f"{'L' if commands else 'M'}{start_x:.1f},{start_y:.1f}")
        commands.append(_curve(start_x, start_y, end_x, end_y))
    (start_x, start_y), (end_x, end_y) = curve_starts[0], curve_ends[0]
    return " ".join(commands), ((start_x + end_x) / 2, (start_y + end_y) / 2)


def _curve(start_x: float, start_y: float, end_x: float, end_y: float) -> str:
    """A cubic Bézier that leaves and arrives horizontally: its middle is the midpoint."""
    bend = max(20.0, (end_x - start_x) / 2)
    return (
        f"C{start_x + bend:.1f},{start_y:.1f} {end_x - bend:.1f},{end_y:.1f} "
        f"{end_x:.1f},{end_y:.1f}"
    )


def _left_side(box: _Box, rise: float) -> float:
    """The x where the outline of ``box`` meets the horizontal line ``rise`` below its centre."""
    half_width, half_height = box.width / 2, box.height / 2
    if box.kind != "op":
        return box.x - half_width
    fraction = min(1.0, abs(rise) / half_height)
    return box.x - half_width * math.sqrt(1.0 - fraction * fraction)
