"""Data loading with torch.utils.data's API: data sets, samplers, ``DataLoader`` and
``default_collate``, plus small built-in data sets in :mod:`graphgrad.data.datasets`.

>>> import graphgrad as gg
>>> from graphgrad.data import DataLoader, TensorDataset
>>> x, y = gg.randn(8, 3), gg.randint(0, 2, (8,))
>>> [tuple(xb.shape) for xb, yb in DataLoader(TensorDataset(x, y), batch_size=3)]
[(3, 3), (3, 3), (2, 3)]
"""

from . import datasets
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler

__all__ = [
    "BatchSampler",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "datasets",
    "default_collate",
    "default_convert",
    "random_split",
]
