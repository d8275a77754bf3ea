"""Trains a linear regression of price on two raw house features (area in square feet, about
1500 +- 500, and rooms, about 3 +- 1) with SGD, without standardising them.

Planted fault: the inputs are not normalised. Their scales differ by ~500x, so the largest lr
that does not diverge (set by the area column) is far too small for the rooms weight and the
bias: the loss falls fast for a few steps and then crawls.
Observed: input means [1482.1, 3.0], stds [508.9, 1.0]; the loss drops from 37.35 to 0.8631
by step 60, then only to 0.8630 by step 299 (the noise floor is 0.01).
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    area = rng.normal(1500.0, 500.0, size=300)
    rooms = rng.normal(3.0, 1.0, size=300)
    price = 0.002 * area + 0.5 * rooms + 1.0 + 0.1 * rng.standard_normal(300)
    x = np.stack([area, rooms], axis=1).astype(np.float32)  # fault: raw scales, no standardising
    inputs, targets = torch.tensor(x), torch.tensor(price.astype(np.float32)).unsqueeze(1)

    model = nn.Linear(2, 1)
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        model.weight.copy_(torch.tensor(rng.uniform(-0.01, 0.01, size=(1, 2)).astype(np.float32)))
        model.bias.zero_()
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-7)  # 1e-6 already diverges

    for step in range(300):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step % 60 == 0:
            print(f"step {step} loss {loss.item():.6f}")

    print(f"input means {x.mean(0).astype(float).round(1).tolist()}"
          f" stds {x.std(0).astype(float).round(1).tolist()}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
