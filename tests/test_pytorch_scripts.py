"""PyTorch's own tutorial code runs on graphgrad by changing the import, and gives its numbers.

The scripts below are PyTorch's "learning PyTorch with examples" polynomial fits, written once
against a library module; each runs on torch and on graphgrad from the same starting values.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import graphgrad as gg


def manual_polynomial_fit(lib, steps=300):
    """Tensors and autograd, with the update written by hand under no_grad."""
    x = lib.linspace(-math.pi, math.pi, 2000, device=lib.device("cpu"), dtype=lib.float)
    y = lib.sin(x)
    a, b, c, d = (lib.tensor(v, requires_grad=True) for v in (0.1, -0.2, 0.3, -0.05))
    for _ in range(steps):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with lib.no_grad():
            for p in (a, b, c, d):
                p -= 1e-6 * p.grad
                p.grad = None
    return [p.item() for p in (a, b, c, d)] + [loss.item()]


def nn_polynomial_fit(lib, steps=300):
    """nn.Sequential, MSELoss(reduction='sum') and RMSprop, from torch's initial weights."""
    x = lib.linspace(-math.pi, math.pi, 2000)
    y = lib.sin(x)
    xx = x.unsqueeze(-1).pow(lib.tensor([1, 2, 3]))
    model = lib.nn.Sequential(lib.nn.Linear(3, 1), lib.nn.Flatten(0, 1))
    model.load_state_dict({"0.weight": lib.tensor([[0.2, -0.1, 0.05]]),
                           "0.bias": lib.tensor([0.1])})
    loss_fn = lib.nn.MSELoss(reduction="sum")
    optimizer = lib.optim.RMSprop(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = loss_fn(model(xx), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model[0].weight.detach().numpy().ravel().tolist() + [loss.item()]


def test_the_tensor_and_autograd_tutorial_matches_torch():
    np.testing.assert_allclose(manual_polynomial_fit(gg), manual_polynomial_fit(torch), rtol=1e-4)


def test_the_nn_and_optim_tutorial_matches_torch():
    np.testing.assert_allclose(nn_polynomial_fit(gg), nn_polynomial_fit(torch), rtol=1e-3)
