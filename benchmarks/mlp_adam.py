"""mlp_adam: a PyTorch-style training step written once, run on graphgrad and on torch.

784-256-10 MLP with `nn.Linear`, `nn.CrossEntropyLoss` and `optim.Adam`, batch 128, float32, the
same initial weights (copied through state dicts) and the same batch in both libraries. Before
timing, five steps must give the same losses, so the ratio compares equal work. Target: graphgrad
at least 1.0x torch's steps per second.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from _timing import compare, environment, speedup, verdict

import graphgrad as gg

BATCH, SIZES, STEPS, TARGET = 128, (784, 256, 10), 4, 1.0


def model_of(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]))


def make_pair():
    """The same model, optimiser and batch in both libraries."""
    torch.manual_seed(0)
    theirs = model_of(torch)
    ours = model_of(gg)
    ours.load_state_dict({k: gg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    return {
        "graphgrad": (gg, ours, gg.optim.Adam(ours.parameters(), lr=1e-3), gg.tensor(x),
                      gg.tensor(y)),
        "torch": (torch, theirs, torch.optim.Adam(theirs.parameters(), lr=1e-3),
                  torch.tensor(x), torch.tensor(y)),
    }


def step(lib, model, optimizer, x, y, loss_fn):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def make_trial(lib, model, optimizer, x, y):
    loss_fn = lib.nn.CrossEntropyLoss()

    def trial() -> dict[str, float]:
        start = time.perf_counter()
        for _ in range(STEPS):
            step(lib, model, optimizer, x, y, loss_fn)
        return {"step": (time.perf_counter() - start) / STEPS}

    return trial


def main() -> None:
    print(f"mlp_adam: {'-'.join(map(str, SIZES))} MLP, batch {BATCH}, nn.Linear + "
          f"CrossEntropyLoss + Adam\n{environment()}")
    pairs = make_pair()
    losses = {}
    for name, (lib, model, opt, x, y) in pairs.items():
        loss_fn = lib.nn.CrossEntropyLoss()
        losses[name] = [step(lib, model, opt, x, y, loss_fn).item() for _ in range(5)]
    np.testing.assert_allclose(losses["graphgrad"], losses["torch"], rtol=1e-4)
    shown = ", ".join(f"{v:.5f}" for v in losses["graphgrad"])
    print(f"loss check: 5 steps agree to rtol 1e-4 ({shown})")
    trials = {name: make_trial(*pair) for name, pair in pairs.items()}
    # Blocks of one library at a time, each after a warm-up: the other library's idle worker
    # threads (OpenBLAS, OpenMP) spin for a while and would otherwise steal a core.
    results = compare(trials, rounds=10, samples=10, warmup_seconds=0.2)
    best = {name: phases["step"].best for name, phases in results.items()}
    for name, seconds in best.items():
        print(f"  {name:9s} {1 / seconds:8,.0f} steps/s   best {seconds * 1e6:8.1f} us/step")
    ratio = speedup(best["graphgrad"], best["torch"])
    print(f"  graphgrad/torch: {ratio:.2f}x   {verdict(ratio, TARGET)}")


if __name__ == "__main__":
    sys.exit(main())
