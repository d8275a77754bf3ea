"""``graphgrad.distributed``: processes that train one model together, as torch.distributed.

Start the processes with ``graphgrad run --nproc-per-node N script.py`` (torchrun's
environment), join with :func:`init_process_group`, then combine tensors in place with the
collectives. The ``shm`` backend (the default) needs one machine and nothing outside Python's
standard library; ``gloo`` is torch's.

>>> import graphgrad as gg
>>> import graphgrad.distributed as dist
>>> dist.init_process_group(init_method="tcp://127.0.0.1:0", world_size=1, rank=0)
>>> t = gg.tensor([1.0, 2.0]); dist.all_reduce(t); t.tolist()
[1.0, 2.0]
>>> dist.destroy_process_group()
"""

from ._hub import DistBackendError
from .collectives import *
from .collectives import __all__
from .reduce_op import ReduceOp

DistBackendError.__module__ = __name__  # where users find it (tracebacks show this name)
