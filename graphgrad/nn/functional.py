"""``graphgrad.nn.functional``: torch's functional layers and losses, as composites of tensor
ops (their gradients come from the ops), except binary cross-entropy, whose gradient torch
defines with a clamp that the composite would not reproduce at p = 0 and 1.

>>> import graphgrad as gg
>>> import graphgrad.nn.functional as F
>>> F.relu(gg.tensor([-1.0, 2.0])).tolist()
[0.0, 2.0]
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _dtype
from .._indexing import take_along_dim
from .._products import einsum
from ..autograd import Function, is_grad_enabled, no_grad
from ..creation import ones_like, rand_like
from ..ops import OPS
from ..tensor import Tensor, apply, where, wrap

# ---------------------------------------------------------------------- activations


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """``input @ weight.T + bias``, weight of shape (out_features, in_features).

    >>> import graphgrad as gg
    >>> linear(gg.ones(1, 2), gg.ones(3, 2), gg.zeros(3)).tolist()
    [[2.0, 2.0, 2.0]]
    """
    if bias is None:
        return input.matmul(weight.t())
    if not input.dtype == weight.dtype == bias.dtype:
        raise RuntimeError(f"linear: input, weight and bias must have the same dtype, got "
                           f"{input.dtype}, {weight.dtype} and {bias.dtype}")
    return apply(OPS["linear"], (input, weight, bias))  # one fused primitive: see ops/linalg.py


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_k = x1^T A_k x2 + b_k`` over the last dimension of (*, in1) and (*, in2) inputs,
    ``weight`` (out, in1, in2).

    >>> import graphgrad as gg
    >>> bilinear(gg.ones(1, 2), gg.ones(1, 3), gg.ones(4, 2, 3)).tolist()
    [[6.0, 6.0, 6.0, 6.0]]
    """
    _check_bilinear(input1, input2, weight, bias)
    out = einsum("...i,kij,...j->...k", input1, weight, input2)
    return out if bias is None else out + bias


def _check_bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias) -> None:
    """ATen's checks, in its order."""
    if input1.ndim != input2.ndim:
        raise RuntimeError(
            f"bilinear(): input dimensions do not match: got {input1.ndim} and {input2.ndim}"
        )
    for dim, (a, b) in enumerate(zip(input1.shape[:-1], input2.shape[:-1])):
        if a != b:
            raise RuntimeError(
                f"bilinear(): input batch dimensions do not match at dim {dim}: got {a} and {b}"
            )
    for name, size, expected in (("input1", input1.shape[-1], weight.shape[1]),
                                 ("input2", input2.shape[-1], weight.shape[2])):  # fmt: skip
        if size != expected:
            raise RuntimeError(
                f"bilinear(): {name} size does not match weight size: got {size} but expected "
                f"{expected}"
            )
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise RuntimeError(
            f"bilinear(): bias size does not match weight size: got {bias.shape[0]} but "
            f"expected {weight.shape[0]}"
        )


def relu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(x, 0). ``inplace`` is accepted for torch's signature; graphgrad computes out of place.

    >>> import graphgrad as gg
    >>> relu(gg.tensor([-1.0, 3.0])).tolist()
    [0.0, 3.0]
    """
    return input.relu()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else ``negative_slope * x`` (and that slope as the gradient at 0, as torch).

    >>> import graphgrad as gg
    >>> leaky_relu(gg.tensor([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    return where(input > 0, input, input * negative_slope)


def sigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """1 / (1 + exp(-x)).

    >>> import graphgrad as gg
    >>> sigmoid(gg.tensor([0.0])).tolist()
    [0.5]
    """
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:  # noqa: A002
    """Hyperbolic tangent.

    >>> import graphgrad as gg
    >>> tanh(gg.tensor([0.0])).tolist()
    [0.0]
    """
    return input.tanh()


def erf(input: Tensor) -> Tensor:  # noqa: A002
    """The error function (graphgrad.erf: float64-accurate, torch's gradient).

    >>> import graphgrad as gg
    >>> round(erf(gg.tensor([0.5], dtype=gg.float64)).item(), 15)
    0.520499877813047
    """
    return input.erf()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """x * Phi(x) with the exact normal CDF, or torch's tanh approximation.

    >>> import graphgrad as gg
    >>> round(gelu(gg.tensor([1.0], dtype=gg.float64)).item(), 12)
    0.841344746069
    """
    if approximate == "none":
        return input * 0.5 * (1.0 + erf(input * math.sqrt(0.5)))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (input + 0.044715 * input * input * input)
        return 0.5 * input * (1.0 + inner.tanh())
    raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")


def _softmax_dim(ndim: int) -> int:
    """torch's legacy choice when ``dim`` is not given (with a warning, as torch)."""
    warnings.warn(
        "Implicit dimension choice for softmax has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:  # noqa: A002
    """exp(x) / sum(exp(x)) along ``dim``, stable at large logits.

    >>> import graphgrad as gg
    >>> softmax(gg.tensor([[0.0, 0.0]]), dim=1).tolist()
    [[0.5, 0.5]]
    """
    return input.softmax(_softmax_dim(input.ndim) if dim is None else dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:  # noqa: A002
    """log(softmax(x)) along ``dim``, computed stably.

    >>> import graphgrad as gg
    >>> log_softmax(gg.tensor([[1e4, 0.0]]), dim=1).tolist()
    [[0.0, -10000.0]]
    """
    return input.log_softmax(_softmax_dim(input.ndim) if dim is None else dim, dtype=dtype)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero each element with probability ``p`` (default generator) and scale the rest by
    1 / (1 - p) when training; the identity otherwise.

    >>> import graphgrad as gg
    >>> dropout(gg.ones(4), p=0.5, training=False).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = rand_like(input) < (1.0 - p)
    # as torch: a mask already divided by 1 - p, then one multiplication
    return input * (keep.to(input.dtype) / (1.0 - p))


# ---------------------------------------------------------------------- normalisation


def _check_batch_size(shape) -> None:
    per_channel = shape[0] * int(np.prod(shape[2:]))
    if per_channel == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {shape}"
        )


def batch_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dim 1) by batch statistics when training, updating the running
    statistics in place (the variance unbiased), or by the running statistics otherwise.

    >>> import graphgrad as gg
    >>> x = gg.tensor([[1.0], [3.0]])
    >>> (batch_norm(x, None, None, training=True) * 100).round().tolist()
    [[-100.0], [100.0]]
    """
    axes = (0,) + tuple(range(2, input.ndim))
    shape = (1, -1) + (1,) * (input.ndim - 2)
    if training:
        _check_batch_size(input.shape)
        mean = input.mean(axes)
        var = input.var(axes, unbiased=False)
        if running_mean is not None:
            _update_running(running_mean, running_var, mean, var, input.numel() // mean.numel(),
                            momentum)  # fmt: skip
    else:
        mean, var = running_mean, running_var
    out = (input - mean.reshape(shape)) * (var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _update_running(running_mean, running_var, mean, var, count: int, momentum: float) -> None:
    with no_grad():
        running_mean.copy_(mean * momentum + running_mean * (1.0 - momentum))
        unbiased = var * (count / (count - 1))
        running_var.copy_(unbiased * momentum + running_var * (1.0 - momentum))


def layer_norm(
    input: Tensor,  # noqa: A002
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions, with the biased variance.

    >>> import graphgrad as gg
    >>> (layer_norm(gg.tensor([[1.0, 3.0]]), (2,)) * 100).round().tolist()
    [[-100.0, 100.0]]
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape) :]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size{list(input.shape)}"
        )
    axes = tuple(range(-len(shape), 0))
    mean = input.mean(axes, keepdim=True)
    var = input.var(axes, unbiased=False, keepdim=True)
    out = (input - mean) * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    """A per-channel (C,) tensor shaped to broadcast along dim 1 of an ``ndim``-D input."""
    return t.reshape((1, -1) + (1,) * (ndim - 2))


def _affine(out: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    if weight is not None:
        out = out * _channel_view(weight, out.ndim)
    if bias is not None:
        out = out + _channel_view(bias, out.ndim)
    return out


def group_norm(
    input: Tensor,  # noqa: A002
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each group of ``num_groups`` channel groups of each sample over its channels
    and positions (biased variance), then a per-channel affine.

    >>> import graphgrad as gg
    >>> (group_norm(gg.tensor([[1.0, 3.0, 5.0, 5.0]]), 2) * 100).round().tolist()
    [[-100.0, 100.0, 0.0, 0.0]]
    """
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")  # fmt: skip
    n, c = input.shape[0], input.shape[1]
    _check_batch_size([n * c // num_groups, num_groups] + list(input.shape[2:]))
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, "
                           f"but got input of shape {list(input.shape)} and num_groups="
                           f"{num_groups}")  # fmt: skip
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.numel() != c):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of "
                               f"channels in input, but got {name} of shape {list(t.shape)} and "
                               f"input of shape {list(input.shape)}")  # fmt: skip
    groups = input.reshape(n, num_groups, -1)
    mean = groups.mean(-1, keepdim=True)
    var = groups.var(-1, unbiased=False, keepdim=True)
    out = ((groups - mean) * (var + eps).rsqrt()).reshape(input.shape)
    return _affine(out, weight, bias)


def _check_spatial_size(shape) -> None:
    if int(np.prod(shape[2:])) == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"{shape}")  # fmt: skip


def instance_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of each sample over its positions; with ``use_input_stats`` the
    running statistics (if given) move towards the batch's mean instance statistics, else
    they normalise.

    >>> import graphgrad as gg
    >>> (instance_norm(gg.tensor([[[1.0, 3.0]]])) * 100).round().tolist()
    [[[-100.0, 100.0]]]
    """
    if use_input_stats:
        _check_spatial_size(input.shape)
        axes = tuple(range(2, input.ndim))
        mean = input.mean(axes, keepdim=True)
        var = input.var(axes, unbiased=False, keepdim=True)
        if running_mean is not None:
            count = input.numel() // (input.shape[0] * input.shape[1])
            _update_running(running_mean, running_var, mean.mean(0).reshape(-1),
                            var.mean(0).reshape(-1), count, momentum)  # fmt: skip
    else:
        mean = _channel_view(running_mean, input.ndim)
        var = _channel_view(running_var, input.ndim)
    return _affine((input - mean) * (var + eps).rsqrt(), weight, bias)


def rms_norm(
    input: Tensor,  # noqa: A002
    normalized_shape,
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the trailing ``normalized_shape`` dimensions, times
    ``weight``; ``eps=None`` is the machine epsilon of the input's dtype, as torch.

    >>> import graphgrad as gg
    >>> rms_norm(gg.tensor([[3.0, -3.0]]), (2,), eps=0.0).tolist()
    [[1.0, -1.0]]
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape) :]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*{', '.join(map(str, shape))}], but got input of size{list(input.shape)}"
        )
    if weight is not None and tuple(weight.shape) != shape:
        raise RuntimeError(f"Expected weight to be of same shape as normalized_shape, but got "
                           f"weight of shape {list(weight.shape)} and normalized_shape = "
                           f"{list(shape)}")  # fmt: skip
    if eps is None:  # torch computes half precision in float32, so takes float32's epsilon
        eps = float(np.finfo(np.float64 if input.dtype == _dtype.float64 else np.float32).eps)
    axes = tuple(range(-len(shape), 0))
    out = input * ((input * input).mean(axes, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:  # noqa: A002
    """Rows of ``weight`` picked by the integer ``input``; the ``padding_idx`` row gets no
    gradient.

    >>> import graphgrad as gg
    >>> embedding(gg.tensor([2, 0]), gg.arange(6.0).reshape(3, 2)).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """
    if input.dtype not in (_dtype.int64, _dtype.int32):
        raise RuntimeError(
            f"Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {input.dtype} instead"
        )
    rows = weight[input]
    if padding_idx is None:
        return rows
    padding_idx = padding_idx % weight.shape[0]
    return where((input == padding_idx).unsqueeze(-1), rows.detach(), rows)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Integer class indices as int64 one-hot rows (``num_classes`` -1: the largest index + 1).

    >>> import graphgrad as gg
    >>> one_hot(gg.tensor([0, 2])).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    if tensor.dtype != _dtype.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    labels = tensor._data
    if labels.size and labels.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return wrap((labels[..., None] == np.arange(num_classes)).astype(np.int64))


# ---------------------------------------------------------------------- losses


def _reduction(size_average, reduce, reduction: str) -> str:
    """torch's legacy ``size_average``/``reduce`` flags, when given, decide the reduction."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    legacy = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{legacy}' "
        f"instead.",
        UserWarning,
        stacklevel=3,
    )
    return legacy


