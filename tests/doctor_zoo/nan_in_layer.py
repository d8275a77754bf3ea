"""Trains a 2-class MLP whose first layer standardises each sample: (x - mean) / std.

Planted fault: the hand-written RowNorm layer divides by each row's std with no epsilon, and
the data hold a blank sample (all features 0, e.g. a sensor that was off): its std is 0, so
0 / 0 gives NaN in that layer, and the loss is NaN from the batch holding it.
Observed: losses 0.748, 0.642 for batches 0-1, nan from batch 2 (rows 64-95; the blank row is
70); the data and the weights are finite.
"""

import numpy as np
import torch
import torch.nn as nn


class RowNorm(nn.Module):
    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True)
        return (x - mean) / x.std(dim=1, keepdim=True)  # fault: no epsilon


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=256)
    x = (rng.standard_normal((256, 6)) + np.linspace(0, 1, 6) * (2 * y[:, None] - 1))
    x[70] = 0.0  # a blank sample
    inputs = torch.tensor(x.astype(np.float32))
    targets = torch.tensor(y, dtype=torch.long)

    model = nn.Sequential(RowNorm(), nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    for epoch in range(5):
        for batch, start in enumerate(range(0, 256, 32)):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[start:start + 32]), targets[start:start + 32])
            loss.backward()
            optimizer.step()
            if epoch == 0 and batch < 4:
                print(f"batch {batch} loss {loss.item():.4f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
