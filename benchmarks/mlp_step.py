"""One training step of a two-layer MLP, graphgrad against torch, at two sizes.

A step is: forward ``relu(x @ W1 + b1) @ W2 + b2``; softmax cross-entropy written from tensor
ops (``log_softmax``, pick each row's target entry by advanced indexing, negative mean);
``backward``; and a momentum SGD update written by hand under ``no_grad`` with in-place ops
(``v = mu * v + grad``, ``p -= lr * v``), clearing gradients with ``p.grad = None``. The same
Python code runs on both libraries, from the same float32 weights and batch built in NumPy.

Sizes: 64-100-10 with batch 32 (small: per-op overhead dominates) and 784-256-10 with batch 128
(medium: the matrix products start to count). Before timing, five steps are run in both libraries
and their losses must agree, so the two sides are known to do the same work.

A sample is a block of steps from the initial weights: the model is reset outside the clock, so
every sample of either library trains through the same states. Reported: steps per second from
the best sample (median in brackets) and graphgrad/torch speed.

Run: ``python benchmarks/mlp_step.py [--profile]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from _timing import compare, environment, print_profile, speedup, verdict

import graphgrad as gg

LEARNING_RATE = 0.05
MOMENTUM = 0.9
CHECK_STEPS = 5
LOSS_RTOL = 1e-4


@dataclass(frozen=True)
class Size:
    n_in: int
    n_hidden: int
    n_out: int
    batch: int
    steps_per_sample: int  # enough for a sample of several milliseconds, well above timer noise
    target: float  # graphgrad steps/s over torch steps/s

    @property
    def name(self) -> str:
        return f"{self.n_in}-{self.n_hidden}-{self.n_out}, batch {self.batch}"


SIZES = (
    Size(64, 100, 10, batch=32, steps_per_sample=20, target=2.0),
    Size(784, 256, 10, batch=128, steps_per_sample=4, target=1.1),
)


def make_problem(size: Size, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Initial weights (scaled normal, zero biases), an input batch and integer class labels."""
    rng = np.random.default_rng(seed)
    weights = [
        _scaled_normal(rng, size.n_in, size.n_hidden),
        np.zeros(size.n_hidden, dtype=np.float32),
        _scaled_normal(rng, size.n_hidden, size.n_out),
        np.zeros(size.n_out, dtype=np.float32),
    ]
    x = rng.standard_normal((size.batch, size.n_in)).astype(np.float32)
    labels = rng.integers(0, size.n_out, size.batch)
    return weights, x, labels


def _scaled_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    # Unit-variance pre-activations: the loss starts near log(n_out) and trains smoothly.
    return (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)


class MomentumMLP:
    """The model, its optimiser state and one fixed batch, in library ``lib`` (gg or torch)."""

    def __init__(self, lib, weights: list[np.ndarray], x: np.ndarray, labels: np.ndarray):
        self.lib = lib
        self.initial = [lib.tensor(w) for w in weights]
        self.params = [lib.tensor(w, requires_grad=True) for w in weights]
        self.velocities = [lib.zeros_like(p) for p in self.params]
        self.x = lib.tensor(x)
        self.labels = lib.tensor(labels)
        self.rows = lib.arange(len(labels))

    def reset(self) -> None:
        """Back to the initial weights and zero velocity, in place."""
        with self.lib.no_grad():
            for p, p0, v in zip(self.params, self.initial, self.velocities):
                p.copy_(p0)
                v.zero_()

    def step(self):
        """One training step; returns the loss (before the update) as a tensor."""
        w1, b1, w2, b2 = self.params
        logits = (self.x @ w1 + b1).relu() @ w2 + b2
        loss = -logits.log_softmax(1)[self.rows, self.labels].mean()
        loss.backward()
        with self.lib.no_grad():
            for p, v in zip(self.params, self.velocities):
                v.mul_(MOMENTUM).add_(p.grad)
                p.sub_(v, alpha=LEARNING_RATE)
                p.grad = None
        return loss


def check_same_losses(size: Size) -> None:
    """Run a few steps in both libraries from the same start: the losses must agree."""
    problem = make_problem(size)
    losses = {}
    for lib in (gg, torch):
        model = MomentumMLP(lib, *problem)
        losses[lib.__name__] = [model.step().item() for _ in range(CHECK_STEPS)]
    np.testing.assert_allclose(losses["graphgrad"], losses["torch"], rtol=LOSS_RTOL)
    shown = ", ".join(f"{loss:.5f}" for loss in losses["graphgrad"])
    print(f"  loss check: {CHECK_STEPS} steps agree to rtol {LOSS_RTOL:g} (graphgrad: {shown})")


def make_trial(model: MomentumMLP, steps: int):
    def trial() -> dict[str, float]:
        model.reset()
        t0 = time.perf_counter()
        for _ in range(steps):
            model.step()
        return {"step": (time.perf_counter() - t0) / steps}

    return trial


def benchmark(size: Size, profile: bool) -> None:
    print(f"\n{size.name} ({size.steps_per_sample} steps per sample)")
    check_same_losses(size)
    problem = make_problem(size)
    models = {"graphgrad": MomentumMLP(gg, *problem), "torch": MomentumMLP(torch, *problem)}
    trials = {name: make_trial(model, size.steps_per_sample) for name, model in models.items()}
    # Warm-up of 0.2 s: longer than OpenBLAS's and OpenMP's idle threads spin before sleeping.
    results = compare(trials, rounds=10, samples=10, warmup_seconds=0.2)
    for name, phases in results.items():
        s = phases["step"]
        print(f"  {name:<10}{1 / s.best:>9,.0f} steps/s   best {s.best * 1e6:8.1f} us/step "
              f"(median {s.median * 1e6:.1f}, {s.samples} samples)")
    ratio = speedup(results["graphgrad"]["step"].best, results["torch"]["step"].best)
    print(f"  graphgrad/torch: {ratio:.2f}x   {verdict(ratio, size.target)}")
    if profile:
        print_profile(models["graphgrad"].step, calls=200, title=f"graphgrad MLP step, {size.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile summary of the graphgrad side")
    args = parser.parse_args()

    print(f"mlp_step: one momentum-SGD training step of a two-layer MLP, float32, "
          f"lr {LEARNING_RATE}, momentum {MOMENTUM}")
    print(environment())
    print("steps/s from the best sample; ratio = graphgrad speed / torch speed "
          "(> 1: graphgrad faster)")
    for size in SIZES:
        benchmark(size, args.profile)


if __name__ == "__main__":
    main()
