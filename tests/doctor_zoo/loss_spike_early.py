"""Trains a 2-32-32-3 ReLU MLP on NumPy Gaussian blobs with Adam and CrossEntropyLoss.

Planted fault: Adam with lr=0.3 and no warm-up. Adam's first steps move every weight by about
lr regardless of its gradient, so the loss jumps far above its starting value in the first few
steps before it comes back down.
Observed: loss 1.126 at step 0, 0.545 at step 1, 11.16 at step 2 (10x the start), 0.124 at
step 3; it keeps bouncing (1.34 at step 9, 0.79 at step 20) and ends near 0.21. After step ~5
torch and graphgrad drift apart in the 4th digit (the run is chaotic).
"""

import numpy as np
import torch
import torch.nn as nn


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = rng.integers(0, 3, size=300)
    x = (centres[y] + 0.7 * rng.standard_normal((300, 2))).astype(np.float32)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 3))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            bound = 1.0 / np.sqrt(p.shape[-1])
            w = rng.uniform(-bound, bound, size=tuple(p.shape))
            p.copy_(torch.tensor(w.astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.3)  # fault: large, with no warm-up

    for step in range(40):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step < 10 or step % 10 == 0:
            print(f"step {step} loss {loss.item():.6f}")

    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
