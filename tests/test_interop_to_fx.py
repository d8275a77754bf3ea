"""graph_to_fx (issue 14): a Graph as a torch.fx program, checked against graphgrad's own run.

Every row of the op table (tests/test_ops.py and op_rows_*.py) gives one primitive's call: the
row runs once in float64 and its first call of that primitive becomes a one-op Graph (tensor
operands as inputs, numbers as constants, the op's parameters as recorded). Lowered and run by
torch on the same inputs, the outputs equal graphgrad's run of the graph (to 1e-12, integer and
bool outputs exactly) and so do the input gradients of the differentiable ones. Then a traced MLP:
parameter names, torch.compile, dtype and device moves.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from test_ops import PARAMS, _inputs

import graphgrad as gg
from graphgrad import _state
from graphgrad.interop import to_fx
from graphgrad.interop.to_fx import LoweringError, graph_to_fx, lowerings
from graphgrad.ops import OPS


def _first_call(case, arrays):
    """The operands and parameters of the row's first call of its primitive (the row's other
    primitives only prepare the operands)."""
    found = []

    def listen(op, inputs, params, out, arrays):
        if op.name == case.op:
            found.append((inputs, params))

    previous, _state.state.capture = _state.state.capture, listen
    try:
        case.call(gg, *[gg.tensor(a, dtype=gg.float64, requires_grad=case.grad) for a in arrays])
    finally:
        _state.state.capture = previous
    assert found, f"the row for {case.op} never calls it"
    whole = [call for call in found if all(x is not None for x in call[0])]
    if whole:
        return whole[0]
    inputs, params = found[0]
    return tuple(_neutral(case.op, inputs, i) if x is None else x
                 for i, x in enumerate(inputs)), params  # fmt: skip


def _neutral(op, inputs, i):
    """A Graph has no None operand yet (tracing nll_loss without weights fails the same way):
    the operand that computes the same values stands in, weights of one, a bias of zeros."""
    if (op, i) == ("nll_loss", 2):
        return gg.ones(inputs[0].shape[1], dtype=inputs[0].dtype)
    if (op, i) in {("conv", 2), ("conv_transpose", 2)}:
        return gg.zeros(inputs[1].shape[0 if op == "conv" else 1], dtype=inputs[0].dtype)
    raise AssertionError(f"{op}: no stand-in for the None operand {i}")


def _one_op_graph(op, operands, params):
    """A Graph of the one op: tensors as inputs (shapes left open, so that no build-time probe
    runs on zeros, which a Cholesky refuses), anything else as constants."""
    g, values = gg.Graph(), []
    refs = []
    for i, x in enumerate(operands):
        if isinstance(x, gg.Tensor):
            refs.append(g.input(f"x{i}", dtype=x.dtype))
            values.append(x.detach().numpy().copy())
        else:
            refs.append(g.constant(x))
    g.output(g.op(op, *refs, params=params))
    return g, values


def _signs(op, ours: np.ndarray, theirs: np.ndarray, shape: tuple, params) -> np.ndarray:
    """+-1 per element of a packed decomposition, so that torch's result times it is ours:
    LAPACK builds may choose singular and eigen vectors of either sign."""
    signs = np.ones(ours.shape)
    if op == "linalg_svd":
        m, n = shape[-2:]
        k = min(m, n)
        if params[0]:  # full matrices: U's and Vh's extra vectors are any basis
            return signs
        u = slice(0, m * k)
        vh = slice(m * k + k, m * k + k + k * n)
        batch = ours.shape[:-1]
        flip = np.sign(np.sum(ours[..., u].reshape(*batch, m, k)
                              * theirs[..., u].reshape(*batch, m, k), -2))  # fmt: skip
        signs[..., u] = np.broadcast_to(flip[..., None, :], (*batch, m, k)).reshape(*batch, -1)
        signs[..., vh] = np.broadcast_to(flip[..., :, None], (*batch, k, n)).reshape(*batch, -1)
    if op == "linalg_eigh":
        n = shape[-1]
        batch = ours.shape[:-1]
        vectors = slice(n, n + n * n)
        flip = np.sign(np.sum(ours[..., vectors].reshape(*batch, n, n)
                              * theirs[..., vectors].reshape(*batch, n, n), -2))  # fmt: skip
        signs[..., vectors] = np.broadcast_to(flip[..., None, :], (*batch, n, n)).reshape(
            *batch, -1)  # fmt: skip
    return signs


FIRST_ROW: dict = {}
for _param in PARAMS:
    FIRST_ROW.setdefault(_param.values[0].op, tuple(_param.values))


@pytest.mark.parametrize("case,shapes", PARAMS)
def test_one_op_graph_runs_in_torch_as_in_graphgrad(case, shapes):
    operands, params = _first_call(case, _inputs(case, shapes))
    g, values = _one_op_graph(case.op, operands, params)
    run = g.run([gg.tensor(v) for v in values])
    ours = run.output.numpy()

    gm = graph_to_fx(g)
    (call,) = [n for n in gm.graph.nodes if n.op == "call_function"]  # one torch call
    xs = [torch.tensor(v, requires_grad=v.dtype.kind == "f" and case.grad) for v in values]
    out = gm(*xs)
    assert str(out.dtype) == f"torch.{ours.dtype}", f"{case.op}: {out.dtype} vs {ours.dtype}"
    theirs = out.detach().numpy()
    if ours.dtype.kind == "f":
        signs = _signs(case.op, ours, theirs, values[0].shape, params)
        np.testing.assert_allclose(theirs * signs, ours, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(theirs, ours)
    if getattr(call.target, "__module__", None) == to_fx.__name__ and FIRST_ROW[case.op] == (
        case, shapes):  # a helper's Python (loops, shape arithmetic), once per op: compiling costs
        compiled = torch.compile(gm, backend="aot_eager", fullgraph=True)
        np.testing.assert_allclose(compiled(*xs).detach().numpy(), theirs, 1e-12, 1e-12)
    if case.grad and ours.dtype.kind == "f":
        _check_gradients(run, out, xs, signs)
    # every tensor the forward reads is module state or an input: all of it moves with .to()
    on_meta = gm.to("meta")(*[x.detach().to("meta") for x in xs])
    assert on_meta.device.type == "meta" and on_meta.shape == out.shape


def _check_gradients(run, out, xs, signs):
    weights = np.random.default_rng(1).uniform(0.5, 1.5, tuple(out.shape))
    run.backward([weights])
    wanted = [x for x in xs if x.requires_grad]
    grads = iter(torch.autograd.grad(out, wanted, torch.tensor(weights * signs), allow_unused=True))
    for i, x in enumerate(xs):
        if not x.requires_grad:
            continue
        mine, ref = run.grad(f"x{i}"), next(grads)
        mine = np.zeros(x.shape) if mine is None else np.asarray(mine)
        ref = np.zeros(x.shape) if ref is None else ref.numpy()
        np.testing.assert_allclose(ref, mine, rtol=1e-12, atol=1e-12, err_msg=f"input {i}")


def test_every_registered_op_has_a_lowering_and_a_row():
    missing = sorted(set(OPS) - set(lowerings()))
    assert not missing, f"ops without a torch lowering: {missing}"
    stale = sorted(set(lowerings()) - set(OPS))
    assert not stale, f"lowerings of ops that are not registered: {stale}"
    rows = {p.values[0].op for p in PARAMS}
    assert not sorted(set(OPS) - rows), f"ops without a row: {sorted(set(OPS) - rows)}"


def test_an_op_without_a_lowering_is_named_with_its_node(monkeypatch):
    g = gg.Graph()
    _ = g.output(g.input("x").exp().sin(), name="wave")
    monkeypatch.delitem(lowerings(), "sin")
    with pytest.raises(LoweringError, match=r"op 'sin' of node 'wave' \(#2\) has no torch"):
        graph_to_fx(g)


def test_a_refused_parameter_is_named_with_its_node():
    g = gg.Graph()
    _ = g.output(g.sum(g.input("x", shape=(2, 3)), dim=(), name="total"))
    with pytest.raises(LoweringError, match=r"op 'sum' of node 'total' \(#1\).*axis=\(\)"):
        graph_to_fx(g)


def test_an_operand_left_out_is_none_in_torch():
    """A constant node without a value (what a conv without bias or an nll_loss without weights
    records) is torch's None."""
    rng = np.random.default_rng(0)
    x, w = rng.uniform(-1, 1, (2, 3, 7)), rng.uniform(-1, 1, (2, 3, 3))
    t = np.array([1, 0, 1, 1, 0, 1, 1])
    for op, arrays, none_at, params in [
        ("conv", [x, w], 2, ((2,), (1,), (1,), 1, (4,))),
        ("nll_loss", [x[0].T, t], 2, (-100, "mean")),
    ]:
        g = gg.Graph()
        refs = [g.input(f"x{i}", dtype=a.dtype) for i, a in enumerate(arrays)]
        refs.insert(none_at, g._add("constant", name="none", value=None))
        g.output(g.op(op, *refs, params=params))
        ours = g.run([gg.tensor(a) for a in arrays]).output.numpy()
        theirs = graph_to_fx(g)(*[torch.tensor(a) for a in arrays]).numpy()
        np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=1e-12, err_msg=op)


