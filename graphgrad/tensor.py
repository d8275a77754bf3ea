"""Tensor: a NumPy array, its gradient, and the node that made it.

Methods hold no maths: each calls a primitive from ``ops`` through :func:`apply`, or is a
composite of other methods, whose gradient then comes for free.
"""

from __future__ import annotations

import builtins
import functools
import operator
import warnings
import weakref
from collections import namedtuple

import numpy as np

from . import _device, _dtype, _state, engine
from .engine import _NEEDED, _clock, _sequence
from .engine import Node as _Node
from .engine import mark_modified as _mark_modified
from .ops import OPS

_ndarray = np.ndarray
_grad_state = _state.state
_GRAD_DTYPES = engine.GRAD_DTYPES  # only these outputs get a node: torch's rule, in one place


def apply(op, inputs: tuple, params: tuple = ()) -> Tensor:
    """Run primitive ``op`` forward on ``inputs`` (tensors or constants) and record a node when
    gradient is needed. Errors name the op and the shapes, raised here rather than inside NumPy."""
    arrays = []
    needs = []
    any_need = False
    for x in inputs:
        if isinstance(x, Tensor):
            arrays.append(x._data)
            need = x._requires_grad
            needs.append(need)
            any_need = any_need or need
        else:
            arrays.append(x)
            needs.append(False)
    try:
        out = op.forward(*arrays, *params)
    except Warning:  # a NumPy warning that the user turned into an error: theirs to see
        raise
    except Exception as exc:  # NumPy's message names neither the op nor the shapes
        raise _op_error(op, arrays, params, exc) from None
    if type(out) is not _ndarray:
        out = np.asarray(out)
    if any_need and _grad_state.grad_enabled and out.dtype in _GRAD_DTYPES:
        needs = tuple(needs)
        t = _recorded(out, op, inputs, arrays, params, needs, _NEEDED[needs], False)
    else:
        t = _new(out, False)
    if _grad_state.capture is not None:  # graphgrad.trace or graphgrad.compile is recording
        _grad_state.capture(op, inputs, params, t, arrays)
    return t


# The hot paths below are apply() for one fixed shape of arguments, with nothing looked up twice:
# each op on small tensors spends more in the Python around it than in NumPy.


def _apply_with_number(op, a: Tensor, b, number_first: bool = False) -> Tensor:
    """``apply(op, (a, b))`` for a float tensor and a Python int or float: the hot path of
    scalars."""
    arr = a._data
    operand = _operand(b, arr.dtype)
    if number_first:
        inputs, arrays = (b, a), (operand, arr)
    else:
        inputs, arrays = (a, b), (arr, operand)
    out = op.forward(*arrays)  # a number broadcasts against anything: nothing to check
    if type(out) is not _ndarray:
        out = np.asarray(out)
    if a._requires_grad and _grad_state.grad_enabled and out.dtype in _GRAD_DTYPES:
        needs, needed = (_NEEDS_SECOND, _SECOND) if number_first else (_NEEDS_FIRST, _FIRST)
        t = _recorded(out, op, inputs, arrays, (), needs, needed, False)
    else:
        t = _new(out, False)
    if _grad_state.capture is not None:
        _grad_state.capture(op, inputs, (), t, arrays)
    return t


def _apply_pair(op, a: Tensor, b: Tensor) -> Tensor:
    """``apply(op, (a, b))`` for two tensors."""
    x, y = a._data, b._data
    try:
        out = op.forward(x, y)
    except Warning:
        raise
    except Exception as exc:
        raise _op_error(op, (x, y), (), exc) from None
    if type(out) is not _ndarray:
        out = np.asarray(out)
    need_a, need_b = a._requires_grad, b._requires_grad
    if (need_a or need_b) and _grad_state.grad_enabled and out.dtype in _GRAD_DTYPES:
        needs, needed = _PAIR_NEEDS[need_a][need_b]
        t = _recorded(out, op, (a, b), (x, y), (), needs, needed, False)
    else:
        t = _new(out, False)
    if _grad_state.capture is not None:
        _grad_state.capture(op, (a, b), (), t, (x, y))
    return t


def _unary(name: str, op_name: str | None = None, doc: str | None = None):
    """The method ``name``: elementwise primitive ``op_name`` (by default ``name``) applied to
    the tensor, as ``apply(op, (self,))`` does, with the op bound once."""
    op = OPS[op_name or name]
    floating, forward = op.floating, op.forward

    def method(self):
        x, arr = self, self._data
        # Every elementwise op keeps its input's dtype: the output can carry gradient if the
        # input's dtype can.
        grad_dtype = arr.dtype in _GRAD_DTYPES
        if floating and not grad_dtype and arr.dtype.kind != "f":
            x = _cast(x, _dtype.DEFAULT_FLOAT)  # torch: exp of an int tensor is float32
            arr, grad_dtype = x._data, True
        try:
            out = forward(arr)
        except Warning:
            raise
        except Exception as exc:  # e.g. NumPy's bool negative: torch's RuntimeError, named
            raise _op_error(op, (arr,), (), exc) from None
        if type(out) is not _ndarray:
            out = np.asarray(out)
        if x._requires_grad and grad_dtype and _grad_state.grad_enabled:
            exact = arr.dtype is _FLOAT32 or arr.dtype is _FLOAT64
            t = _recorded(out, op, (x,), (arr,), (), _NEEDS_ONLY, _FIRST, exact)
        else:
            t = _new(out, False)
        if _grad_state.capture is not None:
            _grad_state.capture(op, (x,), (), t, (arr,))
        return t

    return _method(method, name, doc)


def _operator(name: str, op, float_only: bool = False, reflected: bool = False):
    """The operator method ``name`` of arithmetic primitive ``op``: ``self op other``, or
    ``other op self`` when ``reflected``. A float tensor with a Python int or float, and two
    tensors of one dtype, run here as ``_apply_with_number`` and ``_apply_pair`` would: the hot
    path of every chain of small ops, in one call. The rest goes through ``_binary``."""
    needs, needed = (_NEEDS_SECOND, _SECOND) if reflected else (_NEEDS_FIRST, _FIRST)
    forward = op.forward

    def method(self, other):
        arr = self._data
        dtype = arr.dtype
        cache = _GRAD_OPERANDS.get(dtype) if other.__class__ in _FAST_NUMBERS else None
        if cache is not None:  # a Python number with a tensor of a float dtype
            operand = cache.get(other)
            if operand is None:
                operand = _operand(other, dtype)
            if reflected:
                inputs, arrays = (other, self), (operand, arr)
            else:
                inputs, arrays = (self, other), (arr, operand)
            # the number takes the tensor's dtype, a float one: so does the result, and it can
            # carry gradient
            out = forward(*arrays)
            if type(out) is not _ndarray:
                out = np.asarray(out)
            if self._requires_grad and _grad_state.grad_enabled:
                exact = dtype is _FLOAT32 or dtype is _FLOAT64
                t = _recorded(out, op, inputs, arrays, (), needs, needed, exact)
            else:
                t = _new(out, False)
            if _grad_state.capture is not None:
                _grad_state.capture(op, inputs, (), t, arrays)
            return t
        if reflected:
            return _binary(op, other, self, float_only)
        if (
            not isinstance(other, Tensor)
            or other._data.dtype is not dtype
            or (float_only and dtype.kind != "f")
        ):
            return _binary(op, self, other, float_only)
        y = other._data  # two tensors of one dtype: _apply_pair's work, here
        try:
            out = forward(arr, y)
        except Warning:
            raise
        except Exception as exc:
            raise _op_error(op, (arr, y), (), exc) from None
        if type(out) is not _ndarray:
            out = np.asarray(out)
        need_a, need_b = self._requires_grad, other._requires_grad
        # the result has the inputs' dtype: it can carry gradient if they can
        if (need_a or need_b) and dtype in _GRAD_DTYPES and _grad_state.grad_enabled:
            pair_needs, pair_needed = _PAIR_NEEDS[need_a][need_b]
            t = _recorded(out, op, (self, other), (arr, y), (), pair_needs, pair_needed, False)
        else:
            t = _new(out, False)
        if _grad_state.capture is not None:
            _grad_state.capture(op, (self, other), (), t, (arr, y))
        return t

    return _method(method, name)


def _method(function, name: str, doc: str | None = None):
    function.__name__, function.__qualname__, function.__doc__ = name, f"Tensor.{name}", doc
    return function


# needs_input_grad and the indices of the inputs that need a gradient, made once
_NEEDS_FIRST, _NEEDS_SECOND, _NEEDS_BOTH = (True, False), (False, True), (True, True)
_NEEDS_ONLY = (True,)
_FIRST, _SECOND, _BOTH = (0,), (1,), (0, 1)
_PAIR_NEEDS = (  # [need_a][need_b]
    (None, (_NEEDS_SECOND, _SECOND)),
    ((_NEEDS_FIRST, _FIRST), (_NEEDS_BOTH, _BOTH)),
)


_OPERANDS: dict = {}  # dtype -> {number: that number as a 0-d array of dtype}
# The same caches for the dtypes that carry gradient, made up front: a lookup here both finds the
# cache and tells the tensor's dtype is one of them.
_GRAD_OPERANDS: dict = {dtype: _OPERANDS.setdefault(dtype, {}) for dtype in _GRAD_DTYPES}
_OPERANDS_PER_DTYPE = 4096


def _operand(number, dtype: np.dtype):
    """A Python number as a 0-d array of ``dtype``, cached. NumPy's ufuncs take a slow path for
    Python scalars (about 0.3 us more per call); the result is the same, since NumPy casts a
    Python number to the array's dtype anyway. Zero (its sign) and NaN are never cached."""
    cache = _OPERANDS.get(dtype)
    if cache is None:
        cache = _OPERANDS[dtype] = {}
    operand = cache.get(number)
    if operand is None:
        if not number or number != number or len(cache) >= _OPERANDS_PER_DTYPE:
            return number
        operand = cache[number] = np.asarray(number, dtype=dtype)
        operand.flags.writeable = False
    return operand


