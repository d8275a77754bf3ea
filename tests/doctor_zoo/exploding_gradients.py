"""Trains a ReLU RNN over 40 steps whose recurrent weights start too large (uniform +-0.8 for a
hidden size of 16: a spectral radius well above 1), with Adam and no gradient clipping.

Planted fault: each step through time multiplies the hidden state, and back through time the
gradient, by W_hh, so both grow geometrically over the 40 steps; nothing clips the gradient
(torch.nn.utils.clip_grad_norm_).
Observed: loss 6423 at step 0 with gradient norms 6.6e5 (weight_hh) and 5.5e4 (head.weight);
Adam's normalised steps survive it, slowly: loss 0.054 after 60 steps, against 0.0067 with
clip_grad_norm_(model.parameters(), 1.0) and 0.0041 with W_hh at +-0.2.
"""

import numpy as np
import torch
import torch.nn as nn


class Summer(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(1, 16, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(64, 40, 1)).astype(np.float32)
    y = x.sum(axis=1) / 40.0
    inputs, targets = torch.tensor(x), torch.tensor(y)

    model = Summer()
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for name, p in model.named_parameters():
            scale = 0.8 if name == "rnn.weight_hh_l0" else 0.2  # fault: too large a W_hh
            values = rng.uniform(-scale, scale, size=tuple(p.shape))
            p.copy_(torch.tensor(values.astype(np.float32)))
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    for step in range(60):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if step % 15 == 0:
            norms = {n: f"{p.grad.norm().item():.3g}" for n, p in model.named_parameters()}
            print(f"step {step} loss {loss.item():.6g} grad norms {norms}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
