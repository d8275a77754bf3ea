"""Modules both ways: ``to_torch`` builds the ``torch.nn`` twin of a graphgrad module,
``from_torch`` the graphgrad twin of a torch one, with the same constructor arguments, weights,
buffers (dtypes kept), train/eval mode and nesting of containers.

The constructor arguments are read off the module's attributes, which carry torch's names in
both libraries, so one table (``_SPECS``) serves both directions. A module of a class the other
library lacks, such as your own ``nn.Module`` subclass with its own forward, raises
``UnsupportedModuleError`` naming its path in the tree and its type.

>>> import numpy as np
>>> import torch
>>> import graphgrad as gg
>>> from graphgrad.interop.modules import from_torch, to_torch
>>> model = gg.nn.Sequential(gg.nn.Linear(3, 4), gg.nn.Tanh(), gg.nn.Linear(4, 2)).double()
>>> twin = to_torch(model)
>>> twin
Sequential(
  (0): Linear(in_features=3, out_features=4, bias=True)
  (1): Tanh()
  (2): Linear(in_features=4, out_features=2, bias=True)
)
>>> twin[0].weight.dtype
torch.float64
>>> x = np.random.default_rng(0).standard_normal((5, 3))
>>> ours = model(gg.tensor(x)).detach().numpy()
>>> bool(np.allclose(twin(torch.from_numpy(x)).detach().numpy(), ours, rtol=1e-12, atol=1e-12))
True
>>> back = from_torch(twin)  # and back: the same classes, weights and dtype
>>> bool(np.array_equal(back(gg.tensor(x)).detach().numpy(), ours))
True
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import creation
from .. import nn as gg_nn
from ..tensor import Tensor

__all__ = ["to_torch", "from_torch", "torch_state_dict", "UnsupportedModuleError", "SUPPORTED"]


class UnsupportedModuleError(TypeError):
    """A module (at a path in the tree) that the other library cannot build."""


# ---------------------------------------------------------------------------- the table
# A reader computes one constructor argument from the source module: reader(converter, module,
# path). Most arguments need none: they are attributes of the same name in both libraries.


def _attr(dotted: str):
    """An argument kept on a submodule, e.g. ``self_attn.embed_dim`` for ``d_model``."""

    def read(conv, module, path):
        for part in dotted.split("."):
            module = getattr(module, part)
        return module

    return read


def _present(dotted: str):
    """``bias=True`` when the module holds a ``bias`` (the layers keep the tensor, not the
    flag)."""
    return lambda conv, module, path: _attr(dotted)(conv, module, path) is not None


def _tensor(name: str):
    """A tensor argument (a loss's class weights), as the target library's tensor."""
    return lambda conv, module, path: conv.tensor(getattr(module, name))


def _child(name: str):
    """A module argument, converted (None stays None)."""

    def read(conv, module, path):
        child = getattr(module, name)
        return None if child is None else conv.convert(child, _join(path, name))

    return read


def _activation(conv, module, path):
    """TransformerEncoderLayer keeps the function it was given; 'relu' and 'gelu' name their
    functional form, a module is converted, anything else has no counterpart."""
    activation = module.activation
    for name in ("relu", "gelu"):
        if activation is getattr(conv.source.functional, name):
            return name
    if isinstance(activation, conv.source.nn.Module):
        return conv.convert(activation, _join(path, "activation"))
    why = (f"its activation {activation!r} is neither relu, gelu nor a module, so it has no "
           f"counterpart in {conv.target.name}")  # fmt: skip
    raise conv.error(path, module, why)


def _encoder_layers(conv, built, module, path) -> None:
    """The encoder's constructor deep-copies its first layer; each layer may differ, so each
    is converted in turn. setattr by key, not ``layers[i] =``: graphgrad's re-registration
    moves the key to the end, so ``[i]`` would then find another layer."""
    for i, layer in enumerate(module.layers):
        setattr(built.layers, str(i), conv.convert(layer, _join(path, f"layers.{i}")))


def _same_children(conv, built, module, path) -> None:
    """A layer whose constructor builds its submodules: each source submodule, converted on
    its own, must print as the one the constructor built (someone may have replaced one, say a
    LayerNorm of another eps), and that one stands for it if it is shared elsewhere."""
    for name, child in module._modules.items():
        constructed = built._modules.get(name)
        if child is None or constructed is None:
            continue
        alone = conv.convert(child, _join(path, name))
        if repr(alone) != repr(constructed):
            why = (f"it differs from what {type(module).__name__}'s constructor builds there: "
                   f"{constructed!r}")
            raise conv.error(_join(path, name), child, why)
        conv.built[id(child)] = constructed


@dataclass(frozen=True)
class _Spec:
    """How to build a layer: ``derived`` arguments come from readers; the others from
    attributes of their own name (``args``; by default every argument of graphgrad's
    constructor); ``torch_only`` lists torch attributes graphgrad lacks and the only value it
    can honour; ``finish(converter, built, source, path)`` runs after the constructor."""

    derived: dict[str, Callable] = field(default_factory=dict)
    args: tuple[str, ...] | None = None
    torch_only: dict[str, object] = field(default_factory=dict)
    finish: Callable | None = None


_BIAS = {"bias": _present("bias")}
_CLASS_WEIGHT = {"weight": _tensor("weight")}
_RNN_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
             "bidirectional")  # fmt: skip

_NO_DERIVED = [
    # activations
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax", "SiLU", "Mish",
    "SELU", "Hardsigmoid", "Hardswish", "ELU", "CELU", "Softplus", "Hardtanh", "ReLU6", "PReLU",
    "Softmin", "Softsign", "LogSigmoid", "Dropout", "Dropout1d", "Dropout2d", "GLU", "Hardshrink",
    "Softshrink", "Tanhshrink", "Threshold",
    # shapes, pooling, cells
    "Identity", "Flatten", "Unflatten", "MaxPool1d", "MaxPool2d", "AvgPool2d",
    "AdaptiveAvgPool2d", "AvgPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "RNNCell", "LSTMCell", "GRUCell",
    "PixelShuffle", "PixelUnshuffle", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
    # padding
    "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
    "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d",
    # normalization without a bias flag
    "RMSNorm",
    # losses without tensors
    "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "KLDivLoss", "PoissonNLLLoss",
    "GaussianNLLLoss", "HingeEmbeddingLoss", "SoftMarginLoss", "CosineEmbeddingLoss",
    "MarginRankingLoss", "TripletMarginLoss",
]  # fmt: skip

# layers that hold their bias flag as the ``bias`` tensor (or None)
_BIAS_FLAG = ("Linear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "BatchNorm1d",
              "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
              "Bilinear")  # fmt: skip

# losses holding a ``weight`` tensor (or None)
_WEIGHTED_LOSSES = ("NLLLoss", "CrossEntropyLoss", "BCELoss", "MultiLabelSoftMarginLoss",
                    "MultiMarginLoss")  # fmt: skip

_SPECS: dict[str, _Spec] = {
    **{name: _Spec() for name in _NO_DERIVED},
    **{name: _Spec(_BIAS) for name in _BIAS_FLAG},
    **{name: _Spec(_CLASS_WEIGHT) for name in _WEIGHTED_LOSSES},
    "CosineSimilarity": _Spec(),
    "PairwiseDistance": _Spec({"p": _attr("norm")}),  # torch keeps p as ``norm``
    "BCEWithLogitsLoss": _Spec({**_CLASS_WEIGHT, "pos_weight": _tensor("pos_weight")}),
    "Embedding": _Spec(torch_only={"max_norm": None, "scale_grad_by_freq": False,
                                   "sparse": False}),  # fmt: skip
    "RNN": _Spec(args=_RNN_ARGS + ("nonlinearity",)),
    "LSTM": _Spec(args=_RNN_ARGS + ("proj_size",)),
    "GRU": _Spec(args=_RNN_ARGS),
    "MultiheadAttention": _Spec({"bias": _present("in_proj_bias"),
                                 "add_bias_kv": _present("bias_k")}),  # fmt: skip
    "TransformerEncoderLayer": _Spec({
        "d_model": _attr("self_attn.embed_dim"),
        "nhead": _attr("self_attn.num_heads"),
        "dim_feedforward": _attr("linear1.out_features"),
        "dropout": _attr("dropout.p"),
        "activation": _activation,
        "layer_norm_eps": _attr("norm1.eps"),
        "batch_first": _attr("self_attn.batch_first"),
        "bias": _present("linear1.bias"),
    }, finish=_same_children),  # fmt: skip
    "TransformerEncoder": _Spec(
        {"encoder_layer": lambda conv, module, path: conv.convert(
            module.layers[0], _join(path, "layers.0")),
         "norm": _child("norm")},
        finish=_encoder_layers,
    ),  # fmt: skip
}

# Containers are rebuilt from their converted children, under the same names; the parameter
# containers from new parameters, whose values come over with the rest of the state.
_PARAMETER_CONTAINERS = ("ParameterList", "ParameterDict")
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict", *_PARAMETER_CONTAINERS)

SUPPORTED: tuple[str, ...] = tuple(sorted([*_SPECS, *_CONTAINERS]))
"""The class names (the same in graphgrad.nn and torch.nn) that convert both ways."""

# Constructor arguments never read off a module: placement, torch's deprecated loss options
# (already folded into ``reduction``) and Hardtanh's deprecated names (kept as min_val, max_val).
_NOT_ARGUMENTS = {"self", "device", "dtype", "size_average", "reduce", "min_value", "max_value"}


def _attribute_args(name: str, spec: _Spec) -> tuple[str, ...]:
    if spec.args is not None:
        return spec.args
    signature = inspect.signature(getattr(gg_nn, name).__init__)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(
        p.name for p in signature.parameters.values()
        if p.kind in kinds and p.name not in _NOT_ARGUMENTS and not p.name.startswith("_")
        and p.name not in spec.derived
    )  # fmt: skip


# ---------------------------------------------------------------------------- the two libraries


@dataclass(frozen=True)
class _Library:
    """What the converter needs of one library."""

    name: str  # as the messages say it: "graphgrad.nn" or "torch.nn"
    nn: object
    functional: object
    to_numpy: Callable  # a tensor -> a NumPy array of its own
    from_numpy: Callable  # a NumPy array -> a tensor
    set_data: Callable  # (tensor, array): replace the values, dtype included, keeping the object
    tie: Callable  # (module, name, parameter): make module.name that (shared) parameter
    kept_rng: Callable  # a context that restores the library's random state afterwards

    def classes(self) -> dict:
        """Exact class -> name: a subclass (someone's own module) is not its base."""
        return {getattr(self.nn, name): name for name in SUPPORTED}


@contextlib.contextmanager
def _graphgrad_rng():
    state = creation.default_generator.get_state()
    try:
        yield
    finally:
        creation.default_generator.set_state(state)


def _graphgrad() -> _Library:
    return _Library(
        name="graphgrad.nn",
        nn=gg_nn,
        functional=gg_nn.functional,
        to_numpy=lambda t: np.array(t.detach().numpy(), copy=True),
        from_numpy=creation.tensor,
        set_data=_set_graphgrad_data,
        tie=lambda module, name, param: module.register_parameter(name, param),
        kept_rng=_graphgrad_rng,
    )


def _set_graphgrad_data(tensor: Tensor, array: np.ndarray) -> None:
    tensor.data = array


def _torch() -> _Library:
    import torch

    def set_data(tensor, array):
        tensor.data = torch.from_numpy(array)

    return _Library(
        name="torch.nn",
        nn=torch.nn,
        functional=torch.nn.functional,
        to_numpy=lambda t: np.array(t.detach().cpu().numpy(), copy=True),
        from_numpy=torch.from_numpy,
        set_data=set_data,
        tie=setattr,  # torch's __setattr__ keeps the order, and RNN's _flat_weights, right
        kept_rng=lambda: torch.random.fork_rng(devices=[]),
    )


# ---------------------------------------------------------------------------- the converter


class _Converter:
    def __init__(self, verb: str, source: _Library, target: _Library) -> None:
        self.verb, self.source, self.target = verb, source, target
        self.classes = source.classes()
        self.built: dict[int, object] = {}  # id(source module) -> its twin: sharing is kept

    def run(self, root):
        if not isinstance(root, self.source.nn.Module):
            raise TypeError(f"{self.verb} expects a {self.source.name}.Module, got "
                            f"{_type_name(root)}")  # fmt: skip
        with self.target.kept_rng(), warnings.catch_warnings():
            # the constructors repeat warnings the source's constructors already gave
            warnings.simplefilter("ignore")
            twin = self.convert(root, "")
        self._copy_state(root, twin)
        return twin

    def error(self, path: str, module, why: str) -> UnsupportedModuleError:
        where = f"submodule '{path}'" if path else "the root module"
        return UnsupportedModuleError(f"{self.verb}: cannot convert {where} "
                                      f"({_type_name(module)}): {why}")  # fmt: skip

    def tensor(self, value):
        return None if value is None else self.target.from_numpy(self.source.to_numpy(value))

    def convert(self, module, path: str):
        if id(module) not in self.built:
            self.built[id(module)] = self._build(module, path)
        return self.built[id(module)]

    def _build(self, module, path: str):
        name = self.classes.get(type(module))
        if name is None:
            why = (f"{self.target.name} has no counterpart for it (the classes that convert "
                   "are graphgrad.interop.modules.SUPPORTED, by exact type: a subclass, such as "
                   "your own module with its own forward, does not)")
            raise self.error(path, module, why)
        if name in _CONTAINERS:
            return self._container(name, module, path)
        spec = _SPECS[name]
        if self.source.name == "torch.nn":
            self._check_torch_only(spec, module, path)
        kwargs = {arg: getattr(module, arg) for arg in _attribute_args(name, spec)}
        kwargs.update({arg: read(self, module, path) for arg, read in spec.derived.items()})
        try:
            built = getattr(self.target.nn, name)(**kwargs)
        except (ValueError, TypeError, NotImplementedError, AssertionError, RuntimeError) as e:
            raise self.error(path, module, f"{self.target.name}.{name} refuses its arguments: "
                                           f"{e}") from e  # fmt: skip
        if spec.finish is not None:
            spec.finish(self, built, module, path)
        return built

    def _check_torch_only(self, spec: _Spec, module, path: str) -> None:
        for attr, only in spec.torch_only.items():
            value = getattr(module, attr)
            if value != only:
                raise self.error(path, module, f"{attr}={value!r}, but graphgrad's "
                                               f"{type(module).__name__} has no {attr} option "
                                               f"(only {attr}={only!r})")  # fmt: skip

    def _container(self, name: str, module, path: str):
        if name in _PARAMETER_CONTAINERS:
            return self._parameter_container(name, module, path)
        children = [
            (key, None if child is None else self.convert(child, _join(path, key)))
            for key, child in module._modules.items()  # not named_children: it drops repeats
        ]
        target = getattr(self.target.nn, name)
        if name == "ModuleList":
            return target([child for _, child in children])
        return target(OrderedDict(children))  # Sequential and ModuleDict keep their keys

    def _parameter_container(self, name: str, module, path: str):
        """A ParameterList or ParameterDict of parameters only (torch's may hold any object,
        which has no counterpart), each a new parameter of the source's shape and dtype."""
        entries = list(module.items()) if name == "ParameterDict" else list(enumerate(module))
        for key, value in entries:
            if not isinstance(value, self.source.nn.Parameter):
                why = f"its entry {key!r} is a {_type_name(value)}, not a parameter"
                raise self.error(path, module, why)
        params = [(key, self.target.nn.Parameter(self.tensor(value))) for key, value in entries]
        target = getattr(self.target.nn, name)
        if name == "ParameterList":
            return target([param for _, param in params])
        return target(OrderedDict(params))

    def _copy_state(self, root, twin) -> None:
        """Every parameter and buffer (values, dtype, requires_grad) and every module's
        training flag, module by module; a tensor shared in the source is shared in the twin."""
        twins = dict(twin.named_modules(remove_duplicate=False))
        done: dict[int, object] = {}  # id(source tensor) -> its twin
        for path, module in root.named_modules(remove_duplicate=False):
            other = twins.get(path)
            if other is None:
                raise self.error(path, module, f"the {self.target.name} twin has no submodule "
                                               f"'{path}'")  # fmt: skip
            other.training = module.training
            for registry in ("_parameters", "_buffers"):
                self._copy_tensors(path, module, other, registry, done)

    def _copy_tensors(self, path, module, other, registry: str, done: dict) -> None:
        ours = {k: v for k, v in getattr(module, registry).items() if v is not None}
        theirs = {k: v for k, v in getattr(other, registry).items() if v is not None}
        if set(ours) != set(theirs):  # not the order: graphgrad's re-assignment moves a name
            kind = registry.strip("_")
            raise self.error(path, module, f"it has {kind} {list(ours)}, but the "
                                           f"{self.target.name} layer built from its arguments "
                                           f"has {list(theirs)}")  # fmt: skip
        for name, value in ours.items():
            if id(value) in done:
                if theirs[name] is not done[id(value)] and registry == "_parameters":
                    self.target.tie(other, name, done[id(value)])
                continue
            try:
                array = self.source.to_numpy(value)
            except TypeError as e:  # a dtype NumPy lacks, e.g. torch.bfloat16
                raise self.error(path, module, f"{name} has dtype {value.dtype}, which NumPy "
                                               f"cannot hold: {e}") from e  # fmt: skip
            self.target.set_data(theirs[name], array)
            if registry == "_parameters":
                theirs[name].requires_grad_(value.requires_grad)
            done[id(value)] = theirs[name]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _type_name(value) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


# ---------------------------------------------------------------------------- public functions


def to_torch(module: gg_nn.Module):
    """The ``torch.nn`` twin of a graphgrad module: the same classes, constructor arguments,
    weights and buffers (dtypes kept), training flags and nesting, on the CPU. torch's random
    state is left as it was.

    >>> import graphgrad as gg
    >>> from graphgrad.interop.modules import to_torch
    >>> to_torch(gg.nn.Conv2d(1, 4, 3, padding=1).double().eval())
    Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    """
    return _Converter("to_torch", _graphgrad(), _torch()).run(module)


def from_torch(module) -> gg_nn.Module:
    """The graphgrad twin of a ``torch.nn`` module (values copied off its device), as
    ``to_torch`` in reverse; options graphgrad lacks (``Embedding(sparse=True)``,
    ``LSTM(proj_size=...)``) raise ``UnsupportedModuleError``.

    >>> import torch
    >>> from graphgrad.interop.modules import from_torch
    >>> from_torch(torch.nn.LSTM(3, 5, num_layers=2)).weight_hh_l1.shape
    graphgrad.Size([20, 5])
    """
    return _Converter("from_torch", _torch(), _graphgrad()).run(module)


def torch_state_dict(module: gg_nn.Module) -> OrderedDict:
    """A graphgrad module's state dict as torch tensors (copies), which torch's
    ``load_state_dict`` takes.

    >>> import torch
    >>> import graphgrad as gg
    >>> from graphgrad.interop.modules import torch_state_dict
    >>> torch.nn.Linear(2, 3).load_state_dict(torch_state_dict(gg.nn.Linear(2, 3)))
    <All keys matched successfully>
    """
    import torch

    return OrderedDict(
        (key, torch.from_numpy(np.array(value.numpy(), copy=True)))
        for key, value in module.state_dict().items()
    )
