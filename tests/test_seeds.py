"""The worked examples of the design documents (``shared/seeds/``), checked against their numbers.

Each example is run in graphgrad and compared with the numbers worked by hand in the document
(digit for digit where the document prints digits) and, where useful, with the same code run in
torch. Every helper takes the library module (``gg`` or ``torch``) so the example is written once.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import graphgrad as gg

# ----------------------------------------------------------------------------------------------
# Seed 001: z = x*w + b, and gradient descent recovering f(x) = 3x + 7
# ----------------------------------------------------------------------------------------------


def test_seed001_multiply_add_node_gradients() -> None:
    x = gg.tensor(2.0, dtype=gg.float64, requires_grad=True)
    w = gg.tensor(3.0, dtype=gg.float64, requires_grad=True)
    b = gg.tensor(1.0, dtype=gg.float64, requires_grad=True)
    z = x * w + b
    z.backward()
    # Small integers: every value is exact, so equality is the right check.
    assert z.item() == 7.0
    assert x.grad.item() == 3.0  # the multiply node swaps its inputs: dz/dx = w
    assert w.grad.item() == 2.0  # dz/dw = x
    assert b.grad.item() == 1.0  # addition passes the gradient through unchanged


def _fit_line(lib, steps: int = 300, lr: float = 0.1) -> tuple[float, float, list[float]]:
    """Plain gradient descent on MSE from the demo's start (w=-2, b=15); returns w, b, losses."""
    xs = lib.tensor(np.linspace(-2.0, 2.0, 20), dtype=lib.float64)
    ys = 3 * xs + 7  # the demo's target f(x) = 3x + 7, sampled without noise
    w = lib.tensor(-2.0, dtype=lib.float64, requires_grad=True)
    b = lib.tensor(15.0, dtype=lib.float64, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = ((w * xs + b - ys) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        with lib.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad = None
        b.grad = None
    return w.item(), b.item(), losses


def test_seed001_gradient_descent_recovers_line() -> None:
    w, b, losses = _fit_line(gg)
    assert abs(w - 3.0) < 1e-3
    assert abs(b - 7.0) < 1e-3
    # Convex quadratic and a small step: the loss must fall at every step until it nears the
    # float64 floor (by step 100 it is ~1e-18; later steps may round to equal values).
    early = losses[:100]
    assert all(later < earlier for earlier, later in zip(early, early[1:]))

    torch_w, torch_b, torch_losses = _fit_line(torch)
    assert math.isclose(w, torch_w, rel_tol=1e-10)
    assert math.isclose(b, torch_b, rel_tol=1e-10)
    np.testing.assert_allclose(losses, torch_losses, rtol=1e-9, atol=1e-20)


# ----------------------------------------------------------------------------------------------
# Seed 003: branch and merge, worked by hand over two iterations
# ----------------------------------------------------------------------------------------------

LAMBDA = 0.1  # regularisation coefficient λ
ETA = 0.1     # learning rate η
TARGET = 1.0  # label y, the same in both iterations

# The document's numbers, as printed (6 decimals). Keys: J, delta, then ∂J/∂(a, b, c, d), then
# the parameters after the update θ ← θ − η∇J.
SEED003_ITERATIONS = [
    {
        "x": 2.0,
        "J": 0.834694,
        "delta": 0.034985,
        "grads": (0.449854, 0.174927, 0.239942, 0.034985),
        "params_after": (0.955015, -0.017493, 0.976006, -0.003499),
    },
    {
        "x": 0.0,  # the zero-input step: no data gradient reaches a
        "J": 0.093678,
        "delta": -0.044064,
        "grads": (0.095501, -0.042560, 0.097587, -0.044064),
        "params_after": (0.945464, -0.013237, 0.966247, 0.000908),
    },
]


def _seed003_params(lib) -> list:
    initial = (1.0, 0.0, 1.0, 0.0)  # a, b, c, d
    return [lib.tensor(value, dtype=lib.float64, requires_grad=True) for value in initial]


def _seed003_step(lib, params: list, x_value: float) -> dict:
    """One forward, ``.backward()`` and manual update; returns the numbers the document prints.

    ``params`` (a, b, c, d) are updated in place under ``no_grad``, as the document's θ ← θ − η∇.
    """
    a, b, c, d = params
    x = lib.tensor(x_value, dtype=lib.float64)
    y = lib.tensor(TARGET, dtype=lib.float64)
    u = a * x + b
    h = u ** 2
    v = c * h + u + d  # u reaches v twice, directly and through h: the branch and merge
    v.retain_grad()
    p = 1 / (1 + v)
    loss = (p - y) ** 2
    reg = LAMBDA / 2 * (a ** 2 + c ** 2)
    objective = loss + reg
    objective.backward(retain_graph=True)  # kept for the data-path gradient below
    result = {
        "J": objective.item(),
        "delta": v.grad.item(),  # R does not depend on v, so ∂J/∂v is the document's δ = ∂L/∂v
        "grads": tuple(param.grad.item() for param in params),
        "a_before": a.item(),
    }
    # The data path alone. Asked only after v.grad is read: as in torch, autograd.grad also
    # fires retain_grad and would add a second δ into v.grad.
    (data_grad_a,) = lib.autograd.grad(loss, a)
    result["data_grad_a"] = data_grad_a.item()
    with lib.no_grad():
        for param in params:
            param -= ETA * param.grad
    for param in params:
        param.grad = None
    result["params_after"] = tuple(param.item() for param in params)
    return result


def _assert_as_published(value: float, published: float, what: str) -> None:
    """``value`` rounds to the document's 6-decimal figure, digit for digit."""
    assert round(value, 6) == published, (
        f"{what}: {value!r} rounds to {round(value, 6)}, the document prints {published}")


def _assert_iteration_as_published(result: dict, expected: dict, label: str) -> None:
    _assert_as_published(result["J"], expected["J"], f"{label} J")
    _assert_as_published(result["delta"], expected["delta"], f"{label} delta")
    for name, value, published in zip("abcd", result["grads"], expected["grads"]):
        _assert_as_published(value, published, f"{label} dJ/d{name}")
    for name, value, published in zip("abcd", result["params_after"], expected["params_after"]):
        _assert_as_published(value, published, f"{label} updated {name}")


def test_seed003_two_iterations_match_the_hand_calculation() -> None:
    params = _seed003_params(gg)
    for number, expected in enumerate(SEED003_ITERATIONS, start=1):
        result = _seed003_step(gg, params, expected["x"])
        _assert_iteration_as_published(result, expected, f"iteration {number}")


def test_seed003_zero_input_leaves_only_the_regulariser_on_a() -> None:
    params = _seed003_params(gg)
    _seed003_step(gg, params, SEED003_ITERATIONS[0]["x"])
    result = _seed003_step(gg, params, SEED003_ITERATIONS[1]["x"])
    # x = 0 multiplies the whole data signal for a by zero: exactly zero, not merely small.
    assert result["data_grad_a"] == 0.0
    # So ∂J/∂a is the regularisation path alone, λ·a, to the last bit.
    assert result["grads"][0] == LAMBDA * result["a_before"]


def test_seed003_matches_torch() -> None:
    gg_params, torch_params = _seed003_params(gg), _seed003_params(torch)
    for expected in SEED003_ITERATIONS:
        ours = _seed003_step(gg, gg_params, expected["x"])
        theirs = _seed003_step(torch, torch_params, expected["x"])
        for key in ("J", "delta", "grads", "params_after", "data_grad_a"):
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, atol=1e-15, err_msg=key)


# ----------------------------------------------------------------------------------------------
# Seed 004: f(x, y, z) = tanh(ln(1 + z·2x / sin y)), its partial derivatives by hand
# ----------------------------------------------------------------------------------------------

SEED004_POINT = (1.0, 2.0, 3.0)


def _seed004_forward(lib, point: tuple[float, float, float]):
    """The document's graph: a = 2x, b = sin y, c = a/b, d = z·c, e = ln(d + 1), f = tanh e."""
    x, y, z = (lib.tensor(value, dtype=lib.float64, requires_grad=True) for value in point)
    f = (1 + z * ((2 * x) / y.sin())).log().tanh()
    f.backward()
    return f, x, y, z


def _seed004_by_hand(x: float, y: float, z: float) -> dict:
    s = math.sin(y)
    q = 1 + 2 * x * z / s
    f = math.tanh(math.log(q))
    outer = (1 - f * f) / q  # d tanh(ln q)/dq
    return {
        "f": f,
        "x": outer * (2 * z / s),
        "y": outer * (-2 * x * z * math.cos(y) / s ** 2),
        "z": outer * (2 * x / s),
    }


def test_seed004_partials_match_hand_derivation() -> None:
    f, x, y, z = _seed004_forward(gg, SEED004_POINT)
    expected = _seed004_by_hand(*SEED004_POINT)
    assert abs(f.item() - expected["f"]) < 1e-12
    for name, leaf in (("x", x), ("y", y), ("z", z)):
        assert abs(leaf.grad.item() - expected[name]) < 1e-12, name


def test_seed004_partials_match_torch() -> None:
    ours = _seed004_forward(gg, SEED004_POINT)
    theirs = _seed004_forward(torch, SEED004_POINT)
    assert math.isclose(ours[0].item(), theirs[0].item(), rel_tol=1e-12)
    for name, our_leaf, their_leaf in zip("xyz", ours[1:], theirs[1:]):
        assert math.isclose(our_leaf.grad.item(), their_leaf.grad.item(), rel_tol=1e-12), name
