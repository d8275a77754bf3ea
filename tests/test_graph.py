"""The Graph layer: building, errors, JSON, replay, graph backward, executors, explain and fit.

Every check compares with something the Graph layer did not compute itself: torch (the same
computation written directly in torch), numbers worked by hand, or eager graphgrad where the
claim is "replaying the graph gives what calling the function gives". Sizes are small so the
whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import graphgrad as gg
from graphgrad.graph import (
    GraphError,
    NodeFailed,
    NodeState,
    Scheduler,
    SerialExecutor,
    StepExecutor,
    ThreadPoolExecutor,
    examples,
    fit,
)
from graphgrad.graph.schedule import Job

# float32 results of the same math in two libraries differ by rounding only.
F32 = {"rtol": 1e-5, "atol": 1e-6}
F64 = {"rtol": 1e-12, "atol": 1e-14}


def _np(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, (gg.Tensor, torch.Tensor)) else np.asarray(t)


def _post_order(graph) -> list[int]:
    """Reference post-order from the outputs (inputs first, in input order), written
    recursively: independent of the library's iterative walk and fine for small graphs."""
    order: list[int] = []

    def visit(node_id: int) -> None:
        if node_id in order:
            return
        for i in graph.nodes[node_id].inputs:
            visit(i)
        order.append(node_id)

    for root in graph.outputs:
        visit(root)
    return order


def _assert_inputs_first(graph, order: list[int]) -> None:
    position = {t: k for k, t in enumerate(order)}
    for t in order:
        for i in graph.nodes[t].inputs:
            assert position[i] < position[t], f"node {t} comes before its input {i}"


# ----------------------------------------------------------------------------------------------
# 1. Building by hand
# ----------------------------------------------------------------------------------------------


def _diamond():
    """x -> exp, tanh -> add: two branches from one source merging in one node."""
    g = gg.Graph()
    x = g.input("x", shape=(2,))
    a = g.op("exp", x, name="a")
    b = g.op("tanh", x, name="b")
    g.output(g.add(a, b, name="c"))
    return g


def _wide():
    """Two sources, four nodes at depth 1, then a chain of two; outputs e and f."""
    g = gg.Graph()
    x, y = g.input("x", shape=(3,)), g.input("y", shape=(3,))  # 0, 1
    a = g.op("exp", x, name="a")  # 2
    b = g.op("tanh", y, name="b")  # 3
    c = g.mul(x, y, name="c")  # 4
    d = g.add(a, b, name="d")  # 5
    e = g.mul(d, c, name="e")  # 6
    f = g.neg(x, name="f")  # 7
    g.output(e)
    g.output(f)
    return g


def test_listing_properties_of_a_hand_built_graph() -> None:
    g = gg.Graph()
    x = g.input("x", shape=(3,))
    w = g.parameter("w", 3.0)
    b = g.parameter("b", [1.0, 2.0, 3.0])
    z = g.output(x * w + b * 2.0, name="z")  # 2.0 becomes a constant node
    assert [n.name for n in g.inputs] == ["x"]
    assert [n.name for n in g.parameters] == ["w", "b"]
    assert [(n.name, n.value.item()) for n in g.constants] == [("2", 2.0)]
    assert [n.op for n in g.operations] == ["mul", "mul", "add"]
    assert g.outputs == [z.id]
    assert len(g.nodes) == 7 and [n.id for n in g.nodes] == list(range(7))
    assert g.node("z").op == "add" and g.node("z").shape == (3,)
    # parameters are leaves that require grad, like nn.Parameter
    assert all(n.value.requires_grad for n in g.parameters)
    out = g.run({"x": [1.0, 2.0, 3.0]}).output
    np.testing.assert_array_equal(_np(out), [5.0, 10.0, 15.0])  # 3x + 2b, by hand


def test_topological_order_of_a_diamond_is_the_hand_worked_post_order() -> None:
    g = _diamond()
    assert g.topological_order() == [0, 1, 2, 3]
    assert g.levels() == [[0], [1, 2], [3]]


def test_levels_of_a_wide_graph_by_hand() -> None:
    g = _wide()
    # e needs d (which needs a, b) and c; f needs only x.
    assert g.levels() == [[0, 1], [2, 3, 4, 7], [5], [6]]


def test_topological_order_is_a_post_order_from_the_outputs() -> None:
    g = _wide()
    order = g.topological_order()
    _assert_inputs_first(g, order)
    assert order == _post_order(g) == [0, 2, 1, 3, 5, 4, 6, 7]


def test_topological_order_of_a_random_dag_matches_a_recursive_post_order() -> None:
    g, _ = _random_dag(seed=3)
    order = g.topological_order()
    _assert_inputs_first(g, order)
    assert order == _post_order(g)
    assert sorted(order) == sorted(set(order))  # each node once


