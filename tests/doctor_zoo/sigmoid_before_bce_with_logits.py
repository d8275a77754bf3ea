"""Trains a 2-class (one output) MLP on NumPy blobs with nn.BCEWithLogitsLoss and Adam.

Planted fault: forward() ends in torch.sigmoid, and BCEWithLogitsLoss applies a sigmoid again,
so the loss sees sigmoid(sigmoid(z)) in (0.5, 0.73): it cannot drop below log(1 + e^-1) = 0.313
for positives, and every negative costs at least log(2) = 0.693.
Observed: accuracy 0.9733 and the sigmoid outputs span [0, 1], yet the loss stalls at 0.500
(0.712 at epoch 0, 0.517 at epoch 30, 0.500 at epoch 149), the floor of the double sigmoid.
"""

import numpy as np
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(2, 16)
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        return torch.sigmoid(self.out(torch.relu(self.hidden(x))))  # fault: already squashed


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    x = (rng.standard_normal((300, 2)) + 1.5 * (2 * y[:, None] - 1)).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.float32).unsqueeze(1)

    model = Net()
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for epoch in range(150):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = loss_fn(outputs, targets)
        loss.backward()
        optimizer.step()
        if epoch % 30 == 0:
            print(f"epoch {epoch} loss {loss.item():.6f}")

    accuracy = ((outputs > 0.5).float() == targets).float().mean().item()
    low, high = outputs.min().item(), outputs.max().item()
    print(f"accuracy {accuracy:.4f}, outputs in [{low:.4f}, {high:.4f}]")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
