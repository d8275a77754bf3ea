"""Legacy and convenience API against torch (the oracle): Tensor(*sizes) and the legacy tensor
types, autograd.Variable, Module.cpu/cuda, buffers and forward hooks, the random functions
(normal, bernoulli, multinomial, poisson, *_like), save/load of arrays and numbers, and out=."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

import graphgrad as gg
from graphgrad.autograd import Variable


def dtype_name(t) -> str:
    return str(t.dtype).split(".")[1]


# ------------------------------------------------------------------ legacy constructors
@pytest.mark.parametrize("args", [(2, 3), (3,), (0,), (), (gg.Size([2, 1]),)], ids=repr)
def test_tensor_of_sizes_is_float32_of_that_shape(args):
    torch_args = tuple(torch.Size(a) if isinstance(a, gg.Size) else a for a in args)
    ours, theirs = gg.Tensor(*args), torch.Tensor(*torch_args)
    assert tuple(ours.shape) == tuple(theirs.shape) and dtype_name(ours) == dtype_name(theirs)
    assert not ours.requires_grad and ours.is_leaf
    assert not ours.numpy().any()  # zero-filled, never uninitialised memory


@pytest.mark.parametrize("data", [[1, 2], (2, 3), [[1.5, 2], [3, 4]], [True, False],
                                  np.array([1, 2], dtype=np.int64)], ids=repr)
def test_tensor_of_data_is_a_float32_copy(data):
    ours, theirs = gg.Tensor(data), torch.Tensor(data)
    assert ours.tolist() == theirs.tolist() and dtype_name(ours) == dtype_name(theirs)


@pytest.mark.parametrize("dtype", ["float32", "int64", "float64"])
def test_tensor_of_a_tensor_shares_its_memory_and_dtype(dtype):
    source = gg.tensor(np.array([1, 2], dtype=dtype))
    alias = gg.Tensor(source)
    assert alias is not source and dtype_name(alias) == dtype_name(torch.Tensor(
        torch.tensor(np.array([1, 2], dtype=dtype))))
    alias.add_(1)
    assert source.tolist() == [2, 3]


@pytest.mark.parametrize(("args", "error"), [((2.5,), TypeError), ((2, 3.0), TypeError),
                                             ((-1,), RuntimeError), ((2, -3), RuntimeError)],
                         ids=repr)
def test_bad_legacy_arguments_raise_as_in_torch(args, error):
    for constructor in (gg.Tensor, torch.Tensor, gg.LongTensor, torch.LongTensor):
        with pytest.raises(error):
            constructor(*args)


LEGACY = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor",
          "CharTensor", "ByteTensor", "BoolTensor"]


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_types_build_tensors_and_test_dtypes_as_torch(name):
    ours_type, theirs_type = getattr(gg, name), getattr(torch, name)
    for args in [(2, 3), ([1, 0, 2],), ([[1.5, 0.0]],), ()]:
        ours, theirs = ours_type(*args), theirs_type(*args)
        assert type(ours) is gg.Tensor
        assert tuple(ours.shape) == tuple(theirs.shape) and dtype_name(ours) == dtype_name(theirs)
        if args and not isinstance(args[0], int):
            assert ours.tolist() == theirs.tolist()
    for dtype in ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8",
                  "bool"]:
        ours = gg.zeros(2, dtype=getattr(gg, dtype))
        theirs = torch.zeros(2, dtype=getattr(torch, dtype))
        assert isinstance(ours, ours_type) == isinstance(theirs, theirs_type), dtype
    assert ours_type.dtype == getattr(gg, str(theirs_type.dtype).split(".")[1])
    assert not isinstance([1.0], ours_type)


def test_legacy_type_of_a_tensor_of_another_dtype_refuses_as_torch():
    with pytest.raises(TypeError):
        torch.FloatTensor(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="FloatTensor.*int64"):
        gg.FloatTensor(gg.tensor([1, 2]))
    same = gg.tensor([1.0])
    assert gg.FloatTensor(same).numpy().base is same.numpy().base or \
        np.shares_memory(gg.FloatTensor(same).numpy(), same.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_new_is_the_legacy_constructor_of_the_tensors_dtype(dtype):
    ours = gg.zeros(1, dtype=getattr(gg, dtype))
    theirs = torch.zeros(1, dtype=getattr(torch, dtype))
    for args in [(2, 3), ([1, 0],), ()]:
        a, b = ours.new(*args), theirs.new(*args)
        assert (tuple(a.shape), dtype_name(a)) == (tuple(b.shape), dtype_name(b))
        if args and isinstance(args[0], list):
            assert a.tolist() == b.tolist()
    assert np.shares_memory(ours.new(ours).numpy(), ours.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "int16",
                                   "int8", "uint8", "bool"])
def test_type_names_the_legacy_type_as_torch(dtype):
    ours = gg.zeros(2, dtype=getattr(gg, dtype)).type()
    theirs = torch.zeros(2, dtype=getattr(torch, dtype)).type()
    assert ours == theirs.replace("torch.", "graphgrad.")


def test_type_converts_to_a_dtype_a_legacy_type_or_its_name():
    x = gg.tensor([1.5, -2.0])
    for target, want in [("torch.DoubleTensor", "float64"), ("graphgrad.LongTensor", "int64"),
                         (gg.IntTensor, "int32"), (gg.float16, "float16")]:
        theirs_target = target if isinstance(target, str) else (
            getattr(torch, target.__name__) if isinstance(target, type) else torch.float16)
        theirs = torch.tensor([1.5, -2.0]).type(theirs_target.replace("graphgrad", "torch")
                                                 if isinstance(theirs_target, str)
                                                 else theirs_target)
        converted = x.type(target)
        assert dtype_name(converted) == want == dtype_name(theirs)
        assert converted.tolist() == theirs.tolist()
    for lib in (gg, torch):
        with pytest.raises(ValueError, match="invalid type: 'foo'"):
            lib.zeros(1).type("foo")
        with pytest.raises(RuntimeError):
            lib.zeros(1).type("torch.cuda.FloatTensor")


def test_variable_is_a_new_leaf_sharing_memory_as_in_torch():
    for lib, variable in ((gg, Variable), (torch, torch.autograd.Variable)):
        w = lib.ones(2, requires_grad=True)
        product = w * 2
        v = variable(product)
        assert (v.requires_grad, v.is_leaf, type(v)) == (False, True, lib.Tensor)
        v = variable(product, requires_grad=True)
        assert (v.requires_grad, v.is_leaf) == (True, True)
        (v * v).sum().backward()
        assert v.grad.tolist() == [4.0, 4.0] and w.grad is None
        assert isinstance(lib.ones(1), variable)
        assert tuple(variable().shape) == (0,)
        with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
            variable([1, 2])
        with pytest.raises(RuntimeError, match="floating point"):
            variable(lib.tensor([1, 2]), requires_grad=True)
        with pytest.warns(UserWarning, match="volatile was removed"):
            variable(lib.ones(1), volatile=True)
    shared = gg.zeros(2)
    Variable(shared).add_(1)
    assert shared.tolist() == [1.0, 1.0]


# ------------------------------------------------------------------ modules
def test_cpu_returns_the_module_and_cuda_refuses_as_to_cuda():
    model = gg.nn.Linear(2, 2)
    assert model.cpu() is model
    with pytest.raises(RuntimeError) as to_cuda:
        model.to("cuda")
    for call in (model.cuda, lambda: model.cuda(0), lambda: model.cuda("cuda:1")):
        with pytest.raises(RuntimeError) as refused:
            call()
        assert str(refused.value).split(";")[0] == str(to_cuda.value).split(";")[0]
        assert "CPU only" in str(refused.value)


@pytest.mark.parametrize(("call", "error"), [
    (lambda lib, m: m.register_buffer("a.b", lib.zeros(1)), KeyError),
    (lambda lib, m: m.register_buffer("", lib.zeros(1)), KeyError),
    (lambda lib, m: m.register_buffer("x", [1]), TypeError),
    (lambda lib, m: m.register_buffer(1, lib.zeros(1)), TypeError),
    (lambda lib, m: m.register_buffer("training", lib.zeros(1)), KeyError),
], ids=["dot", "empty", "list", "int-name", "existing"])
def test_register_buffer_refuses_as_torch(call, error):
    for lib in (gg, torch):
        with pytest.raises(error):
            call(lib, lib.nn.Module())


def test_buffers_follow_state_dict_and_dtype_conversion_as_torch():
    results = []
    for lib in (gg, torch):
        model = lib.nn.Linear(2, 2)
        model.register_buffer("mean", lib.zeros(2))
        model.register_buffer("count", lib.tensor(3))
        model.register_buffer("scratch", lib.ones(2), persistent=False)
        model.register_buffer("nothing", None)
        model.double()
        results.append((list(model.state_dict()), [n for n, _ in model.named_buffers()],
                        dtype_name(model.mean), dtype_name(model.count),
                        dtype_name(model.scratch), model.nothing))
    assert results[0] == results[1]


def _hooked_runs(lib):
    """Pre-hooks and forward hooks of each kind on a Linear; what each call returns."""
    torch.manual_seed(0)
    layer = lib.nn.Linear(3, 2)
    if lib is gg:
        layer.load_state_dict({k: v.detach().numpy() for k, v in
                               torch.nn.Linear(3, 2).state_dict().items()})
    x = lib.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    calls = []
    outputs = [layer(x).detach().numpy()]
    handles = [
        layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,)),
        layer.register_forward_pre_hook(lambda m, args: args[0] + 1),  # not a tuple: wrapped
        layer.register_forward_hook(lambda m, args, out: calls.append(args[0].tolist())),
        layer.register_forward_hook(lambda m, args, out: out * 10),
        layer.register_forward_hook(lambda m, args, out: calls.append("first"), prepend=True),
    ]
    outputs.append(layer(x).detach().numpy())
    handles[3].remove()
    handles[0].remove()
    outputs.append(layer(x).detach().numpy())
    for handle in handles:
        handle.remove()
    outputs.append(layer(x).detach().numpy())
    return outputs, calls


def test_forward_hooks_and_pre_hooks_change_inputs_and_outputs_as_torch():
    (ours, our_calls), (theirs, their_calls) = _hooked_runs(gg), _hooked_runs(torch)
    assert our_calls == their_calls
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_array_equal(ours[0], ours[-1])  # removed hooks are gone


class Scale:
    @staticmethod
    def make(lib):
        class Module(lib.nn.Module):
            def forward(self, x, scale=1.0):
                return x * scale
        return Module()


def test_hooks_with_kwargs_and_always_call_as_torch():
    results = []
    for lib in (gg, torch):
        module = Scale.make(lib)
        seen = []
        module.register_forward_pre_hook(
            lambda m, args, kwargs: (args, {**kwargs, "scale": kwargs.get("scale", 1.0) * 3}),
            with_kwargs=True)
        module.register_forward_hook(lambda m, args, kwargs, out: out + kwargs["scale"],
                                     with_kwargs=True)
        value = module(lib.ones(2), scale=2.0).tolist()
        failing = Scale.make(lib)
        failing.register_forward_hook(lambda m, args, out, seen=seen: seen.append(out),
                                      always_call=True)
        failing.register_forward_hook(lambda m, args, out, seen=seen: seen.append("again"))
        with pytest.raises(TypeError):
            failing(lib.ones(2), bad_keyword=1)
        bad = Scale.make(lib)
        bad.register_forward_pre_hook(lambda m, args, kwargs: 5, with_kwargs=True)
        with pytest.raises(RuntimeError, match="must return None or a tuple of"):
            bad(lib.ones(1))
        results.append((value, seen))
    assert results[0] == results[1] == ([12.0, 12.0], [None])


# ------------------------------------------------------------------ random functions
def test_normal_has_torchs_four_forms_shapes_and_dtypes():
    mean64 = gg.zeros(2, 1, dtype=gg.float64)
    forms = [
        (lambda lib: lib.normal(lib.zeros(2, 3), lib.ones(2, 3))),
        (lambda lib: lib.normal(lib.zeros(2, 1), lib.ones(3))),
        (lambda lib: lib.normal(lib.zeros(4), 2.0)),
        (lambda lib: lib.normal(lib.zeros(4))),
        (lambda lib: lib.normal(1.0, lib.ones(2, 2, dtype=lib.float64))),
        (lambda lib: lib.normal(0.0, 1.0, (3, 2))),
        (lambda lib: lib.normal(0, 1, size=(5,), dtype=lib.float64)),
        (lambda lib: lib.normal(lib.zeros(2, 1, dtype=lib.float64), lib.ones(2, 1))),
    ]
    for form in forms:
        ours, theirs = form(gg), form(torch)
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert dtype_name(ours) == dtype_name(theirs)
    assert mean64.dtype == gg.float64


def test_normal_with_tensors_that_require_grad_gives_zero_gradients_as_torch():
    for lib in (gg, torch):
        mean = lib.zeros(3, requires_grad=True)
        std = lib.ones(3, requires_grad=True)
        sample = lib.normal(mean, std)
        assert sample.requires_grad
        (sample * 5).sum().backward()
        assert mean.grad.tolist() == [0.0] * 3 and std.grad.tolist() == [0.0] * 3
        with lib.no_grad():
            assert not lib.normal(mean, std).requires_grad


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda lib: lib.normal(lib.zeros(2), -1.0), RuntimeError, "normal expects std >= 0.0"),
    (lambda lib: lib.normal(lib.zeros(2), lib.tensor([1.0, -1.0])), RuntimeError,
     "normal expects all elements of std >= 0.0"),
    (lambda lib: lib.normal(0.0, -2.0, (2,)), RuntimeError, "normal expects std >= 0.0"),
    (lambda lib: lib.normal(0.0, 1.0), TypeError, "normal"),
    (lambda lib: lib.normal(lib.zeros(2, dtype=lib.int64), 1.0), NotImplementedError,
     "normal_kernel_cpu"),
], ids=["negative-std", "negative-std-tensor", "negative-std-size", "no-size", "int-mean"])
def test_normal_refuses_as_torch(call, error, message):
    for lib in (gg, torch):
        with pytest.raises(error, match=message):
            call(lib)


def _moments(sample) -> tuple:
    values = sample.numpy().astype(np.float64)
    return values.mean(), values.var()


def test_normal_statistics_and_reproducibility():
    gg.manual_seed(3)
    a = gg.normal(2.0, 3.0, (200_000,))
    gg.manual_seed(3)
    b = gg.normal(2.0, 3.0, (200_000,))
    assert a.equal(b)
    mean, var = _moments(a)
    assert abs(mean - 2.0) < 5 * 3.0 / np.sqrt(2e5) and abs(var - 9.0) < 0.1
    means = gg.tensor(np.array([-5.0, 0.0, 5.0], dtype=np.float32)).expand(100_000, 3)
    sample = gg.normal(means, gg.tensor([0.5, 1.0, 2.0]))
    values = sample.numpy().astype(np.float64)
    np.testing.assert_allclose(values.mean(0), [-5, 0, 5], atol=0.03)
    np.testing.assert_allclose(values.std(0), [0.5, 1.0, 2.0], rtol=0.02)
    g = gg.Generator().manual_seed(9)
    first = gg.normal(gg.zeros(5), 1.0, generator=g)
    assert first.equal(gg.normal(gg.zeros(5), 1.0, generator=g.manual_seed(9)))


def test_bernoulli_as_torch():
    for lib in (gg, torch):
        probabilities = lib.tensor([0.0, 1.0, 0.0, 1.0], dtype=lib.float64)
        assert lib.bernoulli(probabilities).tolist() == [0.0, 1.0, 0.0, 1.0]
        assert dtype_name(lib.bernoulli(probabilities)) == "float64"
        assert lib.bernoulli(lib.zeros(3), p=1.0).tolist() == [1.0] * 3
        assert lib.zeros(2).bernoulli(0.0).tolist() == [0.0, 0.0]
        assert lib.ones(2).bernoulli().tolist() == [1.0, 1.0]
        grad = lib.full((3,), 0.5, requires_grad=True)
        sample = lib.bernoulli(grad)
        assert sample.requires_grad
        sample.sum().backward()
        assert grad.grad.tolist() == [0.0] * 3
        for probabilities, p in (([1.5], None), ([-0.5], None), ([0.0, 0.0], 1.5)):
            with pytest.raises(RuntimeError):
                lib.bernoulli(lib.tensor(probabilities), p=p) if p is not None else \
                    lib.bernoulli(lib.tensor(probabilities))
        with pytest.raises(NotImplementedError):
            lib.bernoulli(lib.tensor([1]))
    gg.manual_seed(1)
    sample = gg.bernoulli(gg.full((400_000,), 0.3))
    assert abs(sample.numpy().mean() - 0.3) < 5 * np.sqrt(0.21 / 4e5)
    gg.manual_seed(1)
    assert sample.equal(gg.bernoulli(gg.full((400_000,), 0.3)))


def test_multinomial_shapes_dtypes_and_statistics():
    weights = gg.tensor([1.0, 2.0, 0.0, 5.0])
    for lib in (gg, torch):
        w = lib.tensor(weights.numpy())
        assert tuple(lib.multinomial(w, 3).shape) == (3,)
        assert dtype_name(lib.multinomial(w, 3)) == "int64"
        assert tuple(lib.multinomial(w.expand(5, 4), 7, replacement=True).shape) == (5, 7)
        assert sorted(lib.multinomial(w, 3).tolist()) == [0, 1, 3]  # 2 has no weight
        assert w.multinomial(2, True).shape[0] == 2
    gg.manual_seed(5)
    draws = gg.multinomial(weights.expand(4, 4), 50_000, replacement=True).numpy()
    for row in draws:
        frequencies = np.bincount(row, minlength=4) / row.size
        np.testing.assert_allclose(frequencies, [0.125, 0.25, 0.0, 0.625], atol=0.01)
    gg.manual_seed(5)
    assert (gg.multinomial(weights.expand(4, 4), 50_000, replacement=True).numpy() == draws).all()
    gg.manual_seed(6)  # without replacement, the first draw follows the weights too
    firsts = gg.multinomial(weights.expand(40_000, 4), 2).numpy()
    assert (firsts[:, 0] != firsts[:, 1]).all()
    np.testing.assert_allclose(np.bincount(firsts[:, 0], minlength=4) / 40_000,
                               [0.125, 0.25, 0.0, 0.625], atol=0.01)


@pytest.mark.parametrize(("call", "message"), [
    (lambda lib: lib.multinomial(lib.tensor([1.0, 1.0]), 3),
     "cannot sample n_sample > prob_dist.size"),
    (lambda lib: lib.multinomial(lib.tensor([-1.0, 1.0]), 1),
     "probability tensor contains either `inf`, `nan` or element < 0"),
    (lambda lib: lib.multinomial(lib.tensor([float("inf"), 1.0]), 1),
     "probability tensor contains either `inf`, `nan` or element < 0"),
    (lambda lib: lib.multinomial(lib.tensor([0.0, 0.0]), 1, True),
     r"invalid multinomial distribution \(sum of probabilities <= 0\)"),
    (lambda lib: lib.multinomial(lib.zeros(2, 2, 2), 1), "prob_dist must be 1 or 2 dim"),
    (lambda lib: lib.multinomial(lib.tensor([1, 2]), 1),
     "multinomial only supports floating-point dtypes for input"),
    (lambda lib: lib.multinomial(lib.tensor([1.0, 2.0]), 0), "cannot sample n_sample <= 0"),
], ids=["too-many", "negative", "inf", "zero-sum", "3d", "int", "zero-samples"])
def test_multinomial_refuses_as_torch(call, message):
    for lib in (gg, torch):
        with pytest.raises(RuntimeError, match=message):
            call(lib)


def test_poisson_as_torch():
    for lib in (gg, torch):
        rates = lib.tensor([0.0, 0.0], dtype=lib.float64)
        assert lib.poisson(rates).tolist() == [0.0, 0.0]
        assert dtype_name(lib.poisson(rates)) == "float64"
        with pytest.raises(RuntimeError, match="invalid Poisson rate"):
            lib.poisson(lib.tensor([-1.0]))
        with pytest.raises(NotImplementedError):
            lib.poisson(lib.tensor([1]))
        rate = lib.tensor([2.0], requires_grad=True)
        sample = lib.poisson(rate)
        assert sample.requires_grad
        sample.sum().backward()
        assert rate.grad.tolist() == [0.0]
    gg.manual_seed(2)
    sample = gg.poisson(gg.full((200_000,), 4.0))
    mean, var = _moments(sample)
    assert abs(mean - 4.0) < 0.03 and abs(var - 4.0) < 0.1
    assert (sample.numpy() == np.round(sample.numpy())).all()
    gg.manual_seed(2)
    assert sample.equal(gg.poisson(gg.full((200_000,), 4.0)))


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8", "uint8", "int64", "bool"])
def test_random__and_bernoulli__as_torch(dtype):
    for lib in (gg, torch):
        x = lib.zeros(20_000, dtype=getattr(lib, dtype))
        top = {"float32": 2**24, "float16": 2**11, "int8": 127, "uint8": 255,
               "int64": 2**63 - 1, "bool": 1}[dtype]
        assert x.random_() is x and dtype_name(x) == dtype
        values = x.numpy().astype(np.float64)
        assert values.min() >= 0 and values.max() <= top and values.max() > top / 2
        assert set(np.unique(x.random_(2).numpy().astype(int))) == {0, 1}
        if dtype == "bool":
            with pytest.raises(RuntimeError, match="to - 1.* is out of bounds for"):
                x.random_(3)
        else:
            assert set(np.unique(x.random_(2, 4).numpy().astype(int))) == {2, 3}
            with pytest.raises(RuntimeError, match="random_ expects 'from' to be less than"):
                x.random_(3, 3)
        assert x.bernoulli_(1.0).numpy().astype(int).tolist() == [1] * 20_000
        assert x.bernoulli_(0.0).numpy().astype(int).tolist() == [0] * 20_000
        with pytest.raises(RuntimeError, match=r"bernoulli_ expects p to be in \[0, 1\]"):
            x.bernoulli_(1.5)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            lib.zeros(2, requires_grad=True).random_()
    probabilities = gg.tensor([0.0, 1.0, 1.0])
    assert gg.zeros(3).bernoulli_(probabilities).tolist() == [0.0, 1.0, 1.0]
    gg.manual_seed(8)
    frequency = gg.zeros(100_000).bernoulli_(0.25).numpy().mean()
    assert abs(frequency - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 1e5)
    with pytest.raises(RuntimeError, match="out of bounds for graphgrad.uint8"):
        gg.zeros(2, dtype=gg.uint8).random_(-1, 3)


@pytest.mark.parametrize("name", ["rand_like", "randn_like"])
def test_like_functions_as_torch(name):
    for dtype in ("float32", "float64"):
        ours = getattr(gg, name)(gg.zeros(2, 3, dtype=getattr(gg, dtype)), requires_grad=True)
        theirs = getattr(torch, name)(torch.zeros(2, 3, dtype=getattr(torch, dtype)),
                                      requires_grad=True)
        assert (tuple(ours.shape), dtype_name(ours), ours.requires_grad) == \
            (tuple(theirs.shape), dtype_name(theirs), theirs.requires_grad)
    g = gg.Generator().manual_seed(4)
    first = getattr(gg, name)(gg.zeros(3), generator=g)
    assert first.equal(getattr(gg, name)(gg.zeros(3), generator=g.manual_seed(4)))


def test_randint_like_as_torch():
    for lib in (gg, torch):
        x = lib.zeros(2, 3, dtype=lib.float64)
        a, b = lib.randint_like(x, 5), lib.randint_like(x, 3, 7, dtype=lib.int32)
        assert (dtype_name(a), dtype_name(b)) == ("float64", "int32")
        assert ((a >= 0) & (a < 5)).all() and ((b >= 3) & (b < 7)).all()
    g = gg.Generator().manual_seed(4)
    first = gg.randint_like(gg.zeros(50), 10, generator=g)
    assert first.equal(gg.randint_like(gg.zeros(50), 10, generator=g.manual_seed(4)))


def test_random_draws_replay_under_compile():
    """A compiled step draws afresh at each replay, the same numbers as the eager step."""
    def step(mean, x):
        noise = gg.normal(mean, 0.5) + gg.normal(0.0, 1.0, (3,)) + gg.randn_like(x)
        keep = gg.bernoulli(gg.full((3,), 0.5))
        return (noise * keep * x).sum()

    results = []
    for compiled in (False, True):
        gg.manual_seed(11)
        run = gg.compile(step, fullgraph=True) if compiled else step
        mean = gg.tensor([1.0, 2.0, 3.0])
        results.append([run(mean * t, gg.ones(3) * t).item() for t in range(1, 6)])
    assert results[0] == results[1]
    assert len(set(results[0])) == 5


def test_multinomial_and_poisson_under_compile_are_refused_by_name():
    for draw, name in ((lambda p: gg.multinomial(p, 1), "multinomial"),
                       (lambda p: gg.poisson(p), "poisson")):
        with pytest.raises(Exception, match=name):
            gg.compile(draw, fullgraph=True)(gg.tensor([0.5, 0.5]))


# ------------------------------------------------------------------ save and load
def _round_trip(obj):
    buffer = io.BytesIO()
    gg.save(obj, buffer)
    buffer.seek(0)
    return gg.load(buffer)


def _torch_round_trip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_arrays_and_numbers_round_trip_as_with_torch_save():
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(2.5), np.zeros((0, 3)),
              np.array([True, False]), np.arange(10, dtype=np.int16)[::3],
              np.array([1, 2], dtype=">i4"), np.arange(4, dtype=np.uint8).reshape(2, 2).T]
    obj = {"arrays": arrays, "numbers": (1, -2.5, True, None, "text", 2**70),
           "nested": [{"w": gg.ones(2), "m": np.ones(3)}], 3: [np.float64(1.5)]}
    ours, theirs = _round_trip(obj), _torch_round_trip(obj)
    assert list(ours) == list(theirs)
    for a, b, source in zip(ours["arrays"], theirs["arrays"], arrays, strict=True):
        assert type(a) is type(b) is np.ndarray
        np.testing.assert_array_equal(a, b)
        # NumPy's own byte order is not kept: a big-endian array loads in the machine's order
        assert a.shape == source.shape and a.dtype == source.dtype.newbyteorder("=")
    assert ours["numbers"] == theirs["numbers"]
    assert type(ours["numbers"]) is tuple
    assert isinstance(ours["nested"][0]["w"], gg.Tensor)
    assert type(ours["nested"][0]["m"]) is np.ndarray
    assert ours[3] == [1.5]  # a NumPy number comes back as the Python number it equals
    ours["arrays"][0][0, 0] = 99  # writable, and not the saved array's memory
    assert arrays[0][0, 0] == 0


@pytest.mark.parametrize("array", [np.array([1 + 2j]), np.array(["text"]),
                                   np.array([None], dtype=object), np.zeros(2, np.uint16),
                                   np.ma.masked_array([1.0, 2.0], mask=[True, False])],
                         ids=["complex", "str", "object", "uint16", "masked"])
def test_arrays_graphgrad_cannot_store_raise_type_error_naming_the_place(array):
    with pytest.raises(TypeError, match=r"numpy.*at obj\['a'\]\[1\]"):
        _round_trip({"a": [0, array]})


# ------------------------------------------------------------------ out=
def _out_calls():
    return {
        "add": lambda lib, x, out: lib.add(x, x, out=out),
        "mul": lambda lib, x, out: lib.mul(x, 3, out=out),
        "div": lambda lib, x, out: lib.div(x, 2, out=out),
        "exp": lambda lib, x, out: lib.exp(x, out=out),
        "eq": lambda lib, x, out: lib.eq(x, 2, out=out),
        "maximum": lambda lib, x, out: lib.maximum(x, x * 0 + 2, out=out),
        "pow": lambda lib, x, out: lib.pow(x, 2, out=out),
        "floor_divide": lambda lib, x, out: lib.floor_divide(x, 2, out=out),
        "sum": lambda lib, x, out: lib.sum(x, 1, out=out),
        "matmul": lambda lib, x, out: lib.matmul(x, x.T, out=out),
        "cat": lambda lib, x, out: lib.cat([x, x], out=out),
        "stack": lambda lib, x, out: lib.stack([x, x], 1, out=out),
        "where": lambda lib, x, out: lib.where(x > 1, x, x * 0, out=out),
        "argmax": lambda lib, x, out: lib.argmax(x, 1, out=out),
    }


def _x(lib, dtype):
    return lib.tensor(np.array([[1, 2, 3], [4, 0, 2]]).astype(dtype))


@pytest.mark.parametrize("name", list(_out_calls()))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_out_is_written_returned_and_resized_as_torch(name, dtype):
    call = _out_calls()[name]
    results = []
    for lib in (gg, torch):
        x = _x(lib, dtype)
        want = call(lib, x, None)
        out = lib.empty(0, dtype=want.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an empty out is resized silently
            returned = call(lib, x, out)
        assert returned is out
        stale = lib.empty(7, dtype=want.dtype)
        with pytest.warns(UserWarning, match=r"resized since it had shape \[7\]"):
            call(lib, x, stale)
        same = lib.zeros(tuple(want.shape), dtype=want.dtype)
        memory = same.numpy()
        call(lib, x, same)
        assert np.shares_memory(memory, same.numpy())  # the right shape: written in place
        results.append([out.numpy().copy(), stale.numpy().copy(), same.numpy().copy()])
    for a, b in zip(*results, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6)


# torch casts an out= result by canCast for these (elementwise ops with type promotion):
# integers into floats, bools into anything, floats never into integers or bools.
CAST_NAMES = ["add", "mul", "div", "eq", "maximum", "pow", "floor_divide", "exp"]


@pytest.mark.parametrize("name", CAST_NAMES)
@pytest.mark.parametrize("dtype", ["float32", "int64", "int32"])
@pytest.mark.parametrize("out_dtype", ["float32", "float64", "int64", "int32", "bool"])
def test_out_casts_or_refuses_as_torch(name, dtype, out_dtype):
    call = _out_calls()[name]
    outcome = []
    for lib in (gg, torch):
        out = lib.empty(0, dtype=getattr(lib, out_dtype))
        try:
            call(lib, _x(lib, dtype), out)
            outcome.append(("written", dtype_name(out), out.tolist()))
        except RuntimeError as exc:
            assert "can't be cast to the desired output type" in str(exc)
            outcome.append(("refused",))
    assert outcome[0][:2] == outcome[1][:2]
    if outcome[0][0] == "written":
        np.testing.assert_allclose(outcome[0][2], outcome[1][2], rtol=1e-6)


@pytest.mark.parametrize("name", ["add", "exp", "sum", "matmul", "cat"])
def test_out_refuses_an_input_that_requires_grad_as_torch(name):
    call = _out_calls()[name]
    for lib in (gg, torch):
        x = _x(lib, "float32").requires_grad_()
        with pytest.raises(RuntimeError, match=r"functions with out=\.\.\. arguments don't "
                                               r"support automatic differentiation"):
            call(lib, x, lib.empty(0))
        with lib.no_grad():  # without autograd, torch writes it
            out = lib.empty(0)
            assert call(lib, x, out) is out and not out.requires_grad


def test_random_functions_take_out():
    for lib in (gg, torch):
        out = lib.empty(4, dtype=lib.float64)
        assert lib.normal(lib.zeros(4, dtype=lib.float64), 1.0, out=out) is out
        assert lib.normal(0.0, 1.0, (4,), out=out) is out
        assert lib.bernoulli(lib.ones(4, dtype=lib.float64), out=out) is out
        assert out.tolist() == [1.0] * 4
        indices = lib.empty(0, dtype=lib.int64)
        assert lib.multinomial(lib.tensor([0.0, 1.0]), 3, True, out=indices) is indices
        assert indices.tolist() == [1, 1, 1]
