"""Train a small CNN on scikit-learn's 8x8 digits with graphgrad, PyTorch-style.

    pip install ".[datasets]" && python examples/cnn_digits.py

Each image becomes a 1x8x8 tensor; three 3x3 convolutions with batch norm, two 2x2 max pools
and a linear layer classify it. Prints the loss and test accuracy every few epochs, then the
final accuracy.
"""

from __future__ import annotations

import time

import graphgrad as torch  # the script reads as PyTorch; only this import differs
from graphgrad import nn
from graphgrad.data import DataLoader, TensorDataset
from graphgrad.data.datasets import digits

EPOCHS, BATCH_SIZE, LR, WEIGHT_DECAY = 15, 32, 3e-3, 1e-4


def images(dataset) -> TensorDataset:
    """Flat 64-pixel rows as (N, 1, 8, 8) images, centred on 0."""
    features, labels = dataset.tensors
    return TensorDataset((features.reshape(-1, 1, 8, 8) - 0.5) * 2.0, labels)


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),  # 32 x 4 x 4
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(2),  # 64 x 2 x 2
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 2 * 2, 10),
    )  # fmt: skip


def accuracy(model: nn.Module, dataset) -> float:
    features, labels = dataset.tensors
    model.eval()
    with torch.no_grad():
        predicted = model(features).argmax(dim=1)
    model.train()
    return (predicted == labels).float().mean().item()


def train(seed: int = 0, epochs: int = EPOCHS, verbose: bool = True) -> float:
    """Train from a fixed seed and return the final test accuracy."""
    torch.manual_seed(seed)
    train_set, test_set = (images(part) for part in digits(seed=seed))
    loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
    model = cnn()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, epochs + 1):
        for features, labels in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(features), labels)
            loss.backward()
            optimizer.step()
        scheduler.step()
        if verbose and (epoch % 3 == 0 or epoch == epochs):
            print(f"epoch {epoch:2d}  loss {loss.item():.4f}  test accuracy "
                  f"{accuracy(model, test_set):.2%}")
    return accuracy(model, test_set)


if __name__ == "__main__":
    start = time.perf_counter()
    final = train()
    print(f"test accuracy {final:.2%} in {time.perf_counter() - start:.1f} s")