def test_a_100000_node_chain_needs_no_recursion() -> None:
    g = gg.Graph()
    node = g.input("x")  # no shape: nothing to probe while building
    for _ in range(100_000):
        node = g.op("neg", node)
    g.output(node)
    order = g.topological_order()
    assert order == list(range(100_001))
    levels = g.levels()
    assert len(levels) == 100_001 and levels[-1] == [100_000]
    # an even number of negations gives x back
    assert g.run({"x": 2.5}).output.item() == 2.5


# ----------------------------------------------------------------------------------------------
# 2. Errors
# ----------------------------------------------------------------------------------------------


def _three_node_cycle():
    g = gg.Graph()
    x = g.input("x")
    a = g.op("exp", x, name="alpha")
    b = g.op("tanh", a, name="beta")
    c = g.op("neg", b, name="gamma")
    g.output(c)
    g.set_inputs(a, c)  # alpha now reads gamma: alpha -> beta -> gamma -> alpha
    return g


def test_a_cycle_made_by_hand_is_named() -> None:
    g = _three_node_cycle()
    for action in (g.topological_order, g.levels, lambda: g.run({"x": 1.0})):
        with pytest.raises(GraphError, match="cycle") as info:
            action()
        message = str(info.value)
        assert all(name in message for name in ("alpha", "beta", "gamma"))
        assert "(#0)" not in message  # the input x feeds the cycle but is not on it


def test_a_dangling_input_id_is_a_graph_error() -> None:
    g = gg.Graph()
    x = g.input("x")
    with pytest.raises(GraphError, match="dangling"):
        g.op("exp", gg.graph.Ref(g, 5))
    y = g.op("exp", x, name="y")
    g.output(y)
    g.set_inputs(y, 7)  # wired by hand to a node that does not exist
    with pytest.raises(GraphError, match="dangling"):
        g.topological_order()


def test_a_dangling_input_in_json_is_a_graph_error() -> None:
    data = _diamond().to_dict()
    data["nodes"][3]["inputs"] = [1, 9]
    with pytest.raises(GraphError, match="dangling"):
        gg.Graph.from_dict(data)


def test_duplicate_input_and_parameter_names_are_refused() -> None:
    g = gg.Graph()
    g.input("x")
    with pytest.raises(GraphError, match="'x'"):
        g.input("x")
    with pytest.raises(GraphError, match="'x'"):
        g.parameter("x", 1.0)


def test_matmul_shapes_are_checked_when_the_graph_is_built() -> None:
    g = gg.Graph()
    a, b = g.input("a", shape=(3, 4)), g.input("b", shape=(5, 2))
    with pytest.raises(GraphError, match="inner dimensions differ") as info:
        g.matmul(a, b)
    assert "(3, 4)" in str(info.value) and "(5, 2)" in str(info.value)


def test_an_unknown_op_is_refused() -> None:
    g = gg.Graph()
    x = g.input("x")
    with pytest.raises(GraphError, match="unknown op 'frobnicate'"):
        g.op("frobnicate", x)


def _matmul_graph():
    g = gg.Graph()
    a, b = g.input("a", shape=(3, 4)), g.input("b", shape=(4, 2))
    g.output(a @ b)
    return g


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"a": np.ones((3, 4))}, "missing a value for input 'b'"),
        ({"a": np.ones((3, 4)), "b": np.ones((4, 2)), "c": 1.0}, "unknown input 'c'"),
        ({"a": np.ones((3, 5)), "b": np.ones((4, 2))}, r"input 'a' has shape \(3, 5\)"),
        ([np.ones((3, 4))], "takes 2 inputs"),
    ],
)
def test_run_with_bad_inputs_says_what_is_wrong(inputs, message) -> None:
    with pytest.raises(GraphError, match=message):
        _matmul_graph().run(inputs)


# ----------------------------------------------------------------------------------------------
# 3. JSON
# ----------------------------------------------------------------------------------------------


def _same_param(p, q) -> bool:
    if isinstance(p, np.ndarray) or isinstance(q, np.ndarray):
        return (
            isinstance(p, np.ndarray)
            and isinstance(q, np.ndarray)
            and p.dtype == q.dtype
            and np.array_equal(p, q)
        )
    if isinstance(p, tuple) and isinstance(q, tuple):
        return len(p) == len(q) and all(_same_param(a, b) for a, b in zip(p, q))
    return type(p) is type(q) and p == q


def _assert_same_structure(g, h) -> None:
    assert len(g.nodes) == len(h.nodes) and g.outputs == h.outputs
    for n, m in zip(g.nodes, h.nodes):
        fields = ("id", "kind", "name", "op", "inputs", "shape", "dtype")
        assert [getattr(n, f) for f in fields] == [getattr(m, f) for f in fields]
        assert _same_param(n.params, m.params), (n.params, m.params)
        if n.value is None:
            assert m.value is None
        else:
            assert n.value.dtype == m.value.dtype
            assert n.value.requires_grad == m.value.requires_grad
            np.testing.assert_array_equal(_np(n.value), _np(m.value))


