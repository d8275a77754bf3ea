"""``python -m graphgrad``: the seed examples, worked by the engine, in a few seconds.

Until the ``graphgrad tour`` command exists this is the main job: each example prints the numbers
the design documents work by hand, so a reader can check them digit for digit.
"""

from __future__ import annotations

import math
import time

import graphgrad as gg


def branch_and_merge() -> None:
    """Seed 003: u = ax + b feeds v twice (directly and through h = u^2); gradients add up."""
    print("Seed 003 - branch and merge, two steps of gradient descent (lambda = eta = 0.1)")
    params = {
        name: gg.tensor(value, dtype=gg.float64, requires_grad=True)
        for name, value in dict(a=1.0, b=0.0, c=1.0, d=0.0).items()
    }
    a, b, c, d = params.values()
    for step, x in enumerate((2.0, 0.0), start=1):
        u = a * x + b
        h = u**2
        v = c * h + u + d
        v.retain_grad()
        p = 1 / (1 + v)
        J = (p - 1.0) ** 2 + 0.1 / 2 * (a**2 + c**2)
        J.backward()
        grads = "  ".join(f"dJ/d{n}={t.grad.item():+.6f}" for n, t in params.items())
        print(f"  step {step}: x={x:g}  J={J.item():.6f}  delta={v.grad.item():+.6f}  {grads}")
        with gg.no_grad():
            for t in params.values():
                t.sub_(0.1 * t.grad)
                t.grad = None
        print("          updated  " + "  ".join(f"{n}={t.item():+.6f}" for n, t in params.items()))


def linear_node() -> None:
    """Seed 001: z = x*w + b and its three partial derivatives."""
    x, w, b = (gg.tensor(v, requires_grad=True) for v in (2.0, 3.0, 1.0))
    z = x * w + b
    z.backward()
    print(
        f"\nSeed 001 - z = x*w + b at x=2, w=3, b=1: z={z.item():g}  dz/dx={x.grad.item():g}  "
        f"dz/dw={w.grad.item():g}  dz/db={b.grad.item():g}"
    )


def line_fit() -> None:
    """Seed 001: gradient descent recovers f(x) = 3x + 7 from samples, starting at w=-2, b=15."""
    xs = gg.linspace(-2, 2, 21, dtype=gg.float64)
    ys = 3 * xs + 7
    w = gg.tensor(-2.0, dtype=gg.float64, requires_grad=True)
    b = gg.tensor(15.0, dtype=gg.float64, requires_grad=True)
    for _ in range(300):
        loss = ((w * xs + b - ys) ** 2).mean()
        loss.backward()
        with gg.no_grad():
            w.sub_(0.1 * w.grad)
            b.sub_(0.1 * b.grad)
        w.grad = b.grad = None
    print(
        f"         fit of f(x) = 3x + 7 from w=-2, b=15 (300 steps): w={w.item():.6f}  "
        f"b={b.item():.6f}  loss={loss.item():.2e}"
    )


def tanh_log_example() -> None:
    """Seed 004: f(x, y, z) = tanh(ln(1 + z*2x / sin y)) and its three partial derivatives."""
    x, y, z = (gg.tensor(v, dtype=gg.float64, requires_grad=True) for v in (1.0, 2.0, 3.0))
    f = (1 + z * 2 * x / y.sin()).log().tanh()
    f.backward()
    s = math.sin(2.0)
    q = 1 + 6 / s
    outer = (1 - f.item() ** 2) / q
    by_hand = (outer * 6 / s, outer * -6 * math.cos(2.0) / s**2, outer * 2 / s)
    print(f"\nSeed 004 - f = tanh(ln(1 + z*2x/sin y)) at (1, 2, 3): f={f.item():.6f}")
    for name, t, hand in zip("xyz", (x, y, z), by_hand):
        print(f"  df/d{name} = {t.grad.item():+.10f}   (by hand {hand:+.10f})")


def main() -> None:
    start = time.perf_counter()
    branch_and_merge()
    linear_node()
    line_fit()
    tanh_log_example()
    print(
        f"\ndone in {time.perf_counter() - start:.2f} s - run the tests with: "
        f"pip install -e '.[test]' && python -m pytest"
    )


if __name__ == "__main__":
    main()
