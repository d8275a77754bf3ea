"""The ``shm`` backend: one machine, the standard library only.

Each rank owns one shared memory segment with two areas, used by alternate collectives: a rank
writes its input into its area, a barrier (see ``_hub``) makes every write visible, and then each
rank reads the others' areas directly. All-reduce is a reduce-scatter followed by an all-gather:
rank r sums slice r of every area in the order rank 0, 1, ..., which fixes the rounding, and
everyone copies every finished slice, so every rank ends with the same bits. With two ranks each
instead combines the whole array, its own input with the other's area, in the same order: the
same bits, no more memory moved and one barrier fewer. The next collective writes the other area,
and the one after that writes this one only once every rank has reached the next one's barrier,
that is finished reading, so no write can meet a read.

Segments are unlinked as soon as every rank has mapped them: nothing stays in /dev/shm, even
when a rank is killed.
"""

from __future__ import annotations

import sys
from multiprocessing import resource_tracker, shared_memory

import numpy as np

from ._hub import DistBackendError, Hub
from .reduce_op import ReduceOp

PREFIX = "ggdist_"  # every segment's name starts so (tests look for leftovers by it)
_FIRST_CAPACITY = 1 << 16  # bytes per area; grown by doubling when a collective needs more
_REDUCERS = {ReduceOp.SUM: np.add, ReduceOp.AVG: np.add, ReduceOp.PRODUCT: np.multiply,
             ReduceOp.MAX: np.maximum, ReduceOp.MIN: np.minimum}


class ShmBackend:
    """The collectives on NumPy arrays, in place; ``graphgrad.distributed`` checks arguments."""

    name = "shm"

    def __init__(self, rank: int, world_size: int, addr: str, port: int, timeout: float):
        self.rank, self.world_size = rank, world_size
        self.hub = Hub(rank, world_size, addr, port, timeout)
        self.capacity, self.generation, self.parity = 0, 0, 0
        self.segments: list[shared_memory.SharedMemory] = []
        try:
            self._map(_FIRST_CAPACITY)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ memory
    def _map(self, capacity: int) -> None:
        """Replace every rank's segment by one of ``capacity`` bytes per area (collectively)."""
        self.generation += 1
        own = shared_memory.SharedMemory(self._segment_name(self.rank), create=True,
                                         size=2 * capacity)
        try:
            self.hub.barrier(f"create {capacity}")
            mapped = [own if r == self.rank else _attach(self._segment_name(r))
                      for r in range(self.world_size)]
            self.hub.barrier(f"attach {capacity}")
        finally:
            own.unlink()  # every rank has it mapped (or the group is broken): drop the name
        for segment in self.segments:
            _close(segment)
        self.segments, self.capacity = mapped, capacity

    def _segment_name(self, rank: int) -> str:
        return f"{PREFIX}{self.hub.token}_{self.generation}_{rank}"

    def _areas(self, what: str, dtype, count: int) -> list[np.ndarray]:
        """Every rank's current area as ``count`` elements of ``dtype``, after growing the
        segments if this collective needs more room; flips the area for the next collective."""
        need = count * np.dtype(dtype).itemsize
        if need > self.capacity:
            self.hub.barrier(f"{what} (grow)")  # everyone has finished reading the old areas
            self._map(max(need, 2 * self.capacity))
        offset, self.parity = self.parity * self.capacity, 1 - self.parity
        return [np.ndarray((count,), dtype, segment.buf, offset) for segment in self.segments]

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        self.hub.barrier("barrier")

    def broadcast(self, array: np.ndarray, src: int, what: str) -> None:
        areas = self._areas(what, array.dtype, array.size)
        if self.rank == src:
            areas[src][:] = array.reshape(-1)
        self.hub.barrier(what)
        if self.rank != src:
            array[...] = areas[src].reshape(array.shape)

    def all_reduce(self, array: np.ndarray, op: ReduceOp, what: str) -> None:
        if self.world_size == 2:
            self._all_reduce_pair(array, op, what)
            return
        areas = self._areas(what, array.dtype, array.size)
        areas[self.rank][:] = array.reshape(-1)
        self.hub.barrier(what)
        bounds = _bounds(array.size, self.world_size)
        mine = slice(bounds[self.rank], bounds[self.rank + 1])
        _reduce([area[mine] for area in areas], op, areas[self.rank][mine], self.rank)
        self.hub.barrier(f"{what} (gather)")
        contiguous = array.flags.c_contiguous
        flat = array.reshape(-1) if contiguous else np.empty(array.size, array.dtype)
        for r, area in enumerate(areas):
            flat[bounds[r]:bounds[r + 1]] = area[bounds[r]:bounds[r + 1]]
        if not contiguous:
            array[...] = flat.reshape(array.shape)

    def _all_reduce_pair(self, array: np.ndarray, op: ReduceOp, what: str) -> None:
        """Two ranks: each combines its own input with the other's area, in rank order, over
        its own input (in place: writing a third buffer instead costs up to 3x more)."""
        areas = self._areas(what, array.dtype, array.size)
        contiguous = array.flags.c_contiguous
        flat = array.reshape(-1) if contiguous else array.flatten()
        areas[self.rank][:] = flat
        self.hub.barrier(what)
        pieces = [flat if r == self.rank else area for r, area in enumerate(areas)]
        _reduce(pieces, op, flat, self.rank)
        if not contiguous:
            array[...] = flat.reshape(array.shape)

    def all_gather(self, outputs: list[np.ndarray], array: np.ndarray, what: str) -> None:
        areas = self._areas(what, array.dtype, array.size)
        areas[self.rank][:] = array.reshape(-1)
        self.hub.barrier(what)
        for out, area in zip(outputs, areas):
            out[...] = area.reshape(out.shape)

    def reduce_scatter(self, output: np.ndarray, inputs: list[np.ndarray], op: ReduceOp,
                       what: str) -> None:
        size = output.size
        areas = self._areas(what, output.dtype, size * self.world_size)
        for r, piece in enumerate(inputs):
            areas[self.rank][r * size:(r + 1) * size] = piece.reshape(-1)
        self.hub.barrier(what)
        mine = slice(self.rank * size, (self.rank + 1) * size)
        result = np.empty(size, output.dtype)
        _reduce([area[mine] for area in areas], op, result, None)
        output[...] = result.reshape(output.shape)

    def close(self) -> None:
        for segment in self.segments:
            _close(segment)
        self.segments = []
        self.hub.close()


