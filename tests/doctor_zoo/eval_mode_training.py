"""Trains a 2-class MLP with BatchNorm1d and Dropout on shifted, scaled NumPy blobs (Adam).

Planted fault: model.eval() is called before the training loop (and train() never), so
BatchNorm1d normalises with its initial running stats (mean 0, var 1) and never updates them,
and Dropout does nothing.
Observed: after 20 epochs bn.running_mean is still all 0 and running_var all 1
(num_batches_tracked stays 0); the loss falls from 2.01 to 0.66 only.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=256)
    x = (5.0 + 3.0 * rng.standard_normal((256, 4)) + 1.5 * y[:, None]).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    model = nn.Sequential(nn.Linear(4, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(32, 2))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    model.eval()  # fault: meant for evaluation, but training follows
    for epoch in range(20):
        for start in range(0, 256, 64):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[start:start + 64]), targets[start:start + 64])
            loss.backward()
            optimizer.step()
        if epoch % 5 == 0:
            print(f"epoch {epoch} loss {loss.item():.6f}")

    bn = model[1]
    print(f"bn running_mean abs max {bn.running_mean.abs().max().item():.4f}"
          f" running_var mean {bn.running_var.mean().item():.4f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
