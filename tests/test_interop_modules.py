"""graphgrad.interop.modules: to_torch and from_torch against torch (the oracle). Each layer is
built in one library, converted, and both twins run on the same float64 inputs: outputs, input
gradients and parameter gradients agree to 1e-12."""

from __future__ import annotations

import inspect
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

import graphgrad as gg
import graphgrad.nn as nn
from graphgrad.interop.modules import (
    SUPPORTED,
    UnsupportedModuleError,
    from_torch,
    to_torch,
    torch_state_dict,
)

TOL = dict(rtol=1e-12, atol=1e-12)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------- helpers


def as_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return t.detach().numpy()


def set_values(tensor, array: np.ndarray) -> None:
    tensor.data = torch.from_numpy(array) if isinstance(tensor, torch.Tensor) else array


def randomize(module, rng) -> None:
    """Weights and running statistics away from their constant initial values (ones, zeros),
    so that a value copied to the wrong place shows."""
    for p in module.parameters():
        set_values(p, rng.standard_normal(tuple(p.shape)) * 0.5)
    for name, b in module.named_buffers():
        if name.endswith("running_var"):
            set_values(b, rng.uniform(0.5, 1.5, tuple(b.shape)))
        elif name.endswith("running_mean"):
            set_values(b, rng.standard_normal(tuple(b.shape)))


def flatten(out) -> list:
    if out is None:
        return []
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in flatten(item)]
    return [out]


def run(module, arrays: list, no_grad: tuple, lib) -> dict:
    """Forward on ``arrays``, then backward of a fixed random weighting of every float output:
    the outputs, the float inputs' gradients and the parameters' gradients, as arrays."""
    inputs = [
        lib.tensor(a, requires_grad=a.dtype.kind == "f" and i not in no_grad)
        for i, a in enumerate(arrays)
    ]
    outputs = flatten(module(*inputs))
    rng = np.random.default_rng(99)
    floats = [o for o in outputs if o.is_floating_point()]
    loss = sum((o * lib.tensor(rng.standard_normal(tuple(o.shape)))).sum() for o in floats)
    loss.backward()
    return {
        "outputs": [as_numpy(o) for o in outputs],
        "input grads": [as_numpy(t.grad) for t in inputs if t.requires_grad],
        "param grads": {n: as_numpy(p.grad) for n, p in module.named_parameters()
                        if p.grad is not None},  # fmt: skip
        "buffers": {n: as_numpy(b) for n, b in module.named_buffers()},
    }


def assert_same(ours: dict, theirs: dict, grad_tol: dict = TOL) -> None:
    assert len(ours["outputs"]) == len(theirs["outputs"])
    for a, b in zip(ours["outputs"], theirs["outputs"]):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, **TOL)
    assert len(ours["input grads"]) == len(theirs["input grads"])
    for a, b in zip(ours["input grads"], theirs["input grads"]):
        np.testing.assert_allclose(a, b, **grad_tol)
    for key in ("param grads", "buffers"):
        assert list(ours[key]) == list(theirs[key]), key
        for name in ours[key]:
            np.testing.assert_allclose(ours[key][name], theirs[key][name], **TOL, err_msg=name)


# ---------------------------------------------------------------------- the cases


@dataclass
class Case:
    """``build(lib)`` makes the module with ``lib.nn`` (graphgrad's or torch's); ``inputs(rng)``
    its float64 (or integer) arrays; ``no_grad``: indices of float inputs that take none."""

    name: str
    build: object
    inputs: object
    train: bool = True
    no_grad: tuple = ()
    id: str = field(default="")
    grad_tol: dict = field(default_factory=lambda: TOL)

    def __post_init__(self):
        self.id = self.id or self.name


def x(*shape):
    return lambda rng: [rng.standard_normal(shape)]


def probs(*shape):
    return lambda rng: [rng.uniform(0.1, 0.9, shape), rng.uniform(0.0, 1.0, shape)]


def pair(shape1, shape2, scale=1.0):
    """Two inputs; ``scale`` shrinks the second so that a norm can fall below eps."""
    return lambda rng: [rng.standard_normal(shape1), rng.standard_normal(shape2) * scale]


def log_probs(rng, shape):
    z = rng.standard_normal(shape)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def classes(n, c):
    return lambda rng: [rng.standard_normal((n, c)), rng.integers(0, c, n)]


def counts(*shape):
    """Log-rates and Poisson counts (floats, as torch's loss takes them)."""
    return lambda rng: [rng.standard_normal(shape), rng.integers(0, 5, shape) * 1.0]


def signs(rng, shape):
    return rng.choice([-1.0, 1.0], shape)


def attention(q_dim=8, k_dim=8, v_dim=8, batch_first=True):
    shapes = [(2, 5, q_dim), (2, 7, k_dim), (2, 7, v_dim)]
    if not batch_first:
        shapes = [(s[1], s[0], s[2]) for s in shapes]
    return lambda rng: [rng.standard_normal(s) for s in shapes]


