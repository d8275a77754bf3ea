"""A tutorial script's preamble: every seed, cuDNN's switches, the device picked by what is
available, one CPU thread, deterministic algorithms; then a few steps of training on that device
and the GPU-memory report such scripts print."""

import random

import numpy as np
import torch
import torch.backends.cudnn as cudnn
import torch.nn as nn


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    cudnn.deterministic = True
    cudnn.benchmark = False


def pick_device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def main():
    seed_everything(0)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_num_threads(1)
    device = pick_device()
    print(f"device {device} gpus {torch.cuda.device_count()} cuda {torch.version.cuda} "
          f"hip {torch.version.hip}")
    print(f"cudnn available {cudnn.is_available()} version {cudnn.version()} "
          f"enabled {cudnn.enabled} benchmark {torch.backends.cudnn.benchmark} "
          f"deterministic {torch.backends.cudnn.deterministic} tf32 "
          f"{torch.backends.cuda.matmul.allow_tf32}")
    print(f"threads {torch.get_num_threads()} "
          f"deterministic {torch.are_deterministic_algorithms_enabled()} "
          f"warn only {torch.is_deterministic_algorithms_warn_only_enabled()} "
          f"debug mode {torch.get_deterministic_debug_mode()}")

    rng = np.random.default_rng(3)
    x = torch.tensor(rng.normal(size=(64, 4)), dtype=torch.float32, device=device)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]], device=device) + 0.1
    model = nn.Linear(4, 1).to(device)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(rng.normal(size=(1, 4)), dtype=torch.float32))
        model.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(30):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            print(f"step {step + 1} loss {loss.item():.6f}")

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    torch.cuda.empty_cache()
    print(f"cuda memory {torch.cuda.memory_allocated()} peak {torch.cuda.max_memory_allocated()}")


if __name__ == "__main__":
    main()
