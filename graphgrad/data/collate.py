"""``default_collate`` and ``default_convert``: how a ``DataLoader`` turns samples into batches.

They follow torch's rules: tensors are stacked, NumPy arrays and scalars become tensors of their
own dtype, Python floats a float64 tensor, ints an int64 one (bools a bool one), strings stay a
list, and mappings and sequences are collated field by field (a tuple sample gives a list).
"""

from __future__ import annotations

import collections.abc
import copy

import numpy as np

from .. import _dtype, creation
from ..tensor import Tensor, stack

_ERROR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def default_collate(batch):
    """Merge a list of samples into a batch, recursing through dicts, tuples and lists.

    >>> import graphgrad as gg
    >>> default_collate([(gg.tensor([1.0, 2.0]), 0), (gg.tensor([3.0, 4.0]), 1)])
    [tensor([[1., 2.],
            [3., 4.]]), tensor([0, 1])]
    >>> default_collate([{"x": 0.5}, {"x": 1.5}])
    {'x': tensor([0.5000, 1.5000], dtype=graphgrad.float64)}
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind not in "biuf":  # strings and objects, as torch refuses them
            raise TypeError(_ERROR.format(elem.dtype))
        return stack([creation.as_tensor(b) for b in batch], 0)
    if isinstance(elem, (np.bool_, np.number)):
        return creation.as_tensor(np.asarray(batch))
    if isinstance(elem, float):
        return creation.tensor(batch, dtype=_dtype.float64)
    if isinstance(elem, int):  # bool is an int: a batch of bools becomes a bool tensor
        return creation.tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        fields = {key: default_collate([d[key] for d in batch]) for key in elem}
        return _collate_mapping(elem, fields)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple keeps its type
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return fields if isinstance(elem, tuple) else _collate_sequence(elem, fields)
    raise TypeError(_ERROR.format(type(elem)))


def _collate_mapping(elem, collated: dict):
    # keep the sample's mapping type (an OrderedDict stays one) when it can be rebuilt
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(collated)
            return clone
        return type(elem)(collated)
    except TypeError:
        return collated


def _collate_sequence(elem, fields: list):
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, field in enumerate(fields):
                clone[i] = field
            return clone
        return type(elem)(fields)
    except TypeError:  # e.g. range cannot be built from a list
        return fields


def default_convert(data):
    """What a ``DataLoader`` without batching does to each sample: NumPy arrays and scalars
    become tensors, inside dicts and sequences too; everything else is left alone.

    >>> import numpy as np
    >>> default_convert({"x": np.array([1, 2], dtype=np.int32), "name": "a"})
    {'x': tensor([1, 2], dtype=graphgrad.int32), 'name': 'a'}
    """
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
        return creation.as_tensor(data)
    if isinstance(data, (np.bool_, np.number)):
        return creation.as_tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return _collate_mapping(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _collate_sequence(data, [default_convert(d) for d in data])
    return data
