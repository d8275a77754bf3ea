"""The default process group and the collectives on graphgrad tensors, as torch.distributed.

A backend is registered by name (:func:`register_backend`) and works on NumPy arrays in place;
this module checks the arguments, hands each tensor's array to the backend and marks the tensor
modified, as torch bumps a tensor's version when a collective writes it.
"""

from __future__ import annotations

import datetime
import os

import numpy as np

from .. import engine
from ..tensor import Tensor
from ._hub import DistBackendError
from .reduce_op import ReduceOp

DEFAULT_TIMEOUT = datetime.timedelta(seconds=60)
_BACKENDS: dict = {}
_group: list = [None]  # the default process group's backend, once initialised


class _World:
    """``group.WORLD``: the only group (every rank); passing it is the same as passing None."""

    def __repr__(self) -> str:
        return "group.WORLD"


class group:  # noqa: N801 - torch's name
    WORLD = _World()


def register_backend(name: str, factory, rendezvous: bool = True) -> None:
    """Make ``init_process_group(backend=name)`` call ``factory(rank, world_size, addr, port,
    timeout_seconds)``, which returns an object with the collectives of ``ShmBackend``.
    Without ``rendezvous`` the backend's own launcher gives ranks (mpiexec): the factory gets
    the arguments as given (-1 when absent) and no address."""
    _BACKENDS[name.lower()] = (factory, rendezvous)


def _shm(*args):
    from .shm import ShmBackend

    return ShmBackend(*args)


def _gloo(*args):
    from .gloo import GlooBackend

    return GlooBackend(*args)


def _mpi(*args):
    from .mpi import MpiBackend

    return MpiBackend(*args)


register_backend("shm", _shm)
register_backend("gloo", _gloo)
register_backend("mpi", _mpi, rendezvous=False)


def init_process_group(backend=None, init_method=None, timeout=None, world_size: int = -1,
                       rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    """Join the default process group: ``world_size`` processes, this one being ``rank``.

    Absent arguments come from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``), as with ``init_method="env://"``; ``init_method="tcp://host:port"`` gives
    the address. ``backend`` is ``"shm"`` (the default: one machine, standard library only) or
    ``"gloo"`` (torch's) or ``"mpi"`` (mpi4py, under ``mpiexec``, which gives the ranks).
    Without ``backend``: ``mpi`` under mpiexec, ``gloo`` when the launcher's environment says
    the ranks span several machines, otherwise ``shm``. A collective that cannot finish within
    ``timeout`` (default 60 s) raises on every rank.

    >>> import graphgrad.distributed as dist
    >>> dist.init_process_group("shm", init_method="tcp://127.0.0.1:0", world_size=1, rank=0)
    >>> dist.get_rank(), dist.get_world_size()
    (0, 1)
    >>> dist.destroy_process_group()
    """
    if _group[0] is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if store is not None:
        raise NotImplementedError("init_process_group(store=...): give init_method or the "
                                  "environment instead")
    name = _default_backend() if backend is None else str(backend).lower()
    if name not in _BACKENDS:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; registered: "
                         f"{', '.join(sorted(_BACKENDS))}")
    factory, rendezvous = _BACKENDS[name]
    seconds = (DEFAULT_TIMEOUT if timeout is None else timeout).total_seconds()
    if not rendezvous:
        _group[0] = factory(rank, world_size, None, None, seconds)
        return
    addr, port = _address(init_method)
    world_size = _from_env(world_size, "WORLD_SIZE")
    rank = _from_env(rank, "RANK")
    if not 0 <= rank < world_size:
        raise ValueError(f"init_process_group: rank {rank} is not in 0..{world_size - 1} "
                         f"(world_size {world_size})")
    _group[0] = factory(rank, world_size, addr, port, seconds)


def _default_backend() -> str:
    """``mpi`` under mpiexec (it sets PMI_RANK, Open MPI its own), ``gloo`` when the launcher
    says the ranks span machines, else ``shm``."""
    env = os.environ
    if "RANK" not in env and ("PMI_RANK" in env or "OMPI_COMM_WORLD_RANK" in env):
        return "mpi"
    if env.get("LOCAL_WORLD_SIZE", env.get("WORLD_SIZE")) != env.get("WORLD_SIZE"):
        return "gloo"
    return "shm"


def _address(init_method) -> tuple[str, int]:
    if init_method is None or init_method == "env://":
        return os.environ.get("MASTER_ADDR", "127.0.0.1"), _from_env(-1, "MASTER_PORT")
    if not str(init_method).startswith("tcp://"):
        raise ValueError(f"init_process_group: init_method {init_method!r} is not supported; "
                         "use 'env://' or 'tcp://HOST:PORT'")
    host, _, port = str(init_method)[6:].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"init_process_group: init_method {init_method!r}: expected "
                         "tcp://HOST:PORT")
    return host, int(port)


def _from_env(value: int, variable: str) -> int:
    if value is not None and value >= 0:
        return int(value)
    text = os.environ.get(variable)
    if text is None:
        raise ValueError(f"Error initializing graphgrad.distributed using env:// rendezvous: "
                         f"environment variable {variable} expected, but not set")
    if not text.strip().isdigit():
        raise ValueError(f"environment variable {variable} must be a whole number >= 0, got "
                         f"{text!r}")
    return int(text)


