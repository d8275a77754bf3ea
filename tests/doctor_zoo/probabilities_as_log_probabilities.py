"""Trains a 4-class softmax classifier on NumPy blobs with the functional F.nll_loss.

Planted fault: the model ends in softmax, not log_softmax, so F.nll_loss gets probabilities
and minimises -p[target] instead of -log p[target]: confident wrong answers are barely
penalised and the number it reports is no log-likelihood.
Observed: the "loss" goes from -0.233 to -0.903 (a negative NLL); accuracy 0.915. With
log_softmax the loss is 0.190 and accuracy 0.920.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 2.0], [2.0, 0.0], [0.0, -2.0], [-2.0, 0.0]])
    y = rng.integers(0, 4, size=400)
    x = (centres[y] + 0.8 * rng.standard_normal((400, 2))).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

    for step in range(150):
        optimizer.zero_grad()
        loss = F.nll_loss(F.softmax(model(inputs), dim=1), targets)  # fault: not log_softmax
        loss.backward()
        optimizer.step()
        if step % 30 == 0:
            print(f"step {step} loss {loss.item():.6f}")
    accuracy = (model(inputs).argmax(1) == targets).float().mean().item()
    print(f"accuracy {accuracy:.3f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
