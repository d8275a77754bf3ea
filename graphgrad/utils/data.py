"""``graphgrad.utils.data`` is :mod:`graphgrad.data` under torch's name ``torch.utils.data``.

>>> import graphgrad.data
>>> from graphgrad.utils.data import DataLoader
>>> DataLoader is graphgrad.data.DataLoader
True
"""

from ..data import *  # noqa: F403
from ..data import __all__  # noqa: F401
