"""The ``gloo`` backend: torch.distributed's gloo on the tensors' own memory (extra ``torch``).

``torch.from_numpy`` shares a graphgrad tensor's array, so gloo writes the result in place with
no copy when the array is contiguous. Before each collective the ranks compare a hash of its
description (op, dtype, shape) with one tiny all-reduce, so that a mismatched call raises the
same clear error on every rank, as with ``shm``, instead of whatever gloo makes of it.
"""

from __future__ import annotations

import datetime
import zlib

import numpy as np

from ._hub import DistBackendError
from .reduce_op import ReduceOp


class GlooBackend:
    name = "gloo"

    def __init__(self, rank: int, world_size: int, addr: str, port: int, timeout: float):
        try:
            import torch
            import torch.distributed as td
        except ImportError:
            raise ImportError("backend 'gloo' needs torch: pip install 'graphgrad[torch]'") \
                from None
        self.torch, self.td = torch, td
        self.rank, self.world_size = rank, world_size
        td.init_process_group("gloo", init_method=f"tcp://{addr}:{port}", rank=rank,
                              world_size=world_size,
                              timeout=datetime.timedelta(seconds=timeout))
        self.ops = {ReduceOp.SUM: td.ReduceOp.SUM, ReduceOp.AVG: td.ReduceOp.SUM,
                    ReduceOp.PRODUCT: td.ReduceOp.PRODUCT, ReduceOp.MIN: td.ReduceOp.MIN,
                    ReduceOp.MAX: td.ReduceOp.MAX}

    def _check(self, what: str) -> None:
        """Raise on every rank if the ranks describe different calls."""
        code = zlib.crc32(what.encode())
        seen = self.torch.tensor([code, -code], dtype=self.torch.int64)
        self.td.all_reduce(seen, op=self.td.ReduceOp.MAX)
        if seen.tolist() != [code, -code]:
            calls = [None] * self.world_size
            self.td.all_gather_object(calls, what)
            listed = "; ".join(f"rank {r}: {c}" for r, c in enumerate(calls))
            raise DistBackendError(f"ranks called different collectives (shapes, dtypes or ops "
                                   f"differ): {listed}")

    def _tensor(self, array: np.ndarray):
        """A torch tensor on the array's memory (or on a contiguous copy: see _back)."""
        return self.torch.from_numpy(np.ascontiguousarray(array))

    def barrier(self) -> None:
        self.td.barrier()

    def broadcast(self, array: np.ndarray, src: int, what: str) -> None:
        self._check(what)
        t = self._tensor(array)
        self.td.broadcast(t, src)
        _back(array, t)

    def all_reduce(self, array: np.ndarray, op: ReduceOp, what: str) -> None:
        self._check(what)
        t = self._tensor(array)
        self.td.all_reduce(t, op=self.ops[op])
        if op is ReduceOp.AVG:  # gloo has no AVG; the same division on every rank
            t /= self.world_size
        _back(array, t)

    def all_gather(self, outputs: list[np.ndarray], array: np.ndarray, what: str) -> None:
        self._check(what)
        gathered = [self._tensor(out) for out in outputs]
        self.td.all_gather(gathered, self._tensor(array))
        for out, t in zip(outputs, gathered):
            _back(out, t)

    def reduce_scatter(self, output: np.ndarray, inputs: list[np.ndarray], op: ReduceOp,
                       what: str) -> None:
        self._check(what)
        t = self._tensor(output)
        self.td.reduce_scatter(t, [self._tensor(a) for a in inputs], op=self.ops[op])
        if op is ReduceOp.AVG:
            t /= self.world_size
        _back(output, t)

    def close(self) -> None:
        if self.td.is_initialized():
            self.td.destroy_process_group()


def _back(array: np.ndarray, t) -> None:
    """Copy the result into ``array`` unless gloo wrote there already (a contiguous array)."""
    result = t.numpy()
    if not np.shares_memory(result, array):
        array[...] = result.reshape(array.shape)