def encoder_layer(lib, **kw):
    return lib.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, **kw)


CASES = [
    # activations
    Case("ReLU", lambda lib: lib.nn.ReLU(), x(3, 4)),
    Case("LeakyReLU", lambda lib: lib.nn.LeakyReLU(0.2), x(3, 4)),
    Case("Sigmoid", lambda lib: lib.nn.Sigmoid(), x(3, 4)),
    Case("Tanh", lambda lib: lib.nn.Tanh(), x(3, 4)),
    Case("GELU", lambda lib: lib.nn.GELU(), x(3, 4)),
    Case("GELU", lambda lib: lib.nn.GELU(approximate="tanh"), x(3, 4), id="GELU-tanh"),
    Case("Softmax", lambda lib: lib.nn.Softmax(dim=1), x(3, 4)),
    Case("LogSoftmax", lambda lib: lib.nn.LogSoftmax(dim=0), x(3, 4)),
    Case("Softmin", lambda lib: lib.nn.Softmin(dim=-1), x(3, 4)),
    Case("SiLU", lambda lib: lib.nn.SiLU(), x(3, 4)),
    Case("Mish", lambda lib: lib.nn.Mish(), x(3, 4)),
    Case("SELU", lambda lib: lib.nn.SELU(), x(3, 4)),
    # torch's Hardsigmoid backward multiplies by 1/6 as a float32 constant, for float64 too
    # (3e-8 from the exact 1/6 graphgrad uses): its gradients agree to 1e-7 only
    Case("Hardsigmoid", lambda lib: lib.nn.Hardsigmoid(), x(3, 4),
         grad_tol=dict(rtol=1e-7, atol=1e-12)),
    Case("Hardswish", lambda lib: lib.nn.Hardswish(), x(3, 4)),
    Case("ELU", lambda lib: lib.nn.ELU(alpha=0.7), x(3, 4)),
    Case("CELU", lambda lib: lib.nn.CELU(alpha=1.3), x(3, 4)),
    Case("Softplus", lambda lib: lib.nn.Softplus(beta=2.0, threshold=1.5), x(3, 4)),
    Case("Hardtanh", lambda lib: lib.nn.Hardtanh(-0.5, 1.5), x(3, 4)),
    Case("ReLU6", lambda lib: lib.nn.ReLU6(), lambda rng: [rng.standard_normal((3, 4)) * 4]),
    Case("PReLU", lambda lib: lib.nn.PReLU(3, init=0.1), x(2, 3, 4)),
    Case("Softsign", lambda lib: lib.nn.Softsign(), x(3, 4)),
    Case("LogSigmoid", lambda lib: lib.nn.LogSigmoid(), x(3, 4)),
    # random masks differ between the libraries: dropout is compared in eval mode
    Case("GLU", lambda lib: lib.nn.GLU(), x(3, 4)),
    Case("GLU", lambda lib: lib.nn.GLU(dim=0), x(4, 3), id="GLU-dim0"),
    Case("Hardshrink", lambda lib: lib.nn.Hardshrink(), x(3, 4)),
    Case("Softshrink", lambda lib: lib.nn.Softshrink(0.3), x(3, 4)),
    Case("Tanhshrink", lambda lib: lib.nn.Tanhshrink(), x(3, 4)),
    Case("Threshold", lambda lib: lib.nn.Threshold(0.1, 20.0), x(3, 4)),
    Case("Dropout", lambda lib: lib.nn.Dropout(0.3), x(3, 4), train=False),
    Case("Dropout2d", lambda lib: lib.nn.Dropout2d(0.3), x(2, 3, 4, 4), train=False),
    Case("Dropout1d", lambda lib: lib.nn.Dropout1d(0.3), x(2, 3, 4), train=False),
    # shapes and lookups
    Case("Identity", lambda lib: lib.nn.Identity(), x(3, 4)),
    Case("Flatten", lambda lib: lib.nn.Flatten(0, 1), x(2, 3, 4)),
    Case("Unflatten", lambda lib: lib.nn.Unflatten(1, (2, 3)), x(4, 6)),
    Case("Linear", lambda lib: lib.nn.Linear(4, 3), x(2, 4)),
    Case("Linear", lambda lib: lib.nn.Linear(4, 3, bias=False), x(2, 5, 4), id="Linear-nobias"),
    Case("Bilinear", lambda lib: lib.nn.Bilinear(3, 4, 2), pair((5, 3), (5, 4))),
    Case("Bilinear", lambda lib: lib.nn.Bilinear(3, 2, 4, bias=False), pair((2, 5, 3), (2, 5, 2)),
         id="Bilinear-nobias-batched"),
    Case("Embedding", lambda lib: lib.nn.Embedding(10, 3, padding_idx=2),
         lambda rng: [np.array([[2, 0, 9, 2], [5, 5, 1, 2]])]),  # fmt: skip
    # convolutions and pooling
    Case("Conv1d", lambda lib: lib.nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2), x(2, 4, 9)),
    Case("Conv1d", lambda lib: lib.nn.Conv1d(2, 3, 4, padding="same", padding_mode="reflect",
                                             bias=False),
         x(2, 2, 8), id="Conv1d-same"),  # fmt: skip
    Case("Conv2d", lambda lib: lib.nn.Conv2d(2, 4, 3, padding=1), x(2, 2, 6, 5)),
    Case("Conv2d", lambda lib: lib.nn.Conv2d(4, 4, (3, 2), stride=(2, 1), padding=1,
                                             dilation=(1, 2), groups=2, padding_mode="circular"),
         x(2, 4, 7, 6), id="Conv2d-circular"),  # fmt: skip
    Case("ConvTranspose2d", lambda lib: lib.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                               output_padding=1),
         x(2, 3, 4, 4)),  # fmt: skip
    Case("ConvTranspose1d", lambda lib: lib.nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1,
                                                               output_padding=1, groups=2,
                                                               dilation=2), x(2, 4, 5)),
    Case("ConvTranspose1d", lambda lib: lib.nn.ConvTranspose1d(3, 2, 4, bias=False), x(3, 6),
         id="ConvTranspose1d-nobias-unbatched"),
    Case("MaxPool1d", lambda lib: lib.nn.MaxPool1d(2), x(2, 3, 8)),
    Case("MaxPool2d", lambda lib: lib.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True,
                                                   return_indices=True),
         x(2, 3, 7, 6)),  # fmt: skip
    Case("AvgPool2d", lambda lib: lib.nn.AvgPool2d(2, stride=1, padding=1,
                                                   count_include_pad=False),
         x(2, 3, 5, 4)),  # fmt: skip
    Case("AdaptiveAvgPool2d", lambda lib: lib.nn.AdaptiveAvgPool2d((None, 3)), x(2, 3, 5, 7)),
    Case("AvgPool1d", lambda lib: lib.nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True,
                                                   count_include_pad=False), x(2, 3, 8)),
    Case("AvgPool1d", lambda lib: lib.nn.AvgPool1d(2), x(3, 7), id="AvgPool1d-unbatched"),
    Case("AdaptiveAvgPool1d", lambda lib: lib.nn.AdaptiveAvgPool1d(3), x(2, 3, 7)),
    Case("AdaptiveMaxPool1d", lambda lib: lib.nn.AdaptiveMaxPool1d(3), x(2, 3, 7)),
    Case("AdaptiveMaxPool1d", lambda lib: lib.nn.AdaptiveMaxPool1d(4, return_indices=True),
         x(3, 10), id="AdaptiveMaxPool1d-indices-unbatched"),
    Case("AdaptiveMaxPool2d", lambda lib: lib.nn.AdaptiveMaxPool2d((None, 3)), x(2, 3, 5, 7)),
    Case("AdaptiveMaxPool2d", lambda lib: lib.nn.AdaptiveMaxPool2d((3, 2), return_indices=True),
         x(2, 5, 7), id="AdaptiveMaxPool2d-indices-unbatched"),
    Case("PixelShuffle", lambda lib: lib.nn.PixelShuffle(2), x(2, 8, 3, 2)),
    Case("PixelShuffle", lambda lib: lib.nn.PixelShuffle(3), x(9, 2, 2), id="PixelShuffle-3d"),
    Case("PixelUnshuffle", lambda lib: lib.nn.PixelUnshuffle(2), x(2, 3, 4, 6)),
    Case("Upsample", lambda lib: lib.nn.Upsample(scale_factor=2), x(2, 3, 4, 5)),
    Case("Upsample", lambda lib: lib.nn.Upsample(size=7, mode="linear", align_corners=True),
         x(2, 3, 4), id="Upsample-linear-corners"),
    Case("Upsample", lambda lib: lib.nn.Upsample(scale_factor=(1.7, 0.6), mode="bilinear"),
         x(2, 3, 4, 5), id="Upsample-bilinear-scales"),
    Case("Upsample", lambda lib: lib.nn.Upsample(scale_factor=1.4, mode="nearest-exact",
                                                 recompute_scale_factor=True),
         x(2, 3, 5), id="Upsample-nearest-exact-recompute"),  # fmt: skip
    Case("UpsamplingNearest2d", lambda lib: lib.nn.UpsamplingNearest2d(size=(5, 3)),
         x(2, 3, 2, 4)),  # fmt: skip
    Case("UpsamplingBilinear2d", lambda lib: lib.nn.UpsamplingBilinear2d(scale_factor=2.5),
         x(2, 3, 3, 2)),  # fmt: skip
    Case("ZeroPad1d", lambda lib: lib.nn.ZeroPad1d((2, -1)), x(2, 3, 4)),
    Case("ZeroPad2d", lambda lib: lib.nn.ZeroPad2d(1), x(2, 3, 4)),
    Case("ConstantPad1d", lambda lib: lib.nn.ConstantPad1d(2, 3.5), x(3, 4)),
    Case("ConstantPad2d", lambda lib: lib.nn.ConstantPad2d((1, 0, 2, 3), -1.5), x(2, 1, 3, 4)),
    Case("ReflectionPad1d", lambda lib: lib.nn.ReflectionPad1d((3, 1)), x(2, 3, 4)),
    Case("ReflectionPad2d", lambda lib: lib.nn.ReflectionPad2d((1, 3, 2, 0)), x(2, 1, 3, 4)),
    Case("ReflectionPad2d", lambda lib: lib.nn.ReflectionPad2d(2), x(1, 3, 4),
         id="ReflectionPad2d-unbatched"),
    Case("ReplicationPad1d", lambda lib: lib.nn.ReplicationPad1d((0, 3)), x(3, 4)),
    Case("ReplicationPad2d", lambda lib: lib.nn.ReplicationPad2d((2, 1, 1, 3)), x(2, 1, 3, 4)),
    # normalisation: train mode (batch statistics, running statistics updated) and eval mode
    Case("BatchNorm1d", lambda lib: lib.nn.BatchNorm1d(3), x(5, 3)),
    Case("BatchNorm1d", lambda lib: lib.nn.BatchNorm1d(3, momentum=None, affine=False),
         x(4, 3, 5), id="BatchNorm1d-cumulative"),  # fmt: skip
    Case("BatchNorm1d", lambda lib: lib.nn.BatchNorm1d(3, eps=1e-3), x(5, 3), train=False,
         id="BatchNorm1d-eval"),  # fmt: skip
    Case("BatchNorm2d", lambda lib: lib.nn.BatchNorm2d(2, momentum=0.3), x(3, 2, 4, 4)),
    Case("BatchNorm2d", lambda lib: lib.nn.BatchNorm2d(2, track_running_stats=False),
         x(3, 2, 4, 4), train=False, id="BatchNorm2d-untracked"),  # fmt: skip
    Case("LayerNorm", lambda lib: lib.nn.LayerNorm((3, 4), eps=1e-4), x(2, 3, 4)),
    Case("LayerNorm", lambda lib: lib.nn.LayerNorm(4, elementwise_affine=False), x(2, 4),
         id="LayerNorm-plain"),  # fmt: skip
    Case("LayerNorm", lambda lib: lib.nn.LayerNorm(4, bias=False), x(2, 4), id="LayerNorm-nobias"),
    # recurrent layers
    Case("GroupNorm", lambda lib: lib.nn.GroupNorm(2, 4, eps=1e-3), x(3, 4, 5)),
    Case("GroupNorm", lambda lib: lib.nn.GroupNorm(3, 6, affine=False), x(2, 6, 3, 2),
         id="GroupNorm-noaffine"),
    Case("GroupNorm", lambda lib: lib.nn.GroupNorm(1, 3, bias=False), x(2, 3),
         id="GroupNorm-nobias"),
    Case("InstanceNorm1d", lambda lib: lib.nn.InstanceNorm1d(3), x(2, 3, 5)),
    Case("InstanceNorm1d", lambda lib: lib.nn.InstanceNorm1d(3, affine=True, momentum=0.3,
                                                             track_running_stats=True),
         x(2, 3, 5), id="InstanceNorm1d-running-train"),
    Case("InstanceNorm1d", lambda lib: lib.nn.InstanceNorm1d(3, affine=True,
                                                             track_running_stats=True),
         x(3, 5), train=False, id="InstanceNorm1d-running-eval-unbatched"),
    Case("InstanceNorm2d", lambda lib: lib.nn.InstanceNorm2d(2, eps=1e-3, affine=True),
         x(2, 2, 3, 4)),
    Case("InstanceNorm2d", lambda lib: lib.nn.InstanceNorm2d(2, track_running_stats=True,
                                                             bias=False, affine=True),
         x(2, 3, 4), id="InstanceNorm2d-running-unbatched-nobias"),
    Case("RMSNorm", lambda lib: lib.nn.RMSNorm(4), x(2, 3, 4)),
    Case("RMSNorm", lambda lib: lib.nn.RMSNorm((3, 4), eps=1e-3, elementwise_affine=False),
         x(2, 3, 4), id="RMSNorm-noaffine"),
    Case("RNN", lambda lib: lib.nn.RNN(3, 4, num_layers=2, nonlinearity="relu",
                                       bidirectional=True), x(5, 2, 3)),  # fmt: skip
    Case("LSTM", lambda lib: lib.nn.LSTM(3, 4, num_layers=2, batch_first=True), x(2, 5, 3)),
    Case("LSTM", lambda lib: lib.nn.LSTM(3, 4, num_layers=2, dropout=0.3, bidirectional=True),
         x(5, 2, 3), train=False, id="LSTM-dropout"),  # fmt: skip
    Case("GRU", lambda lib: lib.nn.GRU(3, 4, bias=False, bidirectional=True), x(5, 2, 3)),
    Case("RNNCell", lambda lib: lib.nn.RNNCell(3, 4, nonlinearity="relu"), x(2, 3)),
    Case("LSTMCell", lambda lib: lib.nn.LSTMCell(3, 4), x(2, 3)),
    Case("GRUCell", lambda lib: lib.nn.GRUCell(3, 4, bias=False), x(2, 3)),
    # attention and transformers
    Case("MultiheadAttention", lambda lib: lib.nn.MultiheadAttention(8, 2, batch_first=True),
         attention()),  # fmt: skip
    Case("MultiheadAttention", lambda lib: lib.nn.MultiheadAttention(8, 2, kdim=6, vdim=5,
                                                                     bias=False),
         attention(8, 6, 5, batch_first=False), id="MultiheadAttention-kdim"),  # fmt: skip
    Case("MultiheadAttention", lambda lib: lib.nn.MultiheadAttention(8, 4, dropout=0.5),
         attention(batch_first=False), train=False, id="MultiheadAttention-dropout"),  # fmt: skip
    Case("TransformerEncoderLayer", lambda lib: encoder_layer(lib), x(5, 2, 8)),
    Case("TransformerEncoderLayer", lambda lib: encoder_layer(
        lib, activation="gelu", norm_first=True, batch_first=True, layer_norm_eps=1e-3),
        x(2, 5, 8), id="TransformerEncoderLayer-gelu"),  # fmt: skip
    Case("TransformerEncoderLayer", lambda lib: encoder_layer(
        lib, activation=lib.nn.GELU(approximate="tanh"), bias=False), x(5, 2, 8),
        id="TransformerEncoderLayer-module-activation"),  # fmt: skip
    Case("TransformerEncoder", lambda lib: lib.nn.TransformerEncoder(
        encoder_layer(lib, batch_first=True), 2, norm=lib.nn.LayerNorm(8),
        enable_nested_tensor=False), x(2, 5, 8)),  # fmt: skip
    Case("Sequential", lambda lib: lib.nn.Sequential(
        lib.nn.Conv2d(2, 3, 3), lib.nn.BatchNorm2d(3), lib.nn.ReLU(), lib.nn.MaxPool2d(2),
        lib.nn.Flatten(), lib.nn.Linear(12, 2)), x(3, 2, 6, 6)),  # fmt: skip
    # losses: input, then target
    Case("CosineSimilarity", lambda lib: lib.nn.CosineSimilarity(), pair((3, 4), (3, 4))),
    Case("CosineSimilarity", lambda lib: lib.nn.CosineSimilarity(dim=0, eps=0.5),
         pair((3, 4), (4,), scale=0.1), id="CosineSimilarity-dim0-broadcast-clamped"),
    Case("PairwiseDistance", lambda lib: lib.nn.PairwiseDistance(), pair((3, 4), (3, 4))),
    Case("PairwiseDistance", lambda lib: lib.nn.PairwiseDistance(p=1.5, eps=1e-3, keepdim=True),
         pair((2, 3, 4), (4,)), id="PairwiseDistance-p1.5-keepdim-broadcast"),
    Case("MSELoss", lambda lib: lib.nn.MSELoss(reduction="sum"),
         lambda rng: [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]),  # fmt: skip
    Case("L1Loss", lambda lib: lib.nn.L1Loss(),
         lambda rng: [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]),  # fmt: skip
    Case("HuberLoss", lambda lib: lib.nn.HuberLoss(reduction="none", delta=0.5),
         lambda rng: [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]),  # fmt: skip
    Case("SmoothL1Loss", lambda lib: lib.nn.SmoothL1Loss(beta=0.5),
         lambda rng: [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]),  # fmt: skip
    Case("KLDivLoss", lambda lib: lib.nn.KLDivLoss(reduction="batchmean", log_target=True),
         lambda rng: [log_probs(rng, (3, 4)), log_probs(rng, (3, 4))]),  # fmt: skip
    Case("NLLLoss", lambda lib: lib.nn.NLLLoss(weight=lib.tensor([1.0, 2.0, 0.5, 1.5]),
                                               ignore_index=1),
         lambda rng: [log_probs(rng, (6, 4)), np.array([0, 1, 2, 3, 1, 2])]),  # fmt: skip
    Case("CrossEntropyLoss", lambda lib: lib.nn.CrossEntropyLoss(
        weight=lib.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1), classes(5, 3)),  # fmt: skip
    Case("BCELoss", lambda lib: lib.nn.BCELoss(weight=lib.tensor([1.0, 2.0, 0.5])), probs(4, 3),
         no_grad=(1,)),  # fmt: skip
    Case("BCEWithLogitsLoss", lambda lib: lib.nn.BCEWithLogitsLoss(
        pos_weight=lib.tensor([1.0, 3.0, 0.5]), reduction="sum"), probs(4, 3)),  # fmt: skip
    Case("PoissonNLLLoss", lambda lib: lib.nn.PoissonNLLLoss(), counts(4, 3), no_grad=(1,)),
    Case("PoissonNLLLoss", lambda lib: lib.nn.PoissonNLLLoss(log_input=False, full=True,
                                                             eps=1e-3, reduction="sum"),
         lambda rng: [rng.uniform(0.1, 3.0, (4, 3)), rng.integers(0, 5, (4, 3)) * 1.0],
         no_grad=(1,), id="PoissonNLLLoss-rate-full"),  # fmt: skip
    Case("GaussianNLLLoss", lambda lib: lib.nn.GaussianNLLLoss(),
         lambda rng: [*pair((4, 3), (4, 3))(rng), rng.uniform(0.1, 2.0, (4, 3))]),  # fmt: skip
    Case("GaussianNLLLoss", lambda lib: lib.nn.GaussianNLLLoss(full=True, eps=0.05,
                                                               reduction="none"),
         lambda rng: [*pair((4, 3), (4, 3))(rng), rng.uniform(0.0, 0.2, (4,))],
         id="GaussianNLLLoss-full-homoscedastic-clamped"),  # fmt: skip
    Case("HingeEmbeddingLoss", lambda lib: lib.nn.HingeEmbeddingLoss(margin=0.5),
         lambda rng: [rng.standard_normal((4, 3)), signs(rng, (4, 3))], no_grad=(1,)),
    Case("SoftMarginLoss", lambda lib: lib.nn.SoftMarginLoss(reduction="sum"),
         lambda rng: [rng.standard_normal((4, 3)), signs(rng, (4, 3))], no_grad=(1,)),
    Case("MultiLabelSoftMarginLoss", lambda lib: lib.nn.MultiLabelSoftMarginLoss(
        weight=lib.tensor([1.0, 2.0, 0.5])), probs(4, 3)),  # fmt: skip
    Case("CosineEmbeddingLoss", lambda lib: lib.nn.CosineEmbeddingLoss(margin=0.2),
         lambda rng: [*pair((6, 3), (6, 3))(rng), signs(rng, (6,))], no_grad=(2,)),
    Case("MarginRankingLoss", lambda lib: lib.nn.MarginRankingLoss(margin=0.3, reduction="none"),
         lambda rng: [*pair((5,), (5,))(rng), signs(rng, (5,))]),  # fmt: skip
    Case("TripletMarginLoss", lambda lib: lib.nn.TripletMarginLoss(),
         lambda rng: [rng.standard_normal((5, 4)) for _ in range(3)]),  # fmt: skip
    Case("TripletMarginLoss", lambda lib: lib.nn.TripletMarginLoss(margin=2.0, p=1.0, eps=1e-3,
                                                                   swap=True),
         lambda rng: [rng.standard_normal((5, 4)) for _ in range(3)],
         id="TripletMarginLoss-p1-swap"),  # fmt: skip
    Case("MultiMarginLoss", lambda lib: lib.nn.MultiMarginLoss(), classes(5, 4)),
    Case("MultiMarginLoss", lambda lib: lib.nn.MultiMarginLoss(
        p=2, margin=0.7, weight=lib.tensor([1.0, 2.0, 0.5, 1.5]), reduction="sum"),
        classes(5, 4), id="MultiMarginLoss-p2-weight"),  # fmt: skip
]