def _check_tensor(name: str, argument: str, value) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{name}(): argument '{argument}' must be Tensor, not {type(value).__name__}"
        )


def _check_target_size(name: str, input: Tensor, target) -> None:  # noqa: A002
    """torch's elementwise losses broadcast a target of another size, but warn: a (N, 1) input
    against an (N,) target is an (N, N) loss, almost always a mistake."""
    _check_tensor(name, "target", target)
    if target._data.shape != input._data.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            f"Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )


def _reduce(loss: Tensor, reduction: str, weight: Tensor | None = None) -> Tensor:
    """Apply the elementwise ``weight`` (torch 2.13's regression losses) and then reduce."""
    if weight is not None:
        if tuple(weight.shape) != tuple(loss.shape):
            raise ValueError("Weights and input must have the same size.")
        loss = loss * weight
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def mse_loss(
    input,  # noqa: A002
    target,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean squared error.

    >>> import graphgrad as gg
    >>> mse_loss(gg.tensor([1.0, 3.0]), gg.tensor([0.0, 0.0])).item()
    5.0
    """
    _check_target_size("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, _reduction(size_average, reduce, reduction), weight)


def l1_loss(
    input,  # noqa: A002
    target,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean absolute error.

    >>> import graphgrad as gg
    >>> l1_loss(gg.tensor([1.0, -3.0]), gg.tensor([0.0, 0.0])).item()
    2.0
    """
    _check_target_size("l1_loss", input, target)
    return _reduce((input - target).abs(), _reduction(size_average, reduce, reduction), weight)


def huber_loss(
    input,  # noqa: A002
    target,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """Squared error (halved) below ``delta``, linear above it.

    >>> import graphgrad as gg
    >>> huber_loss(gg.tensor([0.5, 3.0]), gg.tensor([0.0, 0.0]), reduction="none").tolist()
    [0.125, 2.5]
    """
    _check_target_size("huber_loss", input, target)
    if delta <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta ({delta}).")
    diff = input - target
    size = diff.abs()
    loss = where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta))
    return _reduce(loss, reduction, weight)


def _class_dim(input: Tensor) -> int:
    return 1 if input.ndim >= 2 else 0


def nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input``
    of shape (N, C, ...) or (C,); a weighted mean divides by the weights of the counted targets.

    >>> import graphgrad as gg
    >>> nll_loss(gg.tensor([[-1.0, -2.0]]), gg.tensor([1])).item()
    2.0
    """
    reduction = _reduction(size_average, reduce, reduction)
    return _nll(input, _check_class_targets(input, target, weight), weight, ignore_index, reduction)


def _nll(input, target: Tensor, weight, ignore_index: int, reduction: str) -> Tensor:  # noqa: A002
    """nll_loss once its arguments are checked (cross_entropy checks them before log_softmax)."""
    return apply(OPS["nll_loss"], (input, target, weight), (ignore_index, reduction))


def _check_class_targets(input: Tensor, target, weight) -> Tensor:  # noqa: A002
    """torch's checks of class-index targets, in torch's order: batch size, target shape,
    target dtype, weight. Returns the target, a (1,) target of a (C,) input as a 0-d one."""
    _check_tensor("nll_loss", "target", target)
    shape, target_shape = input._data.shape, target._data.shape
    if not shape:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    batch = target_shape[0] if target_shape else 0
    if len(shape) != 1 and shape[0] != batch:
        raise ValueError(
            f"Expected input batch_size ({shape[0]}) to match target batch_size ({batch})."
        )
    if len(shape) <= 2 and len(target_shape) > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if len(shape) == 1 and len(target_shape) == 1:
        if batch != 1:
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {batch}"
            )
        target = target.reshape(())
    if len(shape) > 2 and target_shape[1:] != shape[2:]:
        expected = [shape[0], *shape[2:]]
        raise RuntimeError(f"Expected target size {expected}, got {list(target_shape)}")
    if target._data.dtype not in _CLASS_INDEX_DTYPES:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {target.dtype}")
    if input._data.dtype.kind != "f":
        raise NotImplementedError(f"nll_loss: not implemented for input dtype {input.dtype}")
    _check_weight_shape(input, weight, "")
    if weight is not None and weight.dtype != input.dtype:
        raise RuntimeError(f"expected scalar type {input.dtype} but found {weight.dtype}")
    return target


_CLASS_INDEX_DTYPES = (np.dtype(np.int64), np.dtype(np.uint8))


def _check_weight_shape(input: Tensor, weight, prefix: str) -> None:  # noqa: A002
    """A class weight has one entry per class (torch's message, ``prefix`` and all)."""
    if weight is None:
        return
    classes = input.shape[_class_dim(input)]
    if weight.ndim != 1 or weight.numel() != classes:
        raise RuntimeError(
            f"{prefix}weight tensor should be defined either for all {classes} classes or no "
            f"classes but got weight tensor of shape: {list(weight.shape)}"
        )


def cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits ``input`` (N, C, ...) or (C,) against class indices or class
    probabilities (a float ``target`` of the input's shape), through a stable log_softmax.

    >>> import graphgrad as gg
    >>> round(cross_entropy(gg.tensor([[0.0, 0.0]]), gg.tensor([1])).item(), 6)
    0.693147
    """
    reduction = _reduction(size_average, reduce, reduction)
    _check_tensor("cross_entropy", "target", target)
    if label_smoothing > 1.0:  # torch: a negative smoothing is no smoothing
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    dim = _class_dim(input)
    if target._data.shape == input._data.shape:  # torch: the same shape means probabilities
        _check_probability_targets(input, target, weight, ignore_index)
        log_p = input.log_softmax(dim)
        return _cross_entropy_soft(log_p, target, weight, reduction, label_smoothing, dim)
    target = _check_class_targets(input, target, weight)
    log_p = input.log_softmax(dim)
    nll = _nll(log_p, target, weight, ignore_index, reduction)
    if label_smoothing <= 0.0:
        return nll
    smooth = _smoothing_term(log_p, target, weight, ignore_index, reduction, dim)
    return (1.0 - label_smoothing) * nll + smooth * (label_smoothing / input.shape[dim])


def _check_probability_targets(input, target, weight, ignore_index) -> None:  # noqa: A002
    if not target.is_floating_point():
        raise RuntimeError(
            f"Expected floating point type for target with class probabilities, got "
            f"{target.dtype}"
        )
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    _check_weight_shape(input, weight, "cross_entropy: ")


def _class_weights(weight: Tensor, ndim: int, dim: int) -> Tensor:
    """``weight`` shaped to broadcast along the class dimension."""
    shape = [1] * ndim
    shape[dim] = -1
    return weight.reshape(shape)


def _smoothing_term(log_p, target, weight, ignore_index, reduction, dim) -> Tensor:
    """torch's label-smoothing part: minus the (weighted) sum of all log-probabilities."""
    if weight is not None:
        log_p = log_p * _class_weights(weight, log_p.ndim, dim)
    ignored = target._data == ignore_index
    smooth = where(wrap(ignored), 0.0, -log_p.sum(dim))
    if reduction == "mean":
        counted = target._data[~ignored]
        total = weight._data[counted].sum() if weight is not None else counted.size
        return smooth.sum() / wrap(np.asarray(total, dtype=log_p._data.dtype))
    return _reduce(smooth, reduction)


def _cross_entropy_soft(log_p, target, weight, reduction, label_smoothing, dim) -> Tensor:
    classes = log_p.shape[dim]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / classes
    terms = log_p * target
    if weight is not None:
        terms = terms * _class_weights(weight, log_p.ndim, dim)
    if reduction == "mean":
        return -terms.sum() / (log_p.numel() // classes)
    if reduction == "sum":
        return -terms.sum()
    return _reduce(-terms.sum(dim), reduction)


_BCE_EPS = float(np.float32(1e-12))  # torch's bound on p (1 - p), a float32 constant


class _BinaryCrossEntropy(Function):
    """Elementwise BCE with torch's derivative: (p - y) / max(p (1 - p), 1e-12) for p."""

    @staticmethod
    def forward(ctx, input, target, weight):  # noqa: A002
        ctx.save_for_backward(input, target, weight)
        with np.errstate(divide="ignore"):  # log(0) is -inf, then clamped as torch does
            log_p = input.log().clamp(min=-100.0)
            log_q = (1.0 - input).log().clamp(min=-100.0)
        loss = -(target * log_p + (1.0 - target) * log_q)
        return loss if weight is None else loss * weight

    @staticmethod
    def backward(ctx, grad):
        input, target, weight = ctx.saved_tensors  # noqa: A001
        if weight is not None:
            grad = grad * weight
        grad_input = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_input = grad * (input - target) / (input * (1.0 - input)).clamp(min=_BCE_EPS)
        if ctx.needs_input_grad[1]:
            with np.errstate(divide="ignore"):  # the logit is infinite at 0 and 1, as in torch
                grad_target = grad * ((1.0 - input).log() - input.log())
        return grad_input, grad_target, None


def binary_cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) with each log clamped to >= -100, as torch.

    >>> import graphgrad as gg
    >>> binary_cross_entropy(gg.tensor([0.0, 1.0]), gg.tensor([1.0, 1.0])).item()
    50.0
    """
    reduction = _reduction(size_average, reduce, reduction)
    _check_tensor("binary_cross_entropy", "target", target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}) is deprecated. Please ensure they have the same size."
        )
    if not input.is_floating_point():
        raise NotImplementedError(
            f"binary_cross_entropy: not implemented for input dtype {input.dtype}"
        )
    if target.dtype != input.dtype:
        raise RuntimeError(
            f"binary_cross_entropy: Found dtype {target.dtype} but expected {input.dtype} "
            f"(the target must have the input's dtype)"
        )
    values = input._data
    if values.size and not (values.min() >= 0.0 and values.max() <= 1.0):
        raise RuntimeError("all elements of input should be between 0 and 1")
    if weight is not None:
        weight = weight.expand(*input.shape)
    return _reduce(_BinaryCrossEntropy.apply(input, target, weight), reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """BCE of sigmoid(x), stably: (1 - y) x - w_pos log sigmoid(x), w_pos = (pos_weight - 1) y + 1.

    >>> import graphgrad as gg
    >>> binary_cross_entropy_with_logits(gg.tensor([1e4]), gg.tensor([0.0])).item()
    10000.0
    """
    reduction = _reduction(size_average, reduce, reduction)
    _check_tensor("binary_cross_entropy_with_logits", "target", target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Target size ({target.shape}) must be the same as input size ({input.shape})"
        )
    if not target.is_floating_point():
        raise RuntimeError(
            f"binary_cross_entropy_with_logits: result type {input.dtype} can't be cast to the "
            f"target's dtype {target.dtype} (use a floating-point target)"
        )
    for name, w in (("weight", weight), ("pos_weight", pos_weight)):
        if w is not None and np.broadcast_shapes(w.shape, input.shape) != tuple(input.shape):
            raise RuntimeError(
                f"binary_cross_entropy_with_logits: {name} of shape {list(w.shape)} does not "
                f"broadcast to the input's shape {list(input.shape)}"
            )
    size = input.abs()
    # log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)); min(x, 0) = (x - |x|) / 2 gives it torch's
    # gradient 1/2 at x = 0
    log_sigmoid = (input - size) * 0.5 - (-size).exp().log1p()
    if pos_weight is not None:
        log_sigmoid = log_sigmoid * ((pos_weight - 1.0) * target + 1.0)
    loss = (1.0 - target) * input - log_sigmoid
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def poisson_nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average=None,
    eps: float = 1e-8,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log-likelihood: exp(x) - y x of a log rate, or x - y log(x + eps) of a
    rate; ``full`` adds Stirling's y log y - y + log(2 pi y) / 2 where y > 1.

    >>> import graphgrad as gg
    >>> poisson_nll_loss(gg.tensor([0.0]), gg.tensor([2.0])).item()
    1.0
    """
    reduction = _reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        # computed everywhere and masked where y <= 1, as torch, so a target taking gradients
        # gets torch's NaN at y = 0
        with np.errstate(divide="ignore", invalid="ignore"):
            stirling = target * target.log() - target + 0.5 * (2 * math.pi * target).log()
        loss = loss + where(target <= 1, 0.0, stirling)
    return _reduce(loss, reduction)


def gaussian_nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    var,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Gaussian negative log-likelihood (log(var) + (x - y)^2 / var) / 2, ``var`` raised to at
    least ``eps`` in value only (torch clamps it in place under no_grad).

    >>> import graphgrad as gg
    >>> gaussian_nll_loss(gg.tensor([1.0]), gg.tensor([3.0]), gg.tensor([1.0])).item()
    2.0
    """
    var = _gaussian_var(input, var)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var + (var.clamp_min(eps) - var).detach()
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def _gaussian_var(input: Tensor, var) -> Tensor:  # noqa: A002
    """torch's checks of ``var``: non-negative, and the input's shape, or that shape short of
    its last dimension (then unsqueezed), or it but for one dimension of size 1."""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        return var * ones_like(input)
    if (var._data < 0).any():
        raise ValueError("var has negative entry/entries")
    shape, var_shape = tuple(input.shape), tuple(var.shape)
    if var_shape == shape:
        return var
    if shape[:-1] == var_shape:
        return var.unsqueeze(-1)
    mismatched = [v for s, v in zip(shape, var_shape) if s != v]
    if len(shape) == len(var_shape) and sum(mismatched) == 1:
        return var
    raise ValueError("var is of incorrect size")


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, -y (x1 - x2) + margin): y = 1 asks x1 to rank above x2, y = -1 below.

    >>> import graphgrad as gg
    >>> margin_ranking_loss(gg.tensor([1.0]), gg.tensor([2.0]), gg.tensor([1.0])).item()
    1.0
    """
    reduction = _reduction(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {input1.shape}, input2: {input2.shape}, target: {target.shape} "
        )
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def hinge_embedding_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    margin: float = 1.0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """x where y is not -1, plus max(0, margin - x) where y is not 1 (torch adds both terms,
    so a target that is neither gets both).

    >>> import graphgrad as gg
    >>> hinge_embedding_loss(gg.tensor([0.5, 2.0]), gg.tensor([-1.0, 1.0])).item()
    1.25
    """
    reduction = _reduction(size_average, reduce, reduction)
    hinge = where(target != 1, (margin - input).clamp_min(0), 0.0)
    return _reduce(hinge + where(target != -1, input, 0.0), reduction)


def soft_margin_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """log(1 + exp(-y x)), the logistic loss of targets in {-1, 1}.

    >>> import graphgrad as gg
    >>> round(soft_margin_loss(gg.tensor([0.0]), gg.tensor([1.0])).item(), 6)
    0.693147
    """
    reduction = _reduction(size_average, reduce, reduction)
    if target.requires_grad and is_grad_enabled():  # ATen's kernel has no target derivative
        raise RuntimeError(
            "The function 'soft_margin_loss' is not differentiable with respect to argument "
            "'target'. This input cannot have requires_grad True."
        )
    return _reduce((-input * target).exp().log1p(), reduction)


def multilabel_soft_margin_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of logits per class (weighted by ``weight``), averaged over the
    classes (the last dimension), then reduced over the samples.

    >>> import graphgrad as gg
    >>> round(multilabel_soft_margin_loss(gg.zeros(1, 3), gg.ones(1, 3)).item(), 6)
    0.693147
    """
    reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.ndim - 1
    loss = loss.sum(dim=class_dim) / input.shape[class_dim]
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    return _reduce(loss, reduction)


_COSINE_EPS = float(np.float32(1e-12))  # ATen's, a float32 constant added to each squared norm


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1; rows of (N, D)
    inputs against an (N,) target, or (D,) inputs against a 0-d one.

    >>> import graphgrad as gg
    >>> x = gg.tensor([[1.0, 0.0]])
    >>> cosine_embedding_loss(x, x, gg.tensor([-1.0])).item()
    1.0
    """
    reduction = _reduction(size_average, reduce, reduction)
    dim = target.ndim
    if dim not in (0, 1):
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if input1.ndim != dim + 1 or input2.ndim != dim + 1:
        raise RuntimeError(
            f"{dim}D target tensor expects {dim + 1}D input tensors, but found inputs with "
            f"sizes {list(input1.shape)} and {list(input2.shape)}."
        )
    product = (input1 * input2).sum(dim)
    square1 = (input1 * input1).sum(dim) + _COSINE_EPS
    square2 = (input2 * input2).sum(dim) + _COSINE_EPS
    cos = product / (square1 * square2).sqrt()
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, (cos - margin).clamp_min(0), 0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin) with d the pairwise p-norm distance; ``swap`` takes
    d(a, n) as min(d(a, n), d(p, n)).

    >>> import graphgrad as gg
    >>> a = gg.zeros(1, 2)
    >>> triplet_margin_loss(a, a, gg.tensor([[3.0, 4.0]]), margin=6.0, eps=0.0).item()
    1.0
    """
    reduction = _reduction(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(
            f"The anchor, positive, and negative tensors are expected to have the same number of "
            f"dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, and "
            f"negative {negative.ndim}D inputs"
        )
    to_positive = pairwise_distance(anchor, positive, p, eps)
    to_negative = pairwise_distance(anchor, negative, p, eps)
    if swap:
        to_negative = to_negative.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce((margin + to_positive - to_negative).clamp_min(0), reduction)


def multi_margin_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class hinge: the sum over classes j other than the target t of
    w[t] max(0, margin - x[t] + x[j])^p, divided by the number of classes.

    >>> import graphgrad as gg
    >>> multi_margin_loss(gg.tensor([[0.5, 0.0]]), gg.tensor([0])).item()
    0.25
    """
    reduction = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    rows, classes = _check_multi_margin(input, target, weight)
    scores = input.reshape(rows, classes)
    index = target.reshape(rows, 1)
    margins = (margin - scores.gather(1, index) + scores).clamp_min(0)
    if p == 2:
        margins = margins * margins
    if weight is not None:
        margins = margins * weight[index]
    is_target = wrap(np.arange(classes) == target._data.reshape(rows, 1))
    loss = where(is_target, 0.0, margins).sum(1) / classes
    if reduction == "none":  # one loss per row; a 0-d target gives a 0-d loss
        return loss if target.ndim else loss.reshape(())
    return _reduce(loss, reduction)


def _check_multi_margin(input: Tensor, target: Tensor, weight) -> tuple:  # noqa: A002
    """ATen's shape checks; returns the (rows, classes) the input is read as."""
    shape = tuple(input.shape)
    if not ((len(shape) == 2 and shape[1]) or (len(shape) == 1 and shape[0]) or not shape):
        raise RuntimeError(
            f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
            f"{list(shape)}"
        )
    rows = shape[0] if len(shape) == 2 else 1
    classes = shape[-1] if shape else 1
    if target.ndim > 1 or target.numel() != rows:
        raise RuntimeError(
            f"multi_margin_loss: target tensor should be 1-D with size equal to the number of "
            f"input samples (batch size). Expected target size [{rows}], but got "
            f"{list(target.shape)}. Input has shape {list(shape)}."
        )
    if weight is not None and weight.numel() != classes:
        raise RuntimeError(
            f"inconsistent weight size, expected {classes} but got {list(weight.shape)}"
        )
    if target.dtype.name != "int64":
        name = target.dtype.name
        raise RuntimeError(f"expected scalar type Long but found {_SCALAR_NAMES.get(name, name)}")
    values = target._data
    if values.size and (values.min() < 0 or values.max() >= classes):
        raise RuntimeError("target out of range")
    return rows, classes


# ---------------------------------------------------------------------- activations (issue 13)

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float_activation(name: str, input, kernel: str | None = None) -> Tensor:  # noqa: A002
    """torch's activation kernels (named ``kernel`` if not ``name``) take floating-point
    tensors only."""
    _check_tensor(name, "input", input)
    if input._data.dtype.kind != "f":
        raise NotImplementedError(
            f'"{kernel or name}_cpu" not implemented for \'{input.dtype.name}\''
        )
    return input


def silu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """x * sigmoid(x), one primitive (torch's SiluBackward0). ``inplace`` is accepted for
    torch's signature; graphgrad computes out of place, as for every ``inplace=`` below.

    >>> import graphgrad as gg
    >>> silu(gg.tensor([0.0, 1.0], dtype=gg.float64)).tolist()
    [0.0, 0.7310585786300049]
    """
    return apply(OPS["silu"], (_float_activation("silu", input),))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold, as torch.

    >>> import graphgrad as gg
    >>> softplus(gg.tensor([0.0, 30.0]), beta=2.0).tolist()
    [0.3465735912322998, 30.0]
    """
    return apply(OPS["softplus"], (_float_activation("softplus", input),), (beta, threshold))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """x for x > 0, else alpha (e^x - 1); the gradient at 0 is alpha, as torch's.

    >>> import graphgrad as gg
    >>> elu(gg.tensor([-1.0, 2.0], dtype=gg.float64)).tolist()
    [-0.6321205588285577, 2.0]
    """
    return apply(OPS["elu"], (_float_activation("elu", input),), (alpha, 1.0, 1.0))


def selu(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al. (2017).

    >>> import graphgrad as gg
    >>> round(selu(gg.tensor([1.0], dtype=gg.float64)).item(), 12)
    1.050700987355
    """
    x = _float_activation("selu", input, "elu")
    return apply(OPS["elu"], (x,), (_SELU_ALPHA, _SELU_SCALE, 1.0))


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(0, x) + min(0, alpha (e^(x / alpha) - 1)).

    >>> import graphgrad as gg
    >>> celu(gg.tensor([-2.0, 3.0], dtype=gg.float64), alpha=2.0).tolist()
    [-1.2642411176571153, 3.0]
    """
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    x = _float_activation("celu", input, "elu")
    return apply(OPS["celu"], (x,), (alpha, 1.0, 1.0 / alpha))


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False  # noqa: A002
) -> Tensor:
    """x clamped to [min_val, max_val], with no gradient at the bounds themselves (torch's;
    ``clamp`` passes it there).

    >>> import graphgrad as gg
    >>> hardtanh(gg.tensor([-3.0, 0.5, 3.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    _check_tensor("hardtanh", "input", input)
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if input._data.dtype.kind != "f":  # an integer tensor stays one, its bounds made integers
        min_val, max_val = int(min_val), int(max_val)
    return apply(OPS["hardtanh"], (input,), (min_val, max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """min(max(x, 0), 6): hardtanh(x, 0, 6), so no gradient at 0 or 6, as torch.

    >>> import graphgrad as gg
    >>> relu6(gg.tensor([-1.0, 3.0, 9.0])).tolist()
    [0.0, 3.0, 6.0]
    """
    return hardtanh(input, 0.0, 6.0)


def mish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """x * tanh(softplus(x)), one primitive (torch's MishBackward0).

    >>> import graphgrad as gg
    >>> round(mish(gg.tensor([1.0], dtype=gg.float64)).item(), 12)
    0.865098388267
    """
    return apply(OPS["mish"], (_float_activation("mish", input),))


def softsign(input: Tensor) -> Tensor:  # noqa: A002
    """x / (1 + |x|).

    >>> import graphgrad as gg
    >>> softsign(gg.tensor([-3.0, 1.0])).tolist()
    [-0.75, 0.5]
    """
    return input / (input.abs() + 1)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """min(max(x + 3, 0), 6) / 6; the gradient 1/6 strictly between -3 and 3, as torch (whose
    1/6 there is a float32 constant, for float64 too: 3e-8 from this exact one).

    >>> import graphgrad as gg
    >>> hardsigmoid(gg.tensor([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    return hardtanh(_float_activation("hardsigmoid", input) + 3.0, 0.0, 6.0) / 6.0


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:  # noqa: A002
    """x * min(max(x + 3, 0), 6) / 6, with torch's gradients 0 at -3 and 1 at 3.

    >>> import graphgrad as gg
    >>> hardswish(gg.tensor([-4.0, 1.0, 4.0])).tolist()
    [-0.0, 0.6666666865348816, 4.0]
    """
    input = _float_activation("hardswish", input)  # noqa: A001
    return input * hardtanh(input + 3.0, 0.0, 6.0) / 6.0


def logsigmoid(input: Tensor) -> Tensor:  # noqa: A002
    """log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|), stable for large |x|.

    >>> import graphgrad as gg
    >>> logsigmoid(gg.tensor([-100.0, 0.0], dtype=gg.float64)).tolist()
    [-100.0, -0.6931471805599453]
    """
    size = _float_activation("logsigmoid", input, "log_sigmoid").abs()
    # min(x, 0) as (x - |x|) / 2, exact, with torch's gradient 1/2 at x = 0
    return (input - size) * 0.5 - (-size).exp().log1p()


def prelu(input: Tensor, weight: Tensor) -> Tensor:  # noqa: A002
    """x for x > 0, else weight * x; ``weight`` has one element or one per channel (dim 1).

    >>> import graphgrad as gg
    >>> prelu(gg.tensor([[-2.0, 2.0]]), gg.tensor([0.25, 0.5])).tolist()
    [[-0.5, 2.0]]
    """
    _check_tensor("prelu", "input", input)
    _check_tensor("prelu", "weight", weight)
    if weight.ndim > 1:
        raise RuntimeError(
            f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.ndim}"
        )
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise RuntimeError(
            f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
            f"{weight.numel()} and channel size = {channels}."
        )
    if weight.dtype != input.dtype:
        raise RuntimeError(
            f"prelu: Type promoting not supported. Got {input.dtype.name} and {weight.dtype.name}"
        )
    if weight.numel() == 1:
        weight = weight.reshape(())
    elif input.ndim > 2:
        weight = weight.reshape((channels,) + (1,) * (input.ndim - 2))
    return where(input > 0, input, weight * input)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:  # noqa: A002
    """softmax(-x) along ``dim``.

    >>> import graphgrad as gg
    >>> softmin(gg.tensor([[0.0, 0.0]]), dim=1).tolist()
    [[0.5, 0.5]]
    """
    if dim is None:
        warnings.warn(
            "Implicit dimension choice for softmin has been deprecated. "
            "Change the call to include dim=X as an argument.",
            stacklevel=2,
        )
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return (-input).softmax(dim, dtype=dtype)


def _check_lambda(input: Tensor, lambd: float) -> None:  # noqa: A002
    """torch's softshrink refuses a negative lambda, naming the dtype's largest value."""
    if lambd < 0:
        largest = float(np.finfo(input._data.dtype).max) if input._data.dtype.kind == "f" else 0
        name = {"float64": "Double", "float32": "Float", "float16": "Half"}.get(
            input.dtype.name, input.dtype.name)
        raise RuntimeError(f"lambda must be in range [0, {largest:g}] for input dtype {name}, "
                           f"but found {lambd:g}")  # fmt: skip


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    """0 where -lambd <= x <= lambd, else x (NaN stays NaN, as torch).

    >>> import graphgrad as gg
    >>> hardshrink(gg.tensor([-1.0, 0.5, 0.75])).tolist()
    [-1.0, 0.0, 0.75]
    """
    return where((input >= -lambd) & (input <= lambd), 0.0, input)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    """x - lambd above lambd, x + lambd below -lambd, else 0 (gradient 0 at +-lambd, 1 at
    NaN, as torch).

    >>> import graphgrad as gg
    >>> softshrink(gg.tensor([-1.0, 0.25, 0.75])).tolist()
    [-0.5, 0.0, 0.25]
    """
    _check_lambda(input, lambd)
    inside = (input >= -lambd) & (input <= lambd)
    return where(inside, input * 0.0, where(input > lambd, input - lambd, input + lambd))


def tanhshrink(input: Tensor) -> Tensor:  # noqa: A002
    """x - tanh(x).

    >>> import graphgrad as gg
    >>> tanhshrink(gg.tensor([0.0])).tolist()
    [0.0]
    """
    return input - input.tanh()


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:  # noqa: A002
    """``value`` where x <= threshold, else x. ``inplace`` is accepted for torch's signature;
    graphgrad computes out of place.

    >>> import graphgrad as gg
    >>> threshold(gg.tensor([0.1, 2.0]), 0.5, 9.0).tolist()
    [9.0, 2.0]
    """
    return where(input <= threshold, value, input)


def glu(input: Tensor, dim: int = -1) -> Tensor:  # noqa: A002
    """The gated linear unit: the first half of ``dim`` times the sigmoid of the second.

    >>> import graphgrad as gg
    >>> glu(gg.tensor([2.0, 0.0])).tolist()
    [1.0]
    """
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    dim = dim % input.ndim
    if input.shape[dim] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size "
                           f"{input.shape[dim]}")  # fmt: skip
    first, second = input.chunk(2, dim)
    return first * second.sigmoid()


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None  # noqa: A002
) -> Tensor:
    """input / max(||input||_p along ``dim``, eps); a zero slice stays zero, its gradient 1/eps
    as torch's (no NaN from the norm's derivative at 0).

    >>> import graphgrad as gg
    >>> normalize(gg.tensor([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    if out is not None:
        from ..tensor import with_out  # F's imports sit above the shared sections

        return with_out(normalize)(input, p, dim, eps, out=out)
    return input / _vector_norm(input, p, dim).clamp_min(eps).expand_as(input)


def _vector_norm(x: Tensor, p: float, dim) -> Tensor:
    """||x||_p along ``dim``, kept; the root runs only on positive sums, so that a zero slice
    has torch's zero gradient rather than the root's infinite one."""
    if p == math.inf:
        return x.abs().amax(dim, keepdim=True)
    if p == -math.inf:
        return x.abs().amin(dim, keepdim=True)
    if p == 0:
        return (x != 0).to(x.dtype).sum(dim, keepdim=True)
    if p == 1:
        return x.abs().sum(dim, keepdim=True)
    if p == 2:
        total = (x * x).sum(dim, keepdim=True)
    else:  # |x|^p at 0 is 0, its derivative there 0 (not |0|^(p - 1) = inf for p < 1)
        size = x.abs()
        nonzero = size > 0
        total = where(nonzero, where(nonzero, size, 1.0) ** p, 0.0).sum(dim, keepdim=True)
    positive = total > 0
    safe = where(positive, total, 1.0)
    return where(positive, safe.sqrt() if p == 2 else safe ** (1.0 / p), 0.0)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False  # noqa: A002
) -> Tensor:
    """Zero whole channels (dims 0 and 1 pick one) with probability ``p`` and scale the rest by
    1 / (1 - p) when training, as torch 2.13: its warnings for inputs that are not 3-D or 4-D,
    and a 3-D input read as (N, C, L).

    >>> import graphgrad as gg
    >>> dropout2d(gg.ones(1, 2, 2, 2), training=False).sum().item()
    8.0
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    ndim = input.ndim
    if ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    return _feature_dropout(input, p, training)


def _feature_dropout(input: Tensor, p: float, training: bool) -> Tensor:  # noqa: A002
    """ATen's feature_dropout: one keep-or-zero draw per (sample, channel), dims 0 and 1."""
    from ..creation import rand  # F's imports sit above the shared sections

    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return input * 0.0
    ndim = input.ndim
    if ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    shape = tuple(input.shape[:2]) + (1,) * (ndim - 2)
    keep = rand(shape, dtype=input.dtype) < (1.0 - p)
    return input * (keep.to(input.dtype) / (1.0 - p))


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False  # noqa: A002
) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) ``input`` with probability ``p`` and scale
    the rest by 1 / (1 - p) when training.

    >>> import graphgrad as gg
    >>> dropout1d(gg.ones(2, 3), training=False).sum().item()
    6.0
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    ndim = input.ndim
    if ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {ndim}D input. Note that "
            "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            "inputs)."
        )
    if ndim == 3:
        return _feature_dropout(input, p, training)
    return _feature_dropout(input.unsqueeze(0), p, training).squeeze(0)


# ---------------------------------------------------------------------- losses (issue 13)

def smooth_l1_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target); beta 0 is the
    L1 loss.

    >>> import graphgrad as gg
    >>> smooth_l1_loss(gg.tensor([0.5, 3.0]), gg.zeros(2), reduction="none").tolist()
    [0.125, 2.5]
    """
    _check_tensor("smooth_l1_loss", "input", input)
    _check_target_size("smooth_l1_loss", input, target)
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    diff = input - target
    size = diff.abs()
    if beta == 0.0:
        return _reduce(size, reduction)
    return _reduce(where(size < beta, 0.5 * diff * diff / beta, size - 0.5 * beta), reduction)


_KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def kl_div(
    input: Tensor,  # noqa: A002
    target: Tensor,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """KL divergence of ``target`` from log-probabilities ``input``, pointwise
    target (log target - input); 'batchmean' divides the sum by the batch size (the true KL
    divergence per sample), 'mean' by the number of elements (with torch's warning).

    >>> import graphgrad as gg
    >>> p = gg.tensor([[0.5, 0.5]])
    >>> kl_div(p.log(), p, reduction="batchmean").item()
    0.0
    """
    _check_tensor("kl_div", "input", input)
    _check_tensor("kl_div", "target", target)
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    elif reduction not in _KL_REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    elif reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            stacklevel=2,
        )
    if log_target:
        pointwise = target.exp() * (target - input)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 log 0 is 0, as torch's xlogy
            pointwise = where(target == 0, 0.0, target * target.log()) - target * input
    if reduction == "batchmean":
        total = pointwise.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(pointwise, reduction)


# ---------------------------------------------------------------------- convolution and pooling

_SCALAR_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half", "int64": "Long",
                 "int32": "Int", "bfloat16": "BFloat16"}  # fmt: skip


def _spatial(value, d: int, name: str, fn: str) -> tuple:
    """torch's int-or-sequence argument as ``d`` ints (a single value stands for all)."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * d
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values * d
    if len(values) != d:
        if fn.startswith("conv"):
            raise RuntimeError(
                f"expected {name} to be a single integer value or a list of {d} values to match "
                f"the convolution dimensions, but got {name}={list(values)}"
            )
        raise RuntimeError(f"{fn}: {name} must either be a single int, or a tuple of {d} ints")
    return values


def _batched(input, d: int, fn: str, message: str | None = None):  # noqa: A002
    """``input`` with a batch dimension (added to an unbatched one), and whether it was added."""
    _check_tensor(fn, "input", input)
    if input.ndim not in (d + 1, d + 2):
        raise RuntimeError(message or (
            f"Expected {d + 1}D (unbatched) or {d + 2}D (batched) input to {fn}, but got input "
            f"of size: {list(input.shape)}"))  # fmt: skip
    if input.ndim == d + 1:
        return input.unsqueeze(0), True
    return input, False


def _unbatched(out: Tensor, unbatched: bool) -> Tensor:
    return out.squeeze(0) if unbatched else out


def _check_conv(fn: str, x: Tensor, weight, bias, groups: int, transposed: bool) -> None:
    """torch's checks of a convolution's operands, with torch's messages."""
    _check_tensor(fn, "weight", weight)
    d = x.ndim - 2
    size = list(weight.shape)
    if weight.ndim != d + 2:
        raise RuntimeError(f"{fn}: expected weight to be {d + 2}-dimensional, but got weight of "
                           f"size {size}")  # fmt: skip
    if x.dtype != weight.dtype:
        names = (_SCALAR_NAMES.get(t.name, t.name) for t in (x.dtype, weight.dtype))
        raise RuntimeError("expected scalar type {} but found {}".format(*names))
    if bias is not None and bias.dtype != x.dtype:
        raise RuntimeError(f"Input type ({_SCALAR_NAMES.get(x.dtype.name, '').lower()}) and bias "
                           f"type ({_SCALAR_NAMES.get(bias.dtype.name, '').lower()}) should be "
                           f"the same")  # fmt: skip
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if not transposed and size[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size [{size}] instead")  # fmt: skip
    channels = size[0] if transposed else size[1] * groups
    if x.shape[1] != channels:
        given = "transposed=1" if transposed else f"groups={groups}"
        raise RuntimeError(f"Given {given}, weight of size {size}, expected input"
                           f"{list(x.shape)} to have {channels} channels, but got {x.shape[1]} "
                           f"channels instead")  # fmt: skip
    out_channels = size[1] * groups if transposed else size[0]
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise RuntimeError(f"Given weight of size {size}, expected bias to be 1-dimensional with "
                           f"{out_channels} elements, but got bias of size {list(bias.shape)} "
                           f"instead")  # fmt: skip


def _conv_steps(fn: str, d: int, stride, dilation) -> tuple:
    stride, dilation = _spatial(stride, d, "stride", fn), _spatial(dilation, d, "dilation", fn)
    if min(stride) <= 0:
        raise RuntimeError("non-positive stride is not supported")
    if min(dilation) <= 0:
        raise RuntimeError("dilation should be greater than zero")
    return stride, dilation


def _conv_padding(fn: str, padding, kernel, stride, dilation) -> tuple:
    """The padding in front of and behind each spatial dimension: torch's 'same' pads an even
    kernel's odd total one more behind."""
    d = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * d, (0,) * d
        if padding != "same":
            raise RuntimeError(f"Invalid padding string: {padding!r}")
        if max(stride) != 1:
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        total = tuple(r * (k - 1) for r, k in zip(dilation, kernel))
        front = tuple(t // 2 for t in total)
        return front, tuple(t - f for t, f in zip(total, front))
    padding = _spatial(padding, d, "padding", fn)
    if min(padding) < 0:
        raise RuntimeError("negative padding is not supported")
    return padding, padding


def _convnd(d, fn, input, weight, bias, stride, padding, dilation, groups) -> Tensor:  # noqa: A002
    x, unbatched = _batched(input, d, fn)
    _check_conv(fn, x, weight, bias, groups, transposed=False)
    stride, dilation = _conv_steps(fn, d, stride, dilation)
    kernel = tuple(weight.shape[2:])
    front, back = _conv_padding(fn, padding, kernel, stride, dilation)
    padded = [s + f + b for s, f, b in zip(x.shape[2:], front, back)]
    extent = [r * (k - 1) + 1 for r, k in zip(dilation, kernel)]
    if any(p < e for p, e in zip(padded, extent)):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
            f"Kernel size: ({' x '.join(map(str, extent))}). Kernel size can't be greater than "
            f"actual input size"
        )
    out_shape = tuple((p - e) // s + 1 for p, e, s in zip(padded, extent, stride))
    out = apply(OPS["conv"], (x, weight, bias), (stride, front, dilation, groups, out_shape))
    return _unbatched(out, unbatched)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:  # noqa: A002
    """1-D convolution (torch's cross-correlation) of (N, C, L) or (C, L) ``input`` with
    ``weight`` (out_channels, C/groups, k); ``padding`` an int, a tuple, 'valid' or 'same'.

    >>> import graphgrad as gg
    >>> conv1d(gg.tensor([[[1.0, 2.0, 3.0]]]), gg.tensor([[[1.0, -1.0]]])).tolist()
    [[[-1.0, -1.0]]]
    """
    return _convnd(1, "conv1d", input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:  # noqa: A002
    """2-D convolution of (N, C, H, W) or (C, H, W) ``input`` with ``weight``
    (out_channels, C/groups, kH, kW), by im2col and one matmul.

    >>> import graphgrad as gg
    >>> conv2d(gg.ones(1, 1, 3, 3), gg.ones(2, 1, 2, 2), padding="same").shape
    graphgrad.Size([1, 2, 3, 3])
    """
    return _convnd(2, "conv2d", input, weight, bias, stride, padding, dilation, groups)


def _conv_transposend(d, fn, input, weight, bias, stride, padding, output_padding, groups,  # noqa: A002
                      dilation) -> Tensor:  # fmt: skip
    x, unbatched = _batched(input, d, fn)
    _check_conv(fn, x, weight, bias, groups, transposed=True)
    stride, dilation = _conv_steps(fn, d, stride, dilation)
    padding = _spatial(padding, d, "padding", fn)
    extra = _spatial(output_padding, d, "output_padding", fn)
    if min(padding) < 0:
        raise RuntimeError("negative padding is not supported")
    if any(e >= s and e >= r for e, s, r in zip(extra, stride, dilation)):
        names = ("height", "width")[-d:] if d <= 2 else [str(i) for i in range(d)]
        described = " ".join(
            f"{what}_{name}: {value}"
            for what, values in (("output_padding", extra), ("stride", stride),
                                 ("dilation", dilation))
            for name, value in zip(names, values)
        )  # fmt: skip
        raise RuntimeError(
            f"output padding must be smaller than either stride or dilation, but got {described}"
        )
    kernel = tuple(weight.shape[2:])
    out_shape = tuple(
        (n - 1) * s - 2 * p + r * (k - 1) + e + 1
        for n, s, p, r, k, e in zip(x.shape[2:], stride, padding, dilation, kernel, extra)
    )
    if min(out_shape) <= 0:
        raise RuntimeError(
            f"Given input size per channel: ({' x '.join(map(str, x.shape[2:]))}). Calculated "
            f"output size per channel: ({' x '.join(map(str, out_shape))}). Output size is too "
            f"small"
        )
    params = (stride, padding, dilation, groups, out_shape)
    return _unbatched(apply(OPS["conv_transpose"], (x, weight, bias), params), unbatched)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,  # noqa: A002
                     dilation=1) -> Tensor:  # fmt: skip
    """The transpose of conv1d (its gradient in the input), ``weight`` (in_channels,
    out_channels/groups, k).

    >>> import graphgrad as gg
    >>> conv_transpose1d(gg.tensor([[[1.0, 2.0]]]), gg.tensor([[[1.0, 1.0]]])).tolist()
    [[[1.0, 3.0, 2.0]]]
    """
    return _conv_transposend(1, "conv_transpose1d", input, weight, bias, stride, padding,
                             output_padding, groups, dilation)  # fmt: skip


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,  # noqa: A002
                     dilation=1) -> Tensor:  # fmt: skip
    """The transpose of conv2d, ``weight`` (in_channels, out_channels/groups, kH, kW); the
    output is (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1 high.

    >>> import graphgrad as gg
    >>> conv_transpose2d(gg.ones(1, 1, 2, 2), gg.ones(1, 1, 2, 2), stride=2).shape
    graphgrad.Size([1, 1, 4, 4])
    """
    return _conv_transposend(2, "conv_transpose2d", input, weight, bias, stride, padding,
                             output_padding, groups, dilation)  # fmt: skip


def _pool_size(size: int, k: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape: a last window must start inside the input or its front
    padding."""
    span = size + 2 * pad - dilation * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pool_geometry(fn, x, kernel_size, stride, padding, dilation, ceil_mode) -> tuple:
    """kernel, stride, padding, dilation and the output's spatial shape, checked as torch."""
    d = x.ndim - 2
    kernel = _spatial(kernel_size, d, "kernel_size", fn)
    stride = kernel if stride is None or stride == [] else _spatial(stride, d, "stride", fn)
    padding = _spatial(padding, d, "padding", fn)
    dilation = _spatial(dilation, d, "dilation", fn)
    for name, values in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if min(values) <= 0:
            raise RuntimeError(f"{fn}: {name} must be greater than zero, but got {values}")
    for p, k, r in zip(padding, kernel, dilation):
        if not 0 <= p <= (r * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p}, kernel_size={k} and dilation={r}")  # fmt: skip
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        sizes = ", ".join([f"pad{n} = {p}" for n, p in zip("HW"[-d:][::-1], padding[::-1])]
                          + [f"k{n} = {k}" for n, k in zip("HW"[-d:][::-1], kernel[::-1])])
        raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but got "
                           f"{sizes}")  # fmt: skip
    out_shape = tuple(_pool_size(*args, ceil_mode)
                      for args in zip(x.shape[2:], kernel, padding, stride, dilation))  # fmt: skip
    if min(out_shape) <= 0:
        given = "x".join(map(str, x.shape[1:]))
        calculated = "x".join(map(str, (x.shape[1],) + out_shape))
        raise RuntimeError(f"Given input size: ({given}). Calculated output size: ({calculated})."
                           f" Output size is too small")  # fmt: skip
    return kernel, stride, padding, dilation, out_shape


def _windows_inside(sizes, kernel, stride, padding, dilation, out_shape) -> np.ndarray:
    """Whether each pooling window holds at least one input element (by shapes alone)."""
    inside = np.ones((), bool)
    for size, k, s, p, r, n in zip(sizes, kernel, stride, padding, dilation, out_shape):
        taps = (np.arange(n) * s - p)[:, None] + np.arange(k) * r
        inside = np.multiply.outer(inside, ((taps >= 0) & (taps < size)).any(1))
    return inside


def _max_poolnd(d, fn, input, kernel_size, stride, padding, dilation, ceil_mode,  # noqa: A002
                return_indices):  # fmt: skip
    message = f"non-empty {d + 1}D or {d + 2}D (batch mode) tensor expected for input"
    x, unbatched = _batched(input, d, fn, message)
    if x.numel() == 0:
        raise RuntimeError(message)
    geometry = _pool_geometry(fn, x, kernel_size, stride, padding, dilation, ceil_mode)
    indices = apply(OPS["max_pool_indices"], (x,), geometry)
    out = apply(OPS["max_pool"], (x, indices))
    inside = _windows_inside(x.shape[2:], *geometry)
    if not inside.all():  # a dilated window can miss the input: torch's -inf, no gradient
        out = where(wrap(inside), out, float("-inf"))
    out = _unbatched(out, unbatched)
    return (out, _unbatched(indices, unbatched)) if return_indices else out


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):  # fmt: skip
    """The largest value of each window of (N, C, L) or (C, L) ``input``; ``return_indices``
    also gives each maximum's position in its row (ties: the first, as torch).

    >>> import graphgrad as gg
    >>> max_pool1d(gg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2).tolist()
    [[[3.0, 2.0]]]
    """
    return _max_poolnd(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices)  # fmt: skip


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):  # fmt: skip
    """The largest value of each window of (N, C, H, W) or (C, H, W) ``input`` (stride
    defaults to the kernel size, padding is -inf); ``return_indices`` also gives each
    maximum's flat position in its H x W plane.

    >>> import graphgrad as gg
    >>> max_pool2d(gg.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _max_poolnd(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices)  # fmt: skip


def _avg_divisor(sizes, kernel, stride, padding, out_shape, count_include_pad, dtype):
    """torch's divisor for each window: its size within the padded input, or the count of its
    input elements; separable, so an outer product of one vector per dimension."""
    divisor = np.ones((), dtype)
    for size, k, s, p, n in zip(sizes, kernel, stride, padding, out_shape):
        start = np.arange(n) * s - p
        end = np.minimum(start + k, size + p)
        if count_include_pad:
            count = end - start
        else:
            count = np.minimum(end, size) - np.maximum(start, 0)
        divisor = np.multiply.outer(divisor, count.astype(dtype))
    return divisor


def _avg_poolnd(d, fn, input, kernel_size, stride, padding, ceil_mode, count_include_pad,  # noqa: A002
                divisor_override):  # fmt: skip
    message = (f"{fn}: expected {d + 1}D or {d + 2}D input, got {input.ndim}D input of size "
               f"{list(input.shape)}")  # fmt: skip
    x, unbatched = _batched(input, d, fn, message)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    kernel, stride, padding, _, out_shape = _pool_geometry(fn, x, kernel_size, stride, padding,
                                                           1, ceil_mode)  # fmt: skip
    n, c, *sizes = x.shape
    planes = x.reshape(n * c, 1, *sizes)
    ones = wrap(np.ones((1, 1) + kernel, x._data.dtype))
    # a window sum is a convolution of each plane with ones
    sums = apply(OPS["conv"], (planes, ones, None), (stride, padding, (1,) * d, 1, out_shape))
    sums = sums.reshape(n, c, *out_shape)
    if divisor_override is not None:
        divisor = np.asarray(divisor_override, x._data.dtype)
    else:
        divisor = _avg_divisor(sizes, kernel, stride, padding, out_shape, count_include_pad,
                               x._data.dtype)  # fmt: skip
    if x._data.dtype.kind != "f":  # torch divides integers in C++: truncating
        return _unbatched(sums.div(wrap(divisor), rounding_mode="trunc"), unbatched)
    return _unbatched(sums / wrap(divisor), unbatched)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True) -> Tensor:  # fmt: skip
    """The mean of each window of (N, C, L) or (C, L) ``input``.

    >>> import graphgrad as gg
    >>> avg_pool1d(gg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2).tolist()
    [[[2.0, 1.0]]]
    """
    return _avg_poolnd(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, None)  # fmt: skip


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True, divisor_override=None) -> Tensor:  # fmt: skip
    """The mean of each window of (N, C, H, W) or (C, H, W) ``input``: its sum divided by
    ``divisor_override``, or by the window's size counting the zero padding
    (``count_include_pad``) or not.

    >>> import graphgrad as gg
    >>> avg_pool2d(gg.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[2.5, 4.5], [10.5, 12.5]]]]
    """
    return _avg_poolnd(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)  # fmt: skip


def _adaptive_windows(size: int, out: int, dtype):
    """The (out, size) 0/1 matrix of torch's adaptive windows [floor(i size / out),
    ceil((i + 1) size / out)), and each window's length."""
    i = np.arange(out)
    start, end = (i * size) // out, -((-(i + 1) * size) // out)
    positions = np.arange(size)
    member = (positions >= start[:, None]) & (positions < end[:, None])
    return member.astype(dtype), (end - start).astype(dtype)


