"""``DataLoader``: batches from a data set, in sequential, shuffled or sampler-given order.

Loading runs in the calling process: ``num_workers`` is accepted so torch code runs unchanged,
but no worker processes are started (NumPy indexing is fast enough that they would mostly add
start-up and pickling cost).
"""

from __future__ import annotations

import numpy as np

from .collate import default_collate, default_convert
from .dataset import Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` samples merged by ``collate_fn``.

    ``shuffle=True`` visits the samples in a new random order each epoch, drawn from
    ``generator`` (default: the global generator, so ``graphgrad.manual_seed`` fixes it).
    A ``TensorDataset`` (or a ``Subset`` of one) with the default collate is batched by
    indexing each tensor once per batch instead of stacking one sample at a time.

    >>> import graphgrad as gg
    >>> data = TensorDataset(gg.arange(10.0).reshape(5, 2), gg.tensor([0, 1, 0, 1, 0]))
    >>> loader = DataLoader(data, batch_size=2)
    >>> len(loader)
    3
    >>> for x, y in loader:
    ...     print(tuple(x.shape), y.tolist())
    (2, 2) [0, 1]
    (2, 2) [0, 1]
    (1, 2) [0]
    """

    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = False,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn=None,
        drop_last: bool = False,
        generator=None,
    ) -> None:
        _check_options(batch_size, shuffle, sampler, batch_sampler, num_workers, drop_last)
        if batch_sampler is not None:  # the batch sampler decides batch size and drop_last
            batch_size, drop_last = None, False
        if sampler is None and shuffle:
            sampler = RandomSampler(dataset, generator=generator)
        elif sampler is None:
            sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.generator = generator
        auto_collation = batch_sampler is not None
        if collate_fn is None:
            collate_fn = default_collate if auto_collation else default_convert
        self.collate_fn = collate_fn

    def __iter__(self):
        if self.batch_sampler is None:  # batch_size=None: one converted sample at a time
            for index in self.sampler:
                yield self.collate_fn(self.dataset[index])
            return
        fetch = self._fetcher()
        for indices in self.batch_sampler:
            yield fetch(indices)

    def _fetcher(self):
        source = _tensor_rows(self.dataset) if self.collate_fn is default_collate else None
        if source is None:
            return lambda indices: self.collate_fn([self.dataset[i] for i in indices])
        tensors, rows = source

        def fetch(indices):
            picked = np.asarray(indices, dtype=np.int64)
            picked = picked if rows is None else rows[picked]
            # one fancy index per tensor gives what stacking the samples would: the same
            # values and dtype, and a list, as default_collate makes of tuple samples
            return [t[picked] for t in tensors]

        return fetch

    def __len__(self) -> int:
        if self.batch_sampler is None:
            return len(self.sampler)
        return len(self.batch_sampler)


def _check_options(batch_size, shuffle, sampler, batch_sampler, num_workers, drop_last) -> None:
    if num_workers < 0:
        raise ValueError(
            "num_workers option should be non-negative; use num_workers=0 to disable "
            "multiprocessing."
        )
    if sampler is not None and shuffle:
        raise ValueError("sampler option is mutually exclusive with shuffle")
    if batch_sampler is not None and (
        batch_size != 1 or shuffle or sampler is not None or drop_last
    ):
        raise ValueError(
            "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
            "and drop_last"
        )
    if batch_size is None and batch_sampler is None and drop_last:
        raise ValueError(
            "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
        )


def _tensor_rows(dataset):
    """``(tensors, rows)`` when ``dataset`` is a TensorDataset, or Subsets of one, whose
    indexing has not been overridden: sample ``i`` is row ``rows[i]`` (``i`` if ``rows`` is
    None) of every tensor. None for any other data set."""
    rows = None
    while type(dataset).__getitem__ is Subset.__getitem__:
        indices = np.asarray(dataset.indices, dtype=np.int64)
        rows = indices if rows is None else indices[rows]
        dataset = dataset.dataset
    if type(dataset).__getitem__ is not TensorDataset.__getitem__:
        return None
    return dataset.tensors, rows