def _reduce(pieces: list[np.ndarray], op: ReduceOp, out: np.ndarray, alias: int | None) -> None:
    """Combine into ``out`` in rank order (0, 1, 2, ...): the same rounding wherever it runs.
    ``out`` may be ``pieces[alias]``: written first only when that piece is already consumed."""
    combine = _REDUCERS[op]
    if len(pieces) == 1:
        out[...] = pieces[0]
    elif alias is not None and alias >= 2:  # pieces[alias] is still needed after step one
        out[...] = _fold(combine, pieces, np.empty_like(out))
    else:
        _fold(combine, pieces, out)
    if op is ReduceOp.AVG:
        out /= len(pieces)


def _fold(combine, pieces: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    combine(pieces[0], pieces[1], out=out)
    for piece in pieces[2:]:
        combine(out, piece, out=out)
    return out


def _bounds(n: int, parts: int) -> list[int]:
    return [n * r // parts for r in range(parts + 1)]


def _attach(name: str) -> shared_memory.SharedMemory:
    """Map another rank's segment without registering it with this process's resource tracker:
    its owner unlinks it, and a second registration would unlink it twice at exit."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name, track=False)
    register = resource_tracker.register
    resource_tracker.register = lambda *args: None
    try:
        return shared_memory.SharedMemory(name)
    except FileNotFoundError:
        raise DistBackendError(f"shared memory segment {name} of another rank is missing: "
                               "backend 'shm' needs every rank on one machine") from None
    finally:
        resource_tracker.register = register


def _close(segment: shared_memory.SharedMemory) -> None:
    try:
        segment.close()
    except BufferError:  # a view is still alive in a traceback; the mapping goes at exit
        pass