def _op_error(op, arrays, params, exc) -> Exception:
    try:
        detail = op.error(*arrays, *params)
    except Exception:  # a failing explanation must not hide the real error
        detail = None
    if detail is None:
        shapes = ", ".join(str(tuple(a.shape)) for a in arrays if hasattr(a, "shape"))
        detail = f"{exc} (input shapes {shapes})"
    kind = IndexError if isinstance(exc, IndexError) else RuntimeError
    return kind(f"{op.name}: {detail}")


def _new(array, requires_grad: bool, grad_fn=None, cls=None) -> Tensor:
    """A tensor around ``array`` with every slot set (``cls``: a subclass such as Parameter)."""
    t = _new_object(cls or Tensor)
    t._data = array
    t._requires_grad = requires_grad
    t._grad = None
    t.grad_fn = grad_fn
    t._version = 0
    t._hooks = None
    t._base = None
    return t


_new_object = object.__new__


def _recorded(out, op, inputs, arrays, params, needs, needed, exact) -> Tensor:
    """The output of a recorded op: a tensor that requires grad around ``out`` and its node.
    ``engine.record`` and ``_new`` in one call, for the ops' hot paths, where a call costs about
    as much as filling both objects; the node's fields are ``engine.record``'s, kept in step.
    ``exact``: see ``engine.Node``; true only for the elementwise ops of ``_unary`` and
    ``_operator`` with a number, whose tensor input has the output's shape, in float32/64."""
    node = _Node()
    node.op = op
    node.inputs = inputs
    node.arrays = arrays
    node.params = params
    node.out = out
    node.needs_input_grad = needs
    node.needed = needed
    node.exact = exact
    node.seq = next(_sequence)
    node.stamp = _clock[0]
    node.pre_hooks = None
    node.retained = None
    t = _new_object(Tensor)
    t._data = out
    t._requires_grad = True
    t._grad = None
    t.grad_fn = node
    t._version = 0
    t._hooks = None
    t._base = None
    return t


def _backward(*args) -> None:
    """``_backward.backward``, which builds on this module: imported on the first call, which
    then puts it in this function's place (an import statement costs about 1 us each time)."""
    global _backward
    from ._backward import backward

    _backward = backward
    backward(*args)


def wrap(array) -> Tensor:
    """A tensor that does not require grad around ``array`` (no copy)."""
    return _new(array if type(array) is _ndarray else np.asarray(array), False)


_OPS = OPS  # module-level name lookup is the fastest in method bodies
_add, _sub, _mul, _div, _pow = OPS["add"], OPS["sub"], OPS["mul"], OPS["div"], OPS["pow"]
_matmul = OPS["matmul"]

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])

_NON_LEAF_GRAD = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead."
)


