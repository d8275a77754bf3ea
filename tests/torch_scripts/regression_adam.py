"""Regression with Adam and a StepLR schedule; the state_dict is saved with torch.save to a
temporary folder, loaded with torch.load into a fresh model, and evaluated again."""

import math
import os
import tempfile

import numpy as np
import torch
from torch import nn, optim
from torch.optim.lr_scheduler import StepLR


def make_model(rng):
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.normal(0.0, 0.4, size=tuple(p.shape)), dtype=torch.float32))
    return model


def main():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-1, 1, size=(200, 3)), dtype=torch.float32)
    y = torch.sin(math.pi * x[:, :1]) + 0.5 * x[:, 1:2] * x[:, 2:3]
    model = make_model(rng)
    optimizer = optim.Adam(model.parameters(), lr=0.02, betas=(0.9, 0.99))
    scheduler = StepLR(optimizer, step_size=20, gamma=0.5)
    loss_fn = nn.MSELoss()
    for step in range(60):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 10 == 9:
            print(f"step {step + 1} loss {loss.item():.6f} lr {scheduler.get_last_lr()[0]:.6f}")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pt")
        torch.save(model.state_dict(), path)
        restored = make_model(np.random.default_rng(2))
        restored.load_state_dict(torch.load(path))
    with torch.no_grad():
        print(f"restored loss {loss_fn(restored(x), y).item():.6f}")
        same = all(torch.equal(a, b) for a, b in zip(model.parameters(), restored.parameters()))
        print(f"same weights {same}")


if __name__ == "__main__":
    main()
