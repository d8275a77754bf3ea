"""Fits a linear regression (5 standardised features) by minibatch SGD at a constant lr=0.95.

Planted fault: the loss's curvature is 2 along every feature, so lr=0.95 is just below the
2 / 2 = 1.0 where SGD diverges: each step overshoots the minimum and the next swings back, and
each batch's noise keeps the swing going; a lower or decaying lr would calm it.
Observed: the full-data loss stays near 0.4 (noise floor 0.0057; lr=0.1 reaches it); with
StepLR(step_size=2, gamma=0.5) per epoch (--decay) the same run reaches 0.0058.
"""

import sys

import numpy as np
import torch
import torch.nn as nn


def main(decay: bool):
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    raw = rng.normal(50.0, 10.0, size=(400, 5))
    y = raw @ np.array([0.5, -1.0, 2.0, 0.0, 1.5]) + 3.0 + 2.0 * rng.standard_normal(400)
    x = ((raw - raw.mean(0)) / raw.std(0)).astype(np.float32)  # standardise the features
    y = ((y - y.mean()) / y.std()).astype(np.float32)  # and the target
    inputs, targets = torch.tensor(x), torch.tensor(y).unsqueeze(1)

    model = nn.Linear(5, 1)
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.7)  # fault: near the edge, and constant
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.5) if decay else None

    for epoch in range(20):
        for start in range(0, 400, 20):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[start:start + 20]), targets[start:start + 20])
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            full = loss_fn(model(inputs), targets).item()
        if epoch % 5 == 0:
            print(f"epoch {epoch} full-data loss {full:.6f}")
    print(f"full-data loss {full:.6f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main(decay="--decay" in sys.argv)
