"""Graph pictures (render.py) and run timelines (timeline.py), checked against expectations
written by hand: levels, DOT edges and labels, SVG structure, escaping and geometry."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from graphgrad.graph.render import levels, to_dot, to_svg
from graphgrad.graph.timeline import to_timeline_svg

SVG = "{http://www.w3.org/2000/svg}"
FORMAT = "graphgrad.graph/1"


def node(node_id, kind, name, op=None, inputs=(), shape=()):
    return {
        "id": node_id,
        "kind": kind,
        "name": name,
        "op": op,
        "inputs": list(inputs),
        "shape": list(shape),
        "dtype": "float64",
    }


def graph_of(nodes, outputs):
    return {"format": FORMAT, "nodes": nodes, "outputs": outputs}


def neuron():
    """J = (x * w + 2) squared, as u = x*w, v = u + 2, J = v * v."""
    return graph_of(
        [
            node(0, "input", "x"),
            node(1, "parameter", "w", shape=(2,)),
            node(2, "constant", "2"),
            node(3, "op", "u", "mul", [0, 1], shape=(3, 4)),
            node(4, "op", "", "add", [3, 2]),
            node(5, "op", "J", "mul", [4, 4]),
        ],
        outputs=[5],
    )


NEURON_EDGES = {(0, 3): 1, (1, 3): 1, (3, 4): 1, (2, 4): 1, (4, 5): 2}
NEURON_VALUES = {0: 2.0, 1: 1 / 3, 3: np.full((3, 4), 0.123456), 5: np.float64(1234567.0)}
NEURON_GRADS = {1: np.array([1.5, -2.0]), 3: np.array([[1.0, 2.0], [3.0, 4.0]])}


def parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert width > 0 and height > 0
    return root


def elements_of_class(root: ET.Element, css_class: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == css_class]


def node_texts(root: ET.Element) -> dict[int, list[str]]:
    """Each node group's label lines, by node id."""
    return {
        int(group.get("id").removeprefix("node-")): [t.text for t in group.iter(f"{SVG}text")]
        for group in elements_of_class(root, "node")
    }