def _indexing(x, w):
    """Index arrays, boolean masks, slices, None, Ellipsis and a cast, all in op params."""
    picked = x[[0, 2, 3]][:, None, 1:]  # (3, 1, 5)
    masked = x[np.array([True, False, True, False])]  # (2, 6)
    tail = x[..., ::2].double().float()  # (4, 3)
    return picked.sum() + (masked @ w).sum() + tail.mean(dim=0).sum()


def test_json_round_trip_keeps_structure_and_values() -> None:
    rng = np.random.default_rng(1)
    w = gg.tensor(rng.standard_normal((6, 2)), dtype=gg.float32, requires_grad=True)
    x = gg.tensor(rng.standard_normal((4, 6)), dtype=gg.float32)
    g = gg.trace(lambda x: _indexing(x, w), x, names={"w": w})
    h = gg.Graph.from_json(g.to_json())
    _assert_same_structure(g, h)
    ops = {n.op for n in h.operations}
    assert {"getitem", "cast", "matmul"} <= ops
    assert h.to_json() == g.to_json()  # the JSON form is stable
    new_x = gg.tensor(rng.standard_normal((4, 6)), dtype=gg.float32)
    assert h(new_x).item() == g(new_x).item() == _indexing(new_x, w).item()


def test_json_round_trip_of_the_seed_graph_runs_to_the_same_numbers() -> None:
    g = examples.branch_and_merge()
    h = gg.Graph.from_json(g.to_json())
    _assert_same_structure(g, h)
    inputs = {"x": 2.0, "y": 1.0}
    g_run, h_run = g.run(inputs, backward=True), h.run(inputs, backward=True)
    assert g_run.output.item() == h_run.output.item()
    for name in "abcd":
        assert g_run.grad(name) == h_run.grad(name)


@pytest.mark.parametrize("fmt", ["graphgrad.graph/2", "", None])
def test_json_with_another_format_is_refused(fmt) -> None:
    data = _diamond().to_dict()
    data["format"] = fmt
    with pytest.raises(GraphError, match="format"):
        gg.Graph.from_json(json.dumps(data))


# ----------------------------------------------------------------------------------------------
# 4. Replay: trace a function, run the graph on new inputs
# ----------------------------------------------------------------------------------------------
# Each case is written once against a library module (gg or torch): (function, input shapes,
# weight shapes). Weights require grad and become the graph's parameters.


def _mlp(lib, x, w1, b1, w2, b2):
    return ((x @ w1 + b1).relu() @ w2 + b2).tanh()


def _softmaxes(lib, x):
    return x.softmax(dim=1) * 2.0 + x.log_softmax(dim=-1)


def _select(lib, x, y):
    return lib.where(x > 0, x, y * 3.0)


def _slices(lib, x):
    return x[1:, ::2] * x[:-1, 1::2] + x[1:, 0:1] + x[1:, None, 3].sum(dim=1, keepdim=True)


def _matmuls(lib, x, y):
    return (x @ y.T) @ x


def _reductions(lib, x):
    return (
        x.sum(dim=0)
        + x.mean(dim=1, keepdim=True)
        + x.amax(dim=-1, keepdim=True)
        + x.logsumexp(dim=1, keepdim=True)
        + x.sum(dim=(0, 1))
    )


CASES = {
    "mlp": (_mlp, [(4, 3)], [(3, 5), (5,), (5, 2), (2,)]),
    "softmaxes": (_softmaxes, [(4, 6)], []),
    "where": (_select, [(4, 6), (4, 6)], []),
    "slices": (_slices, [(4, 6)], []),
    "matmul": (_matmuls, [(4, 3), (4, 3)], []),
    "reductions": (_reductions, [(4, 6)], []),
}


def _arrays(rng, shapes) -> list[np.ndarray]:
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _gg(arrays, requires_grad=False) -> list:
    return [gg.tensor(a, requires_grad=requires_grad) for a in arrays]


def _torch(arrays, requires_grad=False) -> list:
    return [torch.tensor(a, requires_grad=requires_grad) for a in arrays]


def _traced_case(name, seed=0):
    """The case's graph traced on one set of inputs, its gg weights, and new input arrays."""
    fn, input_shapes, weight_shapes = CASES[name]
    rng = np.random.default_rng(seed)
    weights = _arrays(rng, weight_shapes)
    gg_weights = _gg(weights, requires_grad=True)
    examples_in = _gg(_arrays(rng, input_shapes))
    graph = gg.trace(lambda *xs: fn(gg, *xs, *gg_weights), *examples_in)
    return graph, fn, weights, gg_weights, _arrays(rng, input_shapes)


@pytest.mark.parametrize("name", sorted(CASES))
def test_replay_on_new_inputs_equals_eager_and_torch(name) -> None:
    graph, fn, weights, gg_weights, new = _traced_case(name)
    replayed = graph(*_gg(new))
    eager = fn(gg, *_gg(new), *gg_weights)
    np.testing.assert_array_equal(_np(replayed), _np(eager))
    expected = fn(torch, *_torch(new), *_torch(weights))
    np.testing.assert_allclose(_np(replayed), _np(expected), **F32)
    assert [n.name for n in graph.inputs] == ["x0", "x1"][: len(new)]
    assert len(graph.parameters) == len(weights)