class Tensor:
    """A multi-dimensional array that can record operations for automatic differentiation.

    >>> import graphgrad as gg
    >>> x = gg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
    """

    # _base: for an alias made by detach(), the tensor whose memory it shares; else None.
    __slots__ = (
        "_data",
        "_requires_grad",
        "_grad",
        "grad_fn",
        "_version",
        "_hooks",
        "_base",
        "__weakref__",
    )
    __array_ufunc__ = None  # NumPy defers to our reflected operators: array + tensor is a tensor
    __array_priority__ = 1000

    def __init__(self, *args, requires_grad: bool = False, device=None) -> None:
        """torch's legacy constructor: ``Tensor(2, 3)`` (or a Size) is a float32 tensor of that
        shape, zero-filled (graphgrad never hands out uninitialised memory); ``Tensor(data)`` a
        float32 copy of the data; ``Tensor(other)`` shares ``other``'s memory and dtype;
        ``Tensor()`` is empty. ``graphgrad.tensor(data)`` infers the dtype instead.

        >>> import graphgrad as gg
        >>> gg.Tensor(2, 3).shape, gg.Tensor([1, 2]).dtype, gg.Tensor().shape
        (graphgrad.Size([2, 3]), graphgrad.float32, graphgrad.Size([0]))
        """
        self._data = _legacy_array("Tensor", None, args, device)
        self._requires_grad = False
        self._grad = None
        self.grad_fn = None
        self._version = 0
        self._hooks = None
        self._base = None
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ attributes
    @property
    def data(self) -> Tensor:
        """The same storage as a tensor that is not part of any graph."""
        return _new(self._data, False)

    @data.setter
    def data(self, value) -> None:
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value)

    @property
    def grad(self) -> Tensor | None:
        """The gradient backward accumulated here. As in torch, reading it on a non-leaf tensor
        that does not retain its gradient warns: backward never fills it."""
        grad = self._grad
        if grad is None and self.grad_fn is not None and self.grad_fn.retained is None:
            warnings.warn(_NON_LEAF_GRAD, UserWarning, stacklevel=2)
        return grad

    @grad.setter
    def grad(self, value) -> None:
        if _grad_state.capture is not None:
            _state.note("assign_grad", self, value)
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type "
                    f"{type(value).__name__}"
                )
            if value._data.shape != self._data.shape:
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor "
                    f"of size '{list(self.shape)}'. Please ensure that the gradient and the "
                    f"tensor are the same size"
                )
            if value._data.dtype != self._data.dtype:
                raise RuntimeError(
                    f"attempting to assign a gradient with dtype '{value.dtype}' to a tensor "
                    f"with dtype '{self.dtype}'. The gradient must match the tensor's dtype"
                )
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> _device.device:
        return _device.CPU

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def T(self) -> Tensor:  # noqa: N802 - torch's name
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:  # noqa: N802
        return self.transpose(-2, -1)

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    @property
    def retains_grad(self) -> bool:
        return self.grad_fn is not None and self.grad_fn.retained is not None

    def size(self, dim: int | None = None, *, axis=None):
        if axis is not None:
            dim, _ = _numpy_names("size", dim, False, axis, None)
        if dim is None:
            return Size(self._data.shape)
        if not self._data.ndim:
            _dim(dim, 0, "size")  # a bad type or range is named first, as torch does
            raise IndexError(f"size: Dimension specified as {dim} but tensor has no dimensions")
        return self._data.shape[_dim(dim, self.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    def element_size(self) -> int:
        return self._data.itemsize

    def item(self):
        if _grad_state.capture is not None:
            _state.note("read", self, "item()")
        if self._data.size != 1:
            raise RuntimeError(
                f"item: a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        if _grad_state.capture is not None:
            _state.note("read", self, "tolist()")
        return self._data.tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self._requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. "
                "Use tensor.detach().numpy() instead."
            )
        if _grad_state.capture is not None:
            _state.note("read", self, "numpy()")
        return self._data

    def __array__(self, dtype=None, copy=None):
        # np.asarray(t) shares the memory and np.array(t) copies, as for torch's tensors
        return np.asarray(self._data, dtype=dtype, copy=copy)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """torch functions take graphgrad tensors as torch tensors holding copies of their
        values, so that ``torch_module.load_state_dict(graphgrad_module.state_dict())`` works
        (torch asks ``is_tensor_like``, then calls ``param.copy_(value)``)."""
        import torch

        def to_torch(value):
            if isinstance(value, Tensor):
                return torch.from_numpy(np.array(value._data, copy=True))
            if isinstance(value, list):
                return [to_torch(v) for v in value]
            if isinstance(value, tuple):
                items = [to_torch(v) for v in value]
                return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
            return value

        return func(*to_torch(args), **{k: to_torch(v) for k, v in (kwargs or {}).items()})

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """The tensor's memory as a DLPack capsule, for another library's ``from_dlpack``: no
        copy, strides included (NumPy's own export of the array). As torch, a tensor that
        requires grad must be detached first.

        >>> import numpy as np, graphgrad as gg
        >>> t = gg.tensor([1, 2, 3])
        >>> np.from_dlpack(t)[0] = 7
        >>> t.tolist()
        [7, 2, 3]
        """
        if self._requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        if _grad_state.capture is not None:
            _state.note("read", self, "__dlpack__()")
        # Only the arguments given: NumPy 2.0's export knows none but stream, and a consumer that
        # asks for max_version retries without it on a TypeError, as the protocol says.
        asked = dict(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)
        return self._data.__dlpack__(**{k: v for k, v in asked.items() if v is not None})

    def __dlpack_device__(self) -> tuple:
        """(1, 0): DLPack's code for the CPU, device 0."""
        return self._data.__dlpack_device__()

    def detach(self) -> Tensor:
        """The same memory, outside any graph; an in-place change to either is seen by backward."""
        t = _new(self._data, False)
        t._base = self._base if self._base is not None else self
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    def clone(self) -> Tensor:
        return apply(_OPS["cast"], (self,), (self._data.dtype,))

    def contiguous(self) -> Tensor:
        return self

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device=None) -> Tensor:
        return self.to("cuda" if device is None else device)  # raises: there is no GPU here

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if requires_grad and self._data.dtype not in _GRAD_DTYPES:
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients "
                f"(this one is {self.dtype})"
            )
        self._requires_grad = bool(requires_grad)
        return self

    # ------------------------------------------------------------------ autograd
    def backward(
        self,
        gradient=None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs=None,
    ) -> None:
        """Accumulate the gradient of this tensor into ``.grad`` of the leaves it depends on.

        >>> import graphgrad as gg
        >>> w = gg.tensor(3.0, requires_grad=True)
        >>> (w * 2.0 + 1.0).backward()
        >>> w.grad.item()
        2.0
        """
        _backward(self, gradient, retain_graph, create_graph, inputs)

    def register_hook(self, hook) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new one."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            if self.grad_fn.pre_hooks is None:
                self.grad_fn.pre_hooks = {}
            return RemovableHandle(self.grad_fn.pre_hooks, hook)
        if self._hooks is None:
            self._hooks = {}
        return RemovableHandle(self._hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self.grad_fn.retained = weakref.ref(self)
            if self.grad_fn.pre_hooks is None:
                self.grad_fn.pre_hooks = {}  # the engine looks only here for what to run

    # ------------------------------------------------------------------ conversion
    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(other)``; ``copy=True`` always copies.

        >>> import graphgrad as gg
        >>> gg.tensor([1, 2]).to(gg.float64).dtype
        graphgrad.float64
        """
        dtype, copy = to_arguments(args, kwargs)
        if dtype is None:
            return self.clone() if copy else self
        target = _dtype.to_numpy_dtype(dtype)
        if target == self._data.dtype and not copy:
            return self
        return apply(_OPS["cast"], (self,), (target,))

    def type(self, dtype=None, non_blocking: bool = False):
        """The legacy type name (``'graphgrad.FloatTensor'``, where torch says
        ``'torch.FloatTensor'``), or a copy converted to ``dtype``: a dtype, a legacy type
        (``graphgrad.LongTensor``) or its name (``'torch.LongTensor'`` too)."""
        if dtype is None:
            return "graphgrad." + _LEGACY_NAMES[self._data.dtype]
        return self.to(_legacy_dtype(dtype))

    def float(self) -> Tensor:
        return self.to(_dtype.float32)

    def double(self) -> Tensor:
        return self.to(_dtype.float64)

    def half(self) -> Tensor:
        return self.to(_dtype.float16)

    def long(self) -> Tensor:
        return self.to(_dtype.int64)

    def int(self) -> Tensor:
        return self.to(_dtype.int32)

    def bool(self) -> Tensor:
        return self.to(_dtype.bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def __float__(self) -> float:
        return builtins.float(self.item())

    def __int__(self) -> int:
        return builtins.int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.item())

    def __bool__(self) -> bool:
        if _grad_state.capture is not None:
            _state.note("read", self, "bool()")
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self._data.size} elements is ambiguous"
            )
        return builtins.bool(self._data.reshape(()))

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__  # identity, like torch; __eq__ is elementwise

    def __repr__(self) -> str:
        from .creation import _format_tensor

        return _format_tensor(self)

    # ------------------------------------------------------------------ arithmetic
    def add(self, other, *, alpha=1) -> Tensor:
        plain = alpha == 1 and type(alpha) is builtins.int  # True and 1.0 are checked
        return _binary(_add, self, other if plain else _times_alpha(self, other, alpha))

    def sub(self, other, *, alpha=1) -> Tensor:
        plain = alpha == 1 and type(alpha) is builtins.int  # True and 1.0 are checked
        return _binary(_sub, self, other if plain else _times_alpha(self, other, alpha))

    def mul(self, other) -> Tensor:
        return _binary(_mul, self, other)

    def div(self, other, *, rounding_mode=None) -> Tensor:
        if rounding_mode is None:
            return _binary(_div, self, other, float_only=True)
        if rounding_mode == "floor":
            return _binary(_OPS["div_floor"], self, other)
        if rounding_mode == "trunc":
            quotient = _binary(_div, self, other, float_only=True)
            result = quotient.sign() * quotient.abs().floor()
            return result.to(_binary_dtype(self, other))
        raise RuntimeError(
            f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
            f"{rounding_mode!r}"
        )

    true_divide = divide = div
    multiply, subtract = mul, sub

    def pow(self, exponent) -> Tensor:
        if isinstance(exponent, (builtins.int, builtins.float)) and not isinstance(
            exponent, builtins.bool
        ):
            base = self
            if self._data.dtype.kind != "f" and (isinstance(exponent, builtins.float)):
                base = self.to(_dtype.float32)
            return apply(_OPS["pow_scalar"], (base,), (exponent,))
        return _binary(_OPS["pow"], self, exponent)

    __add__ = _operator("__add__", _add)
    __radd__ = _operator("__radd__", _add, reflected=True)
    __sub__ = _operator("__sub__", _sub)
    __rsub__ = _operator("__rsub__", _sub, reflected=True)
    __mul__ = _operator("__mul__", _mul)
    __rmul__ = _operator("__rmul__", _mul, reflected=True)
    __truediv__ = _operator("__truediv__", _div, float_only=True)
    __rtruediv__ = _operator("__rtruediv__", _div, float_only=True, reflected=True)

    def __floordiv__(self, other):
        return _binary(_OPS["floor_divide"], self, other)

    def __rfloordiv__(self, other):
        return _binary(_OPS["floor_divide"], other, self)

    def __mod__(self, other):
        return _binary(_OPS["remainder"], self, other)

    def __rmod__(self, other):
        return _binary(_OPS["remainder"], other, self)

    def __pow__(self, exponent):
        return self.pow(exponent)

    def __rpow__(self, base):
        return _binary(_OPS["pow"], base, self)

    def __matmul__(self, other):
        if isinstance(other, Tensor) and other._data.dtype is self._data.dtype:
            return _apply_pair(_matmul, self, other)  # what matmul() checks holds: go straight
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(_as_tensor_like(other, self), self)

    __neg__ = _unary("__neg__", "neg")

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def neg(self) -> Tensor:
        return apply(_OPS["neg"], (self,))

    negative = neg

    def remainder(self, other) -> Tensor:
        return _binary(_OPS["remainder"], self, other)

    def floor_divide(self, other) -> Tensor:
        return _binary(_OPS["floor_divide"], self, other)

    def maximum(self, other) -> Tensor:
        return _binary(_OPS["maximum"], self, _tensor_argument("maximum", "other", other))

    def minimum(self, other) -> Tensor:
        return _binary(_OPS["minimum"], self, _tensor_argument("minimum", "other", other))

    def square(self) -> Tensor:
        if self._data.dtype == np.bool_:  # torch squares booleans as int64 (pow's promotion)
            return self.long() * self.long()
        return self * self

    def reciprocal(self) -> Tensor:
        return 1 / self

    def matmul(self, other) -> Tensor:
        return matmul(self, other)

    def mm(self, other) -> Tensor:
        other = _tensor_argument("mm", "mat2", other)
        if self.ndim != 2 or _ndim(other) != 2:
            raise RuntimeError(
                f"mm: expected 2-D tensors, got shapes {tuple(self.shape)} and {tuple(other.shape)}"
            )
        return matmul(self, other)

    def bmm(self, other) -> Tensor:
        other = _tensor_argument("bmm", "mat2", other)
        if self.ndim != 3 or _ndim(other) != 3:
            raise RuntimeError(
                f"bmm: expected 3-D tensors, got shapes {tuple(self.shape)} and "
                f"{tuple(other.shape)}"
            )
        expected = [self.shape[0], self.shape[2]]
        if list(other.shape[:2]) != expected:  # bmm never broadcasts, unlike matmul
            raise RuntimeError(f"bmm: Expected size for first two dimensions of batch2 tensor "
                               f"to be: {expected} but got: {list(other.shape[:2])}.")
        return matmul(self, other)

    def dot(self, other) -> Tensor:
        other = _tensor_argument("dot", "tensor", other)
        if self.ndim != 1 or _ndim(other) != 1:
            raise RuntimeError(
                f"dot: expected 1-D tensors, got shapes {tuple(self.shape)} and "
                f"{tuple(other.shape)}"
            )
        return matmul(self, other)

    # ------------------------------------------------------------------ comparisons and logic
    def __eq__(self, other):  # type: ignore[override]
        return _binary(_OPS["eq"], self, other)

    def __ne__(self, other):  # type: ignore[override]
        return _binary(_OPS["ne"], self, other)

    def __lt__(self, other):
        return _binary(_OPS["lt"], self, other)

    def __le__(self, other):
        return _binary(_OPS["le"], self, other)

    def __gt__(self, other):
        return _binary(_OPS["gt"], self, other)

    def __ge__(self, other):
        return _binary(_OPS["ge"], self, other)

    def __and__(self, other):
        return (
            _binary(_OPS["logical_and"], self, other)
            if self.dtype is _dtype.bool_
            else _bitwise(np.bitwise_and, self, other)
        )

    __rand__ = __and__

    def __or__(self, other):
        return (
            _binary(_OPS["logical_or"], self, other)
            if self.dtype is _dtype.bool_
            else _bitwise(np.bitwise_or, self, other)
        )

    __ror__ = __or__

    def __xor__(self, other):
        return (
            _binary(_OPS["logical_xor"], self, other)
            if self.dtype is _dtype.bool_
            else _bitwise(np.bitwise_xor, self, other)
        )

    __rxor__ = __xor__

    def __invert__(self):
        if self.dtype is _dtype.bool_:
            return apply(_OPS["logical_not"], (self,))
        return _bitwise(np.invert, self)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    less, less_equal, greater, greater_equal, not_equal = lt, le, gt, ge, ne

    def equal(self, other) -> bool:
        return self.shape == other.shape and builtins.bool((self == other).all())

    def logical_and(self, other):
        return _binary(_OPS["logical_and"], self, other)

    def logical_or(self, other):
        return _binary(_OPS["logical_or"], self, other)

    def logical_xor(self, other):
        return _binary(_OPS["logical_xor"], self, other)

    def logical_not(self):
        return apply(_OPS["logical_not"], (self,))

    def isnan(self):
        return apply(_OPS["isnan"], (self,))

    def isinf(self):
        return apply(_OPS["isinf"], (self,))

    def isfinite(self):
        return apply(_OPS["isfinite"], (self,))

    def all(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("all", dim, keepdim, axis, keepdims)
        return apply(_OPS["all"], (self,), (_axes(dim, self.ndim, "all"), keepdim))

    def any(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("any", dim, keepdim, axis, keepdims)
        return apply(_OPS["any"], (self,), (_axes(dim, self.ndim, "any"), keepdim))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
        if isinstance(other, Tensor) and other.dtype is not self.dtype:
            raise RuntimeError(f"allclose: {self.dtype.name} did not match {other.dtype.name}")
        return builtins.bool(np.allclose(self._data, _array_of(other), rtol, atol, equal_nan))

    # ------------------------------------------------------------------ elementwise maths
    exp = _unary(
        "exp",
        doc="""Elementwise e**x.

        >>> import graphgrad as gg
        >>> gg.tensor([0.0]).exp().tolist()
        [1.0]
        """,
    )

    log = _unary("log")
    log1p = _unary("log1p")
    sqrt = _unary("sqrt")
    rsqrt = _unary("rsqrt")
    sin = _unary("sin")
    cos = _unary("cos")
    tan = _unary("tan")
    tanh = _unary("tanh")
    sigmoid = _unary("sigmoid")
    relu = _unary("relu")
    abs = _unary("abs")
    absolute = abs
    sign = _unary("sign")
    floor = _unary("floor")
    ceil = _unary("ceil")
    round = _unary("round")

    def clamp(self, min=None, max=None) -> Tensor:  # noqa: A002 - torch's argument names
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        x = self
        if x._data.dtype.kind != "f" and any(isinstance(b, builtins.float) for b in (min, max)):
            x = _cast(x, _dtype.DEFAULT_FLOAT)
        return apply(_OPS["clamp"], (x, _bound(min, x), _bound(max, x)))

    clip = clamp

    def clamp_min(self, min) -> Tensor:  # noqa: A002
        return self.clamp(min=min)

    def clamp_max(self, max) -> Tensor:  # noqa: A002
        return self.clamp(max=max)

    def where(self, condition, other) -> Tensor:
        return where(condition, self, other)

    def lerp(self, end, weight) -> Tensor:
        """``self + weight * (end - self)`` by torch's two formulas: from ``end`` backwards
        where ``|weight| >= 0.5``, so that each end is reproduced exactly.

        >>> import graphgrad as gg
        >>> gg.tensor([0.0, 10.0]).lerp(gg.tensor([10.0, 0.0]), 0.75).tolist()
        [7.5, 2.5]
        """
        end = _tensor_argument("lerp", "end", end)
        if end.dtype is not self.dtype:
            raise RuntimeError(f"lerp: expected dtype {self.dtype.name} for `end` but got dtype "
                               f"{end.dtype.name}")
        span = end - self
        if isinstance(weight, Tensor):
            return where(weight.abs() < 0.5, self + weight * span, end - span * (1 - weight))
        if abs(weight) < 0.5:
            return self + weight * span
        weight = self._data.dtype.type(weight)  # torch's 1 - weight is in the tensor's dtype
        return end - span * (1 - weight)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape) -> Tensor:
        return _reshape(
            "reshape", self, _infer_shape(_shape_arg(shape), self._data.size, "reshape")
        )

    def view(self, *shape) -> Tensor:
        if len(shape) == 1 and not isinstance(shape[0], (builtins.int, tuple, list, Size)):
            return self.to(shape[0])
        return _reshape("view", self, _infer_shape(_shape_arg(shape), self._data.size, "view"))

    def view_as(self, other) -> Tensor:
        return self.view(other.shape)

    def reshape_as(self, other) -> Tensor:
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            _dim(start_dim, 0, "flatten")  # only 0 and -1 name the dim of a 0-d tensor
            _dim(end_dim, 0, "flatten")
            return _reshape("flatten", self, (1,))
        start = _dim(start_dim, self.ndim, "flatten")
        end = _dim(end_dim, self.ndim, "flatten")
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = self._data.shape
        new = shape[:start] + (builtins.int(np.prod(shape[start : end + 1])),) + shape[end + 1 :]
        return _reshape("flatten", self, new)

    def unflatten(self, dim: int, sizes) -> Tensor:
        d = _dim(dim, self.ndim, "unflatten")
        shape = self._data.shape
        sizes = _infer_shape(tuple(sizes), shape[d], "unflatten")
        return _reshape("view", self, shape[:d] + sizes + shape[d + 1 :])

    def squeeze(self, dim=None, *, axis=None) -> Tensor:
        if axis is not None:
            dim, _ = _numpy_names("squeeze", dim, False, axis, None)
        shape = self._data.shape
        if dim is None:
            return _reshape("squeeze", self, tuple(n for n in shape if n != 1))
        dims = _axes(dim, self.ndim, "squeeze") or ()
        new = tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))
        return _reshape("squeeze_dims" if isinstance(dim, tuple) else "squeeze_dim", self, new)

    def unsqueeze(self, dim=None, *, axis=None) -> Tensor:
        if axis is not None:
            dim, _ = _numpy_names("unsqueeze", dim, False, axis, None)
        d = _dim(dim, self.ndim + 1, "unsqueeze")
        shape = self._data.shape
        return _reshape("unsqueeze", self, shape[:d] + (1,) + shape[d:])

    def permute(self, *dims) -> Tensor:
        dims = tuple(_dim(d, self.ndim, "permute") for d in _shape_arg(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise RuntimeError(
                f"permute: dims {dims} are not a permutation of the {self.ndim} "
                f"dimensions of a tensor of shape {tuple(self.shape)}"
            )
        return apply(_OPS["permute"], (self,), (dims,))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        n = self.ndim
        d0, d1 = _dim(dim0, n, "transpose"), _dim(dim1, n, "transpose")
        dims = list(range(n))
        if n:  # a 0-d tensor's dims 0 and -1 both name the tensor itself
            dims[d0], dims[d1] = dims[d1], dims[d0]
        return apply(_OPS["transpose"], (self,), (tuple(dims),))

    swapaxes = swapdims = transpose

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise RuntimeError(
                f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D"
            )
        return apply(_OPS["t"], (self,), (tuple(reversed(range(self.ndim))),))

    def expand(self, *sizes) -> Tensor:
        sizes = _shape_arg(sizes)
        shape = self._data.shape
        lead = len(sizes) - len(shape)
        if lead < 0:
            raise RuntimeError(
                f"expand: the number of sizes provided ({len(sizes)}) must be "
                f"greater or equal to the number of dimensions in the tensor "
                f"({len(shape)})"
            )
        target = tuple(shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
        return apply(_OPS["expand"], (self,), (target,))

    def expand_as(self, other) -> Tensor:
        return self.expand(other.shape)

    def broadcast_to(self, shape) -> Tensor:
        return self.expand(shape)

    def repeat(self, *sizes) -> Tensor:
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(
                f"repeat: number of repeat dims ({len(sizes)}) can not be smaller "
                f"than number of dimensions of tensor ({self.ndim})"
            )
        return apply(_OPS["repeat"], (self,), (tuple(sizes),))

    def split(self, split_size_or_sections, dim: int = 0) -> tuple:
        return split(self, split_size_or_sections, dim)

    def chunk(self, chunks: int, dim: int = 0, *, axis=None) -> tuple:
        return chunk(self, chunks, dim, axis=axis)

    def flip(self, *dims) -> Tensor:
        axes = _axes(_shape_arg(dims), self.ndim, "flip") or ()
        index = tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(self.ndim))
        return apply(_OPS["getitem"], (self,), (index, False))  # a negative step: not for users

    def narrow(self, dim=None, start=None, length=None, *, axis=None) -> Tensor:
        if axis is not None:
            dim, _ = _numpy_names("narrow", dim, False, axis, None)
        if not self._data.ndim:
            raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
        d = _dim(dim, self.ndim, "narrow")
        size = self._data.shape[d]
        start, length = builtins.int(start), builtins.int(length)
        if not -size <= start <= size:
            raise IndexError(
                f"narrow: start out of range (expected to be in range of [{-size}, {size}], "
                f"but got {start})"
            )
        start %= builtins.max(size, 1)
        if length < 0:
            raise RuntimeError("narrow(): length must be non-negative.")
        if start + length > size:
            raise RuntimeError(
                f"narrow: start ({start}) + length ({length}) exceeds dimension size ({size})."
            )
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def gather(self, dim=None, index=None, *, axis=None) -> Tensor:
        if axis is not None:
            dim, _ = _numpy_names("gather", dim, False, axis, None)
        d = _dim(dim, self.ndim, "gather")
        idx = _index_array(index)
        if idx.ndim != self.ndim:
            raise RuntimeError(f"gather: index has {idx.ndim} dimensions but input has {self.ndim}")
        return apply(_OPS["gather"], (self,), (d, idx))

    def scatter_add(self, dim=None, index=None, src=None, *, axis=None) -> Tensor:
        """``self`` plus ``src`` added along ``dim`` at ``index`` (torch.Tensor.scatter_add)."""
        if axis is not None:
            dim, _ = _numpy_names("scatter_add", dim, False, axis, None)
        d = _dim(dim, self.ndim, "scatter_add")
        idx = _index_array(index)
        src = src[tuple(slice(0, n) for n in idx.shape)] if tuple(src.shape) != idx.shape else src
        return self + apply(_OPS["scatter_add"], (src,), (self._data.shape, d, idx))

    def index_put(self, indices, values, accumulate: bool = False) -> Tensor:
        """A copy of ``self`` with ``values`` put at ``indices`` (a tuple of index tensors);
        with ``accumulate=True`` repeated positions add up."""
        if not accumulate:
            raise NotImplementedError(
                "index_put: only accumulate=True is supported; use "
                "where() or indexing for replacement"
            )
        index, advanced = _normalize_index(tuple(indices))
        values = values if isinstance(values, Tensor) else _as_tensor_like(values, self)
        target_shape = self._data[index].shape
        if tuple(values.shape) != target_shape:
            values = values.expand(target_shape)
        return self + apply(_OPS["index_add"], (values,), (self._data.shape, index, advanced))

    def __getitem__(self, index) -> Tensor:
        index, advanced = _normalize_index(index, self._data.shape)
        return apply(_OPS["getitem"], (self,), (index, advanced))

    def __setitem__(self, index, value) -> None:
        index, _ = _normalize_index(index, self._data.shape)
        if self._requires_grad and _grad_state.grad_enabled:
            self._refuse_inplace("__setitem__")
        try:
            self._data[index] = _array_of(value)
        except (ValueError, IndexError) as exc:
            kind = IndexError if isinstance(exc, IndexError) else RuntimeError
            raise kind(f"__setitem__: {exc} (tensor of shape {tuple(self.shape)})") from None
        _mark_modified(self)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None):
        """Sum over ``dim`` (an int, a tuple, or all); ``axis``/``keepdims`` are torch's NumPy
        spellings of ``dim``/``keepdim``.

        >>> import graphgrad as gg
        >>> gg.ones(2, 3).sum(axis=1, keepdims=True).tolist()
        [[3.0], [3.0]]
        """
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("sum", dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind in "biu" and dtype is None:
            x = x.to(_dtype.int64)
        return apply(_OPS["sum"], (x,), (_axes(dim, self.ndim, "sum"), keepdim))

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("mean", dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind != "f":
            raise RuntimeError(
                f"mean(): could not infer output dtype. Input dtype must be either a floating "
                f"point or complex dtype. Got: {self.dtype.name.title()}"
            )
        return apply(_OPS["mean"], (x,), (_axes(dim, self.ndim, "mean"), keepdim))

    def nansum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("nansum", dim, keepdim, axis, keepdims)
        return where(self.isnan(), 0.0, self).sum(dim, keepdim)

    def var(
        self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None
    ) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("var", dim, keepdim, axis, keepdims)
        axes = _axes(dim, self.ndim, "var")
        correction = _correction(unbiased, correction)
        centered = self - self.mean(dim, keepdim=True)
        dof = _count(self._data.shape, axes) - correction
        if dof > 0:
            return (centered * centered).sum(dim, keepdim) / dof
        warnings.warn(  # torch's warning, in place of NumPy's divide-by-zero one
            "var(): degrees of freedom is <= 0. Correction should be strictly less than the "
            "reduction factor (input numel divided by output numel).",
            UserWarning,
            stacklevel=2,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            return (centered * centered).sum(dim, keepdim) / 0

    def std(
        self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None
    ) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("std", dim, keepdim, axis, keepdims)
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def prod(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("prod", dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind in "biu" and dtype is None:
            x = x.to(_dtype.int64)
        axes = None if dim is None else (_dim(dim, self.ndim, "prod"),)  # torch: one dim or all
        if axes is not None and not self.ndim:
            axes = None
        kept = apply(_OPS["prod"], (x,), (tuple(range(self.ndim)) if axes is None else axes,))
        if keepdim:
            return kept
        return _reshape("view", kept, _reduced_shape(self._data.shape, axes))

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """``max()``: the largest element; ``max(dim)``: (values, indices); ``max(other)``."""
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("max", dim, keepdim, axis, keepdims)
        return _extremum(self, dim, keepdim, "max", np.argmax)

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("min", dim, keepdim, axis, keepdims)
        return _extremum(self, dim, keepdim, "min", np.argmin)

    def amax(self, dim=(), keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("amax", dim, keepdim, axis, keepdims)
        return _amax_amin("amax", self, dim, keepdim)

    def amin(self, dim=(), keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("amin", dim, keepdim, axis, keepdims)
        return _amax_amin("amin", self, dim, keepdim)

    def argmax(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("argmax", dim, keepdim, axis, keepdims)
        return _arg("argmax", self, dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("argmin", dim, keepdim, axis, keepdims)
        return _arg("argmin", self, dim, keepdim)

    def logsumexp(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        if axis is not None or keepdims is not None:
            dim, keepdim = _numpy_names("logsumexp", dim, keepdim, axis, keepdims)
        if dim is None:  # torch: dim is required
            raise TypeError("logsumexp() missing 1 required positional argument: 'dim'")
        x = self if self._data.dtype.kind == "f" else self.to(_dtype.float32)
        return apply(_OPS["logsumexp"], (x,), (_axes(dim, self.ndim, "logsumexp"), keepdim))

    def softmax(self, dim=None, dtype=None, *, axis=None) -> Tensor:
        if axis is not None:
            dim, _ = _numpy_names("softmax", dim, False, axis, None)
        return _softmax("softmax", self if dtype is None else self.to(dtype), dim)

    def log_softmax(self, dim=None, dtype=None, *, axis=None) -> Tensor:
        if axis is not None:
            dim, _ = _numpy_names("log_softmax", dim, False, axis, None)
        return _softmax("log_softmax", self if dtype is None else self.to(dtype), dim)

    def norm(self, p=2, dim=None, keepdim: bool = False) -> Tensor:
        if p == "fro" or p == 2:
            return (self * self).sum(dim, keepdim).sqrt()
        if p == builtins.float("inf"):
            return self.abs().amax(() if dim is None else dim, keepdim)
        if p == 1:
            return self.abs().sum(dim, keepdim)
        return (self.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    # ------------------------------------------------------------------ in place
    def _refuse_inplace(self, name: str) -> None:
        """In-place changes to a tensor that requires grad are refused while grad is enabled."""
        if self.grad_fn is None:
            raise RuntimeError(
                f"{name}: a leaf Variable that requires grad is being used in an in-place "
                f"operation. Wrap the update in `with graphgrad.no_grad():`."
            )
        raise RuntimeError(
            f"{name}: in-place operations on tensors that are part of a graph are not "
            f"supported by graphgrad; use the out-of-place form."
        )

    def _inplace(self, name: str, ufunc, operand) -> Tensor:
        """``self = ufunc(self, operand)`` written straight into this tensor's memory."""
        if self._requires_grad and _grad_state.grad_enabled:
            self._refuse_inplace(name)
        data = self._data
        try:
            ufunc(data, operand, out=data)  # ufuncs cast "same_kind" into out by default
        except (TypeError, ValueError) as exc:  # read-only memory (expand), shapes, dtypes
            raise RuntimeError(
                f"{name}: {exc} (tensor of shape {tuple(data.shape)} and dtype {self.dtype}; "
                f"operand shapes {np.shape(operand)})"
            ) from None
        _mark_modified(self)
        return self

    def _assign(self, name: str, value) -> Tensor:
        """Overwrite every element with ``value`` (broadcast), keeping this tensor's dtype."""
        return self._inplace(name, _copy_ufunc, np.broadcast_to(value, self._data.shape))

    def add_(self, other, *, alpha=1) -> Tensor:
        return self._inplace("add_", np.add, _scaled(other, alpha, self._data.dtype))

    def sub_(self, other, *, alpha=1) -> Tensor:
        return self._inplace("sub_", np.subtract, _scaled(other, alpha, self._data.dtype))

    def mul_(self, other) -> Tensor:
        return self._inplace("mul_", np.multiply, _inplace_operand(other, self._data.dtype))

    def div_(self, other) -> Tensor:
        return self._inplace("div_", np.true_divide, _inplace_operand(other, self._data.dtype))

    def pow_(self, exponent) -> Tensor:
        return self._inplace("pow_", np.power, _array_of(exponent))

    def addcmul_(self, tensor1, tensor2, *, value=1) -> Tensor:
        # torch's rounding order: (value * t1) * t2
        scaled = _array_of(tensor1) if value == 1 else value * _array_of(tensor1)
        return self._inplace("addcmul_", np.add, scaled * _array_of(tensor2))

    def addcdiv_(self, tensor1, tensor2, *, value=1) -> Tensor:
        # torch's rounding order: (value * t1) / t2
        scaled = _array_of(tensor1) if value == 1 else value * _array_of(tensor1)
        return self._inplace("addcdiv_", np.add, scaled / _array_of(tensor2))

    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002
        if min is not None:
            self._inplace("clamp_", np.maximum, _array_of(min))
        if max is not None:
            self._inplace("clamp_", np.minimum, _array_of(max))
        return self

    def zero_(self) -> Tensor:
        return self._assign("zero_", 0)

    def fill_(self, value) -> Tensor:
        return self._assign("fill_", _array_of(value))

    def copy_(self, src) -> Tensor:
        return self._assign("copy_", _array_of(src))

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
        from .creation import _rng

        return self._assign("uniform_", _rng(generator).uniform(a, b, self._data.shape))

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
        from .creation import _rng

        return self._assign("normal_", _rng(generator).normal(mean, std, self._data.shape))

    def __iadd__(self, other):
        return self.add_(other) if not self._in_graph() else self + other

    def __isub__(self, other):
        return self.sub_(other) if not self._in_graph() else self - other

    def __imul__(self, other):
        return self.mul_(other) if not self._in_graph() else self * other

    def __itruediv__(self, other):
        return self.div_(other) if not self._in_graph() else self / other

    def _in_graph(self) -> bool:
        """A non-leaf tensor under grad mode: ``x += y`` then rebinds x to a new node."""
        return self.grad_fn is not None and _grad_state.grad_enabled


def to_arguments(args: tuple, kwargs: dict):
    """torch's ``to(...)`` arguments (a dtype, a device, a tensor to match; ``dtype=``,
    ``device=``, ``copy=``, ``non_blocking=``) as ``(dtype or None, copy)``; only the CPU exists.
    Shared by ``Tensor.to`` and ``nn.Module.to``."""
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, (str, _device.device)):
            device = arg
        else:
            dtype = arg
    if device is not None and _device.device(device) != "cpu":
        raise RuntimeError(
            f"to: graphgrad runs on the CPU only; device {str(device)!r} is not available"
        )
    return dtype, copy


