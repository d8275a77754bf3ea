"""Trains an LSTM to tell whether a noisy NumPy sequence rises or falls, minibatch Adam.

Healthy: no planted fault; nn.LSTM(batch_first=True) read at its last step, then Linear;
NumPy weights at torch's default scale, zero_grad every step.
Observed: loss 0.678 at step 0, 0.0024 at step 40, 0.0004 at step 119; accuracy 1.0.
"""

import numpy as np
import torch
import torch.nn as nn


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 16, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=256)
    slope = np.where(y == 1, 1.0, -1.0)[:, None] * rng.uniform(0.5, 1.5, size=(256, 1))
    x = slope * np.linspace(-1, 1, 12) + 0.3 * rng.standard_normal((256, 12))
    inputs = torch.tensor(x[:, :, None].astype(np.float32))
    targets = torch.tensor(y, dtype=torch.long)

    model = Classifier()
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.25, 0.25, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for step in range(120):
        start = (step * 32) % 256
        optimizer.zero_grad()
        loss = loss_fn(model(inputs[start:start + 32]), targets[start:start + 32])
        loss.backward()
        optimizer.step()
        if step % 20 == 0:
            print(f"step {step} loss {loss.item():.6f}")
    with torch.no_grad():
        accuracy = (model(inputs).argmax(1) == targets).float().mean().item()
    print(f"accuracy {accuracy:.3f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
