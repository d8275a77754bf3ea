"""Trains a deep (6 hidden layers) sigmoid MLP as a 2-class classifier on NumPy blobs (SGD).

Planted fault: every weight is drawn at 5x a sensible scale, so the sigmoid pre-activations
are large, the units sit at 0 or 1 where the slope is near zero, and the gradient that reaches
the first layer is tiny next to the last layer's. The loss hardly improves.
Observed: the loss drops from 4.60 to 0.675 by epoch 20 (log 2 = 0.693: chance), then only to
0.638 by epoch 99; 27% of layer-2 units are below 0.02 or above 0.98, and the first layer's
grad norm (1.1e-02) is 2.5x smaller than the last layer's (2.8e-02).
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 4)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)  # an XOR of two signs
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    layers = [nn.Linear(4, 32), nn.Sigmoid()]
    for _ in range(5):
        layers += [nn.Linear(32, 32), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(32, 2))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            scale = 5.0 / np.sqrt(p.shape[-1])  # fault: 5x the usual 1/sqrt(fan_in)
            w = scale * rng.standard_normal(size=tuple(p.shape))
            p.copy_(torch.tensor(w.astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    for epoch in range(100):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if epoch % 20 == 0:
            print(f"epoch {epoch} loss {loss.item():.6f}")

    first, last = model[0].weight.grad.norm().item(), model[-1].weight.grad.norm().item()
    with torch.no_grad():
        hidden = model[:4](inputs)
    saturated = ((hidden < 0.02) | (hidden > 0.98)).float().mean().item()
    print(f"grad norm first layer {first:.3e} last layer {last:.3e};"
          f" layer 2 saturated {saturated:.2f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