class Size(tuple):
    """A tensor's shape: a tuple of ints that prints like torch's."""

    def __repr__(self) -> str:
        return f"graphgrad.Size({list(self)})"

    def numel(self) -> int:
        return builtins.int(np.prod(self))


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict, hook) -> None:
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id
        self._hooks = hooks
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


# ---------------------------------------------------------------------- helpers


def _copy_ufunc(dst, src, out):
    """np.copyto with a ufunc's signature, so that assignment shares ``Tensor._inplace``."""
    np.copyto(out, src, casting="same_kind")


def _scaled(other, alpha, dtype):
    """``other * alpha`` for an in-place update, alpha as a cached operand (see _operand)."""
    if alpha == 1:
        return _inplace_operand(other, dtype)
    return _array_of(other) * (_operand(alpha, dtype) if dtype.kind == "f" else alpha)


def _inplace_operand(other, dtype):
    """What an in-place update of a tensor of ``dtype`` applies: an array, or a Python number
    of a float tensor as a cached operand (see _operand), the same value NumPy would cast it to."""
    if isinstance(other, Tensor):
        return other._data
    if other.__class__ in _FAST_NUMBERS and dtype in _GRAD_OPERANDS:
        return _operand(other, dtype)
    return other


def _array_of(x):
    return x._data if isinstance(x, Tensor) else x


