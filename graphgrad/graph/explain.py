"""Explain a graph the way a person works it by hand.

Forward: every node's value in execution order. Backward, in reverse order: each node's gradient
(the sum of what its consumers sent it, so a merge of branches shows as a sum), its local
derivatives and what it sends to each input. Then the parameter update for a learning rate. As
text for the terminal, Markdown, or JSON.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import numpy as np

from ..ops import OPS
from ..ops.numpy_ns import VjpContext
from .core import Graph
from .execute import GraphRun, operand_arrays

_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^", "matmul": "@"}
_MAX_FORMULA = 40


@dataclass
class Explanation:
    """The worked table of one forward and backward pass (and update), as plain data."""

    forward: list = field(default_factory=list)
    backward: list = field(default_factory=list)
    update: list = field(default_factory=list)
    run: GraphRun | None = None
    lr: float | None = None

    def to_dict(self) -> dict:
        return {
            "forward": self.forward,
            "backward": self.backward,
            "update": self.update,
            "lr": self.lr,
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), default=_jsonable, **kwargs)

    def apply_update(self) -> None:
        """Write the updated parameter values into the graph (one step of gradient descent)."""
        if self.lr is None:
            raise ValueError("no update to apply: explain(..., lr=...) computes one")
        graph = self.run.graph
        for row in self.update:
            param = graph.nodes[row["id"]].value
            param.data = np.asarray(row["new"], dtype=param.numpy(force=True).dtype)

    def to_text(self) -> str:
        lines = ["Forward pass (execution order)"]
        lines += _aligned(
            [["step", "node", "computes", "value"]]
            + [[str(r["step"]), r["name"], r["formula"], _fmt(r["value"])] for r in self.forward]
        )
        lines += ["", "Backward pass (reverse order): dJ/dnode = sum of what its users sent"]
        for r in self.backward:
            parts = " + ".join(f"{_fmt(p['value'])} (from {p['from']})" for p in r["parts"])
            total = _fmt(r["grad"])
            merge = f" = {parts} = {total}" if len(r["parts"]) > 1 else f" = {total}"
            seed = "  (output: seeded with 1)" if r["seeded"] else ""
            lines.append(f"  d{_d(r['output'])}/d{_d(r['name'])}{merge}{seed}")
            for s in r["sends"]:
                local = (
                    ""
                    if s["local"] is None
                    else f"local d{_d(r['name'])}/d{_d(s['to'])} = {_fmt(s['local'])}, "
                )
                lines.append(f"      -> {s['to']}: {local}sends {_fmt(s['value'])}")
        if self.update:
            lines += ["", f"Update: theta <- theta - lr * dJ/dtheta  (lr = {self.lr:g})"]
            lines += _aligned(
                [["param", "value", "gradient", "new value"]]
                + [
                    [r["name"], _fmt(r["value"]), _fmt(r["grad"]), _fmt(r["new"])]
                    for r in self.update
                ]
            )
        return "\n".join(lines)

    def to_markdown(self) -> str:
        out = ["**Forward pass**", "", "| step | node | computes | value |", "|---|---|---|---|"]
        out += [
            f"| {r['step']} | {r['name']} | `{r['formula']}` | {_fmt(r['value'])} |"
            for r in self.forward
        ]
        out += [
            "",
            "**Backward pass**",
            "",
            "| node | gradient | from users | local derivatives | sends |",
            "|---|---|---|---|---|",
        ]
        for r in self.backward:
            parts = " + ".join(f"{_fmt(p['value'])} ({p['from']})" for p in r["parts"]) or "seed 1"
            local = "; ".join(
                f"∂/∂{s['to']} = {_fmt(s['local'])}" for s in r["sends"] if s["local"] is not None
            )
            sends = "; ".join(f"{s['to']}: {_fmt(s['value'])}" for s in r["sends"])
            out.append(f"| {r['name']} | {_fmt(r['grad'])} | {parts} | {local} | {sends} |")
        if self.update:
            out += [
                "",
                f"**Update** (lr = {self.lr:g})",
                "",
                "| parameter | value | gradient | new value |",
                "|---|---|---|---|",
            ]
            out += [
                f"| {r['name']} | {_fmt(r['value'])} | {_fmt(r['grad'])} | {_fmt(r['new'])} |"
                for r in self.update
            ]
        return "\n".join(out)

    def to_html(self) -> str:
        """The tables of :meth:`to_markdown` as HTML (what Jupyter shows); each row carries
        ``data-pass`` and ``data-id`` (the node id), so a page can reveal rows step by step.

        >>> import graphgrad as gg
        >>> g = gg.Graph()
        >>> _ = g.output(g.input("x") * g.parameter("w", 3.0), name="z")
        >>> html = explain(g, {"x": 2.0}, lr=0.1).to_html()
        >>> html.count('data-pass="forward"'), "<td>6.000000</td>" in html
        (3, True)
        """
        forward = [
            _html_row("forward", r["id"], [r["step"], r["name"], r["formula"], _fmt(r["value"])])
            for r in self.forward
        ]
        backward = []
        for r in self.backward:
            parts = " + ".join(f"{_fmt(p['value'])} ({p['from']})" for p in r["parts"]) or "seed 1"
            local = "; ".join(
                f"∂/∂{s['to']} = {_fmt(s['local'])}" for s in r["sends"] if s["local"] is not None
            )
            sends = "; ".join(f"{s['to']}: {_fmt(s['value'])}" for s in r["sends"])
            backward.append(_html_row("backward", r["id"], [r["name"], _fmt(r["grad"]), parts,
                                                            local, sends]))
        sections = [
            _html_table("Forward pass", ["step", "node", "computes", "value"], forward),
            _html_table("Backward pass", ["node", "gradient", "from users", "local derivatives",
                                          "sends"], backward),
        ]
        if self.update:
            update = [
                _html_row("update", r["id"], [r["name"], _fmt(r["value"]), _fmt(r["grad"]),
                                              _fmt(r["new"])])
                for r in self.update
            ]
            sections.append(_html_table(f"Update (lr = {self.lr:g})",
                                        ["parameter", "value", "gradient", "new value"], update))
        return '<div class="graphgrad-explain">\n' + "\n".join(sections) + "\n</div>"

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_text()


def _html_row(section: str, node_id: int, cells: list) -> str:
    tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
    return f'<tr data-pass="{section}" data-id="{node_id}">{tds}</tr>'


def _html_table(caption: str, header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return (f'<table class="graphgrad-{caption.split()[0].lower()}">'
            f"<caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def explain(graph: Graph, inputs=None, *, lr: float | None = None) -> Explanation:
    """Run ``graph`` forward and backward on ``inputs`` and lay out every step.

    >>> import graphgrad as gg
    >>> g = gg.Graph()
    >>> x, w, b = g.input("x"), g.parameter("w", 3.0), g.parameter("b", 1.0)
    >>> _ = g.output(x * w + b, name="z")
    >>> print(gg.graph.explain(g, {"x": 2.0}).to_text().splitlines()[-1])
      dz/dx = 3.000000
    """
    run = graph.run(inputs, backward=True)
    labels = _labels(graph)
    out_name = labels[graph.outputs[0]] if len(graph.outputs) == 1 else "outputs"
    e = Explanation(run=run, lr=lr)
    for step, t in enumerate(graph.topological_order(), start=1):
        node = graph.nodes[t]
        e.forward.append(
            {
                "step": step,
                "id": t,
                "name": labels[t],
                "kind": node.kind,
                "op": node.op,
                "formula": _formula(graph, t, labels) if node.name else labels[t],
                "value": _plain(run.values[t]),
            }
        )
    users = graph.consumers()
    for t in reversed(graph.topological_order()):
        if t not in run.grads:
            continue
        e.backward.append(_backward_row(graph, run, t, users[t], labels, out_name))
    if lr is not None:
        for node in graph.parameters:
            g = run.grads.get(node.id)
            if g is None:
                continue
            value = node.value.numpy(force=True)
            e.update.append(
                {
                    "id": node.id,
                    "name": labels[node.id],
                    "value": _plain(value),
                    "grad": _plain(g),
                    "new": _plain(value - lr * g),
                }
            )
    return e


def _backward_row(graph, run, t, users, labels, out_name) -> dict:
    node = graph.nodes[t]
    parts = [
        {"from": labels[c], "value": _plain(g)}
        for (c, _position, i), g in sorted(run.contributions.items())
        if i == t
    ]
    sends = []
    if node.kind == "op":
        local = _local_derivatives(graph, run, node)
        for (c, position, i), g in sorted(run.contributions.items()):
            if c == t:
                sends.append({"to": labels[i], "local": local[position], "value": _plain(g)})
    return {
        "id": t,
        "name": labels[t],
        "output": out_name,
        "grad": _plain(run.grads[t]),
        "parts": parts,
        "seeded": t in graph.outputs,
        "sends": sends,
    }


def _local_derivatives(graph, run, node) -> list:
    """d(node)/d(input) for scalar nodes: the vjp of an upstream gradient of exactly 1."""
    out = run.values[node.id]._data
    arrays = operand_arrays(run, node)
    if out.size != 1 or any(a.size != 1 for a in arrays):
        return [None] * len(arrays)
    ctx = VjpContext(node.params, out, (True,) * len(arrays))
    grads = OPS[node.op].vjp(ctx, np.ones_like(out), *arrays)
    return [None if g is None else float(np.sum(g)) for g in grads]


def _labels(graph: Graph) -> list[str]:
    """A name for every node: its own, else the formula it computes from its inputs' labels
    (``a*x``, ``(c*h)+u``, ``1/(1+v)``), else ``#id`` when the formula grows too long."""
    labels = [""] * len(graph.nodes)
    for t in graph.topological_order():
        node = graph.nodes[t]
        labels[t] = node.name or _formula(graph, t, labels)
    return labels


