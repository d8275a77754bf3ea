"""What the optimizer tests share: the same parameters and gradients fed to graphgrad.optim and
torch.optim, and the trajectories they step through."""

from __future__ import annotations

import numpy as np
import torch

import graphgrad as gg
import graphgrad.optim as optim

SHAPES = [(3, 4), (5,), ()]


def initial_params(dtype=np.float64, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def gradient(p: np.ndarray, step: int, index: int) -> np.ndarray:
    """A gradient that depends on the parameter (so trajectories can diverge) and the step."""
    rng = np.random.default_rng(1000 * step + index)
    noise = rng.standard_normal(p.shape).astype(p.dtype)
    return (p * 0.5 + np.sin(p) + noise).astype(p.dtype)


def make(lib, name: str, params, kwargs):
    return getattr(optim if lib is gg else torch.optim, name)(params, **kwargs)


def leaves(lib, arrays):
    return [lib.tensor(a.copy(), requires_grad=True) for a in arrays]


def run(lib, opt, params, steps, start=0) -> list[list[np.ndarray]]:
    """Inject gradients computed in NumPy from each library's own parameters; record them."""
    trajectory = []
    for t in range(start, start + steps):
        for i, p in enumerate(params):
            p.grad = lib.tensor(gradient(p.detach().numpy(), t, i))
        opt.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


def assert_close(ours, theirs, rtol, atol):
    """Two trajectories agree at every step, in values and dtypes."""
    for t, (a_step, b_step) in enumerate(zip(ours, theirs, strict=True)):
        for a, b in zip(a_step, b_step, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"step {t}")
