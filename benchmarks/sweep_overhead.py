"""sweep_overhead: what graphgrad's sweep costs over running the same trials by hand.

Workload (issue 9): 8 trials of NumPy work that takes one second on one core (tiny matmuls,
for which NumPy keeps the GIL), on 2 workers, three ways, each in a fresh
interpreter: ``graphgrad.sweep.run`` (the local executor, journal file, report off), a bare
``concurrent.futures.ProcessPoolExecutor(2)`` loop, and Optuna's own
``study.optimize(n_jobs=2)`` (threads). For each: wall time, overhead over the ideal (the sum of
trial times / workers), and the peak memory of the whole process tree (RSS summed over the
process and its descendants, read from /proc every 20 ms); then each way again with empty
trials, several times (the machine may be shared: best and median), which shows the fixed cost
alone. Targets: the sweep within 0.5 s of the bare pool, under 200 MiB; the threads slower.

What is counted: each way's wall time starts once its library is imported (``graphgrad.sweep``,
``concurrent.futures``, ``optuna``), and that import is shown on its own; everything the way then
does is counted, so the sweep pays for its worker processes' start-up, its own import of Optuna
(``run`` imports it) and its journal, and the bare pool for its ``fork`` workers.

    python benchmarks/sweep_overhead.py
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before NumPy loads BLAS: one core per trial

import importlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

TRIALS, WORKERS, SECONDS = 8, 2, 1.0
EMPTY_RUNS = 5
TARGET_OVERHEAD, TARGET_MIB = 0.5, 200
PAGE = os.sysconf("SC_PAGE_SIZE")


def work(iterations: int) -> float:
    """Tiny matmuls: NumPy keeps the GIL for arrays this small, as in most small models."""
    a = np.full((8, 8), 0.01)
    total = 0.0
    for _ in range(iterations):
        total += float((a @ a).sum())
    return total


def calibrate() -> int:
    """Iterations that take SECONDS on one core here."""
    count, start = 2000, time.perf_counter()
    work(count)
    return int(count * SECONDS / (time.perf_counter() - start))


def objective(params, report):  # graphgrad.sweep's form
    work(int(params["iterations"]))
    return params["x"]


def _graphgrad(iterations: int) -> None:
    from graphgrad import sweep

    out = tempfile.mkdtemp(prefix="sweep-overhead-")
    space = {"x": sweep.Float(0.0, 1.0), "iterations": iterations}
    sweep.run(objective, space, trials=TRIALS, workers=WORKERS, sampler="random",
              pruner="none", out=out, progress=False, report=False)


def _bare_pool(iterations: int) -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(WORKERS) as pool:
        list(pool.map(work, [iterations] * TRIALS))


def _optuna_threads(iterations: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: (work(iterations), t.suggest_float("x", 0, 1))[1],
                   n_trials=TRIALS, n_jobs=WORKERS)


VARIANTS = {"graphgrad sweep (local)": _graphgrad, "bare ProcessPoolExecutor": _bare_pool,
            "optuna study.optimize(n_jobs=2)": _optuna_threads}


LIBRARIES = {"graphgrad sweep (local)": "graphgrad.sweep",
             "bare ProcessPoolExecutor": "concurrent.futures",
             "optuna study.optimize(n_jobs=2)": "optuna"}


def _child(name: str, iterations: int) -> None:
    """Import one way's library, run it, and print both times as JSON."""
    start = time.perf_counter()
    importlib.import_module(LIBRARIES[name])
    imported = time.perf_counter()
    VARIANTS[name](iterations)
    print(json.dumps({"import": imported - start, "wall": time.perf_counter() - imported}))


def _tree_rss(root: int) -> int:
    """Bytes of RSS of ``root`` and all its descendants."""
    children: dict = {}
    rss: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * PAGE
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def measure(name: str, iterations: int) -> dict:
    process = subprocess.Popen([sys.executable, __file__, "--child", name, str(iterations)],
                               stdout=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate(timeout=300)
    sampler.join(1)
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_mib": peak[0] / 2**20}


def main() -> None:
    iterations = calibrate()
    ideal = TRIALS * SECONDS / WORKERS
    print(f"{TRIALS} trials of {SECONDS:g} s of NumPy work ({iterations} tiny matmuls) on "
          f"{WORKERS} workers; ideal {ideal:.2f} s; {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}")
    results = {name: measure(name, iterations) for name in VARIANTS}
    # The same with empty trials: the fixed cost alone, which the machine's load blurs less
    empty = {name: sorted(measure(name, 0)["wall"] for _ in range(EMPTY_RUNS))
             for name in VARIANTS}
    for name, r in results.items():
        print(f"  {name:32s} wall {r['wall']:5.2f} s  overhead {r['wall'] - ideal:+5.2f} s  "
              f"(+{r['import']:.2f} s import)  peak {r['peak_mib']:5.1f} MiB  empty trials: "
              f"best {empty[name][0]:.2f} s, median {statistics.median(empty[name]):.2f} s")
    ours, bare = results["graphgrad sweep (local)"], results["bare ProcessPoolExecutor"]
    threads = results["optuna study.optimize(n_jobs=2)"]
    beyond = ours["wall"] - bare["wall"]
    fixed = empty["graphgrad sweep (local)"][0] - empty["bare ProcessPoolExecutor"][0]
    print(f"sweep / bare pool {ours['wall'] / bare['wall']:.2f}x ({beyond:+.2f} s; fixed cost "
          f"{fixed:+.2f} s, best of {EMPTY_RUNS}; target <= +{TARGET_OVERHEAD} s); threads / "
          f"sweep {threads['wall'] / ours['wall']:.2f}x; sweep memory {ours['peak_mib']:.0f} MiB "
          f"(target <= {TARGET_MIB}), bare pool {bare['peak_mib']:.0f} MiB, threads "
          f"{threads['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