def _ndim(x) -> int:
    return x.ndim if hasattr(x, "ndim") else 0


def _binary_dtype(a, b) -> np.dtype:
    dims, zero, scalars = [], [], []
    for x in (a, b):
        if isinstance(x, Tensor):
            (dims if x._data.ndim else zero).append(x._data.dtype)
        else:
            scalars.append(x)
    return _dtype.result_type((dims, zero), scalars)


_PY_NUMBERS = (builtins.int, builtins.float, builtins.bool)
_FAST_NUMBERS = (builtins.int, builtins.float)
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def _binary(op, a, b, float_only: bool = False):
    """Apply a binary op with torch's promotion: tensors, NumPy arrays and Python numbers mix."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        da, db = a._data.dtype, b._data.dtype
        if da is not db or (float_only and da.kind != "f"):
            if op is _sub and "b" in (da.kind, db.kind):
                raise _bool_subtraction()
            target = _binary_dtype(a, b)
            if float_only and target.kind != "f":
                target = _dtype.DEFAULT_FLOAT
            a, b = _cast(a, target), _cast(b, target)
        return _apply_pair(op, a, b)
    if b.__class__ in _FAST_NUMBERS and a._data.dtype.kind == "f" and op is not _pow:
        return _apply_with_number(op, a, b)
    if a.__class__ in _FAST_NUMBERS and b._data.dtype.kind == "f" and op is not _pow:
        return _apply_with_number(op, b, a, number_first=True)
    return _binary_mixed(op, a, b, float_only)


def _bool_subtraction() -> RuntimeError:
    return RuntimeError(
        "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
        "to invert a mask, use the `~` or `logical_not()` operator instead."
    )


def _binary_mixed(op, a, b, float_only):
    tensor_first = isinstance(a, Tensor)
    tensor, other = (a, b) if tensor_first else (b, a)
    if op is _sub and (tensor._data.dtype.kind == "b" or isinstance(other, builtins.bool)):
        raise _bool_subtraction()
    if isinstance(other, _PY_NUMBERS) or isinstance(other, np.generic):
        other = other.item() if isinstance(other, np.generic) else other
        kind = tensor._data.dtype.kind
        cat = _dtype.scalar_category(other)
        if cat > _dtype.category(tensor._data.dtype) or (float_only and kind != "f"):
            tensor = _cast(
                tensor,
                _dtype.default_dtype_for_category(builtins.max(cat, 2 if float_only else cat)),
            )
        if op is _pow:  # keep the number's precision out of NumPy's float64 scalars
            other = np.asarray(other, dtype=tensor._data.dtype)
    elif isinstance(other, (np.ndarray, list, tuple)):
        other = _as_tensor_like(other, tensor)
        return (
            _binary(op, tensor, other, float_only)
            if tensor_first
            else _binary(op, other, tensor, float_only)
        )
    else:
        return NotImplemented
    return apply(op, (tensor, other) if tensor_first else (other, tensor))


def _as_tensor_like(x, like) -> Tensor:
    if isinstance(x, Tensor):
        return x
    array = np.asarray(x)
    if array.dtype == np.float64 and not isinstance(x, np.ndarray):
        array = array.astype(_dtype.DEFAULT_FLOAT)  # a Python list of floats is float32, as torch
    _dtype.from_numpy_dtype(array.dtype)
    return wrap(array)


def _cast(t: Tensor, target: np.dtype) -> Tensor:
    if t._data.dtype == target:
        return t
    return apply(_OPS["cast"], (t,), (target,))


def _bitwise(fn, *operands):
    """Integer bitwise operators: NumPy's, not a primitive, so a compiled step cannot replay
    them and is told so."""
    if _grad_state.capture is not None:
        _state.note("read", operands[0], f"the bitwise {fn.__name__}")
    return wrap(fn(*map(_array_of, operands)))


def _bound(b, x: Tensor):
    """A clamp bound as the op takes it: None, a number, or an array of x's dtype."""
    if b is None or isinstance(b, (builtins.int, builtins.float)):
        return b
    return np.asarray(_array_of(b)).astype(x._data.dtype, copy=False)


