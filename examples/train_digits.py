"""Train a 64-64-10 MLP on scikit-learn's 8x8 digits with graphgrad, PyTorch-style.

    pip install ".[datasets]" && python examples/train_digits.py

Prints the test accuracy after each epoch and the time taken; the README quotes the result.
"""

from __future__ import annotations

import time

import graphgrad as torch  # the script reads as PyTorch; only this import differs
from graphgrad import nn
from graphgrad.data import DataLoader, TensorDataset
from graphgrad.data.datasets import digits

EPOCHS, BATCH_SIZE, LR, WEIGHT_DECAY = 40, 32, 3e-3, 1e-2


def standardised(train_set, test_set):
    """Pixels scaled by the training set's mean and spread (floored: some pixels are always 0)."""
    (x_train, y_train), (x_test, y_test) = train_set.tensors, test_set.tensors
    mean, spread = x_train.mean(dim=0), x_train.std(dim=0) + 0.1
    return (TensorDataset((x_train - mean) / spread, y_train),
            TensorDataset((x_test - mean) / spread, y_test))


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
    train_set, test_set = standardised(*digits(seed=seed))
    loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
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
        if verbose and (epoch % 5 == 0 or epoch == epochs):
            print(f"epoch {epoch:2d}  loss {loss.item():.4f}  test accuracy "
                  f"{accuracy(model, test_set):.2%}")
    return accuracy(model, test_set)


if __name__ == "__main__":
    start = time.perf_counter()
    final = train()
    print(f"test accuracy {final:.2%} in {time.perf_counter() - start:.1f} s")
