"""torch's small run-time conveniences on graphgrad, against torch 2.13 without CUDA:
graphgrad.cuda, graphgrad.backends, graphgrad.version, threads and deterministic algorithms."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import graphgrad as gg
import graphgrad.backends as backends
import graphgrad.version as version
from graphgrad import _runtime

# ---------------------------------------------------------------------------- graphgrad.cuda

# calls that torch makes safe on a machine without CUDA, with their arguments
SAFE_CUDA_CALLS = [("is_available", ()), ("device_count", ()), ("is_initialized", ()),
                   ("manual_seed", (3,)), ("manual_seed", (1.7,)), ("manual_seed_all", (3,)),
                   ("seed", ()), ("seed_all", ()), ("empty_cache", ()),
                   ("memory_allocated", ()), ("memory_allocated", ("cuda:1",)),
                   ("max_memory_allocated", ()), ("memory_reserved", ()),
                   ("max_memory_reserved", ()), ("is_bf16_supported", ()),
                   ("get_arch_list", ())]
GPU_CUDA_CALLS = [("init", ()), ("initial_seed", ()), ("current_device", ()),
                  ("get_device_name", ()), ("get_device_name", (0,)),
                  ("get_device_properties", (0,)), ("get_device_capability", ()),
                  ("synchronize", ()), ("get_rng_state", ())]


@pytest.mark.parametrize(("name", "args"), SAFE_CUDA_CALLS)
def test_cuda_calls_safe_without_a_gpu_answer_as_torchs(name, args):
    expected = getattr(torch.cuda, name)(*args)
    got = getattr(gg.cuda, name)(*args)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("name", "args"), GPU_CUDA_CALLS)
def test_cuda_calls_that_need_a_gpu_raise_torchs_assertion_error(name, args):
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        getattr(torch.cuda, name)(*args)
    with pytest.raises(AssertionError) as caught:
        getattr(gg.cuda, name)(*args)
    assert isinstance(caught.value, RuntimeError)  # as graphgrad's tensor.to("cuda") raises
    assert str(caught.value).startswith(f"cuda.{name}: graphgrad runs on the CPU only")
    assert "Torch not compiled with CUDA enabled" in str(caught.value)


def test_cuda_set_device_refuses():
    with pytest.raises(RuntimeError, match="cuda.set_device: graphgrad runs on the CPU only"):
        gg.cuda.set_device(0)


@pytest.mark.parametrize("seed", ["a", None])
def test_cuda_manual_seed_checks_the_seed_as_torch(seed):
    for module in (torch.cuda, gg.cuda):
        for function in (module.manual_seed, module.manual_seed_all):
            with pytest.raises((ValueError, TypeError)) as caught:
                function(seed)
            assert type(caught.value) is (ValueError if seed == "a" else TypeError)


# ------------------------------------------------------------------------ graphgrad.backends

FLAGS = [("cudnn", "enabled"), ("cudnn", "benchmark"), ("cudnn", "deterministic"),
         ("cudnn", "allow_tf32"), ("mkldnn", "enabled"), ("mkldnn", "deterministic"),
         ("cuda.matmul", "allow_tf32")]


def _namespace(root, path: str):
    for part in path.split("."):
        root = getattr(root, part)
    return root


@pytest.fixture
def restored_flags():
    """Both libraries' flags as they were before the test."""
    saved = [(root, path, flag, getattr(_namespace(root, path), flag))
             for root in (torch.backends, backends) for path, flag in FLAGS]
    yield
    for root, path, flag, value in saved:
        setattr(_namespace(root, path), flag, value)


@pytest.mark.parametrize(("path", "flag"), FLAGS)
def test_a_flag_starts_as_torchs_reads_back_what_is_set_and_takes_only_a_bool(
        path, flag, restored_flags):
    ours, theirs = _namespace(backends, path), _namespace(torch.backends, path)
    assert getattr(ours, flag) is getattr(theirs, flag)
    for value in (True, False, True):
        setattr(ours, flag, value)
        setattr(theirs, flag, value)
        assert getattr(ours, flag) is getattr(theirs, flag) is value
    for wrong in (1, None, "yes"):
        with pytest.raises(RuntimeError) as expected:
            setattr(theirs, flag, wrong)
        with pytest.raises(RuntimeError) as got:
            setattr(ours, flag, wrong)
        assert str(got.value) == str(expected.value)
        assert getattr(ours, flag) is True


