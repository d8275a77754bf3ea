"""Trains a 3-32-1 tanh MLP regression on NumPy data with SGD.

Planted fault: lr=5.0 is far too large, so every step overshoots: the loss grows by orders of
magnitude each step, overflows to inf and then turns NaN, although the data are clean.
Observed: loss 7.05, 555, 4.1e5, 3.7e8, ... 9.7e33 at step 10, inf at steps 11-12, nan from
step 13 on. graphgrad also prints NumPy overflow RuntimeWarnings, torch stays silent.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 3)).astype(np.float32)
    y = (x @ np.array([2.0, -1.0, 0.5]) + np.sin(x[:, 0])).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y).unsqueeze(1)

    model = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 1))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=5.0)  # fault: far too large

    for step in range(40):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        print(f"step {step} loss {loss.item():.6g}")

    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
