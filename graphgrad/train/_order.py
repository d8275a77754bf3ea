"""Each epoch's order of batches, drawn once when the epoch starts and then replayed from any
position: what lets a checkpoint taken part way through an epoch hold the rest of it.

A DataLoader's order is what its batch sampler (or, without automatic batching, its sampler)
yields; the batches are then fetched through its own dataset and ``collate_fn``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..creation import from_numpy
from ..data import DataLoader
from ._build import GraphBatches


@dataclass
class Progress:
    """How far the running epoch has got: its ``order``, the ``position`` (steps done), the
    ``lr`` it trains with and the sums its record is made of."""

    order: list
    lr: float
    position: int = 0
    sums: dict = field(default_factory=lambda: {"loss": 0.0, "count": 0, "grad_norm": 0.0,
                                                "steps": 0})
    layer_sums: dict = field(default_factory=dict)

    def add(self, loss: float, count: int, grad_norm: float, norms: dict) -> None:
        """Count one finished step."""
        self.sums["loss"] += loss * count
        self.sums["count"] += count
        self.sums["grad_norm"] += grad_norm
        self.sums["steps"] += 1
        for name, value in norms.items():
            self.layer_sums[name] = self.layer_sums.get(name, 0.0) + value
        self.position += 1

    def state_dict(self) -> dict | None:
        """What a checkpoint keeps (floats exactly, as JSON does); None if the order's indices
        are not integers."""
        order = pack(self.order)
        return None if order is None else {
            "order": order, "lr": self.lr, "position": self.position, "sums": dict(self.sums),
            "layer_sums": dict(self.layer_sums)}

    @classmethod
    def from_state(cls, state: dict) -> Progress:
        return cls(unpack(state["order"]), state["lr"], state["position"], dict(state["sums"]),
                   dict(state["layer_sums"]))


def set_epoch(batches, epoch: int) -> None:
    """Tell a DataLoader's sampler which epoch (from 0) starts, as a torch script does by hand
    for a DistributedSampler, so that each epoch is shuffled anew."""
    sampler = getattr(batches, "sampler", None)
    if callable(getattr(sampler, "set_epoch", None)):
        sampler.set_epoch(epoch)


def draw(batches) -> list:
    """One epoch's batches as lists of indices (a sample index each without batching)."""
    if isinstance(batches, GraphBatches):
        return batches.order()
    if batches.batch_sampler is None:
        return list(batches.sampler)
    return [list(indices) for indices in batches.batch_sampler]


def replay(batches, order: list, start: int):
    """An iterator over the batches of ``order[start:]``, fetched as ``batches`` fetches them."""
    rest = order[start:]
    if isinstance(batches, GraphBatches):
        return (batches.take(rows) for rows in rest)
    if batches.batch_sampler is None:
        loader = DataLoader(batches.dataset, batch_size=None, sampler=rest,
                            collate_fn=batches.collate_fn)
    else:
        loader = DataLoader(batches.dataset, batch_sampler=rest, collate_fn=batches.collate_fn)
    return iter(loader)


def pack(order: list) -> dict | None:
    """``order`` as tensors a checkpoint can hold; None when its indices are not integers.

    >>> state = pack([[3, 1], [0, 2], [4]])
    >>> state["indices"].tolist(), state["sizes"].tolist()
    ([3, 1, 0, 2, 4], [2, 2, 1])
    >>> unpack(state)
    [[3, 1], [0, 2], [4]]
    >>> unpack(pack([2, 0, 1])), pack([["a"]])
    ([2, 0, 1], None)
    """
    batched = bool(order) and isinstance(order[0], (list, tuple))
    parts = [np.asarray(b) for b in order] if batched else [np.asarray(order)]
    if any(p.size and p.dtype.kind not in "iu" for p in parts):
        return None
    flat = np.concatenate([p.reshape(-1) for p in parts]) if parts else np.zeros(0)
    sizes = np.array([len(b) for b in order], dtype=np.int64) if batched else None
    return {"indices": from_numpy(flat.astype(np.int64)),
            "sizes": None if sizes is None else from_numpy(sizes)}


def unpack(state: dict) -> list:
    """The order :func:`pack` stored."""
    flat = state["indices"].numpy()
    if state["sizes"] is None:
        return flat.tolist()
    bounds = np.cumsum(state["sizes"].numpy())[:-1]
    return [part.tolist() for part in np.split(flat, bounds)]
