"""graph_parallel: the same Graph run serially and on a pool of 2 threads.

Workload (the issue's): 8 independent branches, each a chain of 4 matmuls of 512x512 float32,
summed, then forward and backward on the graph itself. BLAS is limited to one thread, so any
speed-up comes from graphgrad running independent nodes at the same time (NumPy releases the GIL
inside its kernels). Second workload: a graph of 2,000 tiny nodes, where the pool must not cost
more than 10% (tiny nodes run in the coordinating thread).
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before NumPy loads BLAS: one core per matmul

import time  # noqa: E402

import numpy as np  # noqa: E402

import graphgrad as gg  # noqa: E402
from graphgrad.graph import SerialExecutor, ThreadPoolExecutor  # noqa: E402

BRANCHES, DEPTH, SIZE = 8, 4, 512
SAMPLES = 5
TARGET_WIDE, LIMIT_TINY = 1.8, 1.10


def wide_graph() -> gg.Graph:
    return gg.graph.examples.wide_graph(BRANCHES, DEPTH, SIZE)


def tiny_graph(nodes: int = 2000) -> gg.Graph:
    g = gg.Graph()
    x = g.input("x", shape=(10,))
    h = x
    for i in range(nodes // 2):
        h = (h * 1.0001 if i % 2 else h + 0.001).tanh()
    g.output(h.sum(), name="total")
    return g


def best_time(graph: gg.Graph, inputs: dict, executor) -> float:
    best = float("inf")
    for _ in range(SAMPLES):
        start = time.perf_counter()
        graph.run(inputs, executor=executor, backward=True)
        best = min(best, time.perf_counter() - start)
    return best


def check_equal(graph: gg.Graph, inputs: dict, pool) -> None:
    """The pool's forward values and gradients equal the serial run's, bit for bit."""
    serial = graph.run(inputs, executor=SerialExecutor(), backward=True)
    threaded = graph.run(inputs, executor=pool, backward=True)
    assert np.array_equal(serial.output.detach().numpy(), threaded.output.detach().numpy())
    for node_id, g in serial.grads.items():
        assert np.array_equal(g, threaded.grads[node_id]), f"gradient of node {node_id} differs"


def compare(title: str, graph: gg.Graph, inputs: dict, pool, target: str) -> float:
    check_equal(graph, inputs, pool)
    serial = best_time(graph, inputs, SerialExecutor())
    threaded = best_time(graph, inputs, pool)
    ratio = serial / threaded
    print(f"\n{title}\n  serial      {serial * 1e3:9.2f} ms (forward + backward, best of {SAMPLES})"
          f"\n  2 workers   {threaded * 1e3:9.2f} ms\n  speed-up    {ratio:9.2f}x   {target}")
    return ratio


def main() -> None:
    print(f"graph_parallel: serial vs ThreadPoolExecutor(workers=2); BLAS threads 1; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    pool = ThreadPoolExecutor(workers=2)
    x = np.random.default_rng(1).standard_normal((SIZE, SIZE)).astype(np.float32)
    ratio = compare(f"{BRANCHES} branches x {DEPTH} matmuls of {SIZE}x{SIZE} float32, summed",
                    wide_graph(), {"x": x}, pool, "")
    print(f"  target >= {TARGET_WIDE}x: {'met' if ratio >= TARGET_WIDE else 'NOT met'}")
    ratio = compare("2,000 tiny nodes (10 elements each)", tiny_graph(),
                    {"x": np.ones(10, np.float32)}, pool, "")
    slower = 1 / ratio
    print(f"  pool time / serial time {slower:.2f}: "
          f"{'met' if slower <= LIMIT_TINY else 'NOT met'} (limit {LIMIT_TINY:.2f})")
    pool.close()


if __name__ == "__main__":
    main()