def prepared(case: Case, lib):
    module = case.build(lib).double()
    randomize(module, np.random.default_rng(1))
    return module.train(case.train)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_to_torch_matches_graphgrad(case):
    ours = prepared(case, gg)
    twin = to_torch(ours)
    assert type(twin) is getattr(torch.nn, case.name)
    assert repr(twin) == repr(ours)  # the constructor arguments, as both libraries print them
    arrays = case.inputs(np.random.default_rng(2))
    assert_same(run(ours, arrays, case.no_grad, gg), run(twin, arrays, case.no_grad, torch),
                case.grad_tol)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_from_torch_matches_torch(case):
    theirs = prepared(case, torch)
    twin = from_torch(theirs)
    assert type(twin) is getattr(nn, case.name)
    assert repr(twin) == repr(theirs)
    arrays = case.inputs(np.random.default_rng(2))
    assert_same(run(twin, arrays, case.no_grad, gg), run(theirs, arrays, case.no_grad, torch),
                case.grad_tol)


# Public classes of graphgrad.nn that no case builds, and why.
EXCLUDED = {
    "Module": "the base class: an instance has no forward, and a subclass is someone's own "
              "module, which is refused (test_a_custom_module_is_refused_with_its_path)",
    "RNNBase": "the shared base of RNN, LSTM and GRU (torch's has no forward of its own)",
    "RNNCellBase": "the shared base of RNNCell, LSTMCell and GRUCell (no forward of its own)",
}  # fmt: skip


