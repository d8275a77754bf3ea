"""A PyTorch-tutorial MLP classifier: nn.Module, nn.Sequential, CrossEntropyLoss, SGD with
momentum, a DataLoader over a TensorDataset. Data and initial weights come from NumPy, so that
torch and graphgrad start from the same numbers."""

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class MLP(nn.Module):
    def __init__(self, n_in, n_hidden, n_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(),
                                  nn.Linear(n_hidden, n_hidden), nn.Tanh())
        self.head = nn.Linear(n_hidden, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def spirals(rng, n_per_class, n_classes):
    points, labels = [], []
    for c in range(n_classes):
        r = np.linspace(0.1, 1.0, n_per_class)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, n_per_class)
        t = t + 0.2 * rng.standard_normal(n_per_class)
        points.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        labels.append(np.full(n_per_class, c))
    return np.concatenate(points).astype(np.float32), np.concatenate(labels)


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = spirals(rng, 100, 3)
    order = rng.permutation(len(y))  # the classes interleaved, once: shuffle=False below
    x, y = x[order], y[order]
    dataset = TensorDataset(torch.tensor(x), torch.tensor(y, dtype=torch.long))
    loader = DataLoader(dataset, batch_size=32, shuffle=False)

    model = MLP(2, 32, 3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    for epoch in range(8):
        model.train()
        total, correct, seen = 0.0, 0, 0
        for inputs, targets in loader:
            optimizer.zero_grad()
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(targets)
            correct += (logits.argmax(dim=1) == targets).sum().item()
            seen += len(targets)
        print(f"epoch {epoch} loss {total / seen:.6f} accuracy {correct / seen:.4f}")

    model.eval()
    with torch.no_grad():
        accuracy = (model(torch.tensor(x)).argmax(1) == torch.tensor(y)).float().mean().item()
    print(f"final accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
