"""Trains a 3-class MLP on NumPy Gaussian blobs with nn.CrossEntropyLoss.

Planted fault: forward() ends in torch.softmax, so CrossEntropyLoss (which applies log_softmax
itself) receives probabilities as logits. The inputs to the loss all lie in [0, 1], so the loss
cannot drop below about 0.55 even when every sample is right (log(1 + 2/e) = 0.551) and
gradients are squashed.
Observed (torch and graphgrad alike): accuracy reaches 0.9967 but the loss crawls from 1.147
to 0.590 in 100 full-batch steps, stuck above the 0.551 floor.
"""

import numpy as np
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)  # fault: probabilities


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = rng.integers(0, 3, size=300)
    x = (centres[y] + 0.5 * rng.standard_normal((300, 2))).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    model = Net()
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    for epoch in range(100):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if epoch % 20 == 0:
            print(f"epoch {epoch} loss {loss.item():.6f}")

    with torch.no_grad():
        accuracy = (model(inputs).argmax(1) == targets).float().mean().item()
    print(f"accuracy {accuracy:.4f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