def nested(lib):
    """A ModuleDict of Sequentials, a ModuleList and parameter containers, nested as models
    are."""
    return lib.nn.ModuleDict(OrderedDict([
        ("features", lib.nn.Sequential(OrderedDict([
            ("conv", lib.nn.Conv2d(1, 2, 3)), ("norm", lib.nn.BatchNorm2d(2)),
            ("act", lib.nn.ReLU()), ("flat", lib.nn.Flatten())]))),
        ("heads", lib.nn.ModuleList([
            lib.nn.Sequential(lib.nn.Linear(8, 3), lib.nn.Dropout(0.2)),
            lib.nn.ModuleDict({"out": lib.nn.Linear(8, 2)})])),
        ("scales", lib.nn.ParameterList([lib.ones(3), lib.zeros(2, 2, dtype=lib.float32)])),
        ("table", lib.nn.ParameterDict({"shift": lib.zeros(4), "gain": lib.ones(1)})),
    ]))  # fmt: skip


def test_every_graphgrad_layer_has_a_case_or_a_reason():
    public = {name for name, value in vars(nn).items()
              if inspect.isclass(value) and issubclass(value, nn.Module)}  # fmt: skip
    built = {type(m).__name__ for case in CASES for m in case.build(gg).modules()}
    built |= {type(m).__name__ for m in nested(gg).modules()}
    missing = public - built - set(EXCLUDED)
    assert not missing, f"graphgrad.nn classes with no case here and no exclusion: {missing}"
    assert not set(EXCLUDED) & built
    assert public - set(EXCLUDED) <= set(SUPPORTED)