def test_cudnn_benchmark_limit_is_torchs_without_cudnn_and_settable():
    assert backends.cudnn.benchmark_limit is torch.backends.cudnn.benchmark_limit is None
    backends.cudnn.benchmark_limit = 3
    try:
        assert backends.cudnn.benchmark_limit == 3
    finally:
        backends.cudnn.benchmark_limit = None


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # torch's mkldnn.flags
@pytest.mark.parametrize("name", ["cudnn", "mkldnn"])
def test_flags_sets_the_flags_for_a_block_then_restores_them(name, restored_flags):
    ours, theirs = getattr(backends, name), getattr(torch.backends, name)
    names = [flag for path, flag in FLAGS if path == name]

    def seen(namespace):
        return [getattr(namespace, flag) for flag in names]

    for namespace in (ours, theirs):
        namespace.deterministic = True
    for keywords in ({}, {"enabled": True}, {"deterministic": True, "enabled": False}):
        with ours.flags(**keywords), theirs.flags(**keywords):
            assert seen(ours) == seen(theirs)
        assert seen(ours) == seen(theirs)
    with pytest.raises(KeyError), ours.flags(enabled=False):
        raise KeyError("the block fails")
    assert ours.enabled is True
    with pytest.raises(RuntimeError, match="expects a bool"), ours.flags(enabled=1):
        pass
    assert seen(ours) == seen(theirs)  # nothing was left half set


def test_queries_of_libraries_graphgrad_is_not_built_with():
    assert backends.cudnn.is_available() is torch.backends.cudnn.is_available() is False
    assert backends.cudnn.version() is torch.backends.cudnn.version() is None
    assert backends.cudnn.is_acceptable(gg.zeros(2)) is False
    assert backends.mps.is_available() is torch.backends.mps.is_available() is False
    assert backends.mps.is_built() is torch.backends.mps.is_built() is False
    assert backends.cuda.is_built() is torch.backends.cuda.is_built() is False
    # torch's CPU wheel has these; graphgrad computes with NumPy and uses none of them
    assert not (backends.mkldnn.is_available() or backends.mkl.is_available()
                or backends.openmp.is_available())


# ------------------------------------------------------------------------- graphgrad.version


def test_version_has_torchs_names_and_a_cpu_builds_values():
    assert version.__all__ == torch.version.__all__
    for name in ("cuda", "hip", "rocm", "xpu", "debug"):
        assert getattr(version, name) == getattr(torch.version, name), name
    assert version.__version__ == gg.__version__
    assert isinstance(version.git_version, str)


# ------------------------------------------------------------------------------- threads


def _in_a_fresh_process(code: str, env: dict[str, str]) -> list:
    """The JSON that ``code`` prints, in a new Python with exactly the BLAS variables of env."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, timeout=120,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


DEFAULTS = """
import json, os, sys
if sys.argv[1:] and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from graphgrad import _runtime
import torch
print(json.dumps([[torch.get_num_threads(), torch.get_num_interop_threads()],
                  [_runtime.get_num_threads(), _runtime.get_num_interop_threads()]]))
"""


@pytest.mark.parametrize("env", [{}, {"OMP_NUM_THREADS": "1"}, {"OMP_NUM_THREADS": "5"},
                                 {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "2"},
                                 {"MKL_NUM_THREADS": "1"}, {"OMP_NUM_THREADS": "0"}],
                         ids=lambda env: ",".join(f"{k}={v}" for k, v in env.items()) or "none")
def test_the_default_thread_counts_are_torchs(env):
    theirs, ours = _in_a_fresh_process(DEFAULTS, env)
    assert ours == theirs


def test_the_default_thread_count_follows_the_cpus_the_process_may_use():
    theirs, ours = _in_a_fresh_process(DEFAULTS.replace("sys.argv[1:]", "True"), {})
    assert ours == theirs


@pytest.fixture
def restored_threads():
    """graphgrad's record, torch's count and NumPy's BLAS threads as they were before the test
    (threadpoolctl is in the test environment, not a dependency of graphgrad)."""
    import threadpoolctl

    saved = threadpoolctl.threadpool_limits(user_api="blas")  # limits=None: records, sets none
    recorded, torchs = _runtime._num_threads, torch.get_num_threads()
    yield threadpoolctl
    saved.restore_original_limits()
    _runtime._num_threads = recorded
    torch.set_num_threads(torchs)


def _blas_threads(threadpoolctl) -> list[int]:
    return [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"]


def test_set_num_threads_limits_numpys_blas(restored_threads):
    for number in (1, 2, np.int64(1)):
        _runtime.set_num_threads(number)
        torch.set_num_threads(number)
        assert _runtime.get_num_threads() == torch.get_num_threads() == number
        assert _blas_threads(restored_threads) and set(_blas_threads(restored_threads)) == {
            number}


def test_without_threadpoolctl_the_count_is_recorded(restored_threads, monkeypatch):
    before = _blas_threads(restored_threads)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import raises ImportError
    _runtime.set_num_threads(max(before) + 1)
    assert _runtime.get_num_threads() == max(before) + 1
    assert _blas_threads(restored_threads) == before


@pytest.mark.parametrize("wrong", [0, -1, 1.5, "2", True])
def test_set_num_threads_refuses_what_torch_refuses(wrong, restored_threads):
    with pytest.raises(RuntimeError) as expected:
        torch.set_num_threads(wrong)
    with pytest.raises(RuntimeError) as got:
        _runtime.set_num_threads(wrong)
    assert str(got.value) == str(expected.value)


INTEROP = """
import json
from graphgrad import _runtime
import torch
seen = []
for module in (torch, _runtime):
    calls = []
    for number in (0, 1.5, 3, 3, 2):
        try:
            module.set_num_interop_threads(number)
            calls.append(module.get_num_interop_threads())
        except RuntimeError as exc:
            calls.append(str(exc))
    seen.append(calls)
