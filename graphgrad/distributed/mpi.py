"""The ``mpi`` backend: MPI through mpi4py (extra ``mpi``: mpi4py and the MPICH wheels), for one
machine or many, started by ``mpiexec``, which also gives each process its rank.

All-reduce takes the same path as ``shm``: an all-to-all hands rank r slice r of every rank's
tensor, rank r combines them in the order rank 0, 1, ..., and an all-gather returns the slices,
so every rank ends with the same bits whatever algorithm the MPI library picks. Before each
collective the ranks compare a hash of its description, so a mismatched call raises the same
clear error on every rank. MPI has no timeout: a rank that dies makes ``mpiexec`` end the job.
"""

from __future__ import annotations

import zlib

import numpy as np

from ._hub import DistBackendError
from .reduce_op import ReduceOp
from .shm import _bounds, _reduce


class MpiBackend:
    name = "mpi"

    def __init__(self, rank: int, world_size: int, addr, port, timeout: float):
        try:
            from mpi4py import MPI
        except ImportError:
            raise ImportError("backend 'mpi' needs mpi4py and an MPI library: pip install "
                              "'graphgrad[mpi]' (mpi4py and the MPICH wheels)") from None
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.world_size = self.comm.Get_rank(), self.comm.Get_size()
        for given, actual, what in ((rank, self.rank, "rank"),
                                    (world_size, self.world_size, "world_size")):
            if given >= 0 and given != actual:
                raise ValueError(f"init_process_group(backend='mpi'): {what}={given}, but "
                                 f"mpiexec started this process with {what} {actual}")

    def _check(self, what: str) -> None:
        code = zlib.crc32(what.encode())
        seen = np.array([code, -code], dtype=np.int64)
        self.comm.Allreduce(self.MPI.IN_PLACE, seen, op=self.MPI.MAX)
        if seen.tolist() != [code, -code]:
            calls = self.comm.allgather(what)
            listed = "; ".join(f"rank {r}: {c}" for r, c in enumerate(calls))
            raise DistBackendError(f"ranks called different collectives (shapes, dtypes or ops "
                                   f"differ): {listed}")

    def barrier(self) -> None:
        self.comm.Barrier()

    def broadcast(self, array: np.ndarray, src: int, what: str) -> None:
        self._check(what)
        flat = np.ascontiguousarray(array).reshape(-1)
        self.comm.Bcast(flat, root=src)
        _back(array, flat)

    def all_reduce(self, array: np.ndarray, op: ReduceOp, what: str) -> None:
        self._check(what)
        flat = np.ascontiguousarray(array).reshape(-1)
        bounds = _bounds(flat.size, self.world_size)
        sizes = np.diff(bounds)
        mine = int(sizes[self.rank])
        pieces = np.empty(mine * self.world_size, flat.dtype)
        self.comm.Alltoallv([flat, (sizes, bounds[:-1])],
                            [pieces, ([mine] * self.world_size,
                                      [mine * r for r in range(self.world_size)])])
        reduced = np.empty(mine, flat.dtype)
        _reduce([pieces[r * mine:(r + 1) * mine] for r in range(self.world_size)], op,
                reduced, None)
        self.comm.Allgatherv(reduced, [flat, (sizes, bounds[:-1])])
        _back(array, flat)

    def all_gather(self, outputs: list[np.ndarray], array: np.ndarray, what: str) -> None:
        self._check(what)
        gathered = np.empty((self.world_size, array.size), array.dtype)
        self.comm.Allgather(np.ascontiguousarray(array).reshape(-1), gathered)
        for out, row in zip(outputs, gathered):
            out[...] = row.reshape(out.shape)

    def reduce_scatter(self, output: np.ndarray, inputs: list[np.ndarray], op: ReduceOp,
                       what: str) -> None:
        self._check(what)
        size = output.size
        send = np.concatenate([a.reshape(-1) for a in inputs])
        received = np.empty_like(send)  # piece ``rank`` of every rank, in rank order
        self.comm.Alltoall(send, received)
        result = np.empty(size, output.dtype)
        _reduce([received[r * size:(r + 1) * size] for r in range(self.world_size)], op,
                result, None)
        output[...] = result.reshape(output.shape)

    def close(self) -> None:
        pass  # mpi4py finalises MPI when the process exits


def _back(array: np.ndarray, flat: np.ndarray) -> None:
    if not np.shares_memory(array, flat):
        array[...] = flat.reshape(array.shape)
