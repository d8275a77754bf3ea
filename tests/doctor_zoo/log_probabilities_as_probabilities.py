"""Distils a fixed teacher MLP into a smaller student with KLDivLoss(reduction="batchmean").

Planted fault: the target is the teacher's log_softmax, but KLDivLoss expects probabilities
unless log_target=True: it takes target * log(target) of negative numbers, which is NaN.
Observed: the loss is nan from the first step (with the teacher's softmax, or log_target=True,
it falls from 0.646 to 0.022).
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    np.random.seed(0)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    inputs = torch.tensor(rng.standard_normal((256, 8)).astype(np.float32))

    teacher = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 5))
    student = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 5))
    with torch.no_grad():  # NumPy weights, so torch and graphgrad start from the same numbers
        for p in [*teacher.parameters(), *student.parameters()]:
            p.copy_(torch.tensor(rng.uniform(-0.5, 0.5, size=tuple(p.shape)).astype(np.float32)))
    loss_fn = nn.KLDivLoss(reduction="batchmean")
    optimizer = torch.optim.Adam(student.parameters(), lr=0.01)

    for step in range(100):
        with torch.no_grad():
            target = F.log_softmax(teacher(inputs), dim=1)  # fault: log-probabilities
        optimizer.zero_grad()
        loss = loss_fn(F.log_softmax(student(inputs), dim=1), target)
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            print(f"step {step} loss {loss.item():.6f}")
    print(f"final loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
