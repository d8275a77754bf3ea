"""Process-wide run-time settings with torch's names: CPU threads and deterministic algorithms.

Threads. graphgrad's parallel work is NumPy's BLAS (matrix products, convolutions as products):
``set_num_threads(n)`` limits BLAS to ``n`` threads through ``threadpoolctl`` when that package
is importable (graphgrad does not depend on it); without it the number is only recorded, and BLAS
keeps the threads it started with (set ``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` before
Python starts to choose them). ``get_num_threads()`` returns the number set, or, before any
``set_num_threads``, the number torch would report in this process (see
:func:`_default_num_threads`). graphgrad has no inter-op thread pool: the inter-op number is
recorded, with torch's rule that it may be set once.

Determinism. graphgrad's CPU kernels are deterministic: the same inputs give the same bits on
every run, whatever ``use_deterministic_algorithms`` says; its settings are recorded and read
back as torch's are.

>>> from graphgrad._runtime import use_deterministic_algorithms, get_deterministic_debug_mode
>>> use_deterministic_algorithms(True, warn_only=True)
>>> get_deterministic_debug_mode()
1
>>> use_deterministic_algorithms(False)

Freed memory. An eager training step allocates and frees the same large arrays every step (an
LSTM's gates over the sequence, a convolution's products). glibc's malloc hands freed memory at
the top of its heap back to the kernel once more than about twice the largest recent block is
free, so the next step takes a page fault for every 4 KiB of it again: 8,900 faults, about 40%
of an LSTM step, seen here. On glibc, importing graphgrad therefore asks malloc to serve blocks
up to 32 MiB from its heap (glibc's own upper bound for that choice) and to keep up to 128 MiB
free there (:func:`keep_freed_memory`); a process may then hold that much more memory than it
uses. ``GRAPHGRAD_SYSTEM_MALLOC=1`` in the environment leaves malloc's settings alone.
"""

from __future__ import annotations

import ctypes
import numbers
import os
import platform

__all__ = [
    "are_deterministic_algorithms_enabled",
    "get_deterministic_debug_mode",
    "get_num_interop_threads",
    "get_num_threads",
    "is_deterministic_algorithms_warn_only_enabled",
    "keep_freed_memory",
    "set_deterministic_debug_mode",
    "set_num_interop_threads",
    "set_num_threads",
    "use_deterministic_algorithms",
]

_num_threads: int | None = None
_num_interop_threads: int | None = None
_deterministic = False
_warn_only = False


def _count(function: str, number) -> int:
    if not isinstance(number, numbers.Integral) or isinstance(number, bool):
        raise RuntimeError(f"{function} expects an int, but got {type(number).__name__}")
    if number <= 0:
        raise RuntimeError(f"{function} expects a positive integer")
    return int(number)


def set_num_threads(num_threads: int, /) -> None:
    """Use ``num_threads`` threads for BLAS from now on (recorded only without threadpoolctl)."""
    global _num_threads
    _num_threads = _count("set_num_threads", num_threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=_num_threads, user_api="blas")  # lasts until changed again


def get_num_threads() -> int:
    return _default_num_threads() if _num_threads is None else _num_threads


def set_num_interop_threads(num_threads: int, /) -> None:
    """Record the inter-op thread count (graphgrad has no inter-op pool); as torch, only once."""
    global _num_interop_threads
    number = _count("set_num_interop_threads", num_threads)
    if _num_interop_threads is not None:
        raise RuntimeError("Error: cannot set number of interop threads after parallel work has "
                           "started or set_num_interop_threads called")
    _num_interop_threads = number


def get_num_interop_threads() -> int:
    if _num_interop_threads is None:
        return _physical_cores(range(os.cpu_count() or 1))
    return _num_interop_threads


def _default_num_threads() -> int:
    """torch's intra-op default (a build with MKL, as torch's x86 wheels are): MKL_NUM_THREADS,
    else OMP_NUM_THREADS, at most the machine's physical cores; neither set, the physical cores
    this process may run on."""
    for variable in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value.isdigit() and int(value) > 0:
            return min(int(value), _physical_cores(range(os.cpu_count() or 1)))
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return _physical_cores(allowed or range(os.cpu_count() or 1))


def _physical_cores(cpus) -> int:
    """How many cores the logical CPUs ``cpus`` are on (hyper-threads share one), from Linux's
    /sys topology; elsewhere, or when it cannot be read, the number of CPUs."""
    cores = set()
    for cpu in cpus:
        topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(f"{topology}/physical_package_id") as package, \
                    open(f"{topology}/core_id") as core:
                cores.add((package.read().strip(), core.read().strip()))
        except OSError:
            return len(cpus)
    return max(len(cores), 1)


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Record torch's switch; graphgrad's algorithms are deterministic either way."""
    global _deterministic, _warn_only
    for name, position, value in (("mode", " (position 1)", mode), ("warn_only", "", warn_only)):
        if type(value) is not bool:
            raise TypeError(f"use_deterministic_algorithms(): argument '{name}'{position} must "
                            f"be bool, not {type(value).__name__}")
    _deterministic, _warn_only = mode, warn_only


def are_deterministic_algorithms_enabled() -> bool:
    return _deterministic


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _warn_only


_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def set_deterministic_debug_mode(debug_mode: int | str) -> None:
    """0 (``'default'``): off; 1 (``'warn'``): on, warn only; 2 (``'error'``): on."""
    if isinstance(debug_mode, str):
        if debug_mode not in _DEBUG_MODES:
            raise RuntimeError("invalid value of debug_mode, expected one of `default`, `warn`, "
                               f"`error`, but got {debug_mode}")
        debug_mode = _DEBUG_MODES[debug_mode]
    elif not isinstance(debug_mode, int):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got "
                           f"{debug_mode}")
    use_deterministic_algorithms(debug_mode != 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    if not _deterministic:
        return 0
    return 1 if _warn_only else 2


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(trim_threshold: int = 128 << 20, mmap_threshold: int = 32 << 20) -> bool:
    """Ask glibc's malloc to keep up to ``trim_threshold`` bytes of freed memory for reuse and
    to serve blocks below ``mmap_threshold`` bytes from its heap (see the module's docstring);
    False, changing nothing, where the C library is not glibc. graphgrad calls it on import
    unless ``GRAPHGRAD_SYSTEM_MALLOC=1``."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
                and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))


if os.environ.get("GRAPHGRAD_SYSTEM_MALLOC", "") in ("", "0"):
    keep_freed_memory()
