"""The seeds' graphs, built node by node as the worked examples write them."""

from __future__ import annotations

import numpy as np

from .core import Graph


def branch_and_merge(a=1.0, b=0.0, c=1.0, d=0.0, lam=0.1) -> Graph:
    """Seed 003: u = ax + b flows into v twice, directly and through h = u^2.

    Inputs x and y; parameters a, b, c, d; objective J = (p - y)^2 + lam/2 (a^2 + c^2) with
    p = 1 / (1 + v) and v = c h + u + d. Everything is float64, as the hand calculation is exact.

    >>> g = branch_and_merge()
    >>> round(g.run({"x": 2.0, "y": 1.0}).output.item(), 6)
    0.834694
    """
    g = Graph()
    x, y = g.input("x", shape=(), dtype="float64"), g.input("y", shape=(), dtype="float64")
    pa, pb, pc, pd = (
        g.parameter(name, value, dtype="float64") for name, value in zip("abcd", (a, b, c, d))
    )
    half_lam = g.constant(np.float64(lam / 2), name="lambda/2")
    one = g.constant(np.float64(1.0), name="1")
    u = g.add(g.mul(pa, x), pb, name="u")
    h = g.pow(u, 2, name="h")
    v = g.add(g.add(g.mul(pc, h), u), pd, name="v")
    p = g.div(one, g.add(one, v), name="p")
    L = g.pow(g.sub(p, y), 2, name="L")
    R = g.mul(half_lam, g.add(g.pow(pa, 2), g.pow(pc, 2)), name="R")
    g.output(g.add(L, R), name="J")
    return g


def linear_node(w=3.0, b=1.0) -> Graph:
    """Seed 001: z = x*w + b, with parameters w and b.

    >>> linear_node().run({"x": 2.0}).output.item()
    7.0
    """
    g = Graph()
    x = g.input("x", shape=(), dtype="float64")
    pw, pb = g.parameter("w", w, dtype="float64"), g.parameter("b", b, dtype="float64")
    g.output(g.add(g.mul(x, pw), pb), name="z")
    return g


def polynomial(coefficients=(0.0, 0.0, 0.0, 0.0, 0.0), points: int | None = None) -> Graph:
    """Seed 000: y = c0 x1^2 + c1 x1 + c2 x2^2 + c3 x2 + c4, and its mean squared error against
    targets y, vectorised over the points. Inputs x1, x2, y; parameters c0 ... c4; output loss.

    >>> g = polynomial((1, 0, 0, 0, 2))
    >>> g.run({"x1": [1.0, 2.0], "x2": [0.0, 0.0], "y": [3.0, 6.0]}).output.item()
    0.0
    """
    g = Graph()
    shape = None if points is None else (points,)
    x1, x2, y = (g.input(name, shape=shape, dtype="float64") for name in ("x1", "x2", "y"))
    c = [g.parameter(f"c{i}", value, dtype="float64") for i, value in enumerate(coefficients)]
    prediction = c[0] * x1**2 + c[1] * x1 + c[2] * x2**2 + c[3] * x2 + c[4]
    g.node(prediction).name = "prediction"
    error = g.sub(prediction, y, name="error")
    g.output(g.mean(error**2), name="loss")
    return g


def polynomial_data(
    points: int = 100, coefficients=(2.0, -3.0, 1.0, 4.0, -5.0), low=-3.0, high=3.0, seed: int = 0
) -> dict:
    """Points on the seed 000 polynomial with x1, x2 uniform in [low, high): the inputs of
    :func:`polynomial`. On this range the seed's good settings converge and its bad ones blow up.

    >>> sorted(polynomial_data(points=4))
    ['x1', 'x2', 'y']
    """
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(low, high, points), rng.uniform(low, high, points)
    c0, c1, c2, c3, c4 = coefficients
    return {"x1": x1, "x2": x2, "y": c0 * x1**2 + c1 * x1 + c2 * x2**2 + c3 * x2 + c4}


def wide_graph(branches: int = 8, depth: int = 4, size: int = 512, seed: int = 0) -> Graph:
    """``branches`` independent chains of ``depth`` matmuls of size x size float32 on one input
    ``x``, summed: the graph whose nodes a thread pool can run side by side.

    >>> len(wide_graph(branches=2, depth=3, size=4).levels())  # sources, 3 matmuls, add, sum
    6
    """
    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.input("x", shape=(size, size))
    total = None
    for branch in range(branches):
        h = x
        for layer in range(depth):
            w = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
            h = h @ g.parameter(f"w{branch}_{layer}", w)
        total = h if total is None else total + h
    g.output(total.sum(), name="total")
    return g
