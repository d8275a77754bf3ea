"""cnn_step: a LeNet-style CNN training step in graphgrad eager, graphgrad compiled
(``gg.compile``) and torch eager, in the same run.

The model: Conv2d 1->6 k5, ReLU, MaxPool2d 2, Conv2d 6->16 k5, ReLU, MaxPool2d 2, Flatten,
Linear 256->120, ReLU, Linear 120->84, ReLU, Linear 84->10; a batch of 64 float32 1x28x28 images,
``nn.CrossEntropyLoss`` and SGD with momentum 0.9. The step is PyTorch's four lines, written once
(``compiled_step.training_step``) and run on both libraries; graphgrad's weights are torch's
initial ones (seed 0) loaded through ``load_state_dict``.

Before timing, every contender runs a few steps from the same start: the losses must agree with
torch's (rtol 1e-4) and the compiled losses and parameters must be bit-identical to eager
graphgrad's; otherwise the script stops.

Timing as ``compiled_step.py``: alternating blocks after a warm-up (``_timing.compare``), best
sample (median in brackets), ratio to torch eager; torch keeps its default thread count unless
``--torch-threads N`` sets it (``torch.set_num_threads``). ``--profile`` adds cProfile's top 15
of the graphgrad eager step.

Run: ``python benchmarks/cnn_step.py [--quick] [--profile] [--torch-threads N]`` (~1 minute;
``--quick`` ~15 s)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _timing import compare, environment, print_profile, speedup, verdict
from compiled_step import QUICK, Contender, Timing, block_trial, training_step

import graphgrad as gg

BATCH, LR, MOMENTUM = 64, 0.01, 0.9
CHECK_STEPS, RTOL = 5, 1e-4
STEPS_PER_SAMPLE = 2
TARGET = 0.5  # graphgrad eager speed / torch eager speed
TORCH = "torch eager"
FULL = Timing(rounds=5, samples=6, warmup_seconds=0.2)


def lenet(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )  # fmt: skip


def contender(lib, weights, x, y, *, compiled: bool = False) -> Contender:
    model = lenet(lib)
    model.load_state_dict({k: lib.tensor(v) for k, v in weights.items()})
    optimizer = lib.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    step = training_step(model, optimizer, lib.nn.CrossEntropyLoss())
    if compiled:
        step = gg.compile(step, fullgraph=True)
    x, y = lib.tensor(x), lib.tensor(y)
    return Contender(step=lambda: step(x, y),
                     values=lambda: [p.detach().numpy() for p in model.parameters()])


def contenders() -> dict[str, Contender]:
    torch.manual_seed(0)
    weights = {k: v.detach().numpy().copy() for k, v in lenet(torch).state_dict().items()}
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)
    return {
        "graphgrad eager": contender(gg, weights, x, y),
        "graphgrad compiled": contender(gg, weights, x, y, compiled=True),
        TORCH: contender(torch, weights, x, y),
    }


def check(runs: dict[str, Contender]) -> None:
    losses = {name: [float(c.step()) for _ in range(CHECK_STEPS)] for name, c in runs.items()}
    for name, values in losses.items():
        if not np.allclose(values, losses[TORCH], rtol=RTOL):
            raise SystemExit(f"{name}'s losses {values} differ from torch's {losses[TORCH]}")
    eager, compiled = runs["graphgrad eager"], runs["graphgrad compiled"]
    if losses["graphgrad eager"] != losses["graphgrad compiled"] or not all(
        np.array_equal(a, b) for a, b in zip(eager.values(), compiled.values())
    ):
        raise SystemExit("the compiled step's losses or parameters differ from eager's bits")
    print(f"check: {CHECK_STEPS} steps, losses agree with torch's to rtol {RTOL:g}; compiled is "
          f"bit-identical to eager")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter samples")
    parser.add_argument("--profile", action="store_true", help="cProfile the eager step")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads(N) first")
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(environment())
    print(f"LeNet-style CNN, batch {BATCH} x 1x28x28, SGD momentum {MOMENTUM} "
          f"({STEPS_PER_SAMPLE} steps per sample)")  # fmt: skip
    runs = contenders()
    check(runs)
    timing = QUICK if args.quick else FULL
    trials = {name: block_trial(c.step, STEPS_PER_SAMPLE) for name, c in runs.items()}
    results = compare(trials, rounds=timing.rounds, samples=timing.samples,
                      warmup_seconds=timing.warmup_seconds)  # fmt: skip
    per_step = {name: phases["step"] for name, phases in results.items()}
    torch_best = per_step[TORCH].best  # block_trial's samples are seconds per step
    print(f"{'':<20}{'steps/s':>10}   {'ms per step, best (median)':<28}{'vs torch':>8}")
    for name, s in per_step.items():
        best, median = s.best, s.median
        print(f"{name:<20}{1 / best:>10,.1f}   {best * 1e3:>7.2f} ({median * 1e3:.2f}){'':<14}"
              f"{speedup(best, torch_best):>7.2f}x")  # fmt: skip
    eager = per_step["graphgrad eager"].best
    print(f"graphgrad eager vs torch eager: {verdict(speedup(eager, torch_best), TARGET)}")
    if args.profile:
        print_profile(runs["graphgrad eager"].step, 20, "graphgrad eager CNN step")


if __name__ == "__main__":
    main()
