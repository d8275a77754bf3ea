"""``DistributedDataParallel``: every rank holds the model, sees its own part of each batch and
steps with the gradient averaged over all ranks.

The averaging happens during ``backward``, as in torch, so the optimizer step that follows sees
the global gradient. Each parameter has a gradient hook; the engine gives a leaf its summed
gradient right after running that leaf's hooks, so when the last parameter's hook runs every
other parameter already holds this pass's gradient. That hook averages them all, bucket by
bucket, and hands the last parameter its share through its return value.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ... import distributed as dist
from ...autograd import no_grad
from ...tensor import Tensor, wrap
from ..modules.module import Module

_MB = 1024 * 1024


class DistributedDataParallel(Module):
    """Wrap ``module`` so that ``backward`` leaves the gradient averaged over every rank.

    At construction rank 0's parameters and buffers are copied to every rank; with
    ``broadcast_buffers`` rank 0's buffers are copied again before each forward. Gradients are
    averaged in flat buckets of at most ``bucket_cap_mb`` megabytes, parameters taken in
    reverse order (roughly the order backward produces them). Inside :meth:`no_sync` gradients
    only accumulate locally; the first backward after it averages the accumulated sum.
    The state dict has torch's keys: those of ``module`` with the prefix ``module.``.

    >>> import graphgrad as gg
    >>> import graphgrad.distributed as dist
    >>> from graphgrad.nn.parallel import DistributedDataParallel as DDP
    >>> dist.init_process_group(init_method="tcp://127.0.0.1:0", world_size=1, rank=0)
    >>> model = DDP(gg.nn.Linear(2, 1))
    >>> model(gg.ones(3, 2)).sum().backward()
    >>> list(model.state_dict()), model.module.bias.grad.tolist()
    (['module.weight', 'module.bias'], [3.0])
    >>> dist.destroy_process_group()
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb=None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a graphgrad.nn.Module, "
                            f"got {type(module).__name__}")
        if find_unused_parameters:
            raise NotImplementedError("DistributedDataParallel(find_unused_parameters=True) is "
                                      "not supported: every parameter must take part in loss")
        cap = 25 if bucket_cap_mb is None else bucket_cap_mb
        if not cap > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {cap}")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.require_backward_grad_sync = True
        self.world_size = dist.get_world_size()  # raises if there is no process group
        params = [p for p in module.parameters() if p.requires_grad]
        self._params = params
        self.gradient_as_bucket_view = gradient_as_bucket_view
        # One flat buffer a bucket, allocated once: a pass's gradients are copied into their
        # slots as they arrive and averaged there, so no step allocates (or page-faults) them.
        self._flats, self._slots = _bucket_buffers(params, int(cap * _MB))
        self._ready: set[int] = set()  # indices of the parameters this pass has reached
        with no_grad():
            _broadcast([*module.parameters(), *module.buffers()])
        for i, param in enumerate(params):
            param.register_hook(self._hook(i))

    def forward(self, *args, **kwargs):
        if self._ready:
            waiting = len(self._params) - len(self._ready)
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a "
                f"new one: {waiting} parameter(s) got no gradient in the last backward. Every "
                "parameter of a DistributedDataParallel module must be used in computing loss")
        if self.broadcast_buffers and self.world_size > 1:
            with no_grad():
                _broadcast(list(self.module.buffers()))
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally (no communication) inside this block.

        >>> import graphgrad as gg
        >>> import graphgrad.distributed as dist
        >>> dist.init_process_group(init_method="tcp://127.0.0.1:0", world_size=1, rank=0)
        >>> model = gg.nn.parallel.DistributedDataParallel(gg.nn.Linear(2, 1))
        >>> with model.no_sync():
        ...     model(gg.ones(1, 2)).sum().backward()
        >>> model(gg.ones(1, 2)).sum().backward()
        >>> model.module.bias.grad.tolist()
        [2.0]
        >>> dist.destroy_process_group()
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _hook(self, index: int):
        def hook(grad: Tensor):
            if not self.require_backward_grad_sync:
                return None
            param = self._params[index]
            # the bucket slot gets what .grad will hold once the engine adds this pass's part;
            # no reference to ``grad`` is kept, so the engine may keep the array as .grad
            slot = self._slots[index]
            if param.grad is None:
                np.copyto(slot, grad._data.reshape(slot.shape))
            else:
                np.add(param.grad._data.reshape(slot.shape), grad._data.reshape(slot.shape),
                       out=slot)
            self._ready.add(index)
            if len(self._ready) < len(self._params):
                return None
            return self._average(index)

        return hook

    def _average(self, last: int) -> Tensor:
        """Average every bucket across ranks, in place; write the result into each ``.grad``
        except the last parameter's, which is returned for the engine to store (its ``.grad``
        is cleared first so that it receives exactly the average)."""
        self._ready = set()
        for flat in self._flats:
            dist.all_reduce(wrap(flat), op=dist.ReduceOp.AVG)
        for i, param in enumerate(self._params):
            if i == last:
                continue
            averaged = self._slots[i].reshape(param.shape)
            if self.gradient_as_bucket_view:
                param.grad = wrap(averaged)
            else:
                np.copyto(param.grad._data, averaged)
        self._params[last].grad = None
        averaged = self._slots[last].reshape(self._params[last].shape)
        return wrap(averaged if self.gradient_as_bucket_view else averaged.copy())


def _bucket_buffers(params: list, cap_bytes: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The flat buffer of each bucket and each parameter's slot in it. Buckets take the
    parameters in reverse order, cut into runs of one dtype and at most ``cap_bytes`` (a
    parameter larger than the cap gets a bucket of its own)."""
    buckets, current, size, dtype = [], [], 0, None
    for i in reversed(range(len(params))):
        array = params[i]._data
        if current and (array.dtype != dtype or size + array.nbytes > cap_bytes):
            buckets.append(current)
            current, size = [], 0
        current.append(i)
        size += array.nbytes
        dtype = array.dtype
    if current:
        buckets.append(current)
    flats, slots = [], [None] * len(params)
    for bucket in buckets:
        flat = np.zeros(sum(params[i]._data.size for i in bucket), params[bucket[0]]._data.dtype)
        start = 0
        for i in bucket:
            slots[i] = flat[start:start + params[i]._data.size]
            start += params[i]._data.size
        flats.append(flat)
    return flats, slots


def _broadcast(tensors: list) -> None:
    """Rank 0's values into ``tensors`` on every rank, one collective per dtype."""
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault(t._data.dtype, []).append(t)
    for dtype in sorted(by_dtype, key=str):
        group = by_dtype[dtype]
        flat = np.concatenate([t._data.reshape(-1) for t in group]) if group else None
        dist.broadcast(wrap(flat), src=0)
        start = 0
        for t in group:
            t._data[...] = flat[start:start + t._data.size].reshape(t._data.shape)
            start += t._data.size