def test_replay_replays_the_comparison_of_where() -> None:
    graph, *_ = _traced_case("where")
    assert any(n.op == "gt" for n in graph.operations)  # not frozen as a constant mask
    x = gg.tensor([[1.0, -1.0], [-2.0, 2.0]])
    y = gg.tensor([[10.0, 20.0], [30.0, 40.0]])
    graph = gg.trace(lambda x, y: _select(gg, x, y), gg.ones(2, 2), gg.ones(2, 2))
    # traced with all x > 0, replayed with mixed signs: the mask must follow the new x
    np.testing.assert_array_equal(_np(graph(x, y)), [[1.0, 60.0], [90.0, 2.0]])


def test_graph_backward_sends_no_gradient_through_an_integer_cast() -> None:
    # torch: (x*w).long() is a constant for autograd, so d/dw sum(x*w*(x*w).long()) = x*floor(x*w)
    def f(lib, x, w):
        return (x * w * (x * w).long()).sum()

    x_t, w_t = torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.5], requires_grad=True)
    f(torch, x_t, w_t).backward()
    graph = gg.trace(lambda x, w: f(gg, x, w), gg.tensor([1.0, 2.0]), gg.tensor([1.5, 2.5]))
    run = graph.run({node.name: v for node, v in zip(graph.inputs, ([1.0, 2.0], [1.5, 2.5]))},
                    backward=True)
    np.testing.assert_array_equal(run.grad(graph.inputs[1].id), w_t.grad.numpy())


def _gradients(out, tensors) -> list[np.ndarray]:
    out.sum().backward()
    grads = [t.grad.numpy().copy() for t in tensors]
    for t in tensors:
        t.grad = None
    return grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_through_a_replayed_output_equals_eager_and_torch(name) -> None:
    graph, fn, weights, gg_weights, new = _traced_case(name)
    xs = _gg(new, requires_grad=True)
    replay_grads = _gradients(graph(*xs), xs + gg_weights)
    xs = _gg(new, requires_grad=True)
    eager_grads = _gradients(fn(gg, *xs, *gg_weights), xs + gg_weights)
    for r, e in zip(replay_grads, eager_grads):
        np.testing.assert_array_equal(r, e)
    ts = _torch(new, requires_grad=True) + _torch(weights, requires_grad=True)
    fn(torch, *ts).sum().backward()
    for r, t in zip(replay_grads, ts):
        np.testing.assert_allclose(r, t.grad.numpy(), **F32)


def test_a_data_dependent_boolean_mask_is_replayed_or_refused() -> None:
    # x[x > 0] is a mask computed from the input: freezing the example's mask into the graph
    # would replay the wrong elements without a word. Either replay it or refuse to trace it.
    def positives(x):
        return x[x > 0].sum()

    try:
        graph = gg.trace(positives, gg.tensor([1.0, -1.0, 2.0, -2.0]))
    except GraphError:
        return
    new = gg.tensor([-1.0, 5.0, -2.0, 7.0])
    assert graph(new).item() == positives(new).item() == 12.0


def _mlp_loss_eager(rng):
    x = gg.tensor(rng.standard_normal((4, 3)), dtype=gg.float32)
    y = gg.tensor(rng.standard_normal((4, 2)), dtype=gg.float32)
    weights = {
        k: gg.tensor(a, requires_grad=True)
        for k, a in zip(("w1", "b1", "w2", "b2"), _arrays(rng, [(3, 5), (5,), (5, 2), (2,)]))
    }
    out = _mlp(gg, x, *weights.values())
    return ((out - y) ** 2).mean(), x, y, weights


def test_from_outputs_reproduces_the_eager_loss() -> None:
    loss, x, y, weights = _mlp_loss_eager(np.random.default_rng(2))
    g = gg.Graph.from_outputs(loss, inputs={"x": x, "y": y}, names=weights)
    assert [n.name for n in g.inputs] == ["x", "y"]
    assert sorted(n.name for n in g.parameters) == sorted(weights)
    assert g.run({"x": x, "y": y}).output.item() == loss.item()
    # and the graph's own backward gives autograd's gradients (taken first: the graph's
    # backward also accumulates into the same tensors' .grad)
    loss.backward()
    eager = {name: w.grad.numpy().copy() for name, w in weights.items()}
    run = g.run({"x": x, "y": y}, backward=True)
    for name in weights:
        np.testing.assert_array_equal(run.grad(name), eager[name])


# ----------------------------------------------------------------------------------------------
# 5. Graph backward
# ----------------------------------------------------------------------------------------------


