"""A custom autograd.Function (a clipped ReLU with its own backward) inside a model, next to
torch's functional API; the gradients are printed."""

import numpy as np
import torch
import torch.nn.functional as F


class ClippedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, ceiling):
        ctx.save_for_backward(x)
        ctx.ceiling = ceiling
        return x.clamp(min=0.0, max=ceiling)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        inside = (x > 0) & (x < ctx.ceiling)
        return grad_output * inside.to(grad_output.dtype), None


def main():
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(8, 5)), dtype=torch.float64, requires_grad=True)
    w = torch.tensor(rng.normal(size=(5, 4)), dtype=torch.float64, requires_grad=True)
    target = torch.tensor(rng.integers(0, 4, size=8))
    hidden = ClippedReLU.apply(x @ w, 1.5)
    loss = (F.cross_entropy(hidden, target) + 0.1 * torch.sigmoid(hidden).mean()
            + F.mse_loss(hidden, torch.zeros_like(hidden)))
    loss.backward()
    print(f"loss {loss.item():.12f}")
    print("grad w", " ".join(f"{v:.12f}" for v in w.grad.flatten().tolist()))
    print("grad x sum", f"{x.grad.sum().item():.12f}", "norm", f"{x.grad.norm().item():.12f}")


if __name__ == "__main__":
    main()