# ---------------------------------------------------------------------- containers, state, modes


def forward_nested(model, lib, x):
    features = model["features"](lib.tensor(x))
    return [model["heads"][0](features), model["heads"][1]["out"](features)]


@pytest.mark.parametrize("direction", ["to_torch", "from_torch"])
def test_nested_containers_keep_names_buffers_and_modes(direction):
    source_lib, target_lib = (gg, torch) if direction == "to_torch" else (torch, gg)
    convert = to_torch if direction == "to_torch" else from_torch
    source = nested(source_lib).double()
    randomize(source, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    for _ in range(3):  # running statistics away from their start, num_batches_tracked = 3
        forward_nested(source, source_lib, rng.standard_normal((4, 1, 4, 4)))
    source["heads"].eval()
    twin = convert(source)
    assert [n for n, _ in twin.named_modules()] == [n for n, _ in source.named_modules()]
    assert list(twin.state_dict()) == list(source.state_dict())
    for (name, a), (_, b) in zip(source.state_dict().items(), twin.state_dict().items()):
        assert as_numpy(a).dtype == as_numpy(b).dtype, name
        np.testing.assert_array_equal(as_numpy(a), as_numpy(b), err_msg=name)
    assert int(twin["features"].norm.num_batches_tracked) == 3
    modes = [(n, m.training) for n, m in source.named_modules()]
    assert [(n, m.training) for n, m in twin.named_modules()] == modes
    assert dict(modes)["heads.0.1"] is False and dict(modes)["features.norm"] is True
    x = rng.standard_normal((4, 1, 4, 4))
    for a, b in zip(forward_nested(source, source_lib, x), forward_nested(twin, target_lib, x)):
        np.testing.assert_allclose(as_numpy(a), as_numpy(b), **TOL)
    # train mode again: both update their running statistics alike
    forward_nested(source, source_lib, x)
    forward_nested(twin, target_lib, x)
    ours, theirs = source["features"].norm, twin["features"].norm
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(as_numpy(getattr(theirs, name)), as_numpy(getattr(ours, name)),
                                   **TOL)  # fmt: skip


@pytest.mark.parametrize("direction", ["to_torch", "from_torch"])
def test_dtypes_are_kept_layer_by_layer(direction):
    lib = gg if direction == "to_torch" else torch
    convert = to_torch if direction == "to_torch" else from_torch
    source = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3).double())
    twin = convert(source)
    dtypes = {n: str(t.dtype).split(".")[-1] for n, t in twin.state_dict().items()}
    assert dtypes == {"0.weight": "float32", "0.bias": "float32", "1.weight": "float64",
                      "1.bias": "float64", "1.running_mean": "float64", "1.running_var": "float64",
                      "1.num_batches_tracked": "int64"}  # fmt: skip


