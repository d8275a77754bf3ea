"""Per-op overhead: a chain of 1,000 elementwise ops on a 10-element float32 tensor, graphgrad
against torch.

On 10 elements the arithmetic is free, so the time is what each library pays per op to dispatch
it, allocate the result and record the autograd node (forward), and to run the node's backward
(backward). One iteration is: build the chain from a leaf that requires grad, ``.sum()``,
``.backward()``, then drop the graph. The same Python code runs on both libraries.

The chain repeats a cycle of ten ops that mixes Python-number operands, transcendental unary ops,
tensor-tensor ops with a constant and with the leaf (a residual, so the leaf's gradient is
accumulated from every cycle). The values stay bounded: each cycle ends in [-1, 1.2].

Reported per phase: best-of-N time (median in brackets) and graphgrad/torch speed. Ops per second
count 1,000 ops per iteration (the final ``sum`` is not counted) over the whole iteration:
forward + backward + freeing the graph.

Run: ``python benchmarks/op_overhead.py [--profile]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _timing import compare, environment, print_profile, speedup, verdict

import graphgrad as gg

N_ELEMENTS = 10
CYCLES = 100
OPS_PER_CYCLE = 10
N_OPS = CYCLES * OPS_PER_CYCLE
TARGET = 2.0  # graphgrad ops/s over torch ops/s
GRAD_RTOL = 1e-4


def chain(x, w):
    """``N_OPS`` elementwise ops starting from ``x``; ``w`` is a constant (no grad) tensor."""
    y = x
    for _ in range(CYCLES):
        y = y * 1.0001
        y = y + 0.001
        y = y.tanh()
        y = y.exp()  # in (0.37, 2.72)
        y = y * w  # w in [0.5, 1.5], so y stays positive for the log
        y = y.log()
        y = y.sigmoid()
        y = y - 0.5
        y = y * y
        y = y + x
    return y


def make_inputs(lib):
    """The leaf and the constant, built from the same NumPy values for both libraries."""
    x = lib.tensor(np.linspace(-1.0, 1.0, N_ELEMENTS, dtype=np.float32), requires_grad=True)
    w = lib.tensor(np.linspace(0.5, 1.5, N_ELEMENTS, dtype=np.float32))
    return x, w


def make_trial(lib):
    x, w = make_inputs(lib)

    def trial() -> dict[str, float]:
        x.grad = None  # a fresh gradient each sample, outside the clock
        t0 = time.perf_counter()
        out = chain(x, w).sum()
        t1 = time.perf_counter()
        out.backward()
        t2 = time.perf_counter()
        del out  # the graph's nodes go now: part of what a training loop pays per iteration
        t3 = time.perf_counter()
        return {"forward": t1 - t0, "backward": t2 - t1, "free graph": t3 - t2,
                "iteration": t3 - t0}

    return trial


def check_same_gradient() -> None:
    """Both libraries compute the same function: their gradients must agree."""
    grads = []
    for lib in (gg, torch):
        x, w = make_inputs(lib)
        chain(x, w).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=GRAD_RTOL)
    print(f"gradient check: graphgrad and torch x.grad agree to rtol {GRAD_RTOL:g}")


def report(results) -> None:
    gg_res, torch_res = results["graphgrad"], results["torch"]
    samples = gg_res["iteration"].samples
    print(f"best of {samples} samples per library, median in brackets; "
          f"ratio = graphgrad speed / torch speed (> 1: graphgrad faster)\n")
    print(f"{'phase':<12}{'graphgrad':>22}{'torch':>22}{'ratio':>10}")
    for phase in ("forward", "backward", "free graph", "iteration"):
        g, t = gg_res[phase], torch_res[phase]
        print(f"{phase:<12}{_ms(g.best, g.median):>22}{_ms(t.best, t.median):>22}"
              f"{speedup(g.best, t.best):>9.2f}x")
    g, t = gg_res["iteration"].best, torch_res["iteration"].best
    ratio = speedup(g, t)
    print(f"{'ops/s':<12}{N_OPS / g:>22,.0f}{N_OPS / t:>22,.0f}{ratio:>9.2f}x   "
          f"{verdict(ratio, TARGET)}")


def _ms(best: float, median: float) -> str:
    return f"{best * 1e3:.3f} ms ({median * 1e3:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile summary of the graphgrad side")
    args = parser.parse_args()

    print(f"op_overhead: {N_OPS} elementwise ops on a {N_ELEMENTS}-element float32 tensor, "
          f"then .sum().backward()")
    print(environment())
    check_same_gradient()
    # Ops on 10 elements wake no worker thread in either library, so a short warm-up suffices;
    # many short blocks spread both libraries over the same moments of a noisy machine.
    results = compare({"graphgrad": make_trial(gg), "torch": make_trial(torch)},
                      rounds=20, samples=10, warmup_seconds=0.05)
    report(results)
    if args.profile:
        print_profile(make_trial(gg), calls=200, title="graphgrad op_overhead iteration")


if __name__ == "__main__":
    main()
