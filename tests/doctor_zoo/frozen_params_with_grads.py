"""Trains a 3-class MLP on NumPy blobs with SGD and two parameter groups.

Planted fault: the hidden layer's group was given lr=0.0 (meant as a small lr, or a freeze
left over from fine-tuning), so its parameters get gradients at every step but never move;
only the output layer learns.
Observed: model[0].weight moves by exactly 0 although its gradient norm is 0.908 at step 0;
the loss falls from 0.632 to 0.044 on the output layer alone (both groups at lr=0.1: 0.024).
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
    y = rng.integers(0, 3, size=300)
    x = (centres[y] + 0.6 * rng.standard_normal((300, 2))).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 3))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD([
        {"params": model[0].parameters(), "lr": 0.0},  # fault: this group never moves
        {"params": model[2].parameters()},
    ], lr=0.1)

    first = model[0].weight.detach().clone()
    for step in range(100):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            print(f"step {step} loss {loss.item():.6f} "
                  f"hidden grad norm {model[0].weight.grad.norm().item():.3f}")
    print(f"hidden weight moved {(model[0].weight - first).abs().max().item():.1f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