@pytest.mark.parametrize("direction", ["to_torch", "from_torch"])
def test_sharing_and_frozen_parameters_are_kept(direction):
    lib = gg if direction == "to_torch" else torch
    convert = to_torch if direction == "to_torch" else from_torch
    block, a, b = lib.nn.Linear(3, 3), lib.nn.Linear(3, 3), lib.nn.Linear(3, 3)
    b.weight = a.weight  # tied weights, as an embedding and its output layer
    a.bias.requires_grad_(False)
    source = lib.nn.Sequential(block, lib.nn.Tanh(), block, a, b)
    twin = convert(source)
    assert twin[0] is twin[2] and twin[3].weight is twin[4].weight
    assert twin[3].bias is not twin[4].bias
    assert not twin[3].bias.requires_grad and twin[3].weight.requires_grad
    # as sets: graphgrad's ``b.weight = ...`` moves weight after bias (torch keeps the order)
    assert set(twin.state_dict()) == set(source.state_dict())
    assert {n for n, _ in twin.named_parameters()} == {n for n, _ in source.named_parameters()}


def test_converting_leaves_the_random_streams_as_they_were():
    ours, theirs = gg.nn.Linear(30, 30), torch.nn.Linear(30, 30)
    gg.manual_seed(5)
    torch.manual_seed(5)
    expected = gg.rand(3).numpy(), torch.rand(3).numpy()
    gg.manual_seed(5)
    torch.manual_seed(5)
    from_torch(theirs)  # graphgrad's constructor draws, then is rewound
    to_torch(ours)  # and torch's
    np.testing.assert_array_equal(gg.rand(3).numpy(), expected[0])
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected[1])


