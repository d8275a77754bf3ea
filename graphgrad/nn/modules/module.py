"""``Module``: the base class of layers, with torch's registration, traversal and state dicts."""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from ... import _dtype, _state
from ...autograd import no_grad
from ...tensor import RemovableHandle, Tensor, to_arguments
from ..parameter import Parameter


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it missed and those it did not expect."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class Module:
    """Base class of all layers: assigning a Parameter, Module or buffer attribute registers it.

    >>> import graphgrad as gg
    >>> class Affine(gg.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = gg.nn.Parameter(gg.ones(2))
    ...         self.register_buffer("shift", gg.zeros(2))
    ...     def forward(self, x):
    ...         return x * self.scale + self.shift
    >>> list(Affine().state_dict())
    ['scale', 'shift']
    """

    def __init__(self) -> None:
        # object.__setattr__: our __setattr__ needs these dicts to exist already
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        # the ids of the hooks registered with_kwargs, or always_call, as torch keeps them
        object.__setattr__(self, "_forward_hooks_with_kwargs", OrderedDict())
        object.__setattr__(self, "_forward_hooks_always_called", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks_with_kwargs", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args, **kwargs):
        if _state.state.capture is not None:  # compile re-records when .training changes
            _state.note("module", self)
        if self._forward_pre_hooks or _global_forward_pre_hooks:
            args, kwargs = self._call_pre_hooks(args, kwargs)
        if not self._forward_hooks and not _global_forward_hooks:
            return self.forward(*args, **kwargs)
        try:
            output = self.forward(*args, **kwargs)
        except Exception:
            for key, hook in list(self._forward_hooks.items()):  # torch's always_call
                if key in self._forward_hooks_always_called:
                    self._call_hook(key, hook, args, kwargs, None)
            raise
        for key, hook in [*_global_forward_hooks.items(), *self._forward_hooks.items()]:
            result = self._call_hook(key, hook, args, kwargs, output)
            if result is not None:
                output = result
        return output

    def _call_pre_hooks(self, args: tuple, kwargs: dict) -> tuple:
        for key, hook in [*_global_forward_pre_hooks.items(), *self._forward_pre_hooks.items()]:
            if key in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple of (new_args, "
                            f"new_kwargs), but got {result}."
                        )
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        return args, kwargs

    def _call_hook(self, key, hook, args: tuple, kwargs: dict, output):
        if key in self._forward_hooks_with_kwargs:
            hook = _WithKwargs(hook, kwargs)
        if _state.state.capture is None:
            return hook(self, args, output)
        return _state.forward_hook(hook, self, args, output)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` (with ``with_kwargs``: ``hook(module, args,
        kwargs, output)``) after each forward; a non-None result replaces the output.
        ``prepend`` runs it before the hooks already registered; ``always_call`` also when
        forward raises (then with output None).

        >>> import graphgrad as gg
        >>> seen = []
        >>> m = gg.nn.ReLU()
        >>> h = m.register_forward_hook(lambda mod, args, out: seen.append(out.shape))
        >>> _ = m(gg.zeros(2, 3)); h.remove(); seen
        [graphgrad.Size([2, 3])]
        """
        handle = RemovableHandle(self._forward_hooks, hook)
        _note_options(handle, self._forward_hooks, prepend, (
            (with_kwargs, self._forward_hooks_with_kwargs),
            (always_call, self._forward_hooks_always_called)))
        return handle

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward; a non-None result replaces args (a
        non-tuple becomes the only argument). With ``with_kwargs``: ``hook(module, args,
        kwargs)``, which may return ``(args, kwargs)``.

        >>> import graphgrad as gg
        >>> m = gg.nn.Identity()
        >>> h = m.register_forward_pre_hook(lambda mod, args: args[0] * 2)
        >>> m(gg.ones(2)).tolist()
        [2.0, 2.0]
        """
        handle = RemovableHandle(self._forward_pre_hooks, hook)
        _note_options(handle, self._forward_pre_hooks, prepend,
                      ((with_kwargs, self._forward_pre_hooks_with_kwargs),))
        return handle

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep=self._parameters)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as parameter '{name}' "
                    "(graphgrad.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as child module '{name}' "
                    "(graphgrad.nn.Module or None expected)"
                )
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as buffer '{name}' "
                    "(graphgrad.Tensor or None expected)"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict | None = None) -> None:
        """Drop ``name`` from every registry but ``keep``, so that a new value registers in one
        place only; in ``keep`` the name keeps its place, as in torch (``layers[0] = ...`` and
        ``lin.weight = ...`` must not move it to the end)."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str):
        # called only when normal lookup fails: the registries hold the rest
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def _check_name(self, name, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain "."')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if hasattr(self, name) and name not in getattr(self, f"_{kind}s", {}):
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add ``param`` (or None) as parameter ``name``.

        >>> import graphgrad as gg
        >>> m = gg.nn.Module(); m.register_parameter("w", gg.nn.Parameter(gg.zeros(1)))
        >>> [n for n, _ in m.named_parameters()]
        ['w']
        """
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_type_name(param)}' object to parameter '{name}' "
                "(graphgrad.nn.Parameter or None required)"
            )
        if param is not None and param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                "created explicitly."
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is state but not a parameter (running statistics, say); only a
        persistent buffer goes into the state dict.

        >>> import graphgrad as gg
        >>> m = gg.nn.Module(); m.register_buffer("count", gg.tensor(0), persistent=False)
        >>> [n for n, _ in m.named_buffers()], list(m.state_dict())
        (['count'], [])
        """
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{_type_name(tensor)}' object to buffer '{name}' "
                "(graphgrad.Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module, reachable as attribute ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_type_name(module)} is not a Module subclass")
        self._check_name(name, "module")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The module at dotted path ``target`` ('' is this module)."""
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{module._get_name()} has no attribute `{part}`")
            module = module._modules[part]
        return module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate=True):
        """This module and all below it, depth first, with dotted names.

        >>> import graphgrad as gg
        >>> m = gg.nn.Sequential(gg.nn.Linear(2, 2), gg.nn.ReLU())
        >>> [name for name, _ in m.named_modules()]
        ['', '0', '1']
        """
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub_prefix, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        memo = set()
        for name, module in self._modules.items():
            if module is not None and module not in memo:
                memo.add(module)
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        memo = set()
        owners = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for module_prefix, module in owners:
            for name, value in getattr(module, registry).items():
                if value is None or value in memo:
                    continue
                if remove_duplicate:
                    memo.add(value)
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate=True):
        """(name, parameter) pairs in registration order, depth first; shared ones once.

        >>> import graphgrad as gg
        >>> [n for n, _ in gg.nn.Sequential(gg.nn.Linear(2, 3)).named_parameters()]
        ['0.weight', '0.bias']
        """
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def apply(self, fn) -> Module:
        """Call ``fn`` on every submodule (children first) and then on this module."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) recursively."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        """Same as ``train(False)``.

        >>> import graphgrad as gg
        >>> gg.nn.Dropout().eval().training
        False
        """
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    @_state.replayed
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None, or to zeros in place."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad = param.grad.detach()
                with no_grad():
                    param.grad.zero_()

    # ------------------------------------------------------------------ state dicts
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """Parameters then persistent buffers of each module, recursively, by dotted name.

        >>> import graphgrad as gg
        >>> list(gg.nn.BatchNorm1d(3).state_dict())  # doctest: +NORMALIZE_WHITESPACE
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
        """
        if destination is None:
            destination = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else buf.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values (tensors or anything NumPy reads, such as torch tensors) into this
        module's parameters and buffers; with ``strict``, missing or unexpected keys raise.

        >>> import graphgrad as gg
        >>> a, b = gg.nn.Linear(2, 2), gg.nn.Linear(2, 2)
        >>> b.load_state_dict(a.state_dict())
        <All keys matched successfully>
        """
        missing, unexpected, errors = [], [], []
        for prefix, module in self.named_modules(remove_duplicate=False):
            module._load_own_state(state_dict, prefix + "." if prefix else "", assign, errors)
            module._check_keys(state_dict, prefix + "." if prefix else "", missing, unexpected)
        if strict:
            if unexpected:
                keys = ", ".join(f'"{k}"' for k in unexpected)
                errors.insert(0, f"Unexpected key(s) in state_dict: {keys}. ")
            if missing:
                keys = ", ".join(f'"{k}"' for k in missing)
                errors.insert(0, f"Missing key(s) in state_dict: {keys}. ")
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {self._get_name()}:\n\t" + "\n\t".join(errors)
            )
        return _IncompatibleKeys(missing, unexpected)

    def _local_state(self) -> dict:
        state = {k: v for k, v in self._parameters.items() if v is not None}
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                state[name] = buf
        return state

    def _load_own_state(self, state_dict, prefix: str, assign: bool, errors: list) -> None:
        for name, target in self._local_state().items():
            key = prefix + name
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value._data if isinstance(value, Tensor) else np.asarray(value)
            if array.shape != target._data.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {_shape(array)} from "
                    f"checkpoint, the shape in current model is {_shape(target._data)}."
                )
                continue
            with no_grad():
                target.copy_(array.astype(target._data.dtype, copy=False))

    def _check_keys(self, state_dict, prefix: str, missing: list, unexpected: list) -> None:
        local = self._local_state()
        missing.extend(prefix + name for name in local if prefix + name not in state_dict)
        for key in state_dict:
            if key.startswith(prefix):
                head = key[len(prefix) :].split(".", 1)[0]
                if head not in self._modules and head not in local:
                    unexpected.append(key)

    # ------------------------------------------------------------------ dtype conversion
    def _apply(self, fn) -> Module:
        """Replace the data of every parameter, gradient and buffer by ``fn`` of it, keeping
        the Parameter objects (so optimizers built on them still see them)."""
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param._data = fn(param)._data
                    if param.grad is not None:
                        param.grad = fn(param.grad)
            for name, buf in module._buffers.items():
                if buf is not None:
                    module._buffers[name] = fn(buf)
        return self

    def to(self, *args, **kwargs) -> Module:
        """``to(dtype)`` converts floating-point parameters and buffers; ``to('cpu')`` is a no-op.

        >>> import graphgrad as gg
        >>> gg.nn.Linear(2, 2).to(gg.float64).weight.dtype
        graphgrad.float64
        """
        dtype, _ = to_arguments(args, kwargs)
        if dtype is None:
            return self
        if not _dtype.to_numpy_dtype(dtype).kind == "f":
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got {dtype}")
        with no_grad():
            return self._apply(lambda t: t.to(dtype) if t.is_floating_point() else t)

    def float(self) -> Module:
        return self.to(_dtype.float32)

    def double(self) -> Module:
        return self.to(_dtype.float64)

    def cpu(self) -> Module:
        """The module itself: its tensors are on the CPU, the only device graphgrad has."""
        return self

    def cuda(self, device=None) -> Module:
        """Refused as ``module.to("cuda")`` is: graphgrad has no GPU."""
        if isinstance(device, int) and not isinstance(device, bool):
            device = f"cuda:{device}"
        return self.to("cuda" if device is None else device)

    # ------------------------------------------------------------------ printing
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The part of the repr between the parentheses; layers override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + _addindent(repr(module), 2) for name, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"

    def __dir__(self):
        names = list(super().__dir__())
        names += list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(names))


# torch's global hooks: run for every module's call, before the module's own hooks
_global_forward_hooks: OrderedDict = OrderedDict()
_global_forward_pre_hooks: OrderedDict = OrderedDict()


def register_module_forward_hook(hook) -> RemovableHandle:
    """Call ``hook(module, args, output)`` after every module's forward, as torch's
    ``torch.nn.modules.module.register_module_forward_hook``; a non-None result replaces the
    output.

    >>> import graphgrad as gg
    >>> seen = []
    >>> h = register_module_forward_hook(lambda mod, args, out: seen.append(type(mod).__name__))
    >>> _ = gg.nn.ReLU()(gg.zeros(2)); h.remove(); seen
    ['ReLU']
    """
    return RemovableHandle(_global_forward_hooks, hook)


def register_module_forward_pre_hook(hook) -> RemovableHandle:
    """Call ``hook(module, args)`` before every module's forward, as torch's
    ``register_module_forward_pre_hook``; a non-None result replaces args."""
    return RemovableHandle(_global_forward_pre_hooks, hook)


class _WithKwargs:
    """A with_kwargs forward hook seen as a plain one: ``(module, args, output)``."""

    def __init__(self, hook, kwargs: dict) -> None:
        self.hook, self.kwargs = hook, kwargs

    def __call__(self, module, args, output):
        return self.hook(module, args, self.kwargs, output)


def _note_options(handle: RemovableHandle, hooks: OrderedDict, prepend: bool, flags) -> None:
    """Move a new hook first if ``prepend``; note its id where each true flag keeps them."""
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    for flag, ids in flags:
        if flag:
            ids[handle.id] = True


def _addindent(text: str, spaces: int) -> str:
    first, *rest = text.split("\n")
    return "\n".join([first] + [" " * spaces + line for line in rest])


def _shape(array) -> str:
    return f"graphgrad.Size({list(array.shape)})"


def _type_name(value) -> str:
    return type(value).__module__ + "." + type(value).__name__


__all__ = ["Module", "register_module_forward_hook", "register_module_forward_pre_hook"]
