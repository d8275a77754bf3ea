"""graphgrad: neural-network optimisation on an explicit computational graph, on NumPy.

>>> import graphgrad as gg
>>> x = gg.tensor(2.0, requires_grad=True)
>>> w = gg.tensor(3.0, requires_grad=True)
>>> b = gg.tensor(1.0, requires_grad=True)
>>> z = x * w + b
>>> z.backward()
>>> z.item(), x.grad.item(), w.grad.item(), b.grad.item()
(7.0, 3.0, 2.0, 1.0)
"""

from . import (
    _functions,
    autograd,
    backends,
    creation,
    data,
    graph,
    interop,
    linalg,
    nn,
    onnx,
    optim,
    train,
    utils,
    version,
    viz,
)
from ._device import cuda, device
from ._dtype import (
    bool_ as bool,  # noqa: A001 - torch's name
)
from ._dtype import (
    double,
    dtype,
    float,
    float16,
    float32,
    float64,
    half,
    int,
    int8,
    int16,
    int32,
    int64,  # noqa: A001
    long,
    short,
    uint8,
)
from ._functions import *  # noqa: F401,F403
from ._indexing import *  # noqa: F401,F403
from ._math import *  # noqa: F401,F403
from ._products import *  # noqa: F401,F403
from ._runtime import *  # noqa: F401,F403  (set_num_threads, use_deterministic_algorithms...)
from ._state import is_grad_enabled
from ._version import __version__
from .autograd import enable_grad, inference_mode, no_grad, set_grad_enabled
from .compiler import compile  # noqa: F401  (torch.compile; its module is graphgrad.compiler)
from .creation import *  # noqa: F401,F403
from .graph import Graph, trace
from .io import load, save
from .tensor import (  # torch's legacy types: FloatTensor(2, 3), isinstance(x, FloatTensor)
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
    Size,
    Tensor,
)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:  # noqa: A002
    return input.numel()