# ---------------------------------------------------------------------- what has no counterpart


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return x + self.linear(x)


def test_a_custom_module_is_refused_with_its_path():
    model = nn.ModuleDict({"features": nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4),
                                                     Block())})  # fmt: skip
    with pytest.raises(UnsupportedModuleError) as info:
        to_torch(model)
    message = str(info.value)
    assert "'features.3'" in message and "test_interop_modules.Block" in message
    assert message.startswith("to_torch: cannot convert submodule 'features.3'")
    with pytest.raises(UnsupportedModuleError, match="the root module"):
        to_torch(Block())


@pytest.mark.parametrize("module,path,words", [
    (torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Conv3d(1, 1, 1)), "'1'",
     "torch.nn.modules.conv.Conv3d"),
    (torch.nn.Sequential(torch.nn.Embedding(5, 2, sparse=True)), "'0'", "sparse=True"),
    (torch.nn.ModuleDict({"rnn": torch.nn.LSTM(3, 4, proj_size=2)}), "'rnn'", "proj_size=2"),
    (torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), 1,
                                 enable_nested_tensor=False), "'layers.0.self_attn'",
     "add_bias_kv=True and add_zero_attn=True are not supported"),
])  # fmt: skip
def test_what_graphgrad_lacks_is_refused_with_its_path(module, path, words):
    if isinstance(module, torch.nn.TransformerEncoder):  # attention with bias_k and bias_v
        module.layers[0].self_attn = torch.nn.MultiheadAttention(4, 2, add_bias_kv=True)
    with pytest.raises(UnsupportedModuleError) as info:
        from_torch(module)
    message = str(info.value)
    assert message.startswith(f"from_torch: cannot convert submodule {path}")
    assert words in message


