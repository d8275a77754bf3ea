"""graphgrad.data against torch.utils.data: collation, data sets, samplers, DataLoader batching,
random_split, and the built-in data sets (their formulas, shapes, dtypes and determinism)."""

from __future__ import annotations

import collections
import sys
import types
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import graphgrad as gg
import graphgrad.data as ggd
from graphgrad.data import collate, datasets


def assert_same(ours, theirs):
    """Same structure (container types, keys, lengths), and tensors with equal values, shapes
    and dtype names."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, gg.Tensor), type(ours)
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    elif isinstance(theirs, collections.abc.Mapping):
        assert type(ours) is type(theirs) and list(ours) == list(theirs)
        for key in theirs:
            assert_same(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    else:
        assert ours == theirs


def tensor_dataset(lib, n: int):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    data = ggd if lib is gg else tud
    return data.TensorDataset(lib.from_numpy(x), lib.arange(n) % 3)


# ---------------------------------------------------------------------- default_collate

Point = collections.namedtuple("Point", ["x", "y"])

# Each case builds a batch of samples with either library (tensors differ, the rest is shared).
COLLATE_CASES = {
    "tensors": lambda L: [L.tensor([1.0, 2.0]), L.tensor([3.0, 4.0])],
    "int tensors": lambda L: [L.tensor(1), L.tensor(2)],
    "tuples": lambda L: [(L.tensor([1.0]), 0), (L.tensor([2.0]), 1)],
    "dicts": lambda L: [{"x": L.ones(2), "y": 0.5}, {"x": L.zeros(2), "y": 1.5}],
    "ints": lambda L: [1, 2, 3],
    "floats": lambda L: [0.5, 1.5],
    "bools": lambda L: [True, False],
    "int then float": lambda L: [1, 2.5],
    "numpy float32": lambda L: [np.ones(2, np.float32), np.zeros(2, np.float32)],
    "numpy int32": lambda L: [np.arange(3, dtype=np.int32)] * 2,
    "numpy float64": lambda L: [np.eye(2), np.eye(2) * 2],
    "numpy scalars": lambda L: [np.float32(1.5), np.float32(2.5)],
    "numpy float64 scalars": lambda L: [np.float64(1.5), np.float64(2.5)],
    "numpy bools": lambda L: [np.bool_(True), np.bool_(False)],
    "strings": lambda L: ["a", "b"],
    "nested lists": lambda L: [[1, [2.0, 3]], [4, [5.0, 6]]],
    "nested dict": lambda L: [
        {"a": (1, L.tensor([1.0])), "b": {"c": [0.5]}},
        {"a": (2, L.tensor([2.0])), "b": {"c": [1.5]}},
    ],
    "namedtuple": lambda L: [Point(1, 2.0), Point(3, 4.0)],
    "ordered dict": lambda L: [collections.OrderedDict(x=1), collections.OrderedDict(x=2)],
}


@pytest.mark.parametrize("case", COLLATE_CASES)
def test_default_collate_matches_torch(case):
    make = COLLATE_CASES[case]
    assert_same(ggd.default_collate(make(gg)), tud.default_collate(make(torch)))


@pytest.mark.parametrize(
    "sample",
    [
        np.arange(3, dtype=np.int32),
        np.float64(2.5),
        (np.ones(2, np.float32), 1, "name"),
        {"x": np.eye(2), "y": [np.bool_(True), 0.5]},
        Point(np.zeros(1), 2.0),
        "text",
    ],
    ids=["int32 array", "numpy scalar", "tuple", "dict", "namedtuple", "string"],
)
def test_default_convert_matches_torch(sample):
    assert_same(ggd.default_convert(sample), tud.default_convert(sample))


@pytest.mark.parametrize(
    "batch, error",
    [
        ([[1, 2], [3]], RuntimeError),  # ragged lists
        ([np.array(["a"]), np.array(["b"])], TypeError),  # string arrays
        ([object(), object()], TypeError),
    ],
)
def test_default_collate_errors_like_torch(batch, error):
    with pytest.raises(error):
        tud.default_collate(batch)
    with pytest.raises(error, match="default_collate|equal size"):
        ggd.default_collate(batch)


# ---------------------------------------------------------------------- data sets


def test_tensor_dataset_indexing_matches_torch():
    ours, theirs = tensor_dataset(gg, 5), tensor_dataset(torch, 5)
    assert len(ours) == len(theirs) == 5
    for index in (0, 4, -1, slice(1, 3)):
        assert_same(ours[index], theirs[index])


def test_tensor_dataset_errors():
    with pytest.raises(AssertionError):
        tud.TensorDataset(torch.ones(3, 2), torch.ones(4))
    with pytest.raises(AssertionError, match=r"Size mismatch.*\[3, 4\].*\(3, 2\), \(4,\)"):
        ggd.TensorDataset(gg.ones(3, 2), gg.ones(4))
    with pytest.raises(ValueError, match="at least one tensor"):
        ggd.TensorDataset()
    with pytest.raises(IndexError, match="tensor 1 is 0-d"):
        ggd.TensorDataset(gg.ones(3), gg.tensor(1.0))


def test_concat_dataset_and_subset_match_torch():
    parts = [list(range(3)), list(range(10, 15)), list(range(20, 22))]
    ours, theirs = ggd.ConcatDataset(parts), tud.ConcatDataset(parts)
    assert len(ours) == len(theirs) and ours.cumulative_sizes == theirs.cumulative_sizes
    assert [ours[i] for i in range(-10, 10)] == [theirs[i] for i in range(-10, 10)]
    for bad, error in ((10, IndexError), (-11, ValueError)):
        with pytest.raises(error):
            theirs[bad]
        with pytest.raises(error):
            ours[bad]
    with pytest.raises(AssertionError):
        ggd.ConcatDataset([])
    indices = [4, 0, 9, 2]
    assert list(ggd.Subset(ours, indices)) == list(tud.Subset(theirs, indices))


def test_dataset_add_concatenates():
    joined = ggd.TensorDataset(gg.arange(3)) + ggd.TensorDataset(gg.arange(10, 12))
    assert isinstance(joined, ggd.ConcatDataset)
    assert [joined[i][0].item() for i in range(len(joined))] == [0, 1, 2, 10, 11]


# ---------------------------------------------------------------------- DataLoader


@pytest.mark.parametrize("n, batch_size", [(10, 3), (9, 3), (1, 4), (5, 1), (7, 7), (8, 16)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sequential_loader_matches_torch(n, batch_size, drop_last):
    ours = ggd.DataLoader(tensor_dataset(gg, n), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(tensor_dataset(torch, n), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    batches = list(ours)
    assert len(batches) == len(theirs)
    for a, b in zip(batches, theirs):
        assert_same(a, b)


def test_loader_over_samples_matches_torch():
    # a plain list takes the per-sample path: each sample collated, as torch does
    samples = [{"x": np.full(2, i, np.float32), "y": i, "w": i / 2} for i in range(7)]
    ours, theirs = ggd.DataLoader(samples, batch_size=3), tud.DataLoader(samples, batch_size=3)
    for a, b in zip(ours, theirs, strict=True):
        assert_same(a, b)


def test_loader_without_batching_matches_torch():
    samples = [(np.arange(2) + i, i) for i in range(3)]
    ours = list(ggd.DataLoader(samples, batch_size=None))
    assert_same(ours, list(tud.DataLoader(samples, batch_size=None)))
    assert len(ggd.DataLoader(samples, batch_size=None)) == 3


def test_tensor_dataset_fast_path_does_not_stack(monkeypatch):
    def no_stack(*args, **kwargs):
        raise AssertionError("the TensorDataset fast path should not stack samples")

    monkeypatch.setattr(collate, "stack", no_stack)
    data = tensor_dataset(gg, 10)
    subset = ggd.Subset(ggd.Subset(data, [9, 7, 5, 3, 1, 0]), [5, 0, 2])  # rows 0, 9, 5
    (x, y), *_ = ggd.DataLoader(subset, batch_size=3)
    assert x[:, 0].tolist() == [0.0, 27.0, 15.0] and y.tolist() == [0, 0, 2]
    torch_subset = tud.Subset(tud.Subset(tensor_dataset(torch, 10), [9, 7, 5, 3, 1, 0]), [5, 0, 2])
    assert_same([x, y], next(iter(tud.DataLoader(torch_subset, batch_size=3))))


def test_overridden_getitem_takes_the_sample_path():
    class Doubled(ggd.TensorDataset):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return x * 2, y

    (x, _), *_ = ggd.DataLoader(Doubled(gg.arange(4.0), gg.arange(4)), batch_size=4)
    assert x.tolist() == [0.0, 2.0, 4.0, 6.0]


def test_custom_collate_and_batch_sampler():
    data = list(range(6))
    sampler = ggd.BatchSampler(ggd.SequentialSampler(data), batch_size=4, drop_last=False)
    loader = ggd.DataLoader(data, batch_sampler=sampler, collate_fn=sum)
    assert list(loader) == [6, 9] and len(loader) == 2


def test_num_workers_run_in_process():
    data = tensor_dataset(gg, 6)
    batches = list(ggd.DataLoader(data, batch_size=4, num_workers=2))
    for a, b in zip(batches, ggd.DataLoader(data, batch_size=4), strict=True):
        assert all(p.equal(q) for p, q in zip(a, b))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sampler": [0, 1], "shuffle": True},
        {"batch_sampler": [[0]], "batch_size": 2},
        {"batch_sampler": [[0]], "drop_last": True},
        {"batch_size": None, "drop_last": True},
        {"num_workers": -1},
    ],
)
def test_loader_option_errors_like_torch(kwargs):
    with pytest.raises(ValueError) as theirs:
        tud.DataLoader(list(range(4)), **kwargs)
    with pytest.raises(ValueError) as ours:
        ggd.DataLoader(list(range(4)), **kwargs)
    assert str(ours.value) == str(theirs.value)


# ---------------------------------------------------------------------- samplers and shuffling


def shuffled_order(seed: int | None, n: int = 20, **kwargs) -> list:
    generator = None if seed is None else gg.Generator().manual_seed(seed)
    loader = ggd.DataLoader(gg.arange(n), batch_size=6, shuffle=True, generator=generator, **kwargs)
    return [i for batch in loader for i in batch.tolist()]


def test_sequential_sampler_matches_torch():
    data = list("abcde")
    assert list(ggd.SequentialSampler(data)) == list(tud.SequentialSampler(data))
    assert len(ggd.SequentialSampler(data)) == 5


def test_shuffle_is_a_reproducible_permutation():
    first = shuffled_order(0)
    assert sorted(first) == list(range(20)) and first != list(range(20))
    assert shuffled_order(0) == first
    assert shuffled_order(1) != first


def test_shuffle_follows_the_global_seed():
    gg.manual_seed(5)
    first = shuffled_order(None)
    gg.manual_seed(5)
    assert shuffled_order(None) == first


def test_each_epoch_draws_a_new_order():
    loader = ggd.DataLoader(gg.arange(20), batch_size=20, shuffle=True)
    first, second = (next(iter(loader)).tolist() for _ in range(2))
    assert sorted(first) == sorted(second) and first != second


def test_random_sampler_options():
    g = gg.Generator().manual_seed(0)
    with_replacement = list(ggd.RandomSampler(range(4), True, num_samples=50, generator=g))
    assert len(with_replacement) == 50 and set(with_replacement) <= set(range(4))
    chained = list(ggd.RandomSampler(range(4), num_samples=10, generator=g))
    assert sorted(chained[:8]) == sorted(list(range(4)) * 2) and len(set(chained[8:])) == 2
    assert len(ggd.RandomSampler(range(4), num_samples=10)) == len(
        tud.RandomSampler(range(4), num_samples=10)
    )
    with pytest.raises(ValueError, match="num_samples"):
        ggd.RandomSampler(range(4), num_samples=0)
    with pytest.raises(TypeError, match="replacement"):
        ggd.RandomSampler(range(4), replacement=1)


def test_subset_random_sampler_permutes_its_indices():
    sampler = ggd.SubsetRandomSampler([3, 8, 5], generator=gg.Generator().manual_seed(0))
    assert sorted(sampler) == [3, 5, 8] and len(sampler) == 3


@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_sampler_matches_torch(drop_last):
    ours = ggd.BatchSampler(ggd.SequentialSampler(range(10)), 4, drop_last)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(10)), 4, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError):
            ggd.BatchSampler(range(3), bad, drop_last)


# ---------------------------------------------------------------------- random_split


@pytest.mark.parametrize(
    "n, lengths",
    [
        (10, [3, 7]),
        (30, [0.3, 0.3, 0.4]),
        (11, [0.5, 0.5]),
        (10, [0.33, 0.33, 0.34]),
        (7, [0.1] * 10),  # remainders go round-robin; three splits stay empty and warn
        (5, [1.0]),
    ],
)
def test_random_split_lengths_match_torch(n, lengths):
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs = tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = ggd.random_split(range(n), lengths, generator=gg.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert len(ours_warned) == len(theirs_warned)
    assert sorted(i for subset in ours for i in subset) == list(range(n))


def test_random_split_is_reproducible():
    def split(seed):
        parts = ggd.random_split(range(50), [0.8, 0.2], generator=gg.Generator().manual_seed(seed))
        return [list(part) for part in parts]

    assert split(0) == split(0) and split(0) != split(1)


@pytest.mark.parametrize("lengths", [[3, 3], [0.5, 0.6], [1.5, -0.5]])
def test_random_split_errors_like_torch(lengths):
    with pytest.raises(ValueError) as theirs:
        tud.random_split(range(10), lengths)
    with pytest.raises(ValueError) as ours:
        ggd.random_split(range(10), lengths)
    assert str(ours.value) == str(theirs.value)


# ---------------------------------------------------------------------- built-in data sets


def test_polynomial_is_the_seed_formula():
    x, y = datasets.polynomial().tensors
    assert tuple(x.shape) == (100, 2) and tuple(y.shape) == (100,)
    assert x.dtype == y.dtype == gg.float32
    x1, x2 = x.numpy()[:, 0].astype(np.float64), x.numpy()[:, 1].astype(np.float64)
    expected = 2 * x1**2 - 3 * x1 + x2**2 + 4 * x2 - 5
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert x.numpy().min() >= -3 and x.numpy().max() < 3
    seed_points = gg.graph.examples.polynomial_data()  # the graph examples' points, too
    np.testing.assert_allclose(x.numpy()[:, 0], seed_points["x1"], rtol=1e-6)
    np.testing.assert_allclose(y.numpy(), seed_points["y"], rtol=1e-5, atol=1e-5)


def test_polynomial_options():
    x, y = datasets.polynomial(n=20, seed=3, low=0, high=1, coefficients=(0, 1, 0, 0, 0)).tensors
    np.testing.assert_array_equal(y.numpy(), x.numpy()[:, 0])
    noisy_x, noisy_y = datasets.polynomial(noise=0.5).tensors
    clean_x, clean_y = datasets.polynomial().tensors
    assert noisy_x.equal(clean_x) and not noisy_y.equal(clean_y)


def test_line_is_three_x_plus_seven():
    x, y = datasets.line(noise=0.0).tensors
    assert tuple(x.shape) == tuple(y.shape) == (50, 1) and x.dtype == y.dtype == gg.float32
    np.testing.assert_allclose(y.numpy(), 3 * x.numpy().astype(np.float64) + 7, rtol=1e-6)
    x, y = datasets.line(n=2000, noise=0.1, low=-1, high=1).tensors
    residual = y.numpy() - (3 * x.numpy() + 7)
    assert abs(residual.std() - 0.1) < 0.01 and abs(residual.mean()) < 0.01
    assert x.numpy().min() >= -1 and x.numpy().max() < 1


@pytest.mark.parametrize(
    "make, n, classes",
    [
        (lambda **kw: datasets.two_moons(**kw), 200, 2),
        (lambda **kw: datasets.spirals(**kw), 300, 3),
        (lambda **kw: datasets.spirals(n=100, classes=4, **kw), 100, 4),
    ],
)
def test_classification_sets_are_balanced_and_deterministic(make, n, classes):
    x, y = make(seed=0).tensors
    assert tuple(x.shape) == (n, 2) and x.dtype == gg.float32 and y.dtype == gg.int64
    assert np.bincount(y.numpy()).tolist() == [n // classes] * classes
    assert y.numpy()[: n // 4].min() != y.numpy()[: n // 4].max()  # shuffled: classes mixed
    again_x, again_y = make(seed=0).tensors
    assert again_x.equal(x) and again_y.equal(y)
    assert not make(seed=1).tensors[0].equal(x)


def test_two_moons_without_noise_lies_on_the_circles():
    x, y = datasets.two_moons(n=50, noise=0.0).tensors
    x, y = x.numpy().astype(np.float64), y.numpy()
    upper, lower = x[y == 0], x[y == 1] - [1.0, 0.5]
    np.testing.assert_allclose(np.hypot(*upper.T), 1, rtol=1e-6)
    np.testing.assert_allclose(np.hypot(*lower.T), 1, rtol=1e-6)
    assert (upper[:, 1] >= 0).all() and (lower[:, 1] <= 1e-7).all()


def test_spirals_share_an_uneven_count():
    _, y = datasets.spirals(n=10, classes=3).tensors
    assert np.bincount(y.numpy()).tolist() == [4, 3, 3]


def fake_sklearn(monkeypatch, data, target):
    module = types.ModuleType("sklearn.datasets")
    module.load_digits = lambda: types.SimpleNamespace(data=data, target=target)
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.datasets", module)


def check_digits(train, test, total: int):
    assert len(train) + len(test) == total
    for part in (train, test):
        x, y = part.tensors
        assert x.dtype == gg.float32 and y.dtype == gg.int64 and tuple(x.shape[1:]) == (64,)
        assert 0 <= x.numpy().min() and x.numpy().max() <= 1
    test_labels = test.tensors[1].numpy()
    all_labels = np.concatenate([train.tensors[1].numpy(), test_labels])
    np.testing.assert_allclose(np.bincount(test_labels), 0.2 * np.bincount(all_labels), atol=0.51)


def test_digits_split_with_a_stand_in_for_scikit_learn(monkeypatch):
    rng = np.random.default_rng(0)
    data, target = rng.integers(0, 17, (1797, 64)).astype(float), np.arange(1797) % 10
    fake_sklearn(monkeypatch, data, target)
    train, test = datasets.digits(seed=0)
    check_digits(train, test, 1797)
    rows = {tuple(r) for r in np.concatenate([train.tensors[0].numpy(), test.tensors[0].numpy()])}
    assert rows == {tuple(r) for r in (data / 16).astype(np.float32)}
    again, _ = datasets.digits(seed=0)
    assert again.tensors[0].equal(train.tensors[0])
    assert not datasets.digits(seed=1)[0].tensors[0].equal(train.tensors[0])
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.digits(test_fraction=1.0)


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # None in sys.modules makes imports fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"scikit-learn.*pip install 'graphgrad\[datasets\]'"):
        datasets.digits()


def test_digits_from_scikit_learn():
    pytest.importorskip("sklearn")
    train, test = datasets.digits()
    check_digits(train, test, 1797)
    assert sorted(set(train.tensors[1].tolist())) == list(range(10))


def test_utils_data_is_graphgrad_data():
    import graphgrad.utils.data as utils_data

    assert utils_data.DataLoader is ggd.DataLoader
    assert utils_data.random_split is ggd.random_split
    assert set(utils_data.__all__) == set(ggd.__all__)
