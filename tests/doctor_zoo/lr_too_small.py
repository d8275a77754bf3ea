"""Trains a 2-16-1 MLP regression on y = sin(2x) from NumPy data with SGD.

Planted fault: lr=1e-6, so each step moves the parameters by about 1e-6 of their gradient and
the loss barely changes over the whole run.
Observed: over 200 steps the loss goes from 0.508789 to 0.508601 (-0.04%) and no parameter
moves by more than 7.2e-05.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(256, 2)).astype(np.float32)
    y = (np.sin(2 * x[:, 0]) + 0.5 * x[:, 1]).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y).unsqueeze(1)

    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    start = [p.detach().clone() for p in model.parameters()]
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)  # fault: far too small

    for epoch in range(200):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if epoch % 50 == 0:
            print(f"epoch {epoch} loss {loss.item():.6f}")

    moved = max((p - s).abs().max().item() for p, s in zip(model.parameters(), start))
    print(f"largest parameter change {moved:.3e}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
