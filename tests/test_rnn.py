"""nn.RNN / LSTM / GRU, their cells and nn.utils.rnn.pad_sequence against torch (the oracle):
torch's weights copied in, outputs, final states and every gradient compared."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import graphgrad as gg
from graphgrad.nn.utils.rnn import pad_sequence

DTYPES = [(gg.float32, torch.float32, np.float32, 2e-5), (gg.float64, torch.float64, np.float64,
                                                         1e-12)]  # fmt: skip


def _copy_from_torch(ours, theirs) -> None:
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert repr(result) == "<All keys matched successfully>"


def _pair(kind: str, *args, dtype=DTYPES[1], **kwargs):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(*args, **kwargs).to(dtype[1])
    ours = getattr(gg.nn, kind)(*args, **kwargs).to(dtype[0])
    _copy_from_torch(ours, theirs)
    return ours, theirs


def _run(lib, module, arrays, is_lstm: bool, cell: bool = False):
    """Forward, a weighted loss of output and states, backward: all values and gradients."""
    tensors = [None if a is None else lib.tensor(a, requires_grad=True) for a in arrays]
    x, states = tensors[0], tensors[1:]
    if not states or states[0] is None:
        result = module(x)
    else:
        result = module(x, tuple(states) if is_lstm else states[0])
    if cell:
        parts = list(result) if is_lstm else [result]
    else:
        output, final = result
        parts = [output] + (list(final) if is_lstm else [final])
    loss = sum(((p * (k + 1)) ** 2).sum() + p.sum() for k, p in enumerate(parts))
    loss.backward()
    values = [p.detach().numpy() for p in parts]
    grads = [t.grad.numpy() for t in tensors if t is not None]
    return values, grads, {n: p.grad.numpy() for n, p in module.named_parameters()}


def _compare(ours, theirs, arrays, is_lstm, tol, cell=False):
    mine = _run(gg, ours, arrays, is_lstm, cell)
    ref = _run(torch, theirs, arrays, is_lstm, cell)
    for a, b in zip(mine[0] + mine[1], ref[0] + ref[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert list(mine[2]) == list(ref[2])
    for name in ref[2]:
        np.testing.assert_allclose(mine[2][name], ref[2][name], rtol=tol, atol=tol, err_msg=name)


CONFIGS = [
    {},
    {"num_layers": 2, "bidirectional": True, "batch_first": True},
    {"num_layers": 2, "bias": False},
    {"bidirectional": True},
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(c) or "default")
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("with_state", [False, True])
def test_layers_match_torch_forward_and_every_gradient(kind, config, dtype, with_state):
    ours, theirs = _pair(kind, 3, 4, dtype=dtype, **config)
    rng = np.random.default_rng(1)
    steps, batch = 5, 2
    shape = (batch, steps, 3) if config.get("batch_first") else (steps, batch, 3)
    arrays = [rng.standard_normal(shape).astype(dtype[2])]
    layers = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    if with_state:
        count = 2 if kind == "LSTM" else 1
        arrays += [rng.standard_normal((layers, batch, 4)).astype(dtype[2]) for _ in range(count)]
    _compare(ours, theirs, arrays, kind == "LSTM", dtype[3])


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_relu_rnn_and_unbatched_input_match_torch(kind):
    extra = {"nonlinearity": "relu"} if kind == "RNN" else {}
    ours, theirs = _pair(kind, 3, 4, num_layers=2, bidirectional=True, **extra)
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((6, 3))]
    arrays += [rng.standard_normal((4, 4)) for _ in range(2 if kind == "LSTM" else 1)]
    _compare(ours, theirs, arrays, kind == "LSTM", 1e-12)
    _compare(ours, theirs, arrays[:1], kind == "LSTM", 1e-12)  # default zero states


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("shape", [(1, 1, 3), (4, 0, 3)], ids=["one-step", "empty-batch"])
def test_edge_shapes_match_torch(kind, shape):
    ours, theirs = _pair(kind, 3, 1, bidirectional=True)  # hidden_size 1
    x = np.random.default_rng(7).standard_normal(shape)
    _compare(ours, theirs, [x], kind == "LSTM", 1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_torch(kind, dtype):
    rng = np.random.default_rng(3)
    is_lstm = kind == "LSTMCell"
    for bias, shape in [(True, (2, 3)), (False, (2, 3)), (True, (3,))]:
        ours, theirs = _pair(kind, 3, 4, bias=bias, dtype=dtype)
        hidden = shape[:-1] + (4,)
        states = [rng.standard_normal(hidden).astype(dtype[2]) for _ in range(1 + is_lstm)]
        x = rng.standard_normal(shape).astype(dtype[2])
        _compare(ours, theirs, [x, *states], is_lstm, dtype[3], cell=True)
        _compare(ours, theirs, [x], is_lstm, dtype[3], cell=True)
    ours, theirs = _pair("RNNCell", 3, 4, nonlinearity="relu", dtype=dtype)
    _compare(ours, theirs, [rng.standard_normal((2, 3)).astype(dtype[2])], False, dtype[3], True)


def test_names_shapes_repr_and_state_dicts_load_both_ways():
    for kind in ["RNN", "LSTM", "GRU"]:
        args = (3, 4, 2)
        kwargs = {"batch_first": True, "dropout": 0.2, "bidirectional": True}
        ours = getattr(gg.nn, kind)(*args, **kwargs)
        theirs = getattr(torch.nn, kind)(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [
            (n, tuple(p.shape)) for n, p in theirs.named_parameters()
        ]
        theirs.load_state_dict(
            {k: torch.from_numpy(np.array(v.numpy())) for k, v in ours.state_dict().items()}
        )
        for (n, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=n)
        assert [[tuple(w.shape) for w in ws] for ws in ours.all_weights] == [
            [tuple(w.shape) for w in ws] for ws in theirs.all_weights
        ]
    for kind in ["RNNCell", "LSTMCell", "GRUCell"]:
        assert repr(getattr(gg.nn, kind)(3, 4, bias=False)) == repr(
            getattr(torch.nn, kind)(3, 4, bias=False)
        )
    assert repr(gg.nn.RNNCell(3, 4, nonlinearity="relu")) == repr(
        torch.nn.RNNCell(3, 4, nonlinearity="relu")
    )
    assert repr(gg.nn.RNN(3, 4, 1, "relu")) == repr(torch.nn.RNN(3, 4, 1, "relu"))


def test_initialisation_is_uniform_within_one_over_sqrt_hidden():
    gg.manual_seed(0)
    lstm = gg.nn.LSTM(10, 64, num_layers=2)
    values = np.concatenate([p.detach().numpy().ravel() for p in lstm.parameters()])
    bound = 1 / np.sqrt(64)
    assert np.abs(values).max() <= bound
    assert abs(values.mean()) < 0.01 * bound and abs(values.std() - bound / np.sqrt(3)) < 0.01


def _error(lib, make, call):
    try:
        call(make(lib))
    except Exception as exc:  # noqa: BLE001 - the type is the point
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize(
    "make,call",
    [
        (lambda lib: lib.nn.LSTM(3, 4), lambda m: m(_zeros(m, 5, 2, 4))),
        (lambda lib: lib.nn.GRU(3, 4), lambda m: m(_zeros(m, 5, 2, 3, 1))),
        (lambda lib: lib.nn.LSTM(3, 4), lambda m: m(_zeros(m, 0, 2, 3))),
        (lambda lib: lib.nn.LSTM(3, 4),
         lambda m: m(_zeros(m, 5, 2, 3), (_zeros(m, 2, 2, 4), _zeros(m, 1, 2, 4)))),
        (lambda lib: lib.nn.LSTM(3, 4),
         lambda m: m(_zeros(m, 5, 2, 3), (_zeros(m, 1, 2, 4), _zeros(m, 1, 3, 4)))),
        (lambda lib: lib.nn.GRU(3, 4), lambda m: m(_zeros(m, 5, 2, 3), _zeros(m, 2, 2, 4))),
        (lambda lib: lib.nn.GRU(3, 4), lambda m: m(_zeros(m, 5, 3), _zeros(m, 1, 2, 4))),
        (lambda lib: lib.nn.LSTM(3, 4),
         lambda m: m(_zeros(m, 5, 3), (_zeros(m, 1, 2, 4), _zeros(m, 1, 2, 4)))),
        (lambda lib: lib.nn.RNN(3, 4), lambda m: m(_zeros(m, 5, 2, 3), _zeros(m, 1, 4))),
        (lambda lib: lib.nn.LSTMCell(3, 4), lambda m: m(_zeros(m, 2, 2, 3))),
        (lambda lib: lib.nn.LSTMCell(3, 4), lambda m: m(_zeros(m, 2, 4))),
        (lambda lib: lib.nn.GRUCell(3, 4), lambda m: m(_zeros(m, 2, 3), _zeros(m, 3, 4))),
        (lambda lib: lib.nn.LSTM(3, 4, dropout=1.5), None),
        (lambda lib: lib.nn.LSTM(3, 0), None),
        (lambda lib: lib.nn.GRU(3, 4, num_layers=0), None),
        (lambda lib: lib.nn.RNN(3, 4, nonlinearity="sigmoid"), None),
        (lambda lib: lib.nn.GRU(3, 4, proj_size=2), None),
    ],
)
def test_errors_match_torch(make, call):
    ours = _error(gg, make, call or (lambda m: None))
    theirs = _error(torch, make, call or (lambda m: None))
    assert ours == theirs


def _zeros(module, *shape):
    lib = gg if isinstance(module, gg.nn.Module) else torch
    return lib.zeros(*shape)


def test_input_of_another_dtype_is_refused_as_torch():
    with pytest.raises(ValueError) as ours:
        gg.nn.LSTM(3, 4)(gg.zeros(5, 2, 3, dtype=gg.float64))
    with pytest.raises(ValueError) as theirs:
        torch.nn.LSTM(3, 4)(torch.zeros(5, 2, 3, dtype=torch.float64))
    assert str(ours.value).replace("graphgrad", "torch") == str(theirs.value)


def test_proj_size_is_refused_clearly():
    with pytest.raises(NotImplementedError, match="proj_size=2"):
        gg.nn.LSTM(3, 4, proj_size=2)


def test_dropout_option_with_one_layer_warns_as_torch():
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        gg.nn.GRU(3, 4, dropout=0.5)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        torch.nn.GRU(3, 4, dropout=0.5)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_dropout_between_layers_only_in_training(kind):
    ours, theirs = _pair(kind, 3, 4, num_layers=2, dropout=1.0)
    x = np.random.default_rng(4).standard_normal((5, 2, 3))
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(
        ours(gg.tensor(x))[0].detach().numpy(), theirs(torch.tensor(x))[0].detach().numpy(),
        rtol=1e-12, atol=1e-12,
    )  # fmt: skip
    # p = 1 zeroes the second layer's input: the output no longer depends on x, as torch's
    ours.train(), theirs.train()
    np.testing.assert_allclose(
        ours(gg.tensor(x))[0].detach().numpy(), theirs(torch.tensor(x))[0].detach().numpy(),
        rtol=1e-12, atol=1e-12,
    )  # fmt: skip
    ours_d = gg.nn.LSTM(3, 50, num_layers=2, dropout=0.5)
    gg.manual_seed(1)
    a = ours_d(gg.tensor(x, dtype=gg.float32))[0]
    b = ours_d(gg.tensor(x, dtype=gg.float32))[0]
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())  # fresh masks per call


def _as_function(layer):
    """The layer as a function of (x, *parameters), for gradcheck."""
    names = [n for n, _ in layer.named_parameters()]

    def f(x, *params):
        originals = dict(layer._parameters)
        layer._parameters.update(zip(names, params))
        try:
            output, final = layer(x)
        finally:
            layer._parameters.update(originals)
        final = final[1] if isinstance(final, tuple) else final
        return output.sum() + final.square().sum()

    return f, [p.detach().clone().requires_grad_(True) for p in layer.parameters()]


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gradcheck_float64_tiny_layers(kind):
    gg.manual_seed(0)
    f, params = _as_function(getattr(gg.nn, kind)(2, 3, num_layers=2, bidirectional=True).double())
    x = gg.randn(4, 2, 2, dtype=gg.float64, requires_grad=True)
    assert gg.autograd.gradcheck(f, (x, *params))
    f, params = _as_function(getattr(gg.nn, kind)(2, 2, bidirectional=True).double())
    x = gg.randn(3, 1, 2, dtype=gg.float64, requires_grad=True)
    assert gg.autograd.gradgradcheck(f, (x, *params))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_compiled_training_step_gives_the_eager_bits(kind):
    def train(compiled: bool):
        gg.manual_seed(0)
        lstm = getattr(gg.nn, kind)(3, 8, num_layers=2, bidirectional=True)
        head = gg.nn.Linear(16, 1)
        params = list(lstm.parameters()) + list(head.parameters())
        opt = gg.optim.Adam(params, lr=0.01)

        def step(x, y):
            opt.zero_grad()
            loss = gg.nn.functional.mse_loss(head(lstm(x)[0]), y)
            loss.backward()
            opt.step()
            return loss

        run = gg.compile(step, fullgraph=True) if compiled else step
        rng = np.random.default_rng(5)
        batches = [(gg.tensor(rng.standard_normal((6, 4, 3)), dtype=gg.float32),
                    gg.tensor(rng.standard_normal((6, 4, 1)), dtype=gg.float32))
                   for _ in range(4)]  # fmt: skip
        losses = [run(x, y).detach().numpy().copy() for x, y in batches]
        return losses, [p.detach().numpy().copy() for p in params], run

    eager, compiled = train(False), train(True)
    for a, b in zip(compiled[0] + compiled[1], eager[0] + eager[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert compiled[2].recordings == 2


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side):
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((n, 2)) for n in (3, 1, 4)]
    kw = {"batch_first": batch_first, "padding_value": -2.5, "padding_side": padding_side}
    ours = [gg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    a = pad_sequence(ours, **kw)
    b = torch.nn.utils.rnn.pad_sequence(theirs, **kw)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    weights = rng.standard_normal(tuple(b.shape))
    (a * gg.tensor(weights)).sum().backward()
    (b * torch.tensor(weights)).sum().backward()
    for x, y in zip(ours, theirs):
        np.testing.assert_array_equal(x.grad.numpy(), y.grad.numpy())
    mixed = [gg.ones(2), gg.ones(3, dtype=gg.float64)]
    assert pad_sequence(mixed).dtype == gg.float32  # the first sequence's, as torch
    with pytest.raises(RuntimeError, match="received an empty list of sequences"):
        pad_sequence([])
    with pytest.raises(RuntimeError, match="Expected padding_side to be one of left or right"):
        pad_sequence(ours, padding_side="middle")


def _load_example(name: str):
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lstm_sine_example_losses_match_torch_step_by_step():
    """examples/lstm_sine.py, shortened, from torch's initial weights: the loss after each
    L-BFGS step is torch's to 1e-6 relative (float64)."""
    example = _load_example("lstm_sine")
    torch.manual_seed(0)
    state = {k: v.detach().double().numpy()
             for k, v in example.sequence_model(torch).state_dict().items()}  # fmt: skip
    sizes = {"steps": 3, "waves": 8, "length": 60, "future": 20, "verbose": False}
    ours = example.train(gg, state, **sizes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # its per-step overhead on a busy 2-core machine: tens of seconds
    try:
        theirs = example.train(torch, state, **sizes)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert ours[0][-1] < 0.5 * ours[0][0]  # it learns