def _formula(graph: Graph, t: int, labels: list[str]) -> str:
    """How a node is computed from its inputs' labels: ``a*x``, ``tanh(v)``, ``u^2``."""
    node = graph.nodes[t]
    if node.kind != "op":
        return node.kind
    names = [_operand_label(graph, i, labels) for i in node.inputs]
    if node.op in _SYMBOLS and len(names) == 2:
        text = f"{names[0]}{_SYMBOLS[node.op]}{names[1]}"
    elif node.op == "pow_scalar":
        text = f"{names[0]}^{node.params[0]:g}"
    elif node.op == "neg":
        text = f"-{names[0]}"
    else:
        text = f"{node.op}({', '.join(n.strip('()') for n in names)})"
    return text if len(text) <= _MAX_FORMULA else f"#{t}"


def _operand_label(graph: Graph, i: int, labels: list[str]) -> str:
    """An input's label, in parentheses when it is an unnamed compound like ``c*h``."""
    label = labels[i]
    compound = not graph.nodes[i].name and graph.nodes[i].kind == "op" and not label.startswith("#")
    return f"({label})" if compound and any(s in label for s in "+-*/^@") else label


def _d(label: str) -> str:
    """``label`` as it appears after a d in a derivative: dv, d(p-y)."""
    simple = label.replace("_", "").replace(".", "").isalnum()
    return label if simple else f"({label})"


def _plain(x):
    """A value as JSON-friendly data: a float for a scalar, nested lists otherwise (None for
    an operand left out)."""
    if x is None:
        return None
    array = np.asarray(getattr(x, "_data", x))
    return float(array.reshape(())) if array.size == 1 and array.ndim == 0 else array.tolist()


def _fmt(v) -> str:
    if v is None:  # an operand left out
        return "None"
    if isinstance(v, list):
        array = np.asarray(v, dtype=float)
        if array.size <= 4:
            return "[" + ", ".join(_fmt(float(x)) for x in array.ravel()) + "]"
        return f"shape {array.shape}, mean {_fmt(float(array.mean()))}"
    v += 0.0  # -0.0 prints as 0.000000: the sign of a zero carries no meaning in the table
    if v == 0 or 1e-4 <= abs(v) < 1e6:
        return f"{v:.6f}"
    return f"{v:.6e}"


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _aligned(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines with left-aligned columns, indented by two spaces."""
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    ]
