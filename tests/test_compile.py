"""graphgrad.compile: a replayed step gives the eager step's bits, and each guard re-records.

The oracle is the eager step itself, run on the same seeds: eager training is checked against
torch elsewhere (test_optim, test_nn, test_torch_conformance); what this file proves is that a
replay, which runs no Tensor, node or engine code, computes exactly what the eager run does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphgrad as gg
from graphgrad.compiler import CompileWarning

STEPS = 100


def _mlp(kind: str) -> gg.nn.Module:
    layers = {
        "relu": [gg.nn.Linear(6, 16), gg.nn.ReLU(), gg.nn.Linear(16, 4)],
        "gelu": [gg.nn.Linear(6, 16), gg.nn.GELU(), gg.nn.Linear(16, 4)],
        "layernorm": [gg.nn.Linear(6, 16), gg.nn.LayerNorm(16), gg.nn.Tanh(),
                      gg.nn.Linear(16, 4)],
        "dropout": [gg.nn.Linear(6, 16), gg.nn.ReLU(), gg.nn.Dropout(0.3), gg.nn.Linear(16, 4)],
    }[kind]
    return gg.nn.Sequential(*layers)


OPTIMIZERS = {
    "sgd-momentum": lambda p: gg.optim.SGD(p, lr=0.05, momentum=0.9),
    "sgd-nesterov": lambda p: gg.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                           weight_decay=1e-3),
    "adam": lambda p: gg.optim.Adam(p, lr=0.01),
    "adamw": lambda p: gg.optim.AdamW(p, lr=0.01, weight_decay=0.1, amsgrad=True),
}


def _batches(steps: int, rows: int = 8):
    rng = np.random.default_rng(1)
    return [(gg.tensor(rng.standard_normal((rows, 6)).astype(np.float32)),
             gg.tensor(rng.integers(0, 4, rows))) for _ in range(steps)]


def _train(kind: str, optimizer: str, compiled: bool, batches) -> tuple:
    gg.manual_seed(0)
    model = _mlp(kind)
    opt = OPTIMIZERS[optimizer](model.parameters())
    loss_fn = gg.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    run = gg.compile(step, fullgraph=True) if compiled else step
    gg.manual_seed(7)  # dropout's draws
    losses = [run(x, y).detach().numpy().copy() for x, y in batches]
    state = opt.state_dict()["state"]
    moments = [v.numpy().copy() for s in state.values() for v in s.values()
               if isinstance(v, gg.Tensor)]
    return losses, [p.detach().numpy().copy() for p in model.parameters()], moments, run


@pytest.mark.parametrize("kind", ["relu", "gelu", "layernorm", "dropout"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_a_compiled_step_gives_the_eager_bits_over_100_steps(kind, optimizer):
    batches = _batches(STEPS)
    eager = _train(kind, optimizer, False, batches)
    compiled = _train(kind, optimizer, True, batches)
    for got, want in zip(compiled[:3], eager[:3]):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    assert compiled[3].recordings == 2  # recorded, checked by a second record, then replayed


def test_new_shapes_and_dtypes_record_a_new_plan():
    w = gg.tensor([1.0, -2.0, 0.5], requires_grad=True)

    def f(x):
        w.grad = None
        loss = (w * x).tanh().sum()
        loss.backward()
        return loss

    compiled = gg.compile(f)
    for x in (gg.ones(3), gg.ones(3) * 2, gg.ones(3) * 3):
        compiled(x)
    assert compiled.recordings == 2
    out = compiled(gg.ones(2, 3))  # a new shape: a new record
    assert compiled.recordings == 3
    expected = (w.detach() * gg.ones(2, 3)).tanh().sum()
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    compiled(gg.ones(3, dtype=gg.float64))
    assert compiled.recordings == 4
    assert w.grad.dtype == gg.float32


def _replayed(compiled, *args) -> None:
    """Call until the plan is verified (two records), then once more as a replay."""
    for _ in range(3):
        compiled(*args)


def test_grad_mode_is_part_of_the_signature():
    model = gg.nn.Linear(3, 2)

    def f(x):
        out = model(x).sum()
        if gg.is_grad_enabled():
            out.backward()
        return out

    compiled = gg.compile(f)
    x = gg.ones(4, 3)
    _replayed(compiled, x)
    before = compiled.recordings
    with gg.no_grad():
        out = compiled(x)
    assert compiled.recordings == before + 1
    assert not out.requires_grad


def test_a_module_switched_to_eval_is_recorded_again():
    gg.manual_seed(0)
    model = gg.nn.Sequential(gg.nn.Linear(4, 8), gg.nn.Dropout(0.5))
    compiled = gg.compile(lambda x: model(x))
    x = gg.ones(2, 4)
    with gg.no_grad():
        _replayed(compiled, x)
        before = compiled.recordings
        model.eval()
        out = compiled(x)
        assert compiled.recordings == before + 1
        np.testing.assert_array_equal(out.numpy(), model(x).numpy())  # no dropout in eval


def test_a_parameter_changed_from_outside_is_read_or_re_recorded():
    model = gg.nn.Linear(3, 1)

    def f(x):
        model.zero_grad()
        loss = model(x).sum()
        loss.backward()
        return loss

    compiled = gg.compile(f)
    x = gg.ones(2, 3)
    _replayed(compiled, x)
    before = compiled.recordings
    model.weight.data = gg.full((1, 3), 2.0)  # a new array of the same shape: read live
    expected = (x @ model.weight.detach().T + model.bias.detach()).sum()
    np.testing.assert_array_equal(compiled(x).detach().numpy(), expected.numpy())
    assert compiled.recordings == before
    model.weight.requires_grad_(False)  # what needs a gradient changed: a new record
    compiled(x)
    assert compiled.recordings == before + 1
    assert model.weight.grad is None
    np.testing.assert_array_equal(model.bias.grad.numpy(), [2.0])


def test_python_arguments_key_the_plan():
    w = gg.tensor([1.0, 2.0], requires_grad=True)
    compiled = gg.compile(lambda x, scale: (w * x * scale).sum())
    with gg.no_grad():
        _replayed(compiled, gg.ones(2), 2.0)
        before = compiled.recordings
        assert compiled(gg.ones(2), 3.0).item() == 9.0
        assert compiled.recordings == before + 1


def test_a_value_read_into_python_makes_it_run_eagerly_with_one_warning():
    w = gg.tensor([1.0, -1.0], requires_grad=True)

    def f(x):
        w.grad = None
        loss = (w * x).sum()
        if loss.item() > 0:  # a branch on the data: no plan could be trusted with it
            loss = loss * 2
        loss.backward()
        return loss

    compiled = gg.compile(f)
    with pytest.warns(CompileWarning, match=r"item\(\) reads a tensor's value"):
        compiled(gg.tensor([3.0, 1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        assert compiled(gg.tensor([1.0, 3.0])).item() == -2.0
        assert compiled(gg.tensor([3.0, 1.0])).item() == 4.0
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 2.0])
    with pytest.raises(RuntimeError, match="runs eagerly"):
        gg.compile(f, fullgraph=True)(gg.tensor([3.0, 1.0]))


def test_an_in_place_change_is_refused():
    def f(x):
        y = x * 2
        y.add_(1)
        return y

    with pytest.warns(CompileWarning, match="in place"):
        gg.compile(f)(gg.ones(2))


def test_an_index_computed_from_the_inputs_is_refused():
    compiled = gg.compile(lambda x: x[x > 0].sum())
    with pytest.warns(CompileWarning, match="indexed by a tensor"):
        compiled(gg.tensor([1.0, -1.0, 2.0]))
    assert compiled(gg.tensor([-1.0, 5.0, 2.0])).item() == 7.0


def test_an_index_converted_outside_the_op_stream_is_caught_by_the_second_record():
    table = gg.tensor([[1.0, 2.0], [3.0, 4.0]])
    # gather converts an int32 index to int64 in NumPy: the recorder sees only a constant
    compiled = gg.compile(lambda index: table.gather(1, index).sum())
    compiled(gg.tensor([[0], [1]], dtype=gg.int32))
    with pytest.warns(CompileWarning, match="its record changed between two calls: step 0 "
                      r"\(gather\) depends on the inputs' values"):
        compiled(gg.tensor([[1], [0]], dtype=gg.int32))
    assert compiled(gg.tensor([[1], [1]], dtype=gg.int32)).item() == 6.0


def test_a_leaf_input_gets_its_gradient_and_a_replay_needs_no_more_memory_than_eager():
    import tracemalloc

    def chain(x):
        y = x
        for _ in range(5):
            y = (y * 1.5).sin() + x
        total = y.sum()
        total.backward()
        return total

    def peak_of(fn, x) -> int:
        tracemalloc.start()
        try:
            fn(x)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    compiled = gg.compile(chain)
    for value in (0.1, 0.2, 0.3, 0.4):
        x = gg.full((500, 500), value, dtype=gg.float64, requires_grad=True)
        replay_peak = peak_of(compiled, x)
        expected = gg.full((500, 500), value, dtype=gg.float64, requires_grad=True)
        eager_peak = peak_of(chain, expected)
        np.testing.assert_array_equal(x.grad.numpy(), expected.grad.numpy())
    assert compiled.recordings == 2
    assert replay_peak <= 1.02 * eager_peak, (replay_peak, eager_peak)


def test_forward_hooks_are_called_on_each_replay():
    model = gg.nn.Sequential(gg.nn.Linear(2, 3), gg.nn.ReLU())
    seen = []
    model[1].register_forward_hook(lambda m, args, out: seen.append(out.detach().numpy().copy()))

    def f(x):
        model.zero_grad()
        out = model(x).sum()
        out.backward()
        return out

    compiled = gg.compile(f)
    xs = [gg.full((1, 2), float(i)) for i in range(4)]
    for x in xs:
        compiled(x)
    assert compiled.recordings == 2
    for x, got in zip(xs, seen):
        with gg.no_grad():
            np.testing.assert_array_equal(got, model(x).numpy())


def test_a_graph_compiles_too():
    g = gg.Graph()
    x = g.input("x", shape=(3,))
    w = g.parameter("w", gg.tensor([1.0, 2.0, 3.0], requires_grad=True))
    g.output(g.sum(g.op("tanh", x * w)), name="loss")
    step = g.compile(backward=True)
    param = g.parameters[0].value
    for value in (0.5, 1.0, 1.5):
        param.grad = None
        out = step(gg.full((3,), value))
        expected = (gg.full((3,), value) * param.detach()).tanh().sum()
        np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
        np.testing.assert_array_equal(param.grad.numpy(),
                                      (value * (1 - np.tanh(value * param.detach().numpy())
                                                ** 2)).astype(np.float32))


def test_fit_with_compile_gives_the_eager_run():
    from graphgrad import train

    runs = []
    for compiled in (False, True):
        gg.manual_seed(0)
        x = gg.randn(64, 2)
        y = (x[:, 0] > x[:, 1]).long()
        model = gg.nn.Sequential(gg.nn.Linear(2, 8), gg.nn.ReLU(), gg.nn.Linear(8, 2))
        history = train.fit(model, gg.nn.CrossEntropyLoss(), (x, y), optimizer="adam", lr=0.01,
                            epochs=3, batch_size=16, progress=False, compile=compiled)
        runs.append(([e["train_loss"] for e in history.epochs],
                     [p.detach().numpy() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_compile_checks_its_argument():
    with pytest.raises(TypeError, match="expected a callable"):
        gg.compile(3)


def test_ops_whose_vjp_reads_only_their_output_replay_without_their_inputs():
    w = gg.tensor([0.5, -1.0, 2.0], requires_grad=True)

    def f(x):
        w.grad = None
        h = x * w
        loss = (h.sigmoid() + h.exp().sqrt() + h.tanh() + h.relu() + (h * h + 1).rsqrt()).sum()
        loss.backward()
        return loss

    compiled = gg.compile(f, fullgraph=True)
    for value in (0.3, -0.7, 1.1, 2.0):
        x = gg.full((3,), value)
        got = compiled(x).detach().numpy().copy(), w.grad.numpy().copy()
        want = f(x).detach().numpy(), w.grad.numpy()
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert compiled.recordings == 2


def test_a_gradient_can_be_the_result():
    w = gg.tensor([1.0, 2.0], requires_grad=True)

    def f(x):
        w.grad = None
        (w * w * x).sum().backward()
        return w.grad

    compiled = gg.compile(f, fullgraph=True)
    for value in (1.0, 2.0, 3.0):
        np.testing.assert_array_equal(compiled(gg.full((2,), value)).numpy(),
                                      [2.0 * value, 4.0 * value])


def test_factories_and_all_any_inside_the_step_replay_from_each_call():
    w = gg.ones(3, requires_grad=True)

    def step(x):
        shift = gg.zeros(2, 3) + gg.full((2, 3), 0.5)  # factories inside the step
        masked = gg.where(x.all(-1, keepdim=True) | (x < -5).any(), 0.0, x)  # from this x
        loss = (masked * w + shift).sum()
        loss.backward()
        return loss.detach()

    compiled = gg.compile(step, fullgraph=True)
    inputs = [gg.ones(2, 3), gg.ones(2, 3) * 2, gg.tensor([[1.0, 0.0, 2.0], [3.0, 4.0, 5.0]]),
              gg.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, -6.0]])]
    eager = [step(x).item() for x in inputs]
    assert [compiled(x).item() for x in inputs] == eager
    assert eager == [3.0, 3.0, 6.0, 3.0]  # worked by hand: the masks come from all() and any()
    assert compiled.recordings == 2  # the first call and the one that checks it: replays after


def test_integer_bitwise_operators_are_not_replayed():
    compiled = gg.compile(lambda x: (~x).float().sum())
    with pytest.warns(CompileWarning, match="bitwise invert"):
        assert compiled(gg.tensor([1, 2])).item() == -5.0