def _dim(dim, ndim: int, op: str) -> int:
    """Normalise a possibly negative dim, with torch's error for one out of range."""
    n = builtins.max(ndim, 1)
    if not isinstance(dim, (builtins.int, np.integer)) or isinstance(dim, builtins.bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: Dimension out of range (expected to be in range of "
            f"[{-n}, {n - 1}], but got {dim})"
        )
    return builtins.int(dim) % n if ndim else 0


def _softmax(name: str, x: Tensor, dim) -> Tensor:
    ndim = x._data.ndim
    axis = _dim(dim, ndim, name)
    if not x._data.size:  # nothing to normalise; NumPy's max has no value over an empty axis
        return x.clone()
    return apply(_OPS[name], (x,), (axis if ndim else None,))  # 0-d: its own only element


def _axes(dim, ndim: int, op: str):
    """torch's ``dim`` argument (None, int, negative, tuple; () means all) as NumPy's ``axis``."""
    if dim is None:
        return None
    if isinstance(dim, (builtins.int, np.integer)):
        axis = _dim(dim, ndim, op)  # checked even for a 0-d tensor, whose only dims are 0 and -1
        return (axis,) if ndim else None
    dims = tuple(_dim(d, ndim, op) for d in dim)
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"{op}: dim {tuple(dim)} appears multiple times in the list of dims")
    return dims if dims and ndim else None


def _times_alpha(tensor: Tensor, other, alpha):
    """``other * alpha`` for add and sub, with torch's checks: an integer result takes no float
    alpha, and only a bool result a bool one."""
    kind = _binary_dtype(tensor, other).kind
    if kind in "iub" and isinstance(alpha, builtins.float):
        raise RuntimeError(
            "For integral input tensors, argument alpha must not be a floating point number."
        )
    if kind != "b" and isinstance(alpha, builtins.bool):
        raise RuntimeError("Boolean alpha only supported for Boolean results.")
    return other * alpha


def _tensor_argument(op: str, name: str, value):
    """torch takes no Python number (or array) where its signature says Tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(value).__name__}")
    return value


def _is_int(value) -> bool:
    return isinstance(value, (builtins.int, np.integer)) and not isinstance(value, builtins.bool)


def _numpy_names(op: str, dim, keepdim, axis, keepdims):
    """torch's NumPy spellings: ``axis=`` for ``dim=`` and ``keepdims=`` for ``keepdim=``. As in
    torch, a spelling is refused when the torch name is given too."""
    if axis is not None:
        if dim is not None and dim != ():
            raise TypeError(f"{op}() got an unexpected keyword argument 'axis' (dim is given)")
        dim = axis
    if keepdims is not None:
        if keepdim:
            raise TypeError(
                f"{op}() got an unexpected keyword argument 'keepdims' (keepdim is given)"
            )
        keepdim = keepdims
    return dim, keepdim


def _count(shape: tuple, axes) -> int:
    if axes is None:
        return builtins.int(np.prod(shape, dtype=np.int64))
    return builtins.int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _reduced_shape(shape: tuple, axes) -> tuple:
    if axes is None:
        return ()
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _correction(unbiased, correction) -> int:
    if unbiased is not None and correction is not None:
        raise RuntimeError("var/std: pass either unbiased or correction, not both")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def _shape_arg(args, op: str = "shape") -> tuple:
    """Sizes given as numbers or as one sequence; each must be an integer (an int tensor of one
    element counts, as in torch), never a float."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        args = tuple(args[0])
    sizes = []
    for n in args:
        try:
            sizes.append(operator.index(n))
        except TypeError:
            raise TypeError(
                f"{op}: sizes must be a tuple of ints, but found an element of type "
                f"{type(n).__name__} ({n!r})"
            ) from None
    return tuple(sizes)


