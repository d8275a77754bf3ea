"""Map-style data sets: ``Dataset``, ``TensorDataset``, ``ConcatDataset``, ``Subset`` and
``random_split``, with torch.utils.data's names, arguments and errors."""

from __future__ import annotations

import bisect
import itertools
import math
import warnings

from .. import creation
from ..tensor import Tensor


class Dataset:
    """A map from indices ``0 .. len - 1`` to samples; subclasses define both methods.

    ``a + b`` concatenates two data sets.

    >>> class Squares(Dataset):
    ...     def __getitem__(self, index):
    ...         return index * index
    ...     def __len__(self):
    ...         return 4
    >>> both = Squares() + Squares()
    >>> len(both), both[5]
    (8, 1)
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the rows of tensors that share their first dimension: ``(x[i], y[i], ...)``.

    >>> import graphgrad as gg
    >>> data = TensorDataset(gg.arange(6).reshape(3, 2), gg.tensor([0, 1, 0]))
    >>> len(data), data[1]
    (3, (tensor([2, 3]), tensor(1)))
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if t.ndim == 0:
                raise IndexError(
                    f"TensorDataset: tensor {i} is 0-d; samples are taken along the first dimension"
                )
        sizes = [t.shape[0] for t in tensors]
        if any(size != sizes[0] for size in sizes):
            # AssertionError is the type torch raises here, so ported tests keep working
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise AssertionError(
                f"Size mismatch between tensors: first dimensions {sizes} differ (shapes {shapes})"
            )
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset):
    """Several data sets one after another; negative indices count from the end.

    >>> data = ConcatDataset([[1, 2], [3, 4, 5]])
    >>> len(data), data[2], data[-1], data.cumulative_sizes
    (5, 3, 5, [2, 5])
    """

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        if index < 0:
            if -index > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"index {index} is out of range for a dataset of length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> import graphgrad as gg
    >>> part = Subset(gg.tensor([10, 11, 12, 13]), [3, 0])
    >>> len(part), part[0], part[[0, 1]]
    (2, tensor(13), tensor([13, 10]))
    """

    def __init__(self, dataset, indices) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):  # a batch of indices goes to the parent in one call
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are counts that add up to ``len(dataset)``, or fractions that add up to 1: each
    gets ``floor(fraction * len)`` and the remainder is dealt out one by one, round-robin from
    the first split, as torch does. The permutation comes from ``generator`` (default: the
    global generator), so a seed fixes the split, though not the split torch would draw.

    >>> import graphgrad as gg
    >>> train, test = random_split(range(10), [0.75, 0.25], generator=gg.Generator().manual_seed(0))
    >>> len(train), len(test), sorted(list(train) + list(test)) == list(range(10))
    (8, 2, True)
    """
    total = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _lengths_from_fractions(lengths, total)
    if sum(lengths) != total:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    rng = (generator or creation.default_generator).rng
    indices = rng.permutation(total).tolist()
    ends = itertools.accumulate(lengths)
    return [Subset(dataset, indices[end - n : end]) for end, n in zip(ends, lengths)]


def _lengths_from_fractions(fractions, total: int) -> list[int]:
    for i, fraction in enumerate(fractions):
        if not 0 <= fraction <= 1:
            raise ValueError(f"Fraction at index {i} is not between 0 and 1")
    lengths = [math.floor(total * fraction) for fraction in fractions]
    for i in range(total - sum(lengths)):
        lengths[i % len(lengths)] += 1
    for i, n in enumerate(lengths):
        if n == 0:
            warnings.warn(
                f"Length of split at index {i} is 0. This might result in an empty dataset.",
                stacklevel=3,
            )
    return lengths
