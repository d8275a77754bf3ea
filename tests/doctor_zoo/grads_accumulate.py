"""Trains a linear regression (3 features, SGD) on NumPy data.

Planted fault: optimizer.zero_grad() is never called, so each backward() adds to the gradients
of every earlier step and the update grows into the sum of all past gradients.
Observed: the weight grad norm grows from 5.04 to 8.23 instead of shrinking, and the loss
crawls from 6.34 to a low of 2.06 at step 80, then climbs back (2.85 at step 119), an
undamped oscillation; with zero_grad() the same run reaches 0.010 by step 60.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.1 * rng.standard_normal(200)).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y).unsqueeze(1)

    model = nn.Linear(3, 1)
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    for step in range(120):
        # fault: no optimizer.zero_grad() here
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            grad_norm = model.weight.grad.norm().item()
            print(f"step {step} loss {loss.item():.6f} grad norm {grad_norm:.4f}")

    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
