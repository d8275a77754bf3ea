"""The ``Optimizer`` base class: parameter groups, per-parameter state, ``step``, ``zero_grad``
and torch-compatible ``state_dict``/``load_state_dict``.

A rule (SGD, Adam, ...) subclasses it and implements ``_step_group``, which applies one update to
the parameters of a group that have a gradient. Updates go straight into the parameters' NumPy
memory. Groups carry torch's kernel flags (``foreach``, ``fused``, ...) with torch's layout;
SGD, Adam and AdamW read ``foreach`` to choose between torch's single-tensor algorithm, one
tensor at a time, and the same algorithm over flat buffers holding all the parameters of a
group and dtype (see ``_flat.py``): the same bits, with a few NumPy calls per step instead of a
dozen per tensor.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from copy import deepcopy
from itertools import chain

import numpy as np

from .. import _state, engine
from ..autograd import enable_grad, no_grad
from ..tensor import RemovableHandle, Tensor, wrap
from ._flat import FlatPlan

NO_GRADIENT_WARNING = (
    "{name}.step(): no parameter received a gradient (every .grad is None), so nothing was "
    "updated; did you call backward() on the loss before step()?"
)


class Optimizer:
    """Base class of all optimizers: holds ``param_groups`` and ``state`` like torch.optim.

    >>> import graphgrad as gg
    >>> from graphgrad.optim import SGD
    >>> w = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0., 0.], requires_grad=True)
    """

    def __init__(self, params, defaults: dict) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__module__}.{type(params).__name__}"
            )
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._warned_no_gradient = False
        self._opt_called = False  # read by lr schedulers to spot a scheduler stepped first
        self._scratch: dict = {}  # parameter -> work buffers reused across steps (not state)
        self._flat: dict = {}  # id(param group) -> its FlatPlan, for the rules that have one
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        for hook in list(_created_hooks.values()):
            hook(self)

    def _scratch_for(self, param: Tensor, count: int = 2) -> tuple:
        """Work buffers shaped like ``param``, kept between steps: a large array allocated
        fresh every step costs as much as an arithmetic pass over it."""
        buffers = self._scratch.get(param)
        data = param._data
        if buffers is None or buffers[0].shape != data.shape or buffers[0].dtype != data.dtype:
            buffers = self._scratch[param] = tuple(np.empty_like(data) for _ in range(count))
        return buffers

    def __getstate__(self) -> dict:
        # A copy (deepcopy, pickle) would not share a flat buffer with its parameters' copies:
        # it starts without flat buffers and work buffers, and builds its own.
        return {**self.__dict__, "_flat": {}, "_scratch": {}}

    def _flat_plan(self, group: dict, names: tuple) -> FlatPlan | None:
        """The flat buffers ``group`` steps with (built or rebuilt as needed), or None for one
        tensor at a time. ``names``: the per-parameter state the rule keeps, in torch's order.

        ``foreach=True`` or ``fused=True`` put every dtype of the group in flat buffers; the
        default ``foreach=None`` steps one tensor at a time, as torch does on the CPU, and so
        does ``foreach=False``. Flat buffers rebind each parameter's array to a view of them:
        an alias taken before (``w = p.data``) no longer sees the updates.
        """
        if not (group.get("foreach") or group.get("fused")):  # absent from old state dicts
            return None
        plan = self._flat.get(id(group))
        if plan is None or not plan.is_current(group, self.state, names):
            plan = self._flat[id(group)] = FlatPlan(group, self.state, names)
            for flat in plan.flats:
                for p in flat.params:  # the flat buffers' scratch serves them now
                    self._scratch.pop(p, None)
        return plan

    def _new_state_in_order(self, plan: FlatPlan, params: list) -> None:
        """Give parameters stepping for the first time an empty state entry, in parameter order
        as torch does, before flat buffers (one per dtype) fill them in their own order."""
        if plan.singles or not all(all(flat.started) for flat in plan.flats):
            state = self.state
            for p in params:
                if p not in state:
                    state[p] = {}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters, filling hyperparameters it omits from ``defaults``.

        >>> import graphgrad as gg
        >>> from graphgrad.optim import SGD
        >>> opt = SGD([gg.zeros(2, requires_grad=True)], lr=0.1)
        >>> opt.add_param_group({"params": [gg.zeros(3, requires_grad=True)], "lr": 0.01})
        >>> [g["lr"] for g in opt.param_groups]
        [0.1, 0.01]
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        param_group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in param_group["params"]:
            _check_parameter(p)
        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        if len(param_group["params"]) != len(set(param_group["params"])):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this "
                "will cause an error; see github.com/pytorch/pytorch/issues/40967 for more "
                "information",
                stacklevel=3,
            )
        seen = set(chain.from_iterable(g["params"] for g in self.param_groups))
        if not seen.isdisjoint(param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)
        self._init_group_state(param_group)

    def _init_group_state(self, group: dict) -> None:
        """Create state eagerly (Adagrad does); most rules create it at their first step."""

    # ------------------------------------------------------------------ stepping
    @_state.replayed
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: set ``.grad`` to None, or zero it in place.

        >>> import graphgrad as gg
        >>> from graphgrad.optim import SGD
        >>> w = gg.tensor([1.0], requires_grad=True)
        >>> (2 * w).sum().backward()
        >>> SGD([w]).zero_grad()
        >>> w.grad is None
        True
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:  # a grad built with create_graph=True
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    @_state.replayed
    def step(self, closure=None):
        """Update every parameter that has a gradient; return ``closure()``'s loss, if given.

        The closure re-evaluates the model with gradients enabled (and normally calls
        ``zero_grad`` and ``backward``) before the update reads the gradients.

        >>> import graphgrad as gg
        >>> from graphgrad.optim import SGD
        >>> w = gg.tensor([3.0], requires_grad=True)
        >>> opt = SGD([w], lr=0.25)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = (w * w).sum()
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure).item(), w.item()
        (9.0, 1.5)
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._opt_called = True
        updated = False
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    updated = True
                    self._step_group(group, params)
                    for p in params:  # a pending backward that saved p must now fail loudly
                        engine.mark_modified(p)
        if not updated and not self._warned_no_gradient:
            self._warned_no_gradient = True
            warnings.warn(NO_GRADIENT_WARNING.format(name=type(self).__name__), stacklevel=2)
        return loss

    def _step_group(self, group: dict, params: list) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict:
        """The state in torch's layout: parameters become integer indices in group order.

        State tensors are returned by reference, as torch does; ``copy.deepcopy`` it to freeze.

        >>> import graphgrad as gg
        >>> from graphgrad.optim import SGD
        >>> opt = SGD([gg.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
        >>> opt.state_dict()["param_groups"][0]["params"]
        [0]
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {
            (index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict()`` output (from graphgrad, or torch's with graphgrad tensors).

        State is copied, and cast to its parameter's dtype except ``step``, as torch does.

        >>> import graphgrad as gg
        >>> from graphgrad.optim import Adam
        >>> w = gg.zeros(2, requires_grad=True)
        >>> opt = Adam([w], lr=0.1)
        >>> opt.load_state_dict(Adam([gg.zeros(2, requires_grad=True)], lr=0.5).state_dict())
        >>> opt.param_groups[0]["lr"]
        0.5
        """
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(self.param_groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"])
               for g, s in zip(self.param_groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                "optimizer's group"
            )
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in self.param_groups)))
        state: defaultdict = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                param = id_map[key]
                state[param] = {k: _cast_state(param, k, v) for k, v in value.items()}
            else:
                state[key] = value
        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
        self.state = state
        self.param_groups = saved_groups
        self._flat = {}  # the next step builds flat buffers from the loaded state


