"""Trains a 12-layer tanh MLP whose weights start far too small (uniform +-0.05, where torch's
default is +-1/sqrt(32) = +-0.18), with SGD.

Planted fault: each layer scales the backward signal by about |W| = 0.05 * sqrt(32 / 3) = 0.16,
so after eleven layers the first layer's gradient is some 1e-9 of the last's: the early layers
never learn. The activations stay near 0, far from saturation.
Observed: first-layer weight gradient norm 4.65e-9 at step 0, the output bias's 0.113; the
loss goes from 1.094 to 1.091 (the targets' variance) and stays there.
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 8)).astype(np.float32)
    y = np.tanh(x[:, :1] - x[:, 1:2]).astype(np.float32) * 1.5
    inputs, targets = torch.tensor(x), torch.tensor(y)

    layers = [nn.Linear(8, 32), nn.Tanh()]
    for _ in range(10):
        layers += [nn.Linear(32, 32), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(32, 1))
    with torch.no_grad():  # fault: a tiny initial scale for every layer
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.05, 0.05, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    for step in range(100):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            print(f"step {step} loss {loss.item():.6f} first-layer grad "
                  f"{model[0].weight.grad.norm().item():.3g} output bias grad "
                  f"{model[-1].bias.grad.norm().item():.3g}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