def test_seed001_graph_backward_by_hand_and_torch() -> None:
    run = examples.linear_node().run({"x": 2.0}, backward=True)
    # small integers: every number is exact
    assert run.output.item() == 7.0
    assert [float(run.grad(k)) for k in ("x", "w", "b")] == [3.0, 2.0, 1.0]
    x, w, b = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (2.0, 3.0, 1.0))
    (x * w + b).backward()
    assert [float(run.grad(k)) for k in ("x", "w", "b")] == [x.grad, w.grad, b.grad]


def _torch_polynomial_loss(c, data):
    x1, x2, y = (torch.tensor(data[k], dtype=torch.float64) for k in ("x1", "x2", "y"))
    prediction = c[0] * x1**2 + c[1] * x1 + c[2] * x2**2 + c[3] * x2 + c[4]
    return ((prediction - y) ** 2).mean()


def test_polynomial_graph_gradients_equal_torch() -> None:
    coefficients = (1.0, -2.0, 0.5, 3.0, -1.0)
    data = examples.polynomial_data(points=20)
    run = examples.polynomial(coefficients).run(data, backward=True)
    c = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in coefficients]
    loss = _torch_polynomial_loss(c, data)
    loss.backward()
    assert run.output.item() == pytest.approx(loss.item(), rel=1e-12)
    for i, ci in enumerate(c):
        np.testing.assert_allclose(run.grad(f"c{i}"), ci.grad.numpy(), **F64)


def _mlp_graph(rng):
    """x (4, 3) -> relu(x W1 + b1) W2 + b2 -> mean squared error against y, built by hand."""
    arrays = dict(zip(("W1", "b1", "W2", "b2"), _arrays(rng, [(3, 5), (5,), (5, 2), (2,)])))
    g = gg.Graph()
    x, y = g.input("x", shape=(4, 3)), g.input("y", shape=(4, 2))
    p = {k: g.parameter(k, a) for k, a in arrays.items()}
    hidden = (x @ p["W1"] + p["b1"]).relu()
    out = hidden @ p["W2"] + p["b2"]
    g.output(((out - y) ** 2).mean(), name="loss")
    data = {"x": _arrays(rng, [(4, 3)])[0], "y": _arrays(rng, [(4, 2)])[0]}
    return g, arrays, data


def test_mlp_graph_backward_equals_torch() -> None:
    g, arrays, data = _mlp_graph(np.random.default_rng(4))
    run = g.run(data, backward=True)
    w = {k: torch.tensor(a, requires_grad=True) for k, a in arrays.items()}
    x = torch.tensor(data["x"], requires_grad=True)
    out = (x @ w["W1"] + w["b1"]).relu() @ w["W2"] + w["b2"]
    loss = ((out - torch.tensor(data["y"])) ** 2).mean()
    loss.backward()
    np.testing.assert_allclose(run.output.item(), loss.item(), **F32)
    for k, t in w.items():
        assert run.grad(k).dtype == np.float32  # float32 stays float32 through backward
        np.testing.assert_allclose(run.grad(k), t.grad.numpy(), **F32)
    np.testing.assert_allclose(run.grad("x"), x.grad.numpy(), **F32)


def test_graph_backward_accumulates_into_parameter_grad() -> None:
    g, _, data = _mlp_graph(np.random.default_rng(5))
    first = g.run(data, backward=True).grad("W1")
    param = g.node("W1").value
    np.testing.assert_array_equal(param.grad.numpy(), first)
    g.run(data, backward=True)
    # as after two loss.backward() calls without zeroing
    np.testing.assert_array_equal(param.grad.numpy(), first + first)


def test_grad_before_backward_is_an_error() -> None:
    run = examples.linear_node().run({"x": 2.0})
    with pytest.raises(RuntimeError, match="no gradients yet"):
        run.grad("w")


# ----------------------------------------------------------------------------------------------
# 6. Executors
# ----------------------------------------------------------------------------------------------


