"""A PyTorch-tutorial CNN classifier: Conv2d, ReLU, MaxPool2d, Flatten, Linear in an
nn.Module, CrossEntropyLoss, Adam, a DataLoader over a TensorDataset of small images (bars:
horizontal, vertical, diagonal, in noise). Data and initial weights come from NumPy, so that
torch and graphgrad start from the same numbers."""

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class SmallCNN(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, kernel_size=3), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 2 * 2, n_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def bars(rng, n, size=12):
    """n noisy images of one bar each: label 0 horizontal, 1 vertical, 2 diagonal."""
    images = 0.3 * rng.standard_normal((n, 1, size, size))
    labels = rng.integers(0, 3, size=n)
    where = rng.integers(2, size - 2, size=n)
    steps = np.arange(size)
    for i, (label, at) in enumerate(zip(labels, where)):
        if label == 0:
            images[i, 0, at, :] += 1.0
        elif label == 1:
            images[i, 0, :, at] += 1.0
        else:
            images[i, 0, steps, (steps + at) % size] += 1.0
    return images.astype(np.float32), labels


def main():
    rng = np.random.default_rng(5)
    x, y = bars(rng, 192)
    dataset = TensorDataset(torch.tensor(x), torch.tensor(y, dtype=torch.long))
    loader = DataLoader(dataset, batch_size=32, shuffle=False)

    model = SmallCNN(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.normal(0.0, 0.3, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)

    for epoch in range(4):
        model.train()
        total, correct, seen = 0.0, 0, 0
        for images, targets in loader:
            optimizer.zero_grad()
            logits = model(images)
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum().item()
            seen += len(targets)
        print(f"epoch {epoch} loss {total / seen:.6f} accuracy {correct / seen:.4f}")

    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(x))
        accuracy = (logits.argmax(1) == torch.tensor(y)).float().mean().item()
        print(f"final accuracy {accuracy:.4f} logit mean {logits.mean().item():.6f}")


if __name__ == "__main__":
    main()
