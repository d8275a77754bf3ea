"""A PyTorch-tutorial LSTM sequence regressor: nn.LSTM(batch_first=True) and a Linear head on
the last step's output, MSELoss, Adam; it learns the next value of noisy sine waves. Data and
initial weights come from NumPy, so that torch and graphgrad start from the same numbers."""

import numpy as np
import torch
import torch.nn as nn


class Forecaster(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size=1, hidden_size=hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        output, (h_n, c_n) = self.lstm(x)
        return self.head(output[:, -1, :])


def sine_windows(rng, n, length):
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    frequency = rng.uniform(0.2, 0.6, size=(n, 1))
    t = np.arange(length + 1)
    waves = np.sin(frequency * t + phase) + 0.05 * rng.standard_normal((n, length + 1))
    inputs = waves[:, :length, None].astype(np.float32)
    targets = waves[:, length:].astype(np.float32)
    return inputs, targets


def main():
    rng = np.random.default_rng(11)
    x, y = sine_windows(rng, 64, 15)
    x, y = torch.tensor(x), torch.tensor(y)
    model = Forecaster(12)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.3, 0.3, size=tuple(p.shape)).astype(np.float32)))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = nn.MSELoss()
    for step in range(40):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            print(f"step {step + 1} loss {loss.item():.6f}")
    model.eval()
    with torch.no_grad():
        output, (h_n, c_n) = model.lstm(x[:4])
        print(f"output {tuple(output.shape)} h_n {tuple(h_n.shape)} c_n {tuple(c_n.shape)}")
        print("prediction", " ".join(f"{v:.6f}" for v in model(x[:4]).flatten().tolist()))
        print(f"final loss {loss_fn(model(x), y).item():.6f}")


if __name__ == "__main__":
    main()
