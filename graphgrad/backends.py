"""``graphgrad.backends``: torch.backends' switches, for scripts that set or query them.

torch's flags choose among vendor kernels: cuDNN's convolution algorithms (``benchmark`` times
them, ``deterministic`` keeps the reproducible ones), TF32 matrix products on NVIDIA GPUs
(``allow_tf32``), oneDNN's CPU kernels (``mkldnn.enabled``). graphgrad has none of these
kernels: it computes with NumPy on the CPU, in the tensors' own precision (never TF32), with
one deterministic algorithm per operation. So every flag can be set and reads back what was set
(with torch's defaults and torch's check that it is a bool), and no value changes graphgrad's
numbers; the ``is_available()`` queries say False, because graphgrad uses no such library.

>>> import graphgrad.backends
>>> graphgrad.backends.cudnn.benchmark = True
>>> graphgrad.backends.cudnn.benchmark, graphgrad.backends.mps.is_available()
(True, False)
>>> graphgrad.backends.cudnn.benchmark = False
"""

import contextlib

__all__ = ["cuda", "cudnn", "mkl", "mkldnn", "mps", "openmp"]


class _Flag:
    """A bool switch of a backend namespace: torch's default until set; setting anything but a
    bool raises torch's RuntimeError, which names torch's setter (``set_benchmark_cudnn``)."""

    def __init__(self, default: bool, setter: str) -> None:
        self.default = default
        self.setter = setter

    def __set_name__(self, owner, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, namespace, owner=None):
        if namespace is None:
            return self
        return namespace.__dict__.get(self.slot, self.default)

    def __set__(self, namespace, value) -> None:
        if type(value) is not bool:
            raise RuntimeError(f"{self.setter} expects a bool, but got {type(value).__name__}")
        namespace.__dict__[self.slot] = value


class _Backend:
    """A backend graphgrad does not use: ``is_available()`` is False."""

    @staticmethod
    def is_available() -> bool:
        return False


class _Cudnn(_Backend):
    """``torch.backends.cudnn``: NVIDIA's cuDNN, which graphgrad does not have; its flags are
    recorded and change nothing (graphgrad's convolutions are NumPy's, always the same
    deterministic algorithm)."""

    enabled = _Flag(True, "set_enabled_cudnn")
    benchmark = _Flag(False, "set_benchmark_cudnn")
    deterministic = _Flag(False, "set_deterministic_cudnn")
    allow_tf32 = _Flag(True, "set_allow_tf32_cublas")
    benchmark_limit = None  # torch's value where cuDNN is not available; any value may be set

    @staticmethod
    def version() -> int | None:
        return None

    @staticmethod
    def is_acceptable(tensor) -> bool:  # whether cuDNN could take the tensor: never here
        return False

    @contextlib.contextmanager
    def flags(self, enabled=False, benchmark=False, benchmark_limit=10, deterministic=False,
              allow_tf32=True):
        """Set the flags for a ``with`` block, then restore them; ``benchmark_limit`` is left
        alone, as torch leaves it when cuDNN is not available."""
        with _flags_set(self, enabled=enabled, benchmark=benchmark, deterministic=deterministic,
                        allow_tf32=allow_tf32):
            yield


class _Mkldnn(_Backend):
    """``torch.backends.mkldnn``: Intel's oneDNN CPU kernels, which graphgrad does not use."""

    enabled = _Flag(True, "set_enabled_mkldnn")
    deterministic = _Flag(False, "set_deterministic_mkldnn")

    @contextlib.contextmanager
    def flags(self, enabled=False, deterministic=False):
        """Set the flags for a ``with`` block, then restore them."""
        with _flags_set(self, enabled=enabled, deterministic=deterministic):
            yield


@contextlib.contextmanager
def _flags_set(namespace, **values):
    before = {name: getattr(namespace, name) for name in values}
    try:  # a flag that is not a bool raises after the ones before it were set: restore them too
        for name, value in values.items():
            setattr(namespace, name, value)
        yield
    finally:
        for name, value in before.items():
            setattr(namespace, name, value)


class _Mps(_Backend):
    """``torch.backends.mps``: Apple's Metal GPUs; graphgrad is built for none."""

    @staticmethod
    def is_built() -> bool:
        return False


class _Matmul:
    """``torch.backends.cuda.matmul``: cuBLAS's TF32 switch. graphgrad's matrix products are
    NumPy's BLAS in the tensors' own precision."""

    allow_tf32 = _Flag(False, "set_allow_tf32_cublas")


class _Cuda:
    """``torch.backends.cuda``: graphgrad is not built with CUDA."""

    def __init__(self) -> None:
        self.matmul = _Matmul()

    @staticmethod
    def is_built() -> bool:
        return False


class _Mkl(_Backend):
    """``torch.backends.mkl``: graphgrad calls NumPy's BLAS, never MKL's own functions."""


class _Openmp(_Backend):
    """``torch.backends.openmp``: graphgrad runs no OpenMP loops of its own."""


cuda = _Cuda()
cudnn = _Cudnn()
mkl = _Mkl()
mkldnn = _Mkldnn()
mps = _Mps()
openmp = _Openmp()