def is_available() -> bool:
    return True


def is_initialized() -> bool:
    return _group[0] is not None


def _backend():
    if _group[0] is None:
        raise ValueError("Default process group has not been initialized, please make sure to "
                         "call init_process_group.")
    return _group[0]


def get_rank(group=None) -> int:
    return _backend().rank


def get_world_size(group=None) -> int:
    return _backend().world_size


def get_backend(group=None) -> str:
    return _backend().name


def destroy_process_group(group=None) -> None:
    """Leave the process group: close its connections and shared memory."""
    backend = _backend()
    _group[0] = None
    backend.close()


class _Work:
    """What ``async_op=True`` returns: the collective has finished already."""

    def wait(self, timeout=None) -> bool:
        return True

    def is_completed(self) -> bool:
        return True


def _done(async_op: bool):
    return _Work() if async_op else None


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank has called ``barrier``."""
    _backend().barrier()
    return _done(async_op)


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False):
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank, in place."""
    backend = _backend()
    _check_rank(src, backend.world_size, "broadcast", "src")
    array = _array(tensor, "broadcast")
    backend.broadcast(array, src, _describe("broadcast", array, f"src={src}"))
    engine.mark_modified(tensor)
    return _done(async_op)


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` across ranks with ``op``; every rank gets the same bits, in place.

    >>> import graphgrad as gg
    >>> import graphgrad.distributed as dist
    >>> dist.init_process_group("shm", init_method="tcp://127.0.0.1:0", world_size=1, rank=0)
    >>> t = gg.tensor([1.0, 2.0]); dist.all_reduce(t, op=dist.ReduceOp.AVG); t
    tensor([1., 2.])
    >>> dist.destroy_process_group()
    """
    backend = _backend()
    op = _op(op, "all_reduce")
    array = _array(tensor, "all_reduce")
    _check_avg(op, array, "all_reduce")
    backend.all_reduce(array, op, _describe("all_reduce", array, op.name))
    engine.mark_modified(tensor)
    return _done(async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` with rank r's ``tensor`` on every rank."""
    backend = _backend()
    array = _array(tensor, "all_gather")
    outputs = _arrays(tensor_list, backend.world_size, array, "all_gather", "tensor_list")
    backend.all_gather(outputs, array, _describe("all_gather", array))
    for out in tensor_list:
        engine.mark_modified(out)
    return _done(async_op)


def reduce_scatter(output: Tensor, input_list: list, op=ReduceOp.SUM, group=None,
                   async_op: bool = False):
    """Rank r's ``output`` becomes every rank's ``input_list[r]`` combined with ``op``."""
    backend = _backend()
    op = _op(op, "reduce_scatter")
    array = _array(output, "reduce_scatter")
    inputs = _arrays(input_list, backend.world_size, array, "reduce_scatter", "input_list")
    _check_avg(op, array, "reduce_scatter")
    backend.reduce_scatter(array, inputs, op, _describe("reduce_scatter", array, op.name))
    engine.mark_modified(output)
    return _done(async_op)


# ---------------------------------------------------------------------- checks
def _array(tensor, who: str) -> np.ndarray:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{who}: expected a graphgrad.Tensor, got {type(tensor).__name__}")
    array = tensor._data
    if not array.flags.writeable:
        raise RuntimeError(f"{who}: the tensor's memory is read-only")
    return array


def _arrays(tensors, world_size: int, like: np.ndarray, who: str, name: str) -> list:
    if not isinstance(tensors, (list, tuple)) or len(tensors) != world_size:
        got = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ValueError(f"{who}: {name} must be a list of world_size ({world_size}) tensors, "
                         f"got {got}")
    arrays = [_array(t, who) for t in tensors]
    for i, a in enumerate(arrays):
        if a.shape != like.shape or a.dtype != like.dtype:
            raise ValueError(f"{who}: {name}[{i}] is {a.dtype} {a.shape}, the tensor is "
                             f"{like.dtype} {like.shape}; they must match")
    return arrays


def _op(op, who: str) -> ReduceOp:
    if not isinstance(op, ReduceOp):
        raise ValueError(f"{who}: op must be a ReduceOp ({', '.join(ReduceOp.__members__)}), "
                         f"got {op!r}")
    return op


def _check_avg(op: ReduceOp, array: np.ndarray, who: str) -> None:
    if op is ReduceOp.AVG and array.dtype.kind not in "fc":
        raise TypeError(f"{who}: ReduceOp.AVG needs a floating-point tensor, got {array.dtype}")


def _check_rank(rank, world_size: int, who: str, name: str) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"{who}: {name}={rank!r} is not a rank in 0..{world_size - 1}")


def _describe(who: str, array: np.ndarray, extra: str = "") -> str:
    """What the ranks must agree on: compared by rank 0 before any data moves."""
    return f"{who} {array.dtype} {tuple(array.shape)}" + (f" {extra}" if extra else "")


__all__ = ["DistBackendError", "ReduceOp", "all_gather", "all_reduce", "barrier", "broadcast",
           "destroy_process_group", "get_backend", "get_rank", "get_world_size", "group",
           "init_process_group", "is_available", "is_initialized", "reduce_scatter",
           "register_backend"]