def _adaptive_avg_poolnd(d, fn, input, output_size) -> Tensor:  # noqa: A002
    x, unbatched = _batched(input, d, fn, f"{fn}(): Expected {d + 1}D or {d + 2}D tensor, but "
                                          f"got {list(input.shape)}")  # fmt: skip
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * d
    if len(output_size) != d:
        raise RuntimeError(f"{fn}: output_size must be {d}")
    sizes = tuple(x.shape[2:])
    out_shape = tuple(s if o is None else int(o) for s, o in zip(sizes, output_size))
    dtype = x._data.dtype
    last, count = _adaptive_windows(sizes[-1], out_shape[-1], dtype)
    out = x @ wrap(np.ascontiguousarray(last.T))  # one matmul per pooled dimension
    if d == 2:
        first, first_count = _adaptive_windows(sizes[0], out_shape[0], dtype)
        out = wrap(first) @ out
        count = np.multiply.outer(first_count, count)
    return _unbatched(out / wrap(count), unbatched)


def adaptive_avg_pool1d(input, output_size) -> Tensor:  # noqa: A002
    """Mean pooling of (N, C, L) or (C, L) ``input`` to ``output_size`` windows, torch's
    overlapping [floor(i L / out), ceil((i + 1) L / out)).

    >>> import graphgrad as gg
    >>> adaptive_avg_pool1d(gg.tensor([[[1.0, 2.0, 3.0]]]), 2).tolist()
    [[[1.5, 2.5]]]
    """
    return _adaptive_avg_poolnd(1, "adaptive_avg_pool1d", input, output_size)


