"""``graphgrad.nn``: modules, parameters, layers, losses, initialisation and utilities, with
torch.nn's names, arguments, defaults and results.

>>> import graphgrad as gg
>>> import graphgrad.nn as nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> loss = nn.CrossEntropyLoss()(model(gg.randn(5, 4)), gg.tensor([0, 1, 1, 0, 1]))
>>> loss.backward()
>>> [tuple(p.grad.shape) for p in model.parameters()]
[(8, 4), (8,), (2, 8), (2,)]
"""

from . import functional, init, parallel, utils
from .modules import *
from .parameter import Parameter
from .summary import ModelSummary, summary