print(json.dumps(seen))
"""


def test_the_interop_count_is_set_once_as_in_torch():
    theirs, ours = _in_a_fresh_process(INTEROP, {})
    assert ours == theirs and theirs[2] == 3


# ------------------------------------------------------------------ deterministic algorithms


def _determinism(module) -> tuple:
    return (module.are_deterministic_algorithms_enabled(),
            module.is_deterministic_algorithms_warn_only_enabled(),
            module.get_deterministic_debug_mode())


@pytest.fixture
def restored_determinism():
    yield
    for module in (torch, _runtime):
        module.use_deterministic_algorithms(False)


CALLS = [("use_deterministic_algorithms", (True,), {}),
         ("use_deterministic_algorithms", (True,), {"warn_only": True}),
         ("use_deterministic_algorithms", (False,), {"warn_only": True}),
         ("use_deterministic_algorithms", (), {"mode": False}),
         ("set_deterministic_debug_mode", ("warn",), {}),
         ("set_deterministic_debug_mode", (2,), {}),
         ("set_deterministic_debug_mode", (True,), {}),
         ("set_deterministic_debug_mode", ("default",), {}),
         ("set_deterministic_debug_mode", ("error",), {}),
         ("set_deterministic_debug_mode", (0,), {})]


def test_determinism_settings_read_back_as_torchs(restored_determinism):
    assert _determinism(_runtime) == _determinism(torch)
    for name, args, kwargs in CALLS:
        getattr(torch, name)(*args, **kwargs)
        getattr(_runtime, name)(*args, **kwargs)
        assert _determinism(_runtime) == _determinism(torch), (name, args, kwargs)


BAD_CALLS = [("use_deterministic_algorithms", (1,), {}),
             ("use_deterministic_algorithms", ("x",), {}),
             ("use_deterministic_algorithms", (True,), {"warn_only": 1}),
             ("use_deterministic_algorithms", (True, False), {}),
             ("use_deterministic_algorithms", (), {}),
             ("set_deterministic_debug_mode", ("x",), {}),
             ("set_deterministic_debug_mode", (3,), {}),
             ("set_deterministic_debug_mode", (1.0,), {})]


@pytest.mark.parametrize(("name", "args", "kwargs"), BAD_CALLS)
def test_bad_determinism_settings_raise_torchs_errors(name, args, kwargs,
                                                       restored_determinism):
    with pytest.raises((TypeError, RuntimeError)) as expected:
        getattr(torch, name)(*args, **kwargs)
    with pytest.raises((TypeError, RuntimeError)) as got:
        getattr(_runtime, name)(*args, **kwargs)
    assert type(got.value) is type(expected.value)
    # torch names its C function (_set_deterministic_algorithms) where graphgrad names its own
    assert str(got.value).split("(")[-1] == str(expected.value).split("(")[-1]
    assert _determinism(_runtime) == _determinism(torch) == (False, False, 0)


# --------------------------------------------------------------------------- freed memory

FAULTS = """
import json, resource
import numpy as np
import graphgrad
seen = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):  # a step's worth of large arrays alive at once, then all freed
        held = [np.ones(1 << 17) for _ in range(20)]
        del held
    seen.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(seen))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
def test_importing_graphgrad_keeps_freed_memory_for_the_next_step():
    """The kernel's count of page faults: after the first round, glibc's defaults fault the
    20 MiB in again every round; with graphgrad's settings they are reused."""
    import platform

    assert platform.libc_ver()[0] == "glibc"  # Debian, as CI
    kept = _in_a_fresh_process(FAULTS, {})
    system = _in_a_fresh_process(FAULTS, {"GRAPHGRAD_SYSTEM_MALLOC": "1"})
    pages = 10 * 20 * (1 << 20) // 4096
    assert all(faults > pages // 2 for faults in system[1:]), system
    assert all(faults < pages // 100 for faults in kept[1:]), kept
