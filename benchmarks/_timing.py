"""Timing and reporting helpers shared by the benchmark scripts.

A benchmark hands :func:`compare` one *trial* per library: a function that runs one sample of the
workload, times its phases itself with ``time.perf_counter`` (so that set-up such as zeroing
gradients stays outside the clock) and returns ``{phase: seconds}``. The libraries are measured
in alternating blocks, each opened by a warm-up, and every phase is summarised by its best and
median sample.
"""

from __future__ import annotations

import cProfile
import os
import platform
import pstats
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import graphgrad as gg

Trial = Callable[[], dict[str, float]]

# Thread settings that change either library's speed; printed so a result can be reproduced.
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
               "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class Summary:
    """Seconds for one phase over all samples of one library."""

    best: float
    median: float
    samples: int


def compare(trials: dict[str, Trial], *, rounds: int, samples: int,
            warmup_seconds: float) -> dict[str, dict[str, Summary]]:
    """Run each library's trial ``rounds * samples`` times and summarise every phase.

    Blocks alternate between libraries (A, B, A, B, ...) so that a slow drift of the machine
    (frequency, a noisy neighbour) hits both alike. Each block starts with a warm-up of at least
    ``warmup_seconds``: besides filling caches, a long enough one (~0.2 s) outlasts the spin-wait
    of the *other* library's idle worker threads (OpenBLAS for NumPy, OpenMP for torch), which on
    a small machine would otherwise steal a core from the first samples of the block.
    """
    times: dict[str, dict[str, list[float]]] = {name: {} for name in trials}
    for _ in range(rounds):
        for name, trial in trials.items():
            _warm_up(trial, warmup_seconds)
            for _ in range(samples):
                for phase, seconds in trial().items():
                    times[name].setdefault(phase, []).append(seconds)
    return {
        name: {phase: Summary(min(values), statistics.median(values), len(values))
               for phase, values in phases.items()}
        for name, phases in times.items()
    }


def _warm_up(trial: Trial, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    trial()
    while time.perf_counter() < deadline:
        trial()


def speedup(graphgrad_seconds: float, torch_seconds: float) -> float:
    """graphgrad's speed over torch's: above 1 means graphgrad is faster."""
    return torch_seconds / graphgrad_seconds


def verdict(ratio: float, target: float) -> str:
    return f"target >= {target:g}x: {'met' if ratio >= target else 'NOT met'}"


def environment() -> str:
    """Versions, thread settings and machine load: what the numbers depend on."""
    set_vars = [f"{name}={os.environ[name]}" for name in _THREAD_ENV if name in os.environ]
    return (f"Python {platform.python_version()}, numpy {np.__version__}, graphgrad "
            f"{gg.__version__}, torch {torch.__version__}\n"
            f"{os.cpu_count()} CPUs, 1-min load average {os.getloadavg()[0]:.2f} before measuring; "
            f"torch threads {torch.get_num_threads()} (torch's default, not changed); "
            f"thread env: {', '.join(set_vars) or 'none set'}")


def print_profile(workload: Callable[[], object], calls: int, title: str, top: int = 15) -> None:
    """Profile ``calls`` runs of ``workload`` and print the ``top`` functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        workload()
    profiler.disable()
    print(f"\n--- cProfile: {title}, {calls} calls, top {top} by tottime ---")
    pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(top)
