"""Trains a two-branch regression model whose second branch is defined but never called.

Planted fault: Model.__init__ builds self.shortcut (a Linear from the input to the output) but
forward forgets to add it, so its weights get no gradient and are never trained (the optimizer
holds them all the same).
Observed: shortcut.weight.grad stays None; the loss falls from 8.32 to 0.241 on the deep
branch alone.
"""

import numpy as np
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.deep = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
        self.shortcut = nn.Linear(3, 1)

    def forward(self, x):
        return self.deep(x)  # fault: + self.shortcut(x) was meant


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + np.sin(2 * x[:, 0])).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y).unsqueeze(1)

    model = Model()
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for step in range(150):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.6f}")
    print(f"shortcut grad {model.shortcut.weight.grad}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