def test_a_layer_whose_parts_were_replaced_is_refused_with_the_part_path():
    layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    layer.norm2 = torch.nn.LayerNorm(8, eps=1e-3)  # not what the constructor builds
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), layer)
    with pytest.raises(UnsupportedModuleError) as info:
        from_torch(model)
    assert str(info.value).startswith(
        "from_torch: cannot convert submodule '1.norm2' "
        "(torch.nn.modules.normalization.LayerNorm): it differs"
    )
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, activation=lambda t: t * 2)
    with pytest.raises(UnsupportedModuleError, match="the root module .*its activation <function"):
        to_torch(layer)


def test_the_wrong_library_is_refused():
    with pytest.raises(TypeError, match="to_torch expects a graphgrad.nn.Module, got torch"):
        to_torch(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="from_torch expects a torch.nn.Module, got graphgrad"):
        from_torch(nn.Linear(2, 2))


# ---------------------------------------------------------------------- a training round trip


def test_train_the_torch_copy_then_bring_the_weights_back():
    gg.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 8), nn.Dropout(0.2), nn.Tanh(), nn.Linear(8, 3),
    ).double()  # fmt: skip
    theirs = to_torch(model).to(DEVICE)
    rng = np.random.default_rng(6)
    x = torch.tensor(rng.standard_normal((16, 1, 6, 6)), device=DEVICE)
    y = torch.tensor(rng.integers(0, 3, 16), device=DEVICE)
    optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    theirs.eval()
    expected = theirs(x).detach().cpu().numpy()

    back = from_torch(theirs)
    assert not back.training and back[1].num_batches_tracked.item() == 4
    np.testing.assert_allclose(back(gg.tensor(x.cpu().numpy())).detach().numpy(), expected,
                               **TOL)  # fmt: skip

    model.load_state_dict({k: v.cpu() for k, v in theirs.state_dict().items()})  # in place
    model.eval()
    np.testing.assert_allclose(model(gg.tensor(x.cpu().numpy())).detach().numpy(), expected, **TOL)


def test_torch_state_dict_loads_into_torch():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    randomize(model, np.random.default_rng(7))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).double()
    state = torch_state_dict(model)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert str(theirs.load_state_dict(state)) == "<All keys matched successfully>"
    for (name, a), b in zip(model.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    state["0.weight"].zero_()  # a copy: the graphgrad weights are untouched
    assert model[0].weight.detach().numpy().any()
