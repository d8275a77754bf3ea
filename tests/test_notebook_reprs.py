"""What Jupyter shows: a Graph as its SVG, explain's tables and a History as HTML, a History's
plot inline. Checked against the numbers of the seeds' hand calculations and the PNG format."""

from __future__ import annotations

import re

import graphgrad as gg
from graphgrad.graph import examples
from graphgrad.train import History, fit


def test_graph_shows_as_its_svg():
    graph = examples.branch_and_merge()
    svg = graph._repr_svg_()
    assert svg.startswith("<?xml") and "<svg" in svg
    ids = re.findall(r'<g class="node" id="node-(\d+)">', svg)
    assert sorted(map(int, ids)) == list(range(len(graph.nodes))) and len(ids) == 23


def test_explain_shows_as_html_tables_with_the_seed_numbers():
    e = examples.branch_and_merge().explain({"x": 2.0, "y": 1.0}, lr=0.1)
    html = e._repr_html_()
    assert html.count("<table") == 3
    assert "<td>J</td><td>L+R</td><td>0.834694</td>" in html  # seed 003, iteration 1
    assert '<tr data-pass="update" data-id="2"><td>a</td><td>1.000000</td><td>0.449854</td>' \
           '<td>0.955015</td></tr>' in html
    assert html.count('data-pass="backward"') == len(e.backward)
    g = gg.Graph()
    _ = g.output(g.input("x") * g.parameter("w", 3.0) + g.constant(1.0, name="<b>"), name="z")
    assert "&lt;b&gt;" in g.explain({"x": 2.0})._repr_html_()  # names are escaped


def test_history_shows_as_html_with_its_plot():
    history = fit(gg.nn.Linear(1, 1), gg.nn.MSELoss(),
                  (gg.linspace(-1, 1, 8).reshape(8, 1), gg.linspace(-1, 1, 8).reshape(8, 1)),
                  epochs=25, lr=0.1, progress=False, diagnose=False)
    html = history._repr_html_()
    rows = re.findall(r"<tr><td>(\d+|…)</td>", html)
    assert rows == [str(k) for k in range(1, 11)] + ["…"] + [str(k) for k in range(16, 26)]
    assert f"<td>{history.epochs[-1]['train_loss']:.4g}</td>" in html
    assert 'src="data:image/png;base64,' in html
    picture = history.plot()
    assert picture._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<tbody></tbody>" in History()._repr_html_()