def adaptive_avg_pool2d(input, output_size) -> Tensor:  # noqa: A002
    """Mean pooling of (N, C, H, W) or (C, H, W) ``input`` to ``output_size`` (an int, or a
    pair whose None entries keep the input's size), with torch's window bounds.

    >>> import graphgrad as gg
    >>> adaptive_avg_pool2d(gg.arange(16.0).reshape(1, 1, 4, 4), 1).tolist()
    [[[[7.5]]]]
    """
    return _adaptive_avg_poolnd(2, "adaptive_avg_pool2d", input, output_size)


def _adaptive_taps(size: int, out: int) -> np.ndarray:
    """(out, longest window) positions of torch's adaptive windows along one dimension; a
    shorter window repeats its last position, which changes neither the first maximum nor
    the last NaN that torch's row-major scan picks."""
    i = np.arange(out)
    start, end = (i * size) // out, -((-(i + 1) * size) // out)
    return start[:, None] + np.minimum(np.arange((end - start).max()), (end - start - 1)[:, None])


def _adaptive_window_taps(sizes, out_shape: tuple) -> np.ndarray:
    """(*out_shape, longest window) flat in-plane positions of every adaptive window, from the
    shapes alone: a constant, so a traced or compiled step replays the pooling itself."""
    d = len(out_shape)
    flat = np.zeros((1,) * 2 * d, np.int64)
    for axis, (size, out) in enumerate(zip(sizes, out_shape)):
        shape = [1] * 2 * d
        shape[axis], shape[d + axis] = out, -1
        flat = flat * size + _adaptive_taps(size, out).reshape(shape)
    return flat.reshape(tuple(out_shape) + (-1,))