def _infer_shape(shape: tuple, size: int, op: str) -> tuple:
    if -1 not in shape:
        return shape
    if shape.count(-1) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred, got shape {shape}")
    known = builtins.int(np.prod([n for n in shape if n != -1]))
    if known == 0 or size % known:
        raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {size}")
    return tuple(size // known if n == -1 else n for n in shape)


def _reshape(name: str, x: Tensor, shape: tuple) -> Tensor:
    return apply(_OPS[name], (x,), (shape,))


def _extremum(x: Tensor, dim, keepdim: bool, name: str, arg_fn):
    if isinstance(dim, Tensor):
        return x.maximum(dim) if name == "max" else x.minimum(dim)
    if dim is None:
        _check_reducible(name, x, None)
        return apply(_OPS[name], (x,), (None, False))
    axis = _dim(dim, x.ndim, name)
    _check_reducible(name, x, (axis,))
    if x.ndim == 0:
        return ValuesIndices(x.clone(), wrap(np.zeros((), dtype=np.int64)))
    indices = np.expand_dims(arg_fn(x._data, axis=axis), axis)
    values = apply(_OPS["gather"], (x,), (axis, indices))
    if not keepdim:
        values = _reshape("squeeze", values, _reduced_shape(x._data.shape, (axis,)))
        indices = np.squeeze(indices, axis)
    return ValuesIndices(values, wrap(indices))


def _arg(name: str, x: Tensor, dim, keepdim: bool) -> Tensor:
    if dim is None:
        _check_reducible(name, x, None)
        flat = x.reshape(-1)
        return apply(_OPS[name], (flat,), (0, False)).reshape((1,) * x.ndim if keepdim else ())
    axis = _dim(dim, x.ndim, name)
    _check_reducible(name, x, (axis,))
    return apply(_OPS[name], (x,), (axis, keepdim))


def _amax_amin(name: str, x: Tensor, dim, keepdim: bool) -> Tensor:
    axes = _axes(dim, x.ndim, name)
    _check_reducible(name, x, axes)
    return apply(_OPS[name], (x,), (axes, keepdim))


def _check_reducible(name: str, x: Tensor, axes) -> None:
    """max, min and the arg-extrema have no value over nothing: torch's errors for an empty
    tensor reduced whole or along a dim of size 0 (a dim of size > 0 is fine)."""
    shape = x._data.shape
    if x._data.size:
        return
    if axes is None:
        kind = IndexError if name.startswith("arg") else RuntimeError
        raise kind(
            f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
            f"Specify the reduction dim with the 'dim' argument (shape {tuple(shape)})."
        )
    for a in axes:
        if x.ndim and shape[a] == 0:
            raise IndexError(
                f"{name}(): Expected reduction dim {a} to have non-zero size "
                f"(shape {tuple(shape)})."
            )


def _index_array(index) -> np.ndarray:
    arr = np.asarray(_array_of(index))
    if arr.dtype.kind not in "iu":
        raise IndexError(f"index tensors must have an integer dtype, not {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _normalize_index(index, shape=None):
    """torch's index (ints, slices, None, Ellipsis, index and mask tensors, sequences) as NumPy
    takes it; say if it is advanced indexing. With ``shape``, masks must fit the dims they
    index, as torch requires."""
    if index.__class__ is builtins.int:  # x[0], the most common index: nothing to convert
        return index, False
    if isinstance(index, (list, range)) and _sequence_as_tuple(index):
        warnings.warn(_SEQUENCE_AS_TUPLE, UserWarning, stacklevel=3)
        index = tuple(index)
    parts = index if isinstance(index, tuple) else (index,)
    out, advanced, masks = [], False, False
    for p in parts:
        if p.__class__ in _PLAIN_INDEX or (p.__class__ is slice and (p.step is None or p.step > 0)):
            out.append(p)  # ints, None, Ellipsis and forward slices go to NumPy as they are
            continue
        if isinstance(p, Tensor):
            p = _index_tensor(p._data)
        elif isinstance(p, (list, tuple, range, np.ndarray)):
            p = _index_sequence(p)
        elif isinstance(p, slice) and p.step is not None and p.step <= 0:
            raise ValueError("slice step cannot be zero" if p.step == 0 else
                             "step must be greater than zero")  # fmt: skip
        if isinstance(p, np.ndarray):
            if p.ndim == 0 and p.dtype.kind in "iu":
                p = builtins.int(p)
            else:
                advanced = True
                masks = masks or (p.dtype.kind == "b" and p.ndim > 0)
        elif not isinstance(p, (builtins.int, np.integer, slice, type(None), type(Ellipsis))):
            raise IndexError(
                f"only integers, slices (`:`), ellipsis (`...`), None and long, int, byte or "
                f"bool tensors are valid indices (got {type(p).__name__})"
            )
        out.append(p)
    if masks and shape is not None:
        _check_masks(out, shape)
    return (tuple(out) if isinstance(index, tuple) or len(out) != 1 else out[0]), advanced


_PLAIN_INDEX = frozenset((builtins.int, type(None), type(Ellipsis)))
_SEQUENCE_AS_TUPLE = (
    "Using a non-tuple sequence for multidimensional indexing is deprecated; use x[tuple(seq)] "
    "instead of x[seq] (torch reads it as a tuple and warns the same way)"
)


def _sequence_as_tuple(index) -> bool:
    """torch's (and old NumPy's) rule: a short list that holds a sequence, a slice, a tensor,
    None or Ellipsis is a tuple of indices, not one index array."""
    if len(index) >= 32:
        return False
    return any(
        isinstance(p, (Tensor, list, tuple, range, np.ndarray, slice)) or p is None or p is ...
        for p in index
    )


def _index_tensor(array: np.ndarray) -> np.ndarray:
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b" or (kind == "i" and size >= 4):
        return array
    if array.dtype == np.uint8:
        warnings.warn(
            "indexing with dtype uint8 is now deprecated, please use a dtype bool instead.",
            UserWarning,
            stacklevel=4,
        )
        return array.astype(bool)
    raise IndexError(
        f"tensors used as indices must be long, int, byte or bool tensors, not {array.dtype}"
    )


def _index_sequence(seq) -> np.ndarray:
    """A list (or array) of indices as torch converts it: booleans stay a mask, numbers become
    int64 (floats truncated, as torch does), and an empty list indexes nothing."""
    array = np.asarray(seq)
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind not in "iuf":
        raise IndexError(f"an index sequence must hold numbers or booleans, got {array.dtype}")
    return array.astype(np.int64, copy=False)


def _check_masks(parts: list, shape: tuple) -> None:
    """Each boolean mask must have the shape of the dims it covers (torch's check)."""
    def width(p):
        if p is None or p is ...:
            return 0
        return p.ndim if isinstance(p, np.ndarray) and p.dtype.kind == "b" else 1

    free = len(shape) - sum(width(p) for p in parts)
    dim = 0
    for p in parts:
        if p is ...:
            dim += builtins.max(free, 0)
        elif isinstance(p, np.ndarray) and p.dtype.kind == "b" and p.ndim:
            covered = tuple(shape[dim : dim + p.ndim])
            if tuple(p.shape) != covered:
                raise IndexError(
                    f"The shape of the mask {list(p.shape)} at index {dim} does not match the "
                    f"shape of the indexed tensor {list(shape)} at index {dim}"
                )
        dim += width(p)


# ---------------------------------------------------------------------- functions on tensors


def matmul(a, b) -> Tensor:
    """Matrix product with torch's rules for 1-D operands (dot, matrix-vector, vector-matrix).

    >>> import graphgrad as gg
    >>> (gg.ones(2, 3) @ gg.ones(3)).tolist()
    [3.0, 3.0]
    """
    for x in (a, b):
        if isinstance(x, _PY_NUMBERS):  # a number has no matrix product (torch refuses it too)
            raise TypeError(f"matmul(): arguments must be tensors, not {type(x).__name__}")
    a = a if isinstance(a, Tensor) else _as_tensor_like(a, b)
    b = b if isinstance(b, Tensor) else _as_tensor_like(b, a)
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(
            f"matmul: expected both tensors to have the same dtype, got {a.dtype} and {b.dtype}"
        )
    return _apply_pair(_matmul, a, b)


def where(condition, input=None, other=None):  # noqa: A002 - torch's argument names
    """Elements of ``input`` where ``condition`` holds, else of ``other``; ``where(condition)``
    alone is the tuple of indices where it holds, as torch's.

    >>> import graphgrad as gg
    >>> gg.where(gg.tensor([True, False]), gg.tensor([1, 2]), 2.5).tolist()
    [1.0, 2.5]
    >>> gg.where(gg.tensor([[0, 1], [1, 1]]) > 0)
    (tensor([0, 1, 1]), tensor([1, 0, 1]))
    """
    if not isinstance(condition, (Tensor, np.ndarray)):
        raise TypeError(
            f"where(): argument 'condition' must be Tensor, not {type(condition).__name__}"
        )
    if input is None and other is None:
        return tuple(wrap(i) for i in np.nonzero(_array_of(condition)))
    if isinstance(condition, Tensor):  # a tensor stays one: a traced graph sees its origin
        cond = condition if condition._data.dtype == bool else condition.bool()
    else:
        cond = np.asarray(condition, dtype=bool)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = _as_tensor_like(input, None)
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        target = _binary_dtype(input, other)
        input, other = _cast(input, target), _cast(other, target)
    elif isinstance(input, Tensor):
        input, other = _scalar_for(other, input)[::-1]
    else:
        input, other = _scalar_for(input, other)
    return apply(_OPS["where"], (cond, input, other))


def _scalar_for(value, tensor: Tensor) -> tuple:
    """``(value, tensor)`` for where(): a Python number promotes the tensor as in arithmetic
    (an int tensor and 2.5 give float32, as torch)."""
    if isinstance(value, np.ndarray):
        return value.astype(tensor._data.dtype, copy=False), tensor
    if isinstance(value, _PY_NUMBERS):
        tensor = _cast(tensor, _binary_dtype(tensor, value))
    return value, tensor


def cat(tensors, dim: int = 0, *, axis=None) -> Tensor:
    if axis is not None:
        dim, _ = _numpy_names("cat", None if dim == 0 else dim, False, axis, None)
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    ndim = tensors[0].ndim
    for i, t in enumerate(tensors):
        if t.ndim != ndim:
            raise RuntimeError(
                f"cat: tensor {i} has {t.ndim} dimensions, expected {ndim} "
                f"(shapes {', '.join(str(tuple(t.shape)) for t in tensors)})"
            )
    target = _common_dtype(tensors)
    tensors = [_cast(t, target) for t in tensors]
    return apply(_OPS["cat"], tuple(tensors), (_dim(dim, ndim, "cat"),))


concat = concatenate = cat


def stack(tensors, dim: int = 0, *, axis=None) -> Tensor:
    if axis is not None:
        dim, _ = _numpy_names("stack", None if dim == 0 else dim, False, axis, None)
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    target = _common_dtype(tensors)
    tensors = [_cast(t, target) for t in tensors]
    return apply(_OPS["stack"], tuple(tensors), (_dim(dim, tensors[0].ndim + 1, "stack"),))


def _common_dtype(tensors) -> np.dtype:
    dims = [t._data.dtype for t in tensors]
    return _dtype.result_type((dims, []), [])


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    if not tensor.ndim:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _dim(dim, tensor.ndim, "split")
    length = tensor._data.shape[d]
    if _is_int(split_size_or_sections):
        size = builtins.int(split_size_or_sections)
        if size < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got {size}")
        if size == 0 and length:
            raise RuntimeError(
                f"split_size can only be 0 if dimension size is 0, but got dimension size of "
                f"{length}"
            )
        sizes = [builtins.min(size, length - s) for s in range(0, length, size)] if length else [0]
    elif not isinstance(split_size_or_sections, (tuple, list, Size)):
        raise TypeError(
            f"split: split_size_or_sections must be an int or a list of ints, not "
            f"{type(split_size_or_sections).__name__}"
        )
    else:
        sizes = [builtins.int(s) for s in split_size_or_sections]
        if sum(sizes) != length:
            raise RuntimeError(
                f"split: split_with_sizes expects split_sizes to sum exactly to "
                f"{length} (input tensor's size at dimension {d}), but got "
                f"split_sizes={sizes}"
            )
    parts, start = [], 0
    for size in sizes:
        parts.append(tensor.narrow(d, start, size))
        start += size
    return tuple(parts)


def chunk(tensor: Tensor, chunks: int, dim: int = 0, *, axis=None) -> tuple:
    if axis is not None:
        dim, _ = _numpy_names("chunk", None if dim == 0 else dim, False, axis, None)
    if not _is_int(chunks):
        raise TypeError(f"chunk(): argument 'chunks' must be int, not {type(chunks).__name__}")
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if not tensor.ndim:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = _dim(dim, tensor.ndim, "chunk")
    length = tensor._data.shape[d]
    size = -(-length // chunks) if length else 1
    return split(tensor, size, d)


def tensor_method(function):
    """Make ``function``, whose first argument is the tensor, a Tensor method of the same name:
    the topic modules (_math, _indexing, _products) define each of theirs once, for
    ``graphgrad.f(x)`` and ``x.f()`` alike."""
    setattr(Tensor, function.__name__, function)
    return function


def with_out(function):
    """Give a free function torch's ``out=``: the result is written into ``out``, which is
    returned. As in torch, ``out`` is resized (with a warning unless it was empty) to the
    result's shape, the result is cast to ``out``'s dtype where torch allows it, and autograd
    refuses: an ``out=`` result has no gradient.

    >>> import graphgrad as gg
    >>> c = gg.empty(2, 2)
    >>> gg.matmul(gg.eye(2), gg.ones(2, 2), out=c) is c, c.tolist()
    (True, [[1.0, 1.0], [1.0, 1.0]])
    """
    name = function.__name__

    @functools.wraps(function)
    def with_out_argument(*args, out=None, **kwargs):
        if out is None:
            return function(*args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
        result = function(*args, **kwargs)
        if isinstance(result, Tensor) and result.requires_grad:
            raise RuntimeError(
                f"{name}(): functions with out=... arguments don't support automatic "
                f"differentiation, but one of the arguments requires grad."
            )
        write_out(name, _array_of(result), out)
        return out

    return with_out_argument


def write_out(name: str, result: np.ndarray, out: Tensor) -> None:
    """``out``'s memory becomes ``result`` (resized and cast as torch's ``out=`` does)."""
    if out._requires_grad and _grad_state.grad_enabled:
        out._refuse_inplace(f"{name}(out=...)")
    target = out._data.dtype
    if _dtype.category(result.dtype) > _dtype.category(target):  # torch's canCast
        raise RuntimeError(
            f"{name}(): result type {_dtype.from_numpy_dtype(result.dtype).name} can't be cast "
            f"to the desired output type {_dtype.from_numpy_dtype(target).name}"
        )
    if out._data.shape != result.shape:
        if out._data.size:
            warnings.warn(
                f"{name}(): an output with one or more elements was resized since it had shape "
                f"{list(out._data.shape)}, which does not match the required output shape "
                f"{list(result.shape)}. Resize it to zero elements first to reuse it.",
                UserWarning, stacklevel=3,
            )
        out._data = np.empty(result.shape, target)
    np.copyto(out._data, result, casting="unsafe")
    _mark_modified(out)


# ---------------------------------------------------------------------- legacy tensor types
# torch's pre-0.4 names: FloatTensor(2, 3), LongTensor([1, 2]), isinstance(x, FloatTensor),
# x.type() == 'torch.FloatTensor'. Each is a class whose instances are plain Tensors: isinstance
# asks the tensor's dtype, as torch's legacy types do.

_LEGACY_NAMES = {
    np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
    np.dtype(np.float16): "HalfTensor", np.dtype(np.int64): "LongTensor",
    np.dtype(np.int32): "IntTensor", np.dtype(np.int16): "ShortTensor",
    np.dtype(np.int8): "CharTensor", np.dtype(np.uint8): "ByteTensor",
    np.dtype(np.bool_): "BoolTensor",
}


def _legacy_array(name: str, dtype, args: tuple, device) -> np.ndarray:
    """The array a legacy constructor makes of ``args`` (sizes, data or one tensor); ``dtype``
    None is ``Tensor``'s: float32, but a tensor keeps its own."""
    from .creation import _check_device, _to_array  # creation builds on Tensor

    _check_device(device)
    target = np.dtype(np.float32) if dtype is None else dtype
    if len(args) == 1 and isinstance(args[0], Tensor):
        other = args[0]._data
        if dtype is not None and other.dtype != dtype:
            raise TypeError(f"{name}(): expected a tensor of dtype "
                            f"{_dtype.from_numpy_dtype(dtype)}, got one of "
                            f"{_dtype.from_numpy_dtype(other.dtype)} (use .to(dtype))")
        return other
    sizes = args[0] if len(args) == 1 and isinstance(args[0], Size) else args
    if all(_is_int(n) for n in sizes):
        shape = tuple(builtins.int(n) for n in sizes)
        if any(n < 0 for n in shape):
            negative = next(n for n in shape if n < 0)
            raise RuntimeError(f"Trying to create tensor with negative dimension {negative}: "
                               f"{list(shape)}")
        return np.zeros(shape if shape or args else (0,), target)
    if len(args) != 1:
        raise TypeError(f"{name}(): takes sizes (ints) or one sequence of data, got "
                        f"({', '.join(type(a).__name__ for a in args)})")
    data = args[0]
    if not isinstance(data, (list, tuple, np.ndarray)):
        raise TypeError(f"{name}(): data must be a sequence (got {type(data).__name__})")
    return np.array(_to_array(data, _dtype.from_numpy_dtype(target)), copy=True)


def _legacy_dtype(dtype):
    """The dtype a ``type(...)`` argument names: a dtype, a legacy type or its name."""
    if isinstance(dtype, _LegacyType):
        return _dtype.from_numpy_dtype(dtype.np_dtype)
    if isinstance(dtype, str):
        module, _, legacy = dtype.rpartition(".")
        if module.endswith(".cuda"):
            raise RuntimeError(f"type: graphgrad runs on the CPU only; {dtype!r} is a CUDA type")
        by_name = {v: k for k, v in _LEGACY_NAMES.items()}
        if module not in ("torch", "graphgrad") or legacy not in by_name:
            raise ValueError(f"invalid type: {dtype!r}")
        return _dtype.from_numpy_dtype(by_name[legacy])
    return dtype


class _LegacyType(type):
    """The metaclass of the legacy types: ``isinstance(x, FloatTensor)`` is true for float32
    tensors, and calling the type builds a Tensor."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj._data.dtype == cls.np_dtype

    def __call__(cls, *args, device=None) -> Tensor:
        return _new(_legacy_array(cls.__name__, cls.np_dtype, args, device), False)

    def __repr__(cls) -> str:
        return f"<class 'graphgrad.{cls.__name__}'>"

    @property
    def dtype(cls):
        return _dtype.from_numpy_dtype(cls.np_dtype)


def _legacy_type(np_dtype) -> _LegacyType:
    name = _LEGACY_NAMES[np.dtype(np_dtype)]
    doc = (f"``{name}(*sizes)`` or ``{name}(data)``: torch's legacy constructor of "
           f"{_dtype.from_numpy_dtype(np.dtype(np_dtype))} tensors.")
    return _LegacyType(name, (), {"np_dtype": np.dtype(np_dtype), "__doc__": doc,
                                  "__module__": "graphgrad"})


def _new_of_own_dtype(self, *args, device=None) -> Tensor:
    """``x.new(2, 3)``, ``x.new(data)``, ``x.new(tensor)``: the legacy constructor of ``x``'s
    dtype, as ``torch.Tensor.new``."""
    return _new(_legacy_array("new", self._data.dtype, args, device), False)


Tensor.new = _new_of_own_dtype

FloatTensor = _legacy_type(np.float32)
DoubleTensor = _legacy_type(np.float64)
HalfTensor = _legacy_type(np.float16)
LongTensor = _legacy_type(np.int64)
IntTensor = _legacy_type(np.int32)
ShortTensor = _legacy_type(np.int16)
CharTensor = _legacy_type(np.int8)
ByteTensor = _legacy_type(np.uint8)
BoolTensor = _legacy_type(np.bool_)
