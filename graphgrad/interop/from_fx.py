"""A torch model read into a Graph: ``torch.fx`` writes its forward down, graphgrad replays it.

``torch.fx.symbolic_trace`` turns the module's forward into a list of fx nodes: placeholders (the
arguments), ``get_attr`` (a weight or buffer), ``call_function`` (``torch.cat``, ``F.relu``,
``operator.add``), ``call_method`` (``x.view``) and ``call_module`` (a ``torch.nn`` layer such as
``Linear``). Each node is run once on graphgrad tensors by graphgrad's function, tensor method
or ``graphgrad.nn`` module of the same name (graphgrad has PyTorch's API), inside
:func:`graphgrad.graph.trace`, which records the primitives as the Graph. So the Graph's inputs
are the forward's arguments, its parameters the model's weights (by their state-dict names, values
copied) and its outputs the forward's result; buffers (running statistics) and weights that do
not require grad are named constants. Weights the forward never uses are not in the Graph.

Everything is checked before anything runs, and what fails while running is collected, so that
a model that cannot be read gets one :class:`UnmappableNodesError` listing every such node. As
with any trace, shapes are those of the example inputs and Python control flow is frozen (fx
itself refuses control flow that depends on tensor values). A dropout that is on (a module in
training mode) would freeze the example's random mask, so it is refused: call ``model.eval()``.
"""

from __future__ import annotations

import inspect

import numpy as np

import graphgrad

from .. import _state, nn
from ..graph.capture import trace
from ..graph.core import Graph, GraphError
from ..tensor import Tensor

# torch's C namespaces under their public names: torch._C._fft.fft_rfft is torch.fft.rfft
_C_NAMESPACES = {"_nn": "nn.functional", "_fft": "fft", "_linalg": "linalg", "_special": "special"}
_DROPOUTS = ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
             "feature_alpha_dropout")
# Constructor arguments that a torch subclass passes to its base itself (LSTM gives RNNBase
# mode="LSTM"): the graphgrad class of the same name does the same.
_FIXED_BY_SUBCLASS = ("mode",)


class UnmappableNodesError(GraphError):
    """fx nodes that graphgrad cannot run; ``nodes`` lists ``(op, target, reason)`` for each."""

    def __init__(self, model: str, nodes: list) -> None:
        self.nodes = nodes
        lines = [f"  {op} {target}: {reason}" for op, target, reason in nodes]
        count = f"{len(nodes)} fx node{'s' if len(nodes) != 1 else ''}"
        super().__init__(
            f"graph_from_torch: {count} of {model} cannot be read into a graphgrad Graph:\n"
            + "\n".join(lines)
        )


class _Unmappable(Exception):
    """Why one node cannot be run; collected into an UnmappableNodesError."""


_FAILED = object()  # the value of a node that failed: its users are skipped, not reported


