"""Data-parallel scaling: a DistributedDataParallel training step of the 784-1024-1024-10 MLP
(ReLU, cross-entropy, SGD, float32) on a global batch of 512, on 1 and on 2 processes.

    python benchmarks/ddp_step.py            # ~20 s

One process trains the plain model on the whole batch; two processes are started by
``graphgrad run`` (``shm`` backend), each wraps the model in DistributedDataParallel and trains
on its half of the batch, so both do the same global step. Every process has one BLAS thread
(``OPENBLAS_NUM_THREADS`` and the like are set before NumPy loads). After warm-up steps, blocks
of steps are timed, each block starting at a barrier; reported: steps per second from the best
block (median in brackets) and the scaling efficiency, 2-process steps/s over twice the
1-process steps/s, against the target 0.8.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time

GLOBAL_BATCH = 512
SIZES = (784, 1024, 1024, 10)
WARMUP, BLOCKS, STEPS = 3, 5, 4
TARGET = 0.8
ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}


def _worker() -> None:
    import numpy as np

    import graphgrad as gg
    import graphgrad.distributed as dist
    from graphgrad.nn.parallel import DistributedDataParallel

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("shm")
    rank = dist.get_rank() if world > 1 else 0
    gg.manual_seed(0)
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [gg.nn.Linear(n_in, n_out), gg.nn.ReLU()]
    model = gg.nn.Sequential(*layers[:-1])
    if world > 1:
        model = DistributedDataParallel(model)
    optimizer = gg.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = gg.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)  # the global batch; each rank takes its slice
    x = rng.standard_normal((GLOBAL_BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], GLOBAL_BATCH)
    part = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
    x, y = gg.tensor(x[part]), gg.tensor(y[part])

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(BLOCKS):
        if world > 1:
            dist.barrier()
        start = time.perf_counter()
        for _ in range(STEPS):
            step()
        times.append((time.perf_counter() - start) / STEPS)
    if world > 1:
        dist.destroy_process_group()
    if rank == 0:
        print("RESULT " + json.dumps({"best": 1 / min(times),
                                      "median": 1 / statistics.median(times)}), flush=True)


def _run(nproc: int) -> dict:
    env = {**os.environ, **ONE_THREAD}
    command = [sys.executable, "-m", "graphgrad.distributed.run", "--nproc-per-node",
               str(nproc), __file__, "--worker"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    found = re.search(r"^\[rank 0\] RESULT (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{nproc} process(es) failed:\n{done.stdout}{done.stderr}")
    return json.loads(found.group(1))


def main() -> int:
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs; one BLAS thread per process")
    print(f"MLP {'-'.join(map(str, SIZES))}, global batch {GLOBAL_BATCH}, SGD, float32")
    results = {n: _run(n) for n in (1, 2)}
    for n, r in results.items():
        print(f"{n} process{'es' if n > 1 else '  '}: {r['best']:6.2f} steps/s "
              f"({r['median']:.2f} median)")
    efficiency = results[2]["best"] / (2 * results[1]["best"])
    median = results[2]["median"] / (2 * results[1]["median"])
    print(f"scaling efficiency {efficiency:.2f} ({median:.2f} from medians); target >= "
          f"{TARGET:g}: {'met' if efficiency >= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _worker()
    else:
        sys.exit(main())