def bounding_box(shape: ET.Element) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a rect or an ellipse."""
    if shape.tag == f"{SVG}rect":
        x, y = float(shape.get("x")), float(shape.get("y"))
        return x, y, x + float(shape.get("width")), y + float(shape.get("height"))
    cx, cy, rx, ry = (float(shape.get(k)) for k in ("cx", "cy", "rx", "ry"))
    return cx - rx, cy - ry, cx + rx, cy + ry


# ---------------------------------------------------------------------- levels


def test_levels_of_a_diamond_with_a_late_constant():
    graph = graph_of(
        [
            node(0, "input", "x"),
            node(1, "op", "", "sin", [0]),
            node(2, "op", "", "cos", [0]),
            node(3, "op", "s", "add", [1, 2]),
            node(4, "constant", "3"),
            node(5, "op", "y", "mul", [3, 4]),
        ],
        outputs=[5],
    )
    assert levels(graph) == [[0, 4], [1, 2], [3], [5]]


def test_levels_of_a_100000_node_chain_do_not_recurse():
    count = 100_000
    chain = graph_of(
        [node(0, "input", "x")] + [node(i, "op", "", "sin", [i - 1]) for i in range(1, count)],
        outputs=[count - 1],
    )
    started = time.perf_counter()
    grouped = levels(chain)
    assert time.perf_counter() - started < 2.0
    assert len(grouped) == count
    assert all(level == [k] for k, level in enumerate(grouped))


def test_levels_reject_an_input_that_comes_later():
    graph = graph_of([node(0, "op", "", "neg", [1]), node(1, "input", "x")], outputs=[0])
    with pytest.raises(ValueError, match="node 0 uses input 1"):
        levels(graph)


# ---------------------------------------------------------------------- DOT


EDGE_LINE = re.compile(r'^  (-?\d+) -> (-?\d+)(?: \[label="×(\d+)"\])?;$')


def test_dot_has_every_node_once_and_every_edge_once():
    dot = to_dot(neuron())
    assert dot.startswith("digraph graphgrad {\n") and dot.rstrip().endswith("}")
    assert "rankdir=LR;" in dot
    for node_id in range(6):
        assert len(re.findall(rf"^  {node_id} \[label=", dot, flags=re.M)) == 1
    edges = {}
    for line in dot.splitlines():
        if "->" in line:
            source, target, count = EDGE_LINE.match(line).groups()
            assert (int(source), int(target)) not in edges
            edges[int(source), int(target)] = int(count or 1)
    assert edges == NEURON_EDGES


def test_dot_labels_and_styles():
    dot = to_dot(neuron(), NEURON_VALUES, NEURON_GRADS, title="a neuron")
    statements = [line for line in dot.splitlines() if re.match(r"^  \d+ \[", line)]
    lines = {int(line.split()[0]): line for line in statements}
    assert 'label="x\\nvalue=2"' in lines[0]
    assert 'label="w\\nvalue=0.333333\\ngrad=[1.5, -2]"' in lines[1]
    assert 'label="u\\nmul\\nvalue=shape (3, 4), mean 0.1235\\ngrad=[[1, 2], [3, 4]]"' in lines[3]
    assert 'label="add"' in lines[4]  # an op without a name shows the op
    assert 'label="J\\nmul\\nvalue=1.23457e+06"' in lines[5]
    assert "shape=box" in lines[0] and "shape=box" in lines[2] and "shape=ellipse" in lines[3]
    assert 'fillcolor="#ececec"' in lines[2]  # constants grey
    assert "peripheries=2" in lines[5] and "peripheries" not in lines[4]
    assert 'label="a neuron"' in dot


def test_dot_escapes_quotes_and_backslashes():
    graph = graph_of([node(0, "input", 'say "hi" \\ ok')], outputs=[0])
    assert 'label="say \\"hi\\" \\\\ ok"' in to_dot(graph)


# ---------------------------------------------------------------------- SVG


def test_svg_has_one_shape_per_node_and_one_path_per_edge():
    root = parse_svg(to_svg(neuron()))
    shapes = elements_of_class(root, "node-shape")
    assert len(shapes) == 6
    assert [s.tag.removeprefix(SVG) for s in shapes] == ["rect"] * 3 + ["ellipse"] * 3
    assert len(elements_of_class(root, "node-shape-ring")) == 1  # the output's double border
    assert len(elements_of_class(root, "edge")) == len(NEURON_EDGES)
    assert all(path.get("marker-end") == "url(#arrow)" for path in elements_of_class(root, "edge"))
    assert root.find(f".//{SVG}marker").get("id") == "arrow"
    edge_labels = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.startswith("×")]
    assert edge_labels == ["×2"]  # J = v * v


def test_svg_labels_show_values_and_grads():
    root = parse_svg(to_svg(neuron(), NEURON_VALUES, NEURON_GRADS, title="a neuron"))
    texts = node_texts(root)
    assert texts[0] == ["x", "value=2"]
    assert texts[1] == ["w", "value=0.333333", "grad=[1.5, -2]"]
    assert texts[2] == ["2"]
    assert texts[3] == ["u", "mul", "value=shape (3, 4), mean 0.1235", "grad=[[1, 2], [3, 4]]"]
    assert texts[4] == ["add"]
    assert texts[5] == ["J", "mul", "value=1.23457e+06"]
    all_text = [t.text for t in root.iter(f"{SVG}text")]
    assert "a neuron" in all_text
    assert {"input / parameter", "constant", "operation", "output"} <= set(all_text)


def test_svg_escapes_text_and_truncates_long_labels():
    tricky = 'a<b & "c"'
    long_name = "a_very_long_parameter_name_that_goes_on_and_on"
    graph = graph_of(
        [
            node(0, "input", tricky),
            node(1, "parameter", long_name),
            node(2, "op", "", "add", [0, 1]),
        ],
        outputs=[2],
    )
    text = to_svg(graph, title="<&>")
    assert "&lt;" in text and "&amp;" in text and "<&>" not in text
    root = parse_svg(text)
    texts = node_texts(root)
    assert texts[0] == [tricky]
    assert texts[1] == [long_name[:39] + "…"]  # 40 characters
    tooltip = root.find(f".//{SVG}g[@id='node-1']/{SVG}title").text
    assert tooltip.startswith(long_name + "\n")
    assert "<&>" in [t.text for t in root.iter(f"{SVG}text")]


def shape_of(root: ET.Element, node_id: int) -> ET.Element:
    group = root.find(f".//{SVG}g[@id='node-{node_id}']")
    return next(e for e in group if e.get("class") == "node-shape")


def test_a_source_sits_in_the_column_before_its_first_user():
    graph = graph_of(
        [
            node(0, "input", "x"),
            node(1, "op", "", "sin", [0]),
            node(2, "op", "", "cos", [1]),
            node(3, "constant", "3"),
            node(4, "op", "y", "mul", [2, 3]),
        ],
        outputs=[4],
    )
    root = parse_svg(to_svg(graph))
    centre_x = {i: sum(bounding_box(shape_of(root, i))[0::2]) / 2 for i in range(5)}
    assert centre_x[0] < centre_x[1] < centre_x[2] < centre_x[4]
    assert centre_x[3] == pytest.approx(centre_x[2])  # level 0, drawn in column 2


def test_a_long_edge_goes_round_the_nodes_of_the_columns_it_crosses():
    graph = graph_of(
        [
            node(0, "input", "x"),
            node(1, "op", "a", "sin", [0]),
            node(2, "op", "b", "cos", [1]),
            node(3, "op", "c", "add", [2, 0]),
        ],
        outputs=[3],
    )
    root = parse_svg(to_svg(graph))
    paths = [p.get("d") for p in elements_of_class(root, "edge")]
    assert len(paths) == 4
    (skip,) = [d for d in paths if d.count("C") == 3]  # x -> c: one curve per gap
    crossing_heights = [float(y) for y in re.findall(r"L[-\d.]+,([-\d.]+)", skip)]
    assert len(crossing_heights) == 2
    for node_id in (1, 2):
        _, top, _, bottom = bounding_box(shape_of(root, node_id))
        assert all(not top <= y <= bottom for y in crossing_heights)


def test_svg_of_an_empty_graph_is_valid():
    root = parse_svg(to_svg(graph_of([], outputs=[])))
    assert "empty graph" in [t.text for t in root.iter(f"{SVG}text")]


def mlp_like(layers: int, width: int, fan_in: int, seed: int = 0) -> dict:
    """``width`` inputs, then layers of ``width`` ops, each reading ``fan_in`` nodes of the
    layer before; the last layer is the output."""
    rng = np.random.default_rng(seed)
    nodes = [node(i, "input", f"x{i}") for i in range(width)]
    previous = list(range(width))
    for layer in range(1, layers):
        current = []
        for j in range(width):
            inputs = sorted(rng.choice(previous, size=fan_in, replace=False).tolist())
            nodes.append(node(len(nodes), "op", f"h{layer}_{j}", "add", inputs))
            current.append(len(nodes) - 1)
        previous = current
    return graph_of(nodes, outputs=previous)


def test_a_200_node_mlp_has_no_overlapping_boxes_and_fits_the_canvas():
    graph = mlp_like(layers=10, width=20, fan_in=3)
    root = parse_svg(to_svg(graph, title="200 nodes"))
    width, height = float(root.get("width")), float(root.get("height"))
    boxes = [bounding_box(s) for s in elements_of_class(root, "node-shape")]
    assert len(boxes) == 200
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
    for i, (left, top, right, bottom) in enumerate(boxes):
        for other_left, other_top, other_right, other_bottom in boxes[:i]:
            apart = (
                right <= other_left
                or other_right <= left
                or bottom <= other_top
                or other_bottom <= top
            )
            assert apart
    columns = sorted({round((left + right) / 2) for left, _, right, _ in boxes})
    assert len(columns) == 10  # one column per level
    font_sizes = [float(e.get("font-size")) for e in root.iter() if e.get("font-size")]
    assert font_sizes and min(font_sizes) >= 11
    assert len(elements_of_class(root, "edge")) == 9 * 20 * 3


def test_a_10000_node_graph_renders_in_under_2_seconds():
    graph = mlp_like(layers=500, width=20, fan_in=2)
    started = time.perf_counter()
    text = to_svg(graph)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert text.count('class="node-shape"') == 10_000


# ---------------------------------------------------------------------- timeline


def event(node_id, name, worker, start, end, state="done"):
    return {
        "node": node_id,
        "name": name,
        "worker": worker,
        "start": start,
        "end": end,
        "state": state,
    }


# Times from an arbitrary origin (100 s): the run lasts from 100.000 s to 100.010 s.
EVENTS = [
    event(0, "load", "main", 100.000, 100.001),
    event(1, "matmul", "worker-10", 100.001, 100.004),
    event(2, "tanh", "worker-2", 100.001, 100.0035),
    event(3, "add", "worker-2", 100.004, 100.006, "failed"),
    event(4, "sum", "coordinator", 100.0065, 100.0075),
    event(5, "mul", "worker-10", 100.010, 100.010, "skipped"),
    event(6, "log", "main", 100.008, 100.010),
]


def bars_by_node(root: ET.Element) -> dict[int, ET.Element]:
    bars = {}
    for bar in elements_of_class(root, "bar"):
        node_id = int(re.search(r"\(node (\d+)\)", bar.find(f"{SVG}title").text).group(1))
        bars[node_id] = bar
    return bars


def test_timeline_has_a_lane_per_worker_in_order_and_a_bar_per_event():
    root = parse_svg(to_timeline_svg(EVENTS, title="a run"))
    lanes = [t.text for t in elements_of_class(root, "lane-label")]
    assert lanes == ["main", "coordinator", "worker-2", "worker-10"]
    assert len(elements_of_class(root, "lane")) == 4
    assert sorted(bars_by_node(root)) == list(range(7))
    assert len(elements_of_class(root, "instant")) == 1  # the skipped node takes no time


def test_timeline_bars_are_proportional_to_start_and_duration():
    root = parse_svg(to_timeline_svg(EVENTS))
    bars = bars_by_node(root)
    origin_x = float(bars[0].get("x"))
    pixels_per_second = float(bars[0].get("width")) / 0.001
    for e in EVENTS:
        bar = bars[e["node"]]
        expected_x = origin_x + (e["start"] - 100.0) * pixels_per_second
        expected_width = (e["end"] - e["start"]) * pixels_per_second
        assert float(bar.get("x")) == pytest.approx(expected_x, abs=0.01)
        assert float(bar.get("width")) == pytest.approx(expected_width, abs=0.01)
    fills = {e["state"]: bars[e["node"]].get("fill") for e in EVENTS}
    assert len(set(fills.values())) == 3


def test_timeline_tooltips_axis_and_footer():
    root = parse_svg(to_timeline_svg(EVENTS))
    tooltip = bars_by_node(root)[3].find(f"{SVG}title").text
    assert tooltip == "add (node 3)\nworker worker-2\n2.000 ms, failed"
    ticks = [t.text for t in elements_of_class(root, "tick-label")]
    assert ticks == ["0", "2", "4", "6", "8", "10"]  # 10 ms in steps of 2 ms
    footer = " ".join(t.text for t in root.find(f".//{SVG}g[@class='footer']"))
    assert "wall time 10.000 ms" in footer
    assert "main busy 3.000 ms (30%)" in footer
    assert "worker-2 busy 4.500 ms (45%)" in footer
    assert "coordinator busy 1.000 ms (10%)" in footer


def test_timeline_puts_overlapping_events_of_a_worker_on_separate_rows():
    events = [
        event(0, "a", "main", 0.0, 0.004),
        event(1, "b", "main", 0.001, 0.002),
        event(2, "c", "main", 0.004, 0.005),
    ]
    bars = bars_by_node(parse_svg(to_timeline_svg(events)))
    assert bars[0].get("y") == bars[2].get("y") != bars[1].get("y")


def test_timeline_escapes_names_and_handles_no_events():
    root = parse_svg(to_timeline_svg([event(0, 'x<y & "z"', "<w>", 0.0, 0.001)], title="&"))
    assert [t.text for t in elements_of_class(root, "lane-label")] == ["<w>"]
    assert bars_by_node(root)[0].find(f"{SVG}title").text.startswith('x<y & "z" (node 0)')
    empty = parse_svg(to_timeline_svg([], title="nothing ran"))
    assert "no events" in [t.text for t in empty.iter(f"{SVG}text")]
    assert not elements_of_class(empty, "bar")


def test_timeline_rejects_an_event_that_ends_before_it_starts():
    with pytest.raises(ValueError, match="ends before it starts"):
        to_timeline_svg([event(0, "a", "main", 1.0, 0.5)])