def _random_dag(seed: int, layers: int = 5, width: int = 4):
    """Layers of matmul (then tanh, to stay bounded), add, tanh and mul nodes on 32x32 float32
    values; operands are drawn from all earlier nodes (fan-out) and the last layer is summed
    into one output (fan-in). A second output is an inner node."""
    rng = np.random.default_rng(seed)
    g = gg.Graph()
    inputs = {f"in{i}": rng.uniform(-1, 1, (32, 32)).astype(np.float32) for i in range(3)}
    pool = [g.input(name, shape=(32, 32)) for name in inputs]
    pool += [g.parameter(f"p{i}", rng.uniform(-1, 1, (32, 32)).astype(np.float32)) for i in (0, 1)]
    for _ in range(layers):
        layer = []
        for _ in range(width):
            a, b = (pool[k] for k in rng.integers(0, len(pool), 2))
            kind = rng.choice(["matmul", "add", "tanh", "mul"])
            if kind == "matmul":
                layer.append(g.op("tanh", g.matmul(a, b)))
            elif kind == "tanh":
                layer.append(g.op("tanh", a))
            else:
                layer.append(g.op(str(kind), a, b))
        pool += layer
    total = layer[0]
    for node in layer[1:]:
        total = g.add(total, node)
    g.output(total)
    g.output(pool[len(pool) // 2])
    return g, inputs


def _assert_runs_equal(run, reference) -> None:
    assert run.values.keys() == reference.values.keys()
    for t, value in reference.values.items():
        assert np.all(np.isfinite(_np(value)))
        assert np.array_equal(_np(run.values[t]), _np(value)), f"value of node {t}"
    assert run.grads.keys() == reference.grads.keys()
    for t, grad in reference.grads.items():
        assert np.array_equal(run.grads[t], grad), f"gradient of node {t}"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("min_cost", [0, None])
def test_thread_pool_gives_the_serial_bits(seed, min_cost) -> None:
    g, inputs = _random_dag(seed)
    reference = g.run(inputs, executor=SerialExecutor(), backward=True)
    options = {} if min_cost is None else {"min_cost": min_cost}
    pool = ThreadPoolExecutor(workers=2, **options)
    try:
        for _ in range(2):  # the pool is reused between runs
            _assert_runs_equal(g.run(inputs, executor=pool, backward=True), reference)
    finally:
        pool.close()


def _check_events(events, graph) -> None:
    assert sorted(e.node for e in events) == sorted(graph.topological_order())
    for e in events:
        assert e.state == "done" and e.worker and 0 <= e.start <= e.end
        assert e.as_dict()["node"] == e.node


def test_step_executor_gives_the_serial_values_and_events() -> None:
    g, inputs = _random_dag(seed=7)
    reference = g.run(inputs, executor=SerialExecutor(), backward=True)
    ex = StepExecutor()
    run = g.run(inputs, executor=ex)
    run.backward(executor=StepExecutor())
    _assert_runs_equal(run, reference)
    _check_events(run.events, g)
    assert [e.node for e in run.events] == [e.node for e in reference.events]
    assert ex.step() is None  # the run is over


def test_step_executor_forward_events_are_only_the_forward_pass() -> None:
    g = examples.linear_node()
    ex = StepExecutor()
    run = g.run({"x": 2.0}, executor=ex, backward=True)
    # one forward event per node; the backward pass has its own list
    assert [e.node for e in run.events] == g.topological_order()
    again = g.run({"x": 2.0}, executor=ex)  # a reused executor starts a fresh record
    assert [e.node for e in again.events] == g.topological_order()


def test_step_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        StepExecutor().step()


def test_events_of_serial_and_thread_pool_runs() -> None:
    g, inputs = _random_dag(seed=8)
    pool = ThreadPoolExecutor(workers=2, min_cost=0)
    try:
        for executor in (SerialExecutor(), pool):
            run = g.run(inputs, executor=executor, backward=True)
            _check_events(run.events, g)
            assert {e.node for e in run.backward_events} == set(run.grads)
    finally:
        pool.close()


def test_a_wide_graph_of_large_matmuls_uses_both_workers() -> None:
    rng = np.random.default_rng(9)
    g = gg.Graph()
    a = g.input("a", shape=(256, 256))
    branches = [
        g.matmul(a, g.parameter(f"w{i}", rng.standard_normal((256, 256)) / 16)) for i in range(12)
    ]
    total = branches[0]
    for b in branches[1:]:
        total = g.add(total, b)
    g.output(total)
    pool = ThreadPoolExecutor(workers=2, min_cost=0)
    try:
        run = g.run({"a": rng.standard_normal((256, 256)).astype(np.float32)}, executor=pool)
    finally:
        pool.close()
    matmul_ids = {b.id for b in branches}
    workers = {e.worker for e in run.events if e.node in matmul_ids}
    assert len(workers) > 1 and all(w.startswith("worker-") for w in workers)


def _breaks_at_run_time():
    """a has no declared shape, so the matmul is only checked when it runs."""
    g = gg.Graph()
    a, b = g.input("a"), g.input("b", shape=(4, 2))
    mm = g.matmul(a, b, name="mm")
    t = g.op("tanh", mm, name="after")
    g.output(g.sum(t, name="total"))
    g.output(g.op("exp", b, name="independent"))
    return g, {"a": np.ones((3, 5), np.float32), "b": np.ones((4, 2), np.float32)}


EXECUTORS = {
    "serial": SerialExecutor,
    "threads-inline": lambda: ThreadPoolExecutor(workers=2),
    "threads": lambda: ThreadPoolExecutor(workers=2, min_cost=0),
    "step": StepExecutor,
}


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_a_failing_node_raises_node_failed_naming_it(executor) -> None:
    g, inputs = _breaks_at_run_time()
    with pytest.raises(NodeFailed, match="'mm'") as info:
        g.run(inputs, executor=EXECUTORS[executor]())
    assert "inner dimensions differ (5 != 4)" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)  # the op's own error is kept


def test_step_executor_records_downstream_nodes_as_skipped() -> None:
    g, inputs = _breaks_at_run_time()
    ex = StepExecutor()
    with pytest.raises(NodeFailed):
        g.run(inputs, executor=ex)
    states = {g.nodes[e.node].name: e.state for e in ex.events}
    assert states["mm"] == "failed"
    assert states["after"] == "skipped" and states["total"] == "skipped"


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_the_scheduler_skips_what_depends_on_a_failed_node(executor) -> None:
    # 0 -> 1 (fails) -> 2 -> 3, and 0 -> 4 independent of the failure
    sched = Scheduler([0, 1, 2, 3, 4], {1: [0], 2: [1], 3: [2], 4: [0]})

    def work(t):
        if t == 1:
            raise ValueError("boom")
        return t

    job = Job(sched, work, lambda t, r: None, lambda t: f"n{t}", lambda t: 1)
    with pytest.raises(NodeFailed, match="n1 failed: boom"):
        EXECUTORS[executor]().run(job)
    assert sched.state == {
        0: NodeState.DONE,
        1: NodeState.FAILED,
        2: NodeState.SKIPPED,
        3: NodeState.SKIPPED,
        4: NodeState.DONE,
    }


# ----------------------------------------------------------------------------------------------
# 7. Explain: the branch-and-merge seed, two steps, digit for digit
# ----------------------------------------------------------------------------------------------

STEP1 = {
    "J": "0.834694",
    "dJ/dv": "0.034985",
    "grads": ["0.449854", "0.174927", "0.239942", "0.034985"],
    "new": ["0.955015", "-0.017493", "0.976006", "-0.003499"],
}
STEP2 = {
    "J": "0.093678",
    "dJ/dv": "-0.044064",
    "grads": ["0.095501", "-0.042560", "0.097587", "-0.044064"],
    "new": ["0.945464", "-0.013237", "0.966247", "0.000908"],
}


def _row(rows, name):
    return next(r for r in rows if r["name"] == name)


def _check_step(e, expected) -> None:
    assert round(_row(e.forward, "J")["value"], 6) == float(expected["J"])
    assert round(_row(e.backward, "v")["grad"], 6) == float(expected["dJ/dv"])
    assert [r["name"] for r in e.update] == ["a", "b", "c", "d"]
    assert [round(r["grad"], 6) for r in e.update] == [float(s) for s in expected["grads"]]
    assert [round(r["new"], 6) for r in e.update] == [float(s) for s in expected["new"]]
    text, markdown = e.to_text(), e.to_markdown()
    for digits in [expected["J"], expected["dJ/dv"], *expected["grads"], *expected["new"]]:
        assert digits in text and digits in markdown, digits
    data = json.loads(e.to_json())
    assert data["lr"] == 0.1 and len(data["update"]) == 4


def test_explain_branch_and_merge_two_steps() -> None:
    g = examples.branch_and_merge()
    e = g.explain({"x": 2.0, "y": 1.0}, lr=0.1)
    _check_step(e, STEP1)
    # u feeds v directly and through h: its gradient is shown as the sum of the two
    du = next(line for line in e.to_text().splitlines() if line.strip().startswith("dJ/du"))
    assert " + " in du and "0.174927" in du
    e.apply_update()
    assert [round(n.value.item(), 6) for n in g.parameters] == [float(s) for s in STEP1["new"]]
    e = g.explain({"x": 0.0, "y": 1.0}, lr=0.1)
    _check_step(e, STEP2)
    # with x = 0 the data term sends nothing to a: its gradient is all regularisation
    parts = {p["from"]: p["value"] for p in _row(e.backward, "a")["parts"]}
    assert parts["a*x"] == 0.0 and round(parts["a^2"], 6) == 0.095501


def _torch_branch_and_merge(params, x, y, lam=0.1):
    a, b, c, d = params
    u = a * x + b
    v = c * u**2 + u + d
    p = 1 / (1 + v)
    return (p - y) ** 2 + lam / 2 * (a**2 + c**2)


def test_branch_and_merge_is_float64_throughout() -> None:
    # The hand calculation is exact; the graph claims float64 everywhere, so it must agree with
    # float64 torch to rounding, not just to the six printed digits.
    g = examples.branch_and_merge()
    run = g.run({"x": 2.0, "y": 1.0}, backward=True)
    params = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1, 0, 1, 0)]
    loss = _torch_branch_and_merge(params, 2.0, 1.0)
    loss.backward()
    assert run.output.item() == pytest.approx(loss.item(), rel=1e-14)
    for name, p in zip("abcd", params):
        assert float(run.grad(name)) == pytest.approx(p.grad.item(), rel=1e-14, abs=1e-16)
    assert {(n.name, n.dtype) for n in g.nodes if n.dtype != "float64"} == set()