# ---------------------------------------------------------------------- module structure


def _two_outputs():
    g = gg.Graph()
    b, a = g.input("b"), g.input("a")  # input order: b first
    w = g.parameter("layer.w", [1.0, -2.0])
    shift = g.constant(np.array([0.5, 0.25], np.float32), name="shift")
    total = g.output(a * w + b, name="total")
    g.output(g.op("relu", total + shift), name="positive")
    return g


def test_inputs_parameters_constants_and_outputs():
    gm = graph_to_fx(_two_outputs())
    assert list(inspect.signature(gm.forward).parameters) == ["b", "a"]
    assert [(name, type(p)) for name, p in gm.named_parameters()] == [
        ("layer.w", torch.nn.Parameter)
    ]
    assert sorted(dict(gm.named_buffers())) == ["shift"]
    assert list(gm.state_dict()) == ["layer.w"]  # constants are program, not state
    b, a = torch.tensor([1.0, 0.0]), torch.tensor([3.0, 2.0])
    total, positive = gm(b, a)
    # by hand: a * w + b = [3 + 1, -4 + 0]; relu(total + shift) = [4.5, 0]
    assert total.tolist() == [4.0, -4.0]
    assert positive.tolist() == [4.5, 0.0]


def test_names_that_are_no_identifiers_are_sanitised():
    g = gg.Graph()
    x = g.input("my input")
    w = g.parameter("0.weight", 2.0)
    f = g.parameter("forward", 1.0)  # a GraphModule attribute already
    v, vx = g.parameter("v", 0.5), g.parameter("v.x", 0.25)  # v is no module: flattened
    g.output(x * w + f + v * vx)
    gm = graph_to_fx(g)
    assert list(inspect.signature(gm.forward).parameters) == ["my_input"]
    names = sorted(name for name, _ in gm.named_parameters())
    assert names == ["0.weight", "forward_1", "v", "v_x"]
    assert gm(torch.tensor(3.0)).item() == 3.0 * 2.0 + 1.0 + 0.5 * 0.25


