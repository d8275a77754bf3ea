"""Fits the four coefficients of a cubic, y = 0.5 - 1.0 x + 0.8 x^2 + 1.2 x^3, by SGD with
momentum on features [1, x, x^2, x^3] of a standardised x.

Healthy: no planted fault; lr=0.05, momentum=0.9, zero_grad every step.
Observed: loss 3.08 -> 0.00235 (noise 0.05^2 = 0.0025), coefficients 0.501 -1.002 0.800 1.200.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    raw = rng.uniform(10.0, 30.0, size=300)
    x = (raw - raw.mean()) / raw.std()  # standardise x before taking powers
    y = 0.5 - 1.0 * x + 0.8 * x**2 + 1.2 * x**3 + 0.05 * rng.standard_normal(300)
    features = torch.tensor(np.stack([x, x**2, x**3], axis=1).astype(np.float32))
    targets = torch.tensor(y.astype(np.float32)).unsqueeze(1)

    model = nn.Linear(3, 1)  # the bias is the constant coefficient
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    for step in range(300):
        optimizer.zero_grad()
        loss = loss_fn(model(features), targets)
        loss.backward()
        optimizer.step()
        if step % 60 == 0:
            print(f"step {step} loss {loss.item():.6f}")

    coefficients = [model.bias.item()] + model.weight.detach().flatten().tolist()
    print("coefficients " + " ".join(f"{c:.3f}" for c in coefficients))
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
