"""Trains a linear regression (3 features, SGD) on NumPy data.

Planted fault: the prediction has shape (N, 1) but the target has shape (N,), so MSELoss
broadcasts them to (N, N) and compares every prediction with every target. The model learns
to predict the mean target and the loss stalls near the target variance.
Observed: torch warns "Using a target size (torch.Size([200])) that is different to the input
size (torch.Size([200, 1]))" (graphgrad prints the same UserWarning); the loss goes
6.676 -> 6.551228, which is the target variance 6.551227, and the weights go to 0.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.1 * rng.standard_normal(200)).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y)  # fault: targets are (N,), not (N, 1)

    model = nn.Linear(3, 1)
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    for step in range(200):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.6f}")

    weight = model.weight.detach().numpy().round(3).tolist()
    print(f"target variance {y.var():.6f}, weight {weight}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
