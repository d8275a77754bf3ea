"""One training step of a 2-layer LSTM with a linear head, graphgrad against torch.

A step is: ``zero_grad``; ``nn.LSTM(32, 128, num_layers=2)`` over a (50, 32, 32) float32 batch
(50 steps, batch 32); ``nn.Linear(128, 1)`` on every step's output; ``nn.MSELoss`` against a
fixed target; ``backward``; ``optim.Adam.step``. The same Python code runs on both libraries
from torch's initial weights (copied into graphgrad through the state dicts). graphgrad runs
eagerly and ``gg.compile``d (fullgraph). Before timing, five steps are run in each and their
losses must agree, so the sides are known to do the same work.

Reported: steps/s from the best sample (median in brackets), graphgrad/torch speed, target 0.7x.
``--profile`` also prints cProfile's top functions of the eager graphgrad step.

Run: ``python benchmarks/lstm_step.py [--quick] [--profile]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _timing import compare, environment, print_profile, speedup, verdict

import graphgrad as gg

STEPS, BATCH, INPUT, HIDDEN, LAYERS = 50, 32, 32, 128, 2
LEARNING_RATE = 1e-3
CHECK_STEPS = 5
LOSS_RTOL = 1e-4
TARGET = 0.7


class Model:
    """LSTM + head + Adam and one fixed batch in library ``lib``, from torch's weights."""

    def __init__(self, lib, torch_state: dict, x: np.ndarray, y: np.ndarray):
        self.lstm = lib.nn.LSTM(INPUT, HIDDEN, num_layers=LAYERS)
        self.head = lib.nn.Linear(HIDDEN, 1)
        for module, prefix in ((self.lstm, "lstm."), (self.head, "head.")):
            module.load_state_dict({k[len(prefix):]: lib.tensor(v.numpy())
                                    for k, v in torch_state.items() if k.startswith(prefix)})
        self.params = list(self.lstm.parameters()) + list(self.head.parameters())
        self.optimizer = lib.optim.Adam(self.params, lr=LEARNING_RATE)
        self.loss_fn = lib.nn.MSELoss()
        self.x, self.y = lib.tensor(x), lib.tensor(y)

    def step(self, x, y):
        self.optimizer.zero_grad()
        output, _ = self.lstm(x)
        loss = self.loss_fn(self.head(output), y)
        loss.backward()
        self.optimizer.step()
        return loss


def make_problem(seed: int = 0):
    torch.manual_seed(seed)
    state = {f"lstm.{k}": v.detach().clone()
             for k, v in torch.nn.LSTM(INPUT, HIDDEN, num_layers=LAYERS).state_dict().items()}
    state.update({f"head.{k}": v.detach().clone()
                  for k, v in torch.nn.Linear(HIDDEN, 1).state_dict().items()})
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((STEPS, BATCH, INPUT)).astype(np.float32)
    y = np.sin(np.cumsum(x[..., :1], axis=0) / 5).astype(np.float32)
    return state, x, y


def runners(problem) -> dict:
    """Per side: a function running one step on a fresh model's batch."""
    out = {}
    for name, lib, compiled in (("graphgrad", gg, False), ("graphgrad compiled", gg, True),
                                ("torch", torch, False)):
        model = Model(lib, *problem)
        step = gg.compile(model.step, fullgraph=True) if compiled else model.step
        out[name] = (model, step)
    return out


def check_same_losses(problem) -> None:
    losses = {}
    for name, (model, step) in runners(problem).items():
        losses[name] = [float(step(model.x, model.y).item()) for _ in range(CHECK_STEPS)]
    for name in ("graphgrad", "graphgrad compiled"):
        np.testing.assert_allclose(losses[name], losses["torch"], rtol=LOSS_RTOL)
    shown = ", ".join(f"{loss:.5f}" for loss in losses["torch"])
    print(f"  loss check: {CHECK_STEPS} steps agree to rtol {LOSS_RTOL:g} (torch: {shown})")


def make_trial(model: Model, step, steps_per_sample: int):
    def trial() -> dict[str, float]:
        t0 = time.perf_counter()
        for _ in range(steps_per_sample):
            step(model.x, model.y)
        return {"step": (time.perf_counter() - t0) / steps_per_sample}

    return trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (~15 s)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile summary of the eager graphgrad step")
    args = parser.parse_args()
    print(f"lstm_step: LSTM({INPUT}, {HIDDEN}, num_layers={LAYERS}) + Linear({HIDDEN}, 1), "
          f"{STEPS} steps, batch {BATCH}, float32, MSE, Adam lr {LEARNING_RATE}")
    print(environment())
    print("steps/s from the best sample; ratio = graphgrad speed / torch speed "
          "(> 1: graphgrad faster)")
    problem = make_problem()
    check_same_losses(problem)
    sides = runners(problem)
    trials = {name: make_trial(model, step, 2) for name, (model, step) in sides.items()}
    rounds, samples = (3, 4) if args.quick else (8, 8)
    results = compare(trials, rounds=rounds, samples=samples, warmup_seconds=0.3)
    for name, phases in results.items():
        s = phases["step"]
        print(f"  {name:<20}{1 / s.best:>8,.1f} steps/s   best {s.best * 1e3:7.2f} ms/step "
              f"(median {s.median * 1e3:.2f}, {s.samples} samples)")
    for name in ("graphgrad", "graphgrad compiled"):
        ratio = speedup(results[name]["step"].best, results["torch"]["step"].best)
        print(f"  {name}/torch: {ratio:.2f}x   {verdict(ratio, TARGET)}")
    if args.profile:
        model, step = sides["graphgrad"]
        print_profile(lambda: step(model.x, model.y), calls=20, title="graphgrad eager LSTM step")


if __name__ == "__main__":
    main()
