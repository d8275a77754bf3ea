"""Trains a 2-32-32-2 ReLU MLP on NumPy two-moons data with Adam and CrossEntropyLoss.

Healthy: no planted fault; default PyTorch initialisation, lr=0.01, zero_grad every step.
Observed: loss 0.740 -> 0.0021 in 150 steps, accuracy 1.0.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    t = rng.uniform(0, np.pi, size=200)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.concatenate([upper, lower]) + 0.1 * rng.standard_normal((400, 2))
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = np.concatenate([np.zeros(200), np.ones(200)]).astype(np.int64)
    inputs, targets = torch.tensor(x), torch.tensor(y)

    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 2))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            bound = 1.0 / np.sqrt(p.shape[-1])
            w = rng.uniform(-bound, bound, size=tuple(p.shape))
            p.copy_(torch.tensor(w.astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for epoch in range(150):
        optimizer.zero_grad()
        logits = model(inputs)
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        if epoch % 30 == 0:
            print(f"epoch {epoch} loss {loss.item():.6f}")

    accuracy = (logits.argmax(1) == targets).float().mean().item()
    print(f"accuracy {accuracy:.4f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