_created_hooks: dict = {}  # id -> hook(optimizer), called as each Optimizer is built


def register_optimizer_created_hook(hook):
    """Call ``hook(optimizer)`` at the end of every Optimizer's construction (graphgrad's own:
    how ``graphgrad doctor`` learns of a script's optimizers); returns a RemovableHandle."""
    return RemovableHandle(_created_hooks, hook)


def _check_parameter(p) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(
            f"optimizer can only optimize Tensors, but one of the params is "
            f"{type(p).__module__}.{type(p).__name__}"
        )
    if not p.is_leaf:
        raise ValueError("can't optimize a non-leaf Tensor")


def _cast_state(param: Tensor, key, value):
    """A copy of one saved state entry; tensors other than ``step`` take the parameter's dtype."""
    if key == "step":
        if isinstance(value, Tensor):
            return wrap(value._data.copy())
        return new_step(float(value))  # torch's __setstate__ turns an old numeric step into this
    if isinstance(value, Tensor):
        dtype = param._data.dtype if param._data.dtype.kind == "f" else value._data.dtype
        return wrap(value._data.astype(dtype, copy=True))
    if isinstance(value, dict):
        return {k: _cast_state(param, k, v) for k, v in value.items()}
    return deepcopy(value)


def new_step(value: float = 0.0) -> Tensor:
    """The step counter as torch keeps it: a 0-d float32 tensor."""
    return wrap(np.array(value, dtype=np.float32))


def increment(step: Tensor) -> float:
    """``step += 1`` in place (float32, as torch counts) and the new count as a Python float."""
    data = step._data
    data += 1
    return float(data)


def check_kernel_flags(foreach, fused, differentiable, capturable=False) -> None:
    """torch's check of the kernel flags, and what graphgrad cannot do: autograd through a
    step (``differentiable``) or CUDA graphs (``capturable``)."""
    if differentiable:
        raise NotImplementedError(
            "differentiable=True is not supported: graphgrad's optimizers update the parameters' "
            "NumPy memory and record no graph; pass differentiable=False"
        )
    if capturable:
        raise ValueError(
            "capturable=True is for CUDA graphs and needs parameters on a device they capture "
            "(cuda, xpu, hpu, xla); graphgrad's tensors are on the CPU: pass capturable=False"
        )
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
