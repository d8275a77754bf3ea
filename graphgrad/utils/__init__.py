"""torch.utils's layout, so ``from graphgrad.utils.data import DataLoader`` works as in torch."""

from . import data