def _adaptive_max(x: Tensor, out_shape: tuple) -> tuple:
    """Each adaptive window's maximum and its flat in-plane position, as torch's CPU kernel
    picks it: the first maximum, or the last NaN of a window holding any. Made of ops (the
    windows gathered, argmax, take_along_dim), so the gradient reaches the chosen inputs."""
    n, c = x.shape[:2]
    taps = _adaptive_window_taps(x.shape[2:], out_shape)
    windows = x.reshape(n, c, -1)[:, :, taps]
    nan = windows.isnan()
    last_nan = (taps.shape[-1] - 1) - nan.flip(-1).argmax(-1, keepdim=True)
    best = where(nan.any(-1, keepdim=True), last_nan, windows.argmax(-1, keepdim=True))
    out = take_along_dim(windows, best, -1).squeeze(-1)
    positions = take_along_dim(wrap(taps).expand(n, c, *taps.shape), best, -1).squeeze(-1)
    return out, positions


def _adaptive_max_poolnd(d, fn, input, output_size, return_indices):  # noqa: A002
    if d == 1:
        message = (f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional tensor for "
                   f"argument #1 'self' (while checking arguments for {fn})")
    else:
        message = f"{fn}(): Expected 3D or 4D tensor, but got: {list(input.shape)}"
    x, unbatched = _batched(input, d, fn, message)
    for dim in range(1, x.ndim):
        if x.shape[dim] == 0:
            raise RuntimeError(f"{fn}(): Expected input to have non-zero size for non-batch "
                               f"dimensions, but input has sizes {list(input.shape)} with "
                               f"dimension {dim - unbatched} being empty")  # fmt: skip
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * d
    if len(output_size) != d:
        raise RuntimeError(f"{fn}() argument 'output_size' should contain {d} ints "
                           f"(got {len(output_size)})" if d > 1 else
                           f"{fn}() argument 'output_size' should contain one int "
                           f"(got {len(output_size)})")  # fmt: skip
    out_shape = tuple(s if o is None else int(o) for s, o in zip(x.shape[2:], output_size))
    out, indices = _adaptive_max(x, out_shape)
    out = _unbatched(out, unbatched)
    return (out, _unbatched(indices, unbatched)) if return_indices else out


