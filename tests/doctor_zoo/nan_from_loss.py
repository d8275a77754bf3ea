"""Trains a logistic regression on separable NumPy data with a hand-written binary
cross-entropy, -(y log p + (1 - y) log(1 - p)).

Planted fault: the loss takes log(1 - p) of sigmoid outputs; once the model is confident,
float32 rounds p to exactly 1.0 for some samples, log(0) is -inf, and 0 * -inf is NaN.
Observed: loss 0.693 at step 0, 0.00055 at step 100, nan at step 156, while the inputs,
weights and model outputs are all finite (BCEWithLogitsLoss on the logits stays finite).
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    x = (rng.standard_normal((200, 2)) + 3.0 * (2 * y[:, None] - 1)).astype(np.float32)
    inputs = torch.tensor(x)
    targets = torch.tensor(y, dtype=torch.float32).unsqueeze(1)

    model = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    with torch.no_grad():  # the same start under torch and graphgrad
        model[0].weight.zero_()
        model[0].bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)

    for step in range(300):
        optimizer.zero_grad()
        p = model(inputs)
        loss = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()  # fault
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or not torch.isfinite(loss):
            print(f"step {step} loss {loss.item():.6f}")
            if not torch.isfinite(loss):
                break
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
