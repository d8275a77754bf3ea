"""Trains a 1-64-1 ReLU MLP regression on y = sin(3x) from NumPy data with Adam.

Planted fault: the hidden layer's biases start at -10 while |w x| < 1, so every ReLU is
negative for every sample: the hidden activations are all zero, no gradient reaches the first
layer, and the network can only learn a constant (the output bias).
Observed: 0.0000 of the ReLUs are active, the first layer's grad is exactly 0, and the loss
falls from 1.147 only to 0.483145 = the target variance 0.483144 (a constant fit).
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 1)).astype(np.float32)
    y = (np.sin(3 * x) + 0.5).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y)

    model = nn.Sequential(nn.Linear(1, 64), nn.ReLU(), nn.Linear(64, 1))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
        model[0].bias.fill_(-10.0)  # fault: every unit starts (and stays) dead
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for epoch in range(200):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if epoch % 50 == 0:
            print(f"epoch {epoch} loss {loss.item():.6f}")

    with torch.no_grad():
        alive = (model[1](model[0](inputs)) > 0).float().mean().item()
    print(f"fraction of active ReLUs {alive:.4f}, first layer grad norm"
          f" {model[0].weight.grad.norm().item():.3e}, target variance {y.var():.6f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