def adaptive_max_pool1d(input, output_size, return_indices: bool = False):  # noqa: A002
    """The largest value of each of ``output_size`` adaptive windows of (N, C, L) or (C, L)
    ``input``; ``return_indices`` also gives each maximum's position (torch's ties: the first
    maximum, or the last NaN).

    >>> import graphgrad as gg
    >>> adaptive_max_pool1d(gg.tensor([[[1.0, 4.0, 3.0, 0.0, 2.0]]]), 2).tolist()
    [[[4.0, 3.0]]]
    """
    return _adaptive_max_poolnd(1, "adaptive_max_pool1d", input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):  # noqa: A002
    """The largest value of each adaptive window of (N, C, H, W) or (C, H, W) ``input``
    (``output_size`` an int or a pair whose None entries keep the input's size); indices are
    flat positions in each H x W plane, as torch's.

    >>> import graphgrad as gg
    >>> adaptive_max_pool2d(gg.arange(16.0).reshape(1, 1, 4, 4), 1, True)[1].tolist()
    [[[[15]]]]
    """
    return _adaptive_max_poolnd(2, "adaptive_max_pool2d", input, output_size, return_indices)


def pad(input, pad, mode: str = "constant", value=None) -> Tensor:  # noqa: A002
    """Pad (or, with negative amounts, crop) the last dimensions: ``pad`` lists (before,
    after) for the last dimension first, as torch. Modes: 'constant' (``value``, default 0),
    'reflect', 'replicate' and 'circular'.

    >>> import graphgrad as gg
    >>> pad(gg.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect").tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    """
    _check_tensor("pad", "input", input)
    amounts = tuple(int(p) for p in pad)
    if len(amounts) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(amounts) // 2 > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(amounts)} and input of "
                           f"dimension {input.ndim}")  # fmt: skip
    pairs = {input.ndim - 1 - i: amounts[2 * i : 2 * i + 2] for i in range(len(amounts) // 2)}
    if mode == "constant":
        return _pad_constant(input, pairs, 0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value:
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    dims = len(pairs)
    if dims > 3 or input.ndim not in (dims + 1, dims + 2):
        raise NotImplementedError(
            f"Padding size {len(amounts)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")  # fmt: skip
    return _pad_by_index(input, pairs, mode)


def _pad_constant(input: Tensor, pairs: dict, value) -> Tensor:  # noqa: A002
    """Crops by one slice, then pads by one index_add into zeros (its gradient is a slice),
    plus a constant frame for a nonzero ``value``."""
    shape = list(input.shape)
    crop = [slice(None)] * input.ndim
    for dim, (before, after) in pairs.items():
        crop[dim] = slice(max(-before, 0), shape[dim] + min(after, 0))
    x = input[tuple(crop)] if any(min(p) < 0 for p in pairs.values()) else input
    grown = list(x.shape)
    inside = [slice(None)] * input.ndim
    for dim, (before, after) in pairs.items():
        before, after = max(before, 0), max(after, 0)
        inside[dim] = slice(before, before + grown[dim])
        grown[dim] += before + after
    if min(grown, default=0) < 0:
        raise RuntimeError(f"The input size {list(input.shape)}, plus negative padding "
                           f"{[p for pair in pairs.values() for p in pair]} resulted in a "
                           f"negative output size, which is invalid.")  # fmt: skip
    if tuple(grown) == tuple(x.shape):
        return x
    out = apply(OPS["index_add"], (x,), (tuple(grown), tuple(inside), False))
    if value == 0:
        return out
    frame = np.full(grown, value, x._data.dtype)
    frame[tuple(inside)] = 0
    return out + wrap(frame)


def _check_reflect(input: Tensor, pairs: dict) -> None:  # noqa: A002
    """torch checks the last dimension first, naming its pair's place among the op's arguments
    (#4 for the last dimension, #6 for the one before, ...)."""
    for argument, dim in enumerate(sorted(pairs, reverse=True)):
        (before, after), size = pairs[dim], input.shape[dim]
        if before >= size or after >= size:
            raise RuntimeError(f"Argument #{4 + 2 * argument}: Padding size should be less than "
                               f"the corresponding input dimension, but got: padding ({before}, "
                               f"{after}) at dimension {dim} of input "
                               f"{list(input.shape)}")  # fmt: skip


def _pad_by_index(input: Tensor, pairs: dict, mode: str) -> Tensor:  # noqa: A002
    """reflect, replicate and circular padding as one gather of source positions."""
    if mode == "reflect":
        _check_reflect(input, pairs)
    positions = []
    for dim in sorted(pairs):
        (before, after), size = pairs[dim], input.shape[dim]
        if mode == "circular" and (before > size or after > size):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        where_from = np.arange(-before, size + after)
        if mode == "reflect":
            where_from = np.abs(where_from)
            where_from = np.where(where_from >= size, 2 * (size - 1) - where_from, where_from)
        elif mode == "replicate":
            where_from = np.clip(where_from, 0, size - 1)
        else:  # torch wraps around what is left after a negative amount's crop
            start, kept = max(-before, 0), size + min(after, 0) - max(-before, 0)
            where_from = start + (where_from - start) % kept
        positions.append(where_from)
    index = (slice(None),) * (input.ndim - len(pairs)) + np.ix_(*positions)
    return apply(OPS["getitem"], (input,), (index, True))


# ---------------------------------------------------------------------- recurrent and attention


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(Q K^T * scale + mask) V`` over the last two dims, as torch: a bool mask keeps
    where True, a float mask is added; a row with nothing to attend to gives zeros (torch's
    safe softmax), not NaN. ``dropout_p`` drops attention weights (always, as torch: pass 0
    in eval).

    >>> import graphgrad as gg
    >>> q = k = v = gg.eye(2).reshape(1, 2, 2)
    >>> scaled_dot_product_attention(q, k, v, is_causal=True)[0, 0].tolist()
    [1.0, 0.0]
    """
    if enable_gqa:
        raise NotImplementedError(
            "scaled_dot_product_attention: enable_gqa=True (grouped-query attention) is not "
            "supported by graphgrad; repeat the key and value heads instead"
        )
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(
            f"scaled_dot_product_attention: expected query (..., L, E), key (..., S, E) and "
            f"value (..., S, Ev), got query {tuple(query.shape)}, key {tuple(key.shape)} and "
            f"value {tuple(value.shape)}"
        )
    length, source = query.shape[-2], key.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1]) if query.shape[-1] else 1.0
    scores = query.matmul(key.transpose(-2, -1)) * scale
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError(
                "_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                "is_causal=True"
            )
        attn_mask = wrap(np.tril(np.ones((length, source), dtype=bool)))
    if attn_mask is not None:
        scores = scores + _additive_mask(attn_mask, query.dtype)
    return _attention_weights(scores, dropout_p).matmul(value)


def _additive_mask(mask, dtype):
    """A bool mask (True keeps) as 0 / -inf of ``dtype``; a float mask as it is. Tensor ops
    throughout, so that a compiled replay follows a new mask."""
    if mask._data.dtype == np.bool_:
        return where(mask, 0.0, -math.inf).to(dtype)
    if not mask.is_floating_point():
        raise RuntimeError(
            f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
            f"attn_mask.dtype: {mask.dtype} and query.dtype: {dtype} instead."
        )
    return mask


def _attention_weights(scores: Tensor, dropout_p: float, safe: bool = True) -> Tensor:
    """softmax over the last dim, then dropout; ``safe``: rows that are all -inf give zeros
    (torch's scaled_dot_product_attention) rather than NaN (its MultiheadAttention weights)."""
    if safe and scores.shape[-1]:  # tensor ops, not a branch on values: compile replays them
        # amax, not all(): Tensor.all is not a recorded op, so compile would freeze it
        dead = scores.detach().amax(-1, keepdim=True) == -math.inf
        weights = where(dead, 0.0, where(dead, 0.0, scores).softmax(-1))
    else:
        weights = scores.softmax(-1)
    if dropout_p:
        weights = dropout(weights, dropout_p, training=True)
    return weights


# ---------------------------------------------------------------------- pixel shuffles


def _check_shuffle(fn: str, input: Tensor, factor: int, name: str) -> None:  # noqa: A002
    if input.ndim < 3:
        raise RuntimeError(f"{fn} expects input to have at least 3 dimensions, but got input "
                           f"with {input.ndim} dimension(s)")  # fmt: skip
    if factor <= 0:
        raise RuntimeError(f"{fn} expects a positive {name}, but got {factor}")


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:  # noqa: A002
    """(*, C r^2, H, W) to (*, C, H r, W r): each channel group of r^2 becomes r x r blocks.

    >>> import graphgrad as gg
    >>> pixel_shuffle(gg.arange(4.0).reshape(4, 1, 1), 2).tolist()
    [[[0.0, 1.0], [2.0, 3.0]]]
    """
    r = upscale_factor
    _check_shuffle("pixel_shuffle", input, r, "upscale_factor")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r}")  # fmt: skip
    b = len(batch)
    blocks = input.reshape(*batch, c // (r * r), r, r, h, w)
    order = tuple(range(b)) + tuple(b + i for i in (0, 3, 1, 4, 2))  # C, H, r, W, r
    return blocks.permute(*order).reshape(*batch, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:  # noqa: A002
    """(*, C, H r, W r) to (*, C r^2, H, W), the inverse of ``pixel_shuffle``.

    >>> import graphgrad as gg
    >>> pixel_unshuffle(gg.arange(4.0).reshape(1, 2, 2), 2).flatten().tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    r = downscale_factor
    _check_shuffle("pixel_unshuffle", input, r, "downscale_factor")
    *batch, c, h, w = input.shape
    for side, dim, size in (("height", -2, h), ("width", -1, w)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {side} to be divisible by "
                               f"downscale_factor, but input.size({dim})={size} is not divisible "
                               f"by {r}")  # fmt: skip
    b = len(batch)
    blocks = input.reshape(*batch, c, h // r, r, w // r, r)
    order = tuple(range(b)) + tuple(b + i for i in (0, 2, 4, 1, 3))  # C, r, r, H, W
    return blocks.permute(*order).reshape(*batch, c * r * r, h // r, w // r)


# ---------------------------------------------------------------------- upsampling


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",  # noqa: A002
                align_corners=None, recompute_scale_factor=None,
                antialias: bool = False) -> Tensor:  # fmt: skip
    """Resize (N, C, L) or (N, C, H, W) ``input`` to ``size`` or by ``scale_factor``: 'nearest',
    'nearest-exact', 'linear' (3-D), 'bilinear' (4-D) or 'area', with ATen's source-index
    formulas; each output gathers input values with constant weights, so autograd gives the
    gradient.

    >>> import graphgrad as gg
    >>> interpolate(gg.tensor([[[1.0, 3.0]]]), scale_factor=2, mode="linear").tolist()
    [[[1.0, 1.5, 2.5, 3.0]]]
    """
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
    elif align_corners is None:
        align_corners = False
    sizes, scales = _interpolate_sizes(input, size, scale_factor, recompute_scale_factor, mode)
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError(
            "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and "
            "requires a 4-D tensor as input"
        )
    _check_interpolate_mode(input.ndim, mode, antialias)
    if mode == "area":
        pool = adaptive_avg_pool1d if input.ndim == 3 else adaptive_avg_pool2d
        return pool(input, sizes)
    _check_output_sizes(input, sizes)
    out = input
    # the last dimension first: ATen's bilinear sums along W inside the sum along H
    for i, (out_size, scale) in reversed(list(enumerate(zip(sizes, scales)))):
        dim = 2 + i
        if mode in ("nearest", "nearest-exact"):
            index = _nearest_index(input.shape[dim], out_size, scale, mode == "nearest-exact")
            out = out.index_select(dim, wrap(index))
        else:
            out = _linear_along(out, dim, out_size, scale, align_corners)
    return out


def _interpolate_sizes(input, size, scale_factor, recompute_scale_factor, mode) -> tuple:  # noqa: A002
    """torch's checks of ``size`` and ``scale_factor``: the output sizes and the scales (None
    each where a size was given or the scale recomputed) that ATen's index formulas take."""
    dim = input.ndim - 2
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    f"Input and output must have the same number of spatial dimensions, but got "
                    f"input with spatial dimensions of {spatial} and output size of {size}. "
                    f"Please provide input tensor in (N, C, d1, d2, ...,dK) format and output "
                    f"size in (o1, o2, ...,oK) format."
                )
            if not all(_is_integer(s) for s in size):
                raise TypeError(
                    f"expected size to be one of int or Tuple[int] or Tuple[int, int] or "
                    f"Tuple[int, int, int], but got size with types {[type(s) for s in size]}"
                )
            sizes = [int(s) for s in size]
        else:
            sizes = [int(size)] * dim
        scales = None
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    f"Input and scale_factor must have the same number of spatial dimensions, "
                    f"but got input with spatial dimensions of {spatial} and scale_factor of "
                    f"shape {scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) "
                    f"format and scale_factor in (s1, s2, ...,sK) format."
                )
            scales = [float(s) for s in scale_factor]
        else:
            scales = [float(scale_factor)] * dim
        sizes = [math.floor(n * s) for n, s in zip(spatial, scales)]
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if recompute_scale_factor or mode == "area" or scales is None:
        scales = [None] * dim
    return sizes, scales


def _is_integer(value) -> bool:
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, Tensor) and not value.is_floating_point()


_INTERPOLATE_DIMS = {"nearest": (3, 4), "nearest-exact": (3, 4), "area": (3, 4), "linear": (3,),
                     "bilinear": (4,)}  # fmt: skip
_INTERPOLATE_NEEDS = {"linear": "3D", "bilinear": "4D", "trilinear": "5D"}


def _check_interpolate_mode(ndim: int, mode: str, antialias: bool) -> None:
    """torch's errors for a mode of another rank, or an unknown mode; graphgrad's for what
    torch has and graphgrad lacks (5-D inputs, bicubic, trilinear, anti-aliasing)."""
    if ndim in _INTERPOLATE_DIMS.get(mode, ()) and not antialias:
        return
    if ndim in (3, 4, 5) and mode in _INTERPOLATE_NEEDS and _INTERPOLATE_NEEDS[mode] != f"{ndim}D":
        raise NotImplementedError(
            f"Got {ndim}D input, but {mode} mode needs {_INTERPOLATE_NEEDS[mode]} input"
        )
    if ndim in (3, 4, 5) and mode in ("bicubic", "trilinear", "lanczos", *_INTERPOLATE_DIMS):
        raise NotImplementedError(
            f"interpolate: graphgrad has no mode '{mode}' for {ndim}D input"
            f"{' with antialias=True' if antialias else ''} (it has nearest, nearest-exact and "
            f"area for 3D and 4D input, linear for 3D and bilinear for 4D)"
        )
    raise NotImplementedError(
        f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {ndim}D) for the modes: "
        f"nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact "
        f"(got {mode})"
    )