def test_explain_without_lr_has_no_update() -> None:
    e = examples.linear_node().explain({"x": 2.0})
    assert e.update == []
    with pytest.raises(ValueError, match="no update"):
        e.apply_update()


# ----------------------------------------------------------------------------------------------
# 8. Fit
# ----------------------------------------------------------------------------------------------

GOOD = dict(lr=0.01, lr_decay=0.999, min_lr=1e-3, max_grad=1000.0)
BAD = dict(lr=0.1, lr_decay=1.0, min_lr=1e-3, max_grad=1e10)


def _torch_fit(data, epochs, lr, lr_decay, min_lr, max_grad):
    """The same gradient descent, written directly in torch: losses and final coefficients."""
    c = [torch.tensor(0.0, dtype=torch.float64, requires_grad=True) for _ in range(5)]
    losses = []
    for _ in range(epochs):
        loss = _torch_polynomial_loss(c, data)
        losses.append(loss.item())
        grads = torch.autograd.grad(loss, c)
        with torch.no_grad():
            for ci, gi in zip(c, grads):
                ci -= lr * gi.clamp(-max_grad, max_grad)
        lr = max(min_lr, lr * lr_decay)
    return losses, [ci.item() for ci in c]


def test_fit_with_good_settings_converges_like_torch() -> None:
    data = examples.polynomial_data()
    result = fit(examples.polynomial(), data, epochs=300, **GOOD)
    assert result.converged and not result.diverged
    assert result.losses[-1] < 0.01 * result.losses[0]
    assert len(result.losses) == len(result.lrs) == 300
    assert result.lrs[:2] == [0.01, 0.01 * 0.999]
    losses, _ = _torch_fit(data, 3, **GOOD)
    np.testing.assert_allclose(result.losses[:3], losses, rtol=1e-10)


