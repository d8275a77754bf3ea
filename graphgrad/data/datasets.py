"""Small built-in data sets that need no download, each a ``TensorDataset``.

Features are float32; classification labels are int64 and regression targets float32. Each is
a pure function of its arguments: the same ``seed`` gives the same points (drawn with NumPy's
``default_rng(seed)``, independent of graphgrad's global generator).
"""

from __future__ import annotations

import numpy as np

from .. import creation
from .dataset import TensorDataset


def _regression(features: np.ndarray, targets: np.ndarray) -> TensorDataset:
    return TensorDataset(
        creation.from_numpy(features.astype(np.float32)),
        creation.from_numpy(targets.astype(np.float32)),
    )


def _classification(features, labels, rng: np.random.Generator) -> TensorDataset:
    # shuffled, so any prefix (a quick look, an unshuffled loader's first batch) mixes classes
    order = rng.permutation(len(labels))
    return TensorDataset(
        creation.from_numpy(np.ascontiguousarray(features[order], dtype=np.float32)),
        creation.from_numpy(np.asarray(labels, dtype=np.int64)[order]),
    )


def polynomial(
    n: int = 100,
    seed: int = 0,
    low: float = -3.0,
    high: float = 3.0,
    coefficients=(2.0, -3.0, 1.0, 4.0, -5.0),
    noise: float = 0.0,
) -> TensorDataset:
    """Seed 000's polynomial ``y = c0 x1^2 + c1 x1 + c2 x2^2 + c3 x2 + c4`` at ``n`` points.

    Features ``(n, 2)`` are ``x1, x2``, uniform in ``[low, high)`` (the same points as
    ``graphgrad.graph.examples.polynomial_data`` for the seed); targets ``(n,)``, plus Gaussian
    noise of standard deviation ``noise``.

    >>> x, y = polynomial(n=3).tensors
    >>> tuple(x.shape), tuple(y.shape), x.dtype
    ((3, 2), (3,), graphgrad.float32)
    """
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(low, high, n), rng.uniform(low, high, n)
    c0, c1, c2, c3, c4 = coefficients
    y = c0 * x1**2 + c1 * x1 + c2 * x2**2 + c3 * x2 + c4
    y = y + noise * rng.standard_normal(n)
    return _regression(np.stack([x1, x2], axis=1), y)


def line(
    n: int = 50, seed: int = 0, noise: float = 0.1, low: float = -2.0, high: float = 2.0
) -> TensorDataset:
    """Points on ``f(x) = 3x + 7`` plus Gaussian noise of standard deviation ``noise``.

    Features and targets are both ``(n, 1)``, the shapes ``nn.Linear(1, 1)`` takes and gives,
    so a mean squared error needs no reshaping; x is uniform in ``[low, high)``.

    >>> x, y = line(n=4, noise=0.0).tensors
    >>> tuple(x.shape), tuple(y.shape), bool(((3 * x + 7) - y).abs().max() < 1e-5)
    ((4, 1), (4, 1), True)
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, (n, 1))
    return _regression(x, 3 * x + 7 + noise * rng.standard_normal((n, 1)))


def two_moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> TensorDataset:
    """Two interleaving half circles (scikit-learn's ``make_moons`` layout), shuffled.

    Class 0 is the upper moon, centred at the origin, and gets ``n // 2`` points; class 1 the
    lower one, shifted to (1, 0.5), gets the rest. Gaussian ``noise`` is added to both features.

    >>> x, y = two_moons(n=10).tensors
    >>> tuple(x.shape), y.dtype, y.sum().item()
    ((10, 2), graphgrad.int64, 5)
    """
    rng = np.random.default_rng(seed)
    n_upper = n // 2
    t_upper, t_lower = np.linspace(0, np.pi, n_upper), np.linspace(0, np.pi, n - n_upper)
    upper = np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1)
    lower = np.stack([1 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1)
    features = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    labels = np.repeat([0, 1], [n_upper, n - n_upper])
    return _classification(features, labels, rng)


def spirals(n: int = 300, classes: int = 3, noise: float = 0.2, seed: int = 0) -> TensorDataset:
    """``classes`` interleaved spiral arms (the CS231n toy set), shuffled.

    Arm ``k`` runs from the centre to radius 1 while its angle sweeps 4 radians from
    ``2 pi k / classes``; ``noise`` is Gaussian jitter on the angle. The ``n`` points are shared
    as evenly as possible, the first arms getting one more when ``n % classes`` is not 0.

    >>> x, y = spirals(n=9, classes=3).tensors
    >>> tuple(x.shape), sorted(y.tolist())
    ((9, 2), [0, 0, 0, 1, 1, 1, 2, 2, 2])
    """
    rng = np.random.default_rng(seed)
    counts = [n // classes + (k < n % classes) for k in range(classes)]
    arms = []
    for k, count in enumerate(counts):
        radius = np.linspace(0, 1, count)
        angle = np.linspace(0, 4, count) + 2 * np.pi * k / classes
        angle = angle + noise * rng.standard_normal(count)
        arms.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
    labels = np.repeat(np.arange(classes), counts)
    return _classification(np.concatenate(arms), labels, rng)


def digits(seed: int = 0, test_fraction: float = 0.2) -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's 8x8 handwritten digits as ``(train, test)`` data sets.

    1797 images flattened to 64 features scaled from 0..16 to [0, 1], labels 0-9. The split is
    stratified: each digit sends ``round(test_fraction * count)`` of its images, picked at
    random for the seed, to the test set. Needs scikit-learn, which ships its copy of the data
    (``pip install 'graphgrad[datasets]'``).

    >>> train, test = digits()
    >>> len(train), len(test)
    (1438, 359)
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "graphgrad.data.datasets.digits() needs scikit-learn, which is not installed; "
            "install the optional extra with: pip install 'graphgrad[datasets]'"
        ) from exc
    bunch = load_digits()
    features, labels = np.asarray(bunch.data) / 16.0, np.asarray(bunch.target)
    test = _stratified_test_rows(labels, test_fraction, np.random.default_rng(seed))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return tuple(
        TensorDataset(
            creation.from_numpy(features[rows].astype(np.float32)),
            creation.from_numpy(labels[rows].astype(np.int64)),
        )
        for rows in (train, test)
    )


def _stratified_test_rows(labels: np.ndarray, fraction: float, rng) -> np.ndarray:
    picked = []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        picked.append(rows[: round(fraction * len(rows))])
    return np.sort(np.concatenate(picked))
