"""Prints what the process looks like from inside a script: the modules named torch, the
script's argv, name and sys.path[0]; exits with the code given as its first argument."""

import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401
from torch import optim  # noqa: F401
from torch.utils.data import DataLoader, Dataset  # noqa: F401

print(json.dumps({
    "name": __name__,
    "argv": sys.argv,
    "path0": sys.path[0],
    "here": os.path.dirname(os.path.abspath(__file__)),
    "version": torch.__version__,
    "torch": {name: getattr(module, "__file__", None) for name, module in sys.modules.items()
              if name == "torch" or name.startswith("torch.")},
    "files": [getattr(module, "__file__", None) or "" for module in list(sys.modules.values())],
    "linear": f"{nn.Linear.__module__}.{nn.Linear.__qualname__}",
}))
if __name__ == "__main__":
    sys.exit(int(sys.argv[1]))