def test_fit_parameters_after_three_epochs_equal_torch() -> None:
    data = examples.polynomial_data()
    result = fit(examples.polynomial(), data, epochs=3, **GOOD)
    losses, coefficients = _torch_fit(data, 3, **GOOD)
    np.testing.assert_allclose(result.losses, losses, rtol=1e-10)
    fitted = [float(result.params[f"c{i}"]) for i in range(5)]
    np.testing.assert_allclose(fitted, coefficients, rtol=1e-10)


def test_fit_with_bad_settings_diverges() -> None:
    result = fit(examples.polynomial(), examples.polynomial_data(), epochs=300, **BAD)
    assert result.diverged and not result.converged


@pytest.mark.parametrize(
    "knobs",
    [
        dict(lr=0.0),
        dict(lr=-0.1),
        dict(lr=math.nan),
        dict(epochs=0),
        dict(epochs=2.5),
        dict(lr_decay=0.0),
        dict(lr_decay=1.5),
        dict(min_lr=-1e-3),
        dict(max_grad=0.0),
    ],
)
def test_fit_refuses_invalid_knobs(knobs) -> None:
    settings = {**GOOD, "epochs": 3, **knobs}
    with pytest.raises(ValueError, match="fit:"):
        fit(examples.polynomial(), examples.polynomial_data(points=4), **settings)


# ----------------------------------------------------------------------------------------------
# The package itself
# ----------------------------------------------------------------------------------------------


def test_graph_examples_are_reachable_after_import_graphgrad() -> None:
    # In a fresh interpreter: pytest's doctest collection imports every module, which would hide
    # a submodule that `import graphgrad` alone does not load.
    code = "import graphgrad as gg; gg.graph.examples.branch_and_merge()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_a_traced_python_number_keeps_the_dtype_eager_code_computes_in(dtype):
    """``x / 8 + 1`` on float32 is float32 in torch; the traced graph's constants are the numbers
    as the ops saw them, so its replay does not widen to float64."""

    def fn(lib, x):
        return (x / 8 + 1) * 2.5 - x

    values = np.arange(6).astype(dtype)
    expected = fn(torch, torch.tensor(values))
    graph = gg.trace(lambda x: fn(gg, x), gg.tensor(values))
    got = graph(gg.tensor(values))
    assert got.dtype.name == str(expected.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_an_operand_left_out_is_traced_replayed_differentiated_and_explained():
    """conv2d without a bias and a one-sided clamp pass None to their primitives: the graph
    keeps a value-less constant, and its run, gradients and table are torch's."""
    import graphgrad.nn.functional as F

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))

    def fn(lib, functional, x, w):
        return functional.conv2d(x, w).clamp(min=0.1).sum()

    tx, tw = torch.tensor(x), torch.tensor(w, requires_grad=True)
    expected = fn(torch, torch.nn.functional, tx, tw)
    expected.backward()
    weight = gg.tensor(w, requires_grad=True)
    graph = gg.trace(lambda x: fn(gg, F, x, weight), gg.tensor(x))
    assert [n.value for n in graph.constants if n.name == "None"] == [None, None]
    run = graph.run([gg.tensor(x)], backward=True)
    np.testing.assert_allclose(run.output.item(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(weight.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    table = str(graph.explain([gg.tensor(x)]))
    assert "conv" in table and "None" in table
    again = gg.Graph.from_json(graph.to_json())
    np.testing.assert_allclose(again(gg.tensor(x)).item(), expected.item(), rtol=1e-12)