# ---------------------------------------------------------------------- a traced MLP


def _mlp():
    gg.manual_seed(0)
    model = gg.nn.Sequential(gg.nn.Linear(4, 8), gg.nn.Tanh(), gg.nn.Linear(8, 3))
    x = gg.randn(5, 4)
    return model, x, gg.trace(model, x, names=dict(model.named_parameters()))


def _mlp_numpy(model, x):
    """The MLP in float64 NumPy from its weights: the independent oracle."""
    w1, b1, w2, b2 = (p.detach().numpy().astype(np.float64) for p in model.parameters())
    return np.tanh(x @ w1.T + b1) @ w2.T + b2


def test_traced_mlp_lowered_compiled_and_differentiated():
    model, x, g = _mlp()
    gm = graph_to_fx(g)
    names = [name for name, _ in gm.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for (name, p), (_, ours) in zip(gm.named_parameters(), model.named_parameters()):
        assert isinstance(p, torch.nn.Parameter) and p.requires_grad, name
        np.testing.assert_array_equal(p.detach().numpy(), ours.detach().numpy())
    xt = torch.tensor(x.numpy())
    expected = _mlp_numpy(model, x.numpy().astype(np.float64))
    np.testing.assert_allclose(gm(xt).detach().numpy(), expected, rtol=1e-5, atol=1e-6)

    compiled = torch.compile(gm, backend="aot_eager", fullgraph=True)
    out = compiled(xt)
    np.testing.assert_allclose(out.detach().numpy(), gm(xt).detach().numpy(), rtol=1e-6)
    (out**2).sum().backward()
    (model(x) ** 2).sum().backward()
    for (name, p), ours in zip(gm.named_parameters(), model.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), ours.grad.numpy(), 1e-5, 1e-6, err_msg=name)


def test_traced_mlp_moves_to_float64_and_to_another_device():
    model, x, g = _mlp()
    gm = graph_to_fx(g).to(torch.float64)
    x64 = x.numpy().astype(np.float64)
    np.testing.assert_allclose(
        gm(torch.tensor(x64)).detach().numpy(), _mlp_numpy(model, x64), rtol=1e-12, atol=1e-12
    )
    meta = graph_to_fx(g).to("meta")  # what a GPU move does, on any machine
    assert {t.device.type for t in [*meta.parameters(), *meta.buffers()]} == {"meta"}
    out = meta(torch.empty(5, 4, device="meta"))
    assert out.device.type == "meta" and tuple(out.shape) == (5, 3)
