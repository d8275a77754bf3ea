"""Trains a linear regression (4 features) with minibatch SGD on NumPy data.

Planted fault: one sample (row 137) holds a NaN feature, as a missing value in a CSV would.
The loss is finite until the batch holding it (batch 4, rows 128-159 of epoch 0), turns NaN
there, and stays NaN because the step writes NaN into the weights.
Observed: batches 0-3 have losses 7.73, 7.85, 4.63, 5.09; batch 4 and every batch after it is
nan; final loss nan. Weights are finite before batch 4.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((320, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 2.0, 0.5]) + 0.1 * rng.standard_normal(320)).astype(np.float32)
    x[137, 2] = np.nan  # fault: a missing value
    inputs, targets = torch.tensor(x), torch.tensor(y).unsqueeze(1)

    model = nn.Linear(4, 1)
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    for epoch in range(3):
        for batch, start in enumerate(range(0, 320, 32)):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[start:start + 32]), targets[start:start + 32])
            loss.backward()
            optimizer.step()
            if epoch == 0:
                print(f"epoch {epoch} batch {batch} loss {loss.item():.6f}")

    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
