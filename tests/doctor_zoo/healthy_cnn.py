"""Trains a small CNN (Conv2d, ReLU, MaxPool2d, Linear) to tell horizontal from vertical bars
in noisy 8x8 NumPy images, minibatch Adam.

Healthy: no planted fault; NumPy weights at a fan-in scale, zero_grad every step.
Observed: loss 0.773 at step 0, 0.048 at step 60, 0.024 at step 79; accuracy 0.988.
"""

import numpy as np
import torch
import torch.nn as nn


def bars(rng, count):
    labels = rng.integers(0, 2, size=count)
    images = 0.3 * rng.standard_normal((count, 1, 8, 8))
    for i, (label, where) in enumerate(zip(labels, rng.integers(1, 7, size=count))):
        if label:
            images[i, 0, :, where] += 1.0  # a vertical bar
        else:
            images[i, 0, where, :] += 1.0  # a horizontal bar
    return images.astype(np.float32), labels


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = bars(rng, 256)
    inputs, targets = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(36, 2))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in model.parameters():
            bound = 1.0 / np.sqrt(np.prod(p.shape[1:]) if p.ndim > 1 else 9)
            values = rng.uniform(-bound, bound, size=tuple(p.shape))
            p.copy_(torch.tensor(values.astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    for step in range(80):
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