def _check_output_sizes(input: Tensor, sizes: list) -> None:  # noqa: A002
    spatial = list(input.shape[2:])
    if min(spatial) > 0 and min(sizes) > 0:
        return
    names = ("H", "W") if len(sizes) == 2 else ("W",)
    given = ", ".join(f"{n}: {s}" for n, s in zip(names, spatial))
    wanted = ", ".join(f"{n}: {s}" for n, s in zip(names, sizes))
    joint = " and" if len(sizes) == 1 else ""  # ATen's 1d and 2d messages differ so
    raise RuntimeError(
        f"Input and output sizes should be greater than 0, but got input ({given}){joint} "
        f"output ({wanted})"
    )


def _scale_value(scale, in_size: int, out_size: int, dtype):
    """ATen's compute_scales_value: 1 / scale_factor when one was given, else in / out."""
    if scale is not None and scale > 0:
        return dtype.type(1.0 / scale)
    return dtype.type(in_size) / dtype.type(out_size)


def _nearest_index(in_size: int, out_size: int, scale, exact: bool) -> np.ndarray:
    """ATen's nearest_idx (floor(i * scale), with its shortcuts for x1 and x2) or
    nearest_exact_idx (floor((i + 0.5) * scale)), in float32 as ATen computes them."""
    out = np.arange(out_size)
    if not exact and out_size == in_size:
        return out
    if not exact and out_size == 2 * in_size:
        return out >> 1
    step = _scale_value(scale, in_size, out_size, np.dtype(np.float32))
    position = out.astype(np.float32) + np.float32(0.5) if exact else out.astype(np.float32)
    return np.minimum(np.floor(position * step).astype(np.int64), in_size - 1)


def _linear_taps(in_size: int, out_size: int, scale, align_corners: bool, dtype) -> tuple:
    """ATen's linear source indices and weights for each output position, in the input's
    precision: (index0, index1, lambda0, lambda1)."""
    out = np.arange(out_size).astype(dtype)
    if align_corners:
        step = dtype.type(in_size - 1) / dtype.type(out_size - 1) if out_size > 1 else dtype.type(0)
        source = step * out
    else:
        step = _scale_value(scale, in_size, out_size, dtype)
        # ATen adds 0.5 to the integer index in double, then rounds to the input's precision
        source = (np.float64(step) * (np.arange(out_size) + 0.5) - 0.5).astype(dtype)
        source = np.maximum(source, dtype.type(0))
    index0 = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    lambda1 = np.clip(source - index0.astype(dtype), 0, 1).astype(dtype)
    index1 = index0 + (index0 < in_size - 1)
    return index0, index1, (1 - lambda1).astype(dtype), lambda1


def _linear_along(x: Tensor, dim: int, out_size: int, scale, align_corners: bool) -> Tensor:
    """Linear interpolation along ``dim``: lambda0 x[index0] + lambda1 x[index1]."""
    if out_size == x.shape[dim]:  # ATen copies a dimension whose size is kept, whatever scale
        return x
    dtype = x._data.dtype
    index0, index1, lambda0, lambda1 = _linear_taps(x.shape[dim], out_size, scale,
                                                    align_corners, dtype)  # fmt: skip
    shape = [1] * x.ndim
    shape[dim] = out_size
    near = x.index_select(dim, wrap(index0)) * wrap(lambda0.reshape(shape))
    far = x.index_select(dim, wrap(index1)) * wrap(lambda1.reshape(shape))
    return near + far


# ---------------------------------------------------------------------- distances


def _broadcast_pair(x1: Tensor, x2: Tensor) -> tuple:
    """Both tensors expanded to their common shape, with torch's error if there is none."""
    a, b = tuple(x1.shape), tuple(x2.shape)
    for i, (m, n) in enumerate(zip(reversed(a), reversed(b))):
        if m != n and 1 not in (m, n):
            raise RuntimeError(f"The size of tensor a ({m}) must match the size of tensor b ({n}) "
                               f"at non-singleton dimension {max(len(a), len(b)) - 1 - i}")
    shape = np.broadcast_shapes(a, b)
    return x1.expand(*shape), x2.expand(*shape)


def _clamped_norm(x: Tensor, dim: int, eps: float) -> Tensor:
    """||x||_2 along ``dim``, kept, raised to at least ``eps`` in value only: torch clamps the
    norm in place under no_grad, so its gradient is the unclamped norm's."""
    norm = _vector_norm(x, 2, dim)
    return norm + (norm.clamp_min(eps) - norm).detach()


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps)) along ``dim``, after broadcasting,
    each norm clamped as torch does (in value, not in gradient).

    >>> import graphgrad as gg
    >>> cosine_similarity(gg.tensor([[1.0, 0.0]]), gg.tensor([[2.0, 0.0]])).tolist()
    [1.0]
    """
    x1, x2 = _broadcast_pair(x1, x2)
    return ((x1 / _clamped_norm(x1, dim, eps)) * (x2 / _clamped_norm(x2, dim, eps))).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:  # fmt: skip
    """||x1 - x2 + eps||_p along the last dimension of the broadcast shape, as torch (which
    adds ``eps`` to the difference, not to the norm).

    >>> import graphgrad as gg
    >>> pairwise_distance(gg.tensor([[3.0, 4.0]]), gg.zeros(1, 2), eps=0.0).tolist()
    [5.0]
    """
    x1, x2 = _broadcast_pair(x1, x2)
    distance = _vector_norm(x1 - x2 + eps, p, x1.ndim - 1)
    return distance if keepdim else distance.squeeze(-1)


# Every public function defined above, so that a new one needs no second entry here.
__all__ = [
    name for name, value in list(globals().items())
    if not name.startswith("_") and getattr(value, "__module__", None) == __name__
]
