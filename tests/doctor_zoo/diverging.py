"""Fits a linear regression on standardised features with full-batch SGD, lr=1.1.

Planted fault: the mean squared error's curvature is 2 along each standardised feature (more
along correlated ones), so an lr above 2 / 2 = 1.0 makes every step overshoot by more than it
corrects: the error grows at each step. The run is short enough to stay finite.
Observed: loss 6.22 at step 0, 51.7 at step 5, 1.27e8 at step 29 (lr=0.3 reaches 0.0075).
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    raw = rng.normal(10.0, 3.0, size=(200, 4))
    x = ((raw - raw.mean(0)) / raw.std(0)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 0.5, 2.0]) + 0.1 * rng.standard_normal(200)).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y).unsqueeze(1)

    model = nn.Linear(4, 1)
    with torch.no_grad():  # the same start under torch and graphgrad
        model.weight.zero_()
        model.bias.zero_()
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.1)  # fault: above 1.0

    for step in range(30):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step % 5 == 0 or step == 29:
            print(f"step {step} loss {loss.item():.6g}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
