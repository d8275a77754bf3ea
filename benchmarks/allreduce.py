"""All-reduce latency and bandwidth on 2 local processes: graphgrad's ``shm`` and ``mpi``
backends on graphgrad tensors against torch's own gloo on torch tensors, measured in the same run.

    python benchmarks/allreduce.py            # ~15 s

With mpiexec on the PATH (``pip install 'graphgrad[mpi]'``) the two processes are started by
it and join all three groups; without, they are spawned and ``mpi`` is left out. graphgrad's
backends are called directly (``all_reduce`` adds only its argument checks). For each size the
backends are timed in alternating blocks of a fixed number of calls (a collective needs every
rank to make the same calls, so blocks are counted, not timed), and each block starts with a
barrier so that the ranks start together. Reported: best and median seconds per call over the
blocks, and bus bandwidth as nccl-tests define it for all-reduce, 2 (n - 1) / n * bytes / time.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"4 KB": 4 * 1024, "1 MB": 1024 * 1024, "10 MB": 10 * 1024 * 1024}
BLOCKS = 7
CALLS = {"4 KB": 200, "1 MB": 30, "10 MB": 8}
WORLD = 2
TARGET = 2.0  # shm at least this much faster than gloo at 10 MB


def _worker(rank: int, ports: tuple[int, int], out, use_mpi: bool = False) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import torch
    import torch.distributed as td

    import graphgrad as gg
    from graphgrad.distributed import ReduceOp
    from graphgrad.distributed.mpi import MpiBackend
    from graphgrad.distributed.shm import ShmBackend

    SUM = ReduceOp.SUM  # noqa: N806

    torch.set_num_threads(1)
    timeout = datetime.timedelta(seconds=60)
    td.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{ports[1]}", rank=rank,
                          world_size=WORLD, timeout=timeout)
    groups = {"shm": ShmBackend(rank, WORLD, "127.0.0.1", ports[0], 60.0)}
    if use_mpi:
        groups["mpi"] = MpiBackend(rank, WORLD, None, None, 60.0)
    results = {}
    for label, nbytes in SIZES.items():
        values = np.random.default_rng(rank).standard_normal(nbytes // 4).astype(np.float32)
        ours, theirs = gg.tensor(values), torch.from_numpy(values.copy())
        check_ours, check_theirs = ours.clone(), theirs.clone()
        groups["shm"].all_reduce(check_ours.numpy(), SUM, "check")
        td.all_reduce(check_theirs)
        assert np.allclose(check_ours.numpy(), check_theirs.numpy(), rtol=1e-6), label
        ours.zero_(), theirs.zero_()  # timed on zeros: repeated sums stay finite
        array, what = ours.numpy(), f"all_reduce {ours.dtype} {tuple(ours.shape)} SUM"
        runs = {name: lambda b=backend, a=array, w=what: b.all_reduce(a, SUM, w)
                for name, backend in groups.items()}
        runs["gloo"] = lambda t=theirs: td.all_reduce(t)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(BLOCKS):
            for name, call in runs.items():
                groups["shm"].barrier()
                start = time.perf_counter()
                for _ in range(CALLS[label]):
                    call()
                times[name].append((time.perf_counter() - start) / CALLS[label])
        results[label] = {name: (min(t), statistics.median(t)) for name, t in times.items()}
    td.destroy_process_group()
    for backend in groups.values():
        backend.close()
    if rank == 0:
        out.put(results)


def main() -> int:
    from graphgrad.distributed._hub import free_port

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs; 2 processes, one thread each")
    ports = (free_port(), free_port())
    mpiexec = shutil.which("mpiexec")
    results = _under_mpiexec(mpiexec, ports) if mpiexec else _spawned(ports)
    names = list(results["4 KB"])
    print(f"{'size':>6} | " + " | ".join(f"{n + ' best (median)':>22}" for n in names)
          + " | " + " | ".join(f"{n + ' busbw':>10}" for n in names) + " | speed / gloo's")
    for label, nbytes in SIZES.items():
        bus = 2 * (WORLD - 1) / WORLD * nbytes / 1e9
        row = results[label]
        print(f"{label:>6} | " + " | ".join(f"{_us(row[n][0]):>10} ({_us(row[n][1]):>9})"
                                            for n in names)
              + " | " + " | ".join(f"{bus / row[n][0]:5.2f} GB/s" for n in names) + " | "
              + ", ".join(f"{n} {row['gloo'][0] / row[n][0]:.2f}x" for n in names
                          if n != "gloo"))
    ratio = results["10 MB"]["gloo"][0] / results["10 MB"]["shm"][0]
    print(f"10 MB: shm is {ratio:.2f}x gloo's speed; target >= {TARGET:g}x: "
          f"{'met' if ratio >= TARGET else 'NOT met'}")
    return 0


def _spawned(ports: tuple[int, int]) -> dict:
    context = mp.get_context("spawn")
    out = context.Queue()
    workers = [context.Process(target=_worker, args=(r, ports, out)) for r in range(WORLD)]
    for worker in workers:
        worker.start()
    try:
        return out.get(timeout=300)
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()


def _under_mpiexec(mpiexec: str, ports: tuple[int, int]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        found = Path(folder) / "results.json"
        subprocess.run([mpiexec, "-n", str(WORLD), sys.executable, __file__, "--worker",
                        str(ports[0]), str(ports[1]), str(found)], check=True, timeout=300)
        return json.loads(found.read_text())


class _File:
    """Rank 0's results into a JSON file (what a Queue is for the spawned workers)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def put(self, results: dict) -> None:
        Path(self.path).write_text(json.dumps(results))


def _mpi_worker(argv: list[str]) -> int:
    from mpi4py import MPI

    _worker(MPI.COMM_WORLD.Get_rank(), (int(argv[0]), int(argv[1])), _File(argv[2]),
            use_mpi=True)
    return 0


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


if __name__ == "__main__":
    sys.exit(_mpi_worker(sys.argv[2:]) if sys.argv[1:2] == ["--worker"] else main())
