"""Trains a 3-class MLP (two hidden layers) on NumPy Gaussian blobs with SGD.

Planted fault: the optimizer is built from model[-1].parameters() only, so the hidden layers
get gradients but never move; only the last layer learns.
Observed: the first layer's weight moves by exactly 0 although its grad norm is 37.1; the loss
falls from 1.364 to 0.197 on the last layer alone.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = rng.integers(0, 3, size=300)
    x = (centres[y] + 0.8 * rng.standard_normal((300, 2))).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                          nn.Linear(16, 3))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    first_weight = model[0].weight.detach().clone()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model[-1].parameters(), lr=0.1)  # fault: last layer only

    for epoch in range(100):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if epoch % 20 == 0:
            print(f"epoch {epoch} loss {loss.item():.6f}")

    moved = (model[0].weight - first_weight).abs().max().item()
    print(f"first layer moved {moved:.6f}, its grad norm {model[0].weight.grad.norm().item():.4f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