def graph_from_torch(module, *example_inputs) -> Graph:
    """The Graph of ``module``'s forward on ``example_inputs`` (torch or graphgrad tensors, or
    NumPy arrays), read through ``torch.fx.symbolic_trace``.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    >>> g = graph_from_torch(model, torch.zeros(4, 3))
    >>> [n.name for n in g.inputs], [n.name for n in g.parameters]
    (['input'], ['0.weight', '0.bias'])
    >>> [(n.name, n.op) for n in g.operations]  # each named after the fx node that made it
    [('_0', 'linear'), ('_1', 'tanh')]
    """
    import torch
    import torch.fx

    if not isinstance(module, torch.nn.Module):
        raise GraphError(f"graph_from_torch: expected a torch.nn.Module, got "
                         f"{type(module).__module__}.{type(module).__qualname__}")
    fx_graph = _symbolic_trace(module).graph
    arguments = [n for n in fx_graph.nodes if n.op == "placeholder"]
    if len(example_inputs) != len(arguments):
        raise GraphError(
            f"graph_from_torch: {_model_name(module)}.forward takes {len(arguments)} tensor "
            f"argument(s) ({', '.join(n.target for n in arguments)}), got "
            f"{len(example_inputs)} example input(s)"
        )
    inputs = [_example(n.target, x) for n, x in zip(arguments, example_inputs)]
    reader = _Reader(module)
    steps, problems = reader.plan(fx_graph)
    if problems:
        raise UnmappableNodesError(_model_name(module), problems)

    def forward(*args):
        return reader.run(fx_graph, steps, args)

    # trace names the Graph's inputs after the function's arguments: those of module.forward
    forward.__signature__ = inspect.Signature(
        [inspect.Parameter(n.target, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in arguments]
    )
    try:
        return trace(forward, *inputs, names=reader.names)
    except UnmappableNodesError:
        _check_inputs_fit(module, inputs)  # a wrong shape or dtype is torch's error first
        raise


def _check_inputs_fit(module, inputs: list) -> None:
    """Raise GraphError if torch's own forward fails on the example inputs (run on a copy, so
    that a batch norm in training mode keeps its statistics)."""
    import copy

    import torch

    try:
        with torch.no_grad():
            copy.deepcopy(module)(*(torch.from_numpy(x.numpy()) for x in inputs))
    except Exception as exc:  # noqa: BLE001 - whatever torch says is the message
        first_line = (str(exc).strip().splitlines() or [""])[0]
        shapes = ", ".join(f"{tuple(x.shape)} {x.dtype.name}" for x in inputs)
        raise GraphError(
            f"graph_from_torch: the example inputs ({shapes}) do not fit {_model_name(module)}: "
            f"torch's own forward raises {type(exc).__name__}: {first_line}"
        ) from None


def _symbolic_trace(module):
    import torch.fx

    try:
        return torch.fx.symbolic_trace(module)
    except Exception as exc:  # control flow on tensor values, an untraceable Python call...
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise GraphError(
            f"graph_from_torch: torch.fx.symbolic_trace cannot trace {_model_name(module)}: "
            f"{type(exc).__name__}: {first_line}"
        ) from None


def _model_name(module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _example(name: str, x) -> Tensor:
    """An example input as a graphgrad tensor of the same dtype."""
    import torch

    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, torch.Tensor):
        return graphgrad.tensor(_numpy(x))
    if isinstance(x, np.ndarray):
        return graphgrad.tensor(x)
    raise GraphError(f"graph_from_torch: example input {name!r} must be a torch or graphgrad "
                     f"tensor or a NumPy array, got {type(x).__name__}")


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


class _Reader:
    """Runs fx nodes on graphgrad tensors; owns the graphgrad copies of the model's weights."""

    def __init__(self, module) -> None:
        self.module = module
        # the first state-dict name of each torch tensor (a tied weight has several)
        self.torch_names = {}
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            self.torch_names.setdefault(id(t), name)
        self.copies: dict[int, Tensor] = {}  # id(torch tensor) -> its graphgrad copy
        self.names: dict[str, Tensor] = {}  # name -> graphgrad tensor, for trace
        self.modules: dict[str, nn.Module] = {}  # fx target -> graphgrad module

    # ------------------------------------------------------------------ before running
    def plan(self, fx_graph) -> tuple[dict, list]:
        """For each node, a function of its (graphgrad) arguments; and the nodes that have none."""
        steps, problems = {}, []
        for node in fx_graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            try:
                steps[node] = self._step(node)
            except _Unmappable as exc:
                problems.append((node.op, _target_name(node, self.module), str(exc)))
        return steps, problems

    def _step(self, node):
        if node.op == "get_attr":
            try:
                found = _fetch(self.module, node.target)
            except AttributeError:
                raise _Unmappable(f"the model has no attribute {node.target}") from None
            value = self._copy(found, node.target)
            return lambda: value
        if node.op == "call_method":
            if not callable(getattr(Tensor, node.target, None)):
                raise _Unmappable(f"graphgrad.Tensor has no method {node.target!r}")
            return lambda this, *args, **kwargs: getattr(this, node.target)(*args, **kwargs)
        if node.op == "call_module":
            return self._graphgrad_module(node.target)
        if node.op == "call_function":
            return _graphgrad_function(node.target)
        raise _Unmappable(f"unknown fx op {node.op!r}")

    def _copy(self, value, name: str):
        """A torch tensor as graphgrad's: a weight (requiring grad as in torch) or a constant,
        one copy per torch tensor so that tied weights stay tied."""
        import torch

        if not isinstance(value, torch.Tensor):
            return _to_graphgrad(value)
        if id(value) not in self.copies:
            array = _numpy(value)
            if isinstance(value, torch.nn.Parameter):
                copy = nn.Parameter(graphgrad.tensor(array), requires_grad=value.requires_grad)
            else:
                copy = graphgrad.tensor(array)
            self.copies[id(value)] = copy
            self.names[self.torch_names.get(id(value), name)] = copy
        return self.copies[id(value)]

    def _graphgrad_module(self, target: str):
        """graphgrad.nn's module of the same class, built with the torch module's settings and
        holding copies of its weights and buffers."""
        if target in self.modules:
            return self.modules[target]
        sub = self.module.get_submodule(target)
        cls_name = type(sub).__name__
        cls = getattr(nn, cls_name, None) if type(sub).__module__.startswith("torch.nn.") else None
        if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            raise _Unmappable(f"graphgrad.nn has no {cls_name}")
        settings = _constructor_settings(sub, cls)
        try:
            copy = cls(**settings)
        except Exception as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
            raise _Unmappable(f"graphgrad.nn.{cls_name}({shown}) failed: {exc}") from None
        self._share_state(sub, copy, target)
        copy.train(sub.training)
        if "dropout" in cls_name.lower() and sub.training and getattr(sub, "p", 0) > 0:
            raise _Unmappable(_DROPOUT_ON)
        self.modules[target] = copy
        return copy

    def _share_state(self, sub, copy, target: str) -> None:
        """Put copies of ``sub``'s weights and buffers into ``copy``, which must have the same
        ones (names and shapes) for its computation to be torch's."""
        ours = {k: tuple(p.shape) for k, p in copy.named_parameters(remove_duplicate=False)}
        theirs = {k: tuple(p.shape) for k, p in sub.named_parameters(remove_duplicate=False)}
        if ours != theirs:
            raise _Unmappable(f"graphgrad.nn.{type(sub).__name__} has parameters {ours}, the "
                              f"torch module {theirs}")
        torch_buffers = dict(sub.named_buffers(remove_duplicate=False))
        for name, buffer in list(copy.named_buffers(remove_duplicate=False)):
            theirs = torch_buffers.get(name)
            if theirs is None or tuple(theirs.shape) != tuple(buffer.shape):
                raise _Unmappable(f"graphgrad.nn.{type(sub).__name__} has a buffer {name} of "
                                  f"shape {tuple(buffer.shape)} that the torch module lacks")
            _set(copy, name, self._copy(theirs, f"{target}.{name}"))
        for name, param in sub.named_parameters(remove_duplicate=False):
            _set(copy, name, self._copy(param, f"{target}.{name}"))

    # ------------------------------------------------------------------ running
    def run(self, fx_graph, steps: dict, args: tuple):
        """The fx graph on graphgrad tensors, while trace records; each op node that a fx node
        adds last is named after it, so the Graph reads like the model (fc1, relu, add...)."""
        import torch.fx

        recorder = _state.state.capture  # trace's, which turns primitives into graph nodes
        env, problems = {}, []
        placeholders = iter(args)
        for node in fx_graph.nodes:
            if node.op == "placeholder":
                env[node] = next(placeholders)
                continue
            if node.op == "output":
                break
            fx_args = torch.fx.node.map_arg(node.args, env.__getitem__)
            fx_kwargs = torch.fx.node.map_arg(node.kwargs, env.__getitem__)
            if _contains_failed((fx_args, fx_kwargs)):
                env[node] = _FAILED
                continue
            first_new = len(recorder.graph.nodes)
            try:
                fx_args, fx_kwargs = _to_graphgrad(fx_args), _to_graphgrad(fx_kwargs)
                _check_dropout(node, fx_args, fx_kwargs)
                env[node] = steps[node](*fx_args, **fx_kwargs)
            except Exception as exc:  # noqa: BLE001 - reported with the node, all at once
                problems.append((node.op, _target_name(node, self.module), _reason(exc)))
                env[node] = _FAILED
                continue
            _name_result(recorder, env[node], first_new, node.name)
        if problems:
            raise UnmappableNodesError(_model_name(self.module), problems)
        return _output_tensors(torch.fx.node.map_arg(node.args[0], env.__getitem__))


_DROPOUT_ON = ("dropout is on (training mode): a Graph would freeze the example's random mask; "
               "call model.eval() first")


def _check_dropout(node, args: tuple, kwargs: dict) -> None:
    """F.dropout(x, p, training=True) would freeze one random mask into the Graph: refused."""
    if node.op != "call_function" or getattr(node.target, "__name__", "") not in _DROPOUTS:
        return
    bound = inspect.signature(_graphgrad_function(node.target)).bind(*args, **kwargs)
    bound.apply_defaults()
    if bound.arguments.get("training") and bound.arguments.get("p", 0) > 0:
        raise _Unmappable(_DROPOUT_ON)


def _reason(exc: Exception) -> str:
    if isinstance(exc, _Unmappable):
        return str(exc)
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"graphgrad raised {type(exc).__name__}: {first_line}"


def _name_result(recorder, value, first_new: int, name: str) -> None:
    node_id = recorder.node_of.get(id(value)) if isinstance(value, Tensor) else None
    if node_id is not None and node_id >= first_new:
        graph_node = recorder.graph.nodes[node_id]
        if graph_node.kind == "op" and not graph_node.name:
            graph_node.name = name


def _output_tensors(result) -> tuple:
    """The forward's result (a tensor, or tuples, lists and dicts of them) as a flat tuple."""
    if isinstance(result, Tensor):
        return (result,)
    if isinstance(result, (tuple, list)):
        return tuple(t for item in result for t in _output_tensors(item))
    if isinstance(result, dict):
        return tuple(t for item in result.values() for t in _output_tensors(item))
    raise GraphError(f"graph_from_torch: the model returns a {type(result).__name__}; a Graph's "
                     "outputs are tensors (or tuples, lists and dicts of them)")


def _contains_failed(value) -> bool:
    if value is _FAILED:
        return True
    if isinstance(value, (tuple, list)):
        return any(_contains_failed(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_failed(v) for v in value.values())
    if isinstance(value, slice):
        return any(_contains_failed(v) for v in (value.start, value.stop, value.step))
    return False


def _to_graphgrad(value):
    """torch objects in a node's arguments as graphgrad's: tensors, dtypes, sizes, devices."""
    import torch

    if isinstance(value, tuple) and not isinstance(value, torch.Size):
        return tuple(_to_graphgrad(v) for v in value)
    if isinstance(value, list):
        return [_to_graphgrad(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_graphgrad(v) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(*(_to_graphgrad(v) for v in (value.start, value.stop, value.step)))
    if isinstance(value, torch.Tensor):
        return graphgrad.tensor(_numpy(value))
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.dtype):
        name = str(value).removeprefix("torch.")
        if not isinstance(getattr(graphgrad, name, None), type(graphgrad.float32)):
            raise _Unmappable(f"graphgrad has no dtype {name}")
        return getattr(graphgrad, name)
    if isinstance(value, (torch.memory_format, torch.layout)):
        raise _Unmappable(f"graphgrad has no counterpart of {value}")
    return value


def _fetch(module, target: str):
    """``module``'s attribute at a dotted path (what a get_attr node names)."""
    value = module
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _set(module, dotted: str, value) -> None:
    owner, _, name = dotted.rpartition(".")
    setattr(module.get_submodule(owner) if owner else module, name, value)


def _constructor_settings(sub, cls) -> dict:
    """The keyword arguments that built ``sub``, read back from its attributes of the same
    names (Linear's in_features...), in the form graphgrad's ``cls`` takes them."""
    signature = _explicit_signature(type(sub))
    ours = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in ours.values())
    settings = {}
    for name, param in signature.parameters.items():
        if (name == "self" or name.startswith("_") or name in ("device", "dtype")
                or name in _FIXED_BY_SUBCLASS or param.kind in (param.VAR_POSITIONAL,
                                                                param.VAR_KEYWORD)):
            continue
        if not hasattr(sub, name):
            continue  # not kept by torch: the default it was built with is the likely one
        value = getattr(sub, name)
        if isinstance(param.default, bool) and (value is None or _is_torch_tensor(value)):
            value = value is not None  # bias=True is kept as the bias tensor (or None)
        if isinstance(value, type(param.default)) and value == param.default:
            continue  # the default: graphgrad's is torch's (and RNN takes no proj_size at all)
        if callable(value):  # a module or function built from the argument (activation="gelu")
            raise _Unmappable(f"cannot read {name} back from the torch module (it holds "
                              f"{type(value).__name__} {value!r})")
        if name not in ours and not takes_any:
            raise _Unmappable(f"graphgrad.nn.{cls.__name__} has no argument {name} (the model "
                              f"uses {name}={value!r})")
        settings[name] = value
    return settings


def _explicit_signature(cls) -> inspect.Signature:
    """The first ``__init__`` along the MRO with named arguments (LSTM's is RNNBase's)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        signature = inspect.signature(init)
        if any(p.kind == p.POSITIONAL_OR_KEYWORD and p.name != "self"
               for p in signature.parameters.values()):
            return signature
    return inspect.signature(cls.__init__)


def _is_torch_tensor(value) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def _public_name(target) -> str:
    """A call_function target by the name a user writes: torch.fft.fft, operator.add."""
    from torch.fx.node import _get_qualified_name

    try:
        name = _get_qualified_name(target)
    except Exception:  # noqa: BLE001 - a callable fx could not name: show what it is
        return repr(target)
    if name.startswith("_operator."):
        return "operator." + name.removeprefix("_operator.")
    if name.startswith("torch._C._"):
        namespace, _, function = name.removeprefix("torch._C.").partition(".")
        if namespace in _C_NAMESPACES:
            prefix = namespace.removeprefix("_") + "_"
            return f"torch.{_C_NAMESPACES[namespace]}.{function.removeprefix(prefix)}"
    return name


def _graphgrad_function(target):
    """graphgrad's function of the same name as a call_function target."""
    if target is getattr or getattr(target, "__module__", None) in ("_operator", "operator"):
        return target  # x.shape, x + y, x[i]: Python's own, which graphgrad tensors answer
    name = _public_name(target)
    if not name.startswith("torch."):
        raise _Unmappable(f"{name} is not a torch function")
    path = name.removeprefix("torch.").split(".")
    candidates = [path]
    if path[0] == "functional":
        candidates.append(path[1:])  # torch.functional.einsum is torch.einsum
    elif path[:2] == ["nn", "functional"]:
        candidates.append(path[2:])  # F.x that graphgrad has only as graphgrad.x
    elif len(path) == 1:
        candidates.append(["nn", "functional", *path])  # torch.conv2d is F.conv2d
    for candidate in candidates:
        found = graphgrad
        for part in candidate:
            found = getattr(found, part, None)
        if callable(found) and not inspect.isclass(found):
            return _without_torch_defaults(found, target)
    raise _Unmappable(f"graphgrad has no {'graphgrad.' + '.'.join(path)}")


def _without_torch_defaults(function, target):
    """``function``, called without the keyword arguments it lacks that the model passes at
    torch's default value (F.embedding passes max_norm=None, which graphgrad does not take)."""
    try:
        ours = inspect.signature(function).parameters
        theirs = inspect.signature(target).parameters
    except (TypeError, ValueError):  # a builtin without a signature: call it as it is
        return function
    if any(p.kind == p.VAR_KEYWORD for p in ours.values()):
        return function
    defaults = {
        k: p.default for k, p in theirs.items() if k not in ours and p.default is not p.empty
    }

    def call(*args, **kwargs):
        kept = {k: v for k, v in kwargs.items() if not (k in defaults and _same(v, defaults[k]))}
        return function(*args, **kept)

    return call if defaults else function


def _same(value, default) -> bool:
    plain = (bool, int, float, str, tuple)
    return value is default or (isinstance(value, plain) and type(value) is type(default)
                                and value == default)


def _target_name(node, module) -> str:
    """How an error names a node: its op's target, and the fx node when that says more."""
    if node.op == "call_function":
        return f"{_public_name(node.target)} (node {node.name})"
    if node.op == "call_module":
        sub = module.get_submodule(node.target)
        kind = type(sub)
        path = "torch.nn" if kind.__module__.startswith("torch.nn.") else kind.__module__
        return f"{node.target} ({path}.{kind.__qualname__})"
    if node.op == "call_method":
        return f".{node.target}() (node {node.name})"
    return str(node.target)


__all__ = ["UnmappableNodesError", "graph_from_torch"]
