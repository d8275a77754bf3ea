"""What ``graphgrad.train.watch`` costs: the same training loop watched and unwatched.

The loop is the medium MLP (784-256-10, ReLU, batch 128) with ``nn.CrossEntropyLoss`` and
``optim.SGD`` (momentum 0.9), ``zero_grad``/``backward``/``step`` as a user writes it. Samples
of each kind alternate in one process, from the same weights and batch, so machine noise hits
both; the watch is attached for the watched samples and closed after each. Reported: the best
and median step time of each, and watched/unwatched (the target is at most 1.10).

Run: ``python benchmarks/doctor_overhead.py [--samples N] [--steps N]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import graphgrad as gg
from graphgrad.train import watch


def build(seed: int = 0):
    rng = np.random.default_rng(seed)
    model = gg.nn.Sequential(gg.nn.Linear(784, 256), gg.nn.ReLU(), gg.nn.Linear(256, 10))
    x = gg.tensor(rng.standard_normal((128, 784)).astype(np.float32))
    y = gg.tensor(rng.integers(0, 10, 128))
    return model, x, y


def sample(model, x, y, steps: int, watched: bool) -> float:
    """Seconds per step over ``steps`` steps, with a fresh optimizer (and watch)."""
    loss_fn = gg.nn.CrossEntropyLoss()
    optimizer = gg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    w = watch(model, optimizer, loss_fn) if watched else None
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    if w is not None:
        w.close()
    return elapsed / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    model, x, y = build()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    times = {False: [], True: []}
    sample(model, x, y, 10, False)  # warm up: BLAS threads, scratch buffers
    for _ in range(args.samples):
        for watched in (False, True):
            model.load_state_dict(state)
            times[watched].append(sample(model, x, y, args.steps, watched))
    for watched, label in ((False, "unwatched"), (True, "watched")):
        ms = [t * 1e3 for t in times[watched]]
        print(f"{label:>9}: {min(ms):.3f} ms/step best, {statistics.median(ms):.3f} median")
    best = min(times[True]) / min(times[False])
    median = statistics.median(times[True]) / statistics.median(times[False])
    print(f"watched/unwatched: {best:.3f} best, {median:.3f} median (target <= 1.10)")


if __name__ == "__main__":
    main()
