"""Trains a 3-class MLP with Dropout(0.5) on NumPy blobs and measures accuracy after each epoch.

Planted fault: the evaluation runs under torch.no_grad() but without model.eval(), so Dropout
still drops half the hidden units while measuring: the reported accuracy is noisy and low.
Observed: the accuracy measured in train mode jumps between 0.980 and 0.997 after epoch 0
(0.987 at epoch 8, with a loss of 0.005); in eval mode the same weights score 0.997.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
    y = rng.integers(0, 3, size=300)
    x = (centres[y] + 0.6 * rng.standard_normal((300, 2))).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 3))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for epoch in range(10):
        model.train()
        for start in range(0, 300, 50):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[start:start + 50]), targets[start:start + 50])
            loss.backward()
            optimizer.step()
        with torch.no_grad():  # fault: no model.eval(), so Dropout still drops units
            accuracy = (model(inputs).argmax(1) == targets).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.4f} accuracy {accuracy:.3f}")
    model.eval()
    with torch.no_grad():
        accuracy = (model(inputs).argmax(1) == targets).float().mean().item()
    print(f"eval-mode accuracy {accuracy:.3f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
