"""Flat ("foreach") storage for SGD and Adam: a param group's parameters of one dtype, and their
optimizer state, each laid end to end in one contiguous buffer, so that a step costs a few NumPy
passes over all of them instead of a dozen NumPy calls per tensor.

Each parameter's ``_data`` becomes a view of the flat parameter buffer (the Tensor object stays
the same) and each state tensor a view of its flat state buffer, so ``optimizer.state`` and
``state_dict()`` keep torch's per-parameter layout. Every step first checks, by identity, that
those views are still in place (``p.data = ...``, ``Module.to``, ``load_state_dict`` or a state
entry replaced by hand put other arrays there) and otherwise rebuilds the buffers from the current
values.

A step runs the per-tensor update functions on slices of the buffers, one slice per *run*: a
stretch of consecutive parameters that have a gradient and share the per-parameter scalars
(Adam's step count, whether SGD's momentum buffer exists yet). A run's gradients are copied end
to end into a flat gradient buffer, except that a parameter of ``ALONE`` elements or more makes a
run of its own that reads its gradient in place: copying it would cost more than the NumPy calls
saved. An elementwise NumPy operation gives every element the same bits whatever the length of
the array, so the flat path equals the per-tensor path bit for bit.

>>> import graphgrad as gg
>>> a, b = gg.ones(2, requires_grad=True), gg.ones(3, requires_grad=True)
>>> plan = FlatPlan({"params": [a, b]}, {}, ())
>>> a._data.base is b._data.base is plan.flats[0].param
True
"""

from __future__ import annotations

from itertools import accumulate, repeat
from operator import attrgetter, eq, is_, itemgetter

import numpy as np

from ..tensor import wrap

STEP = "step"  # Adam's step count: one float32 per parameter, each state["step"] a 0-d view
# Measured on float32 (2 cores, AVX2): gathering a gradient costs ~0.05 ns an element, an Adam
# update's NumPy calls ~6 us of overhead and SGD's ~2 us; they break even at 40k-120k elements.
ALONE = 1 << 16

# The checks below run every step over every parameter: C-level map() over these getters keeps
# their cost at tens of nanoseconds a parameter.
_data_of = attrgetter("_data")
_grad_of = attrgetter("_grad")
_grad_dtype_of = attrgetter("_grad._data.dtype")


class FlatPlan:
    """How one param group steps: a :class:`FlatParams` for each dtype; a group that lists a
    parameter twice (torch warns; each listing is one update) steps one tensor at a time."""

    def __init__(self, group: dict, state, names: tuple) -> None:
        self.group = group
        self.params = list(group["params"])
        by_dtype: dict = {}
        if len({id(p) for p in self.params}) == len(self.params):
            for p in self.params:
                by_dtype.setdefault(p._data.dtype, []).append(p)
        self.flats = [FlatParams(ps, state, names) for ps in by_dtype.values()]
        flat = {id(p) for f in self.flats for p in f.params}
        self.singles = {id(p) for p in self.params if id(p) not in flat}
        self.datas = list(map(_data_of, self.params))  # the arrays to find in place next step

    def is_current(self, group: dict, state, names: tuple) -> bool:
        """True while the group, its parameters' arrays and the state views are as built."""
        params = group["params"]
        return (group is self.group
                and len(params) == len(self.params) and all(map(is_, params, self.params))
                and all(map(is_, map(_data_of, params), self.datas))
                and all(f.is_current(state, names) for f in self.flats))

    def loose(self, params: list) -> list:
        """Those of ``params`` (the parameters with a gradient) that no flat buffer holds."""
        singles = self.singles
        return [p for p in params if id(p) in singles] if singles else []


class FlatParams:
    """Parameters of one dtype, their gradients and their state, each in one flat buffer."""

    def __init__(self, params: list, state, names: tuple) -> None:
        self.params = params
        self.names = names
        self.dtype = dtype = params[0]._data.dtype
        self.offsets = offsets = list(accumulate((p._data.size for p in params), initial=0))
        alone = [p._data.size >= ALONE for p in params]
        self.alone = alone
        # the runs when every parameter has a gradient and the same key
        cuts = sorted({0, len(params)} | {i for i, a in enumerate(alone) if a}
                      | {i + 1 for i, a in enumerate(alone) if a})
        self.segments = list(zip(cuts, cuts[1:]))
        size = offsets[-1]
        self.param = np.concatenate([p._data.reshape(-1) for p in params],
                                    out=np.empty(size, dtype))
        for p, view in zip(params, self._views(self.param)):
            p._data = view
        self.grad = np.empty(size, dtype)  # gradients of several parameters, gathered
        self.scratch = (np.empty(size, dtype), np.empty(size, dtype))
        self.buffers: dict[str, np.ndarray] = {}
        self.views: dict[str, list] = {}
        for name in names:
            if name == STEP:
                buffer = np.zeros(len(params), np.float32)
                self.views[name] = [buffer[i, ...] for i in range(len(params))]
            else:
                buffer = np.zeros(size, dtype)
                self.views[name] = self._views(buffer)
            self.buffers[name] = buffer
        self._slices: dict = {}
        self.entries = [state.get(p) for p in params]  # each one's state dict, as found
        self.started = [self._adopt(i, entries) for i, entries in enumerate(self.entries)]
        self._watch()

    def _views(self, buffer: np.ndarray) -> list:
        bounds = zip(self.offsets, self.offsets[1:])
        return [buffer[i:j].reshape(p._data.shape) for (i, j), p in zip(bounds, self.params)]

    def _adopt(self, i: int, entries) -> bool:
        """Copy parameter ``i``'s state, if it has any, into the buffers and make its state
        tensors views of them; return whether it had state."""
        if not entries:
            return False
        for name in self.names:
            if name not in entries:  # as the per-tensor path, which would index it
                raise KeyError(name)
        if any(entries[name] is None for name in self.names):  # SGD's buffer before its start
            return False
        for name in self.names:
            tensor, view = entries[name], self.views[name][i]
            if tensor._data.shape != view.shape:
                raise ValueError(
                    f"optimizer state {name!r} has shape {tuple(tensor._data.shape)}, but "
                    f"{tuple(view.shape)} is expected for its parameter"
                )
            np.copyto(view, tensor._data)
            tensor._data = view
        return True

    def _watch(self) -> None:
        """Note the state tensors of the started parameters, for ``is_current``."""
        live = [i for i, started in enumerate(self.started) if started]
        self.live_entries = [self.entries[i] for i in live]
        self.watched = {name: [self.views[name][i] for i in live] for name in self.names}

    def is_current(self, state, names: tuple) -> bool:
        """True while each parameter has the state dict found at the last build or start, and
        every state tensor of a started parameter holds the view made for it."""
        if names != self.names or not all(map(is_, map(state.get, self.params), self.entries)):
            return False
        for name, views in self.watched.items():
            try:
                if not all(map(is_, map(_data_of, map(itemgetter(name), self.live_entries)),
                               views)):
                    return False
            except KeyError:
                return False
        return True

    def runs(self, keys: list, loose: list) -> list[tuple[int, int, object]]:
        """``(i, j, key)`` for each longest stretch ``params[i:j]`` with gradients of the
        buffers' dtype and equal ``keys`` (a large parameter stands alone). A parameter whose
        gradient has another dtype is appended to ``loose``, to step as the per-tensor path."""
        grads = list(map(_grad_of, self.params))
        if (not any(map(is_, grads, repeat(None))) and len(set(keys)) == 1
                and all(map(eq, map(_grad_dtype_of, self.params), repeat(self.dtype)))):
            return [(i, j, keys[0]) for i, j in self.segments]  # the usual step
        found, start = [], None
        for i, (p, grad) in enumerate(zip(self.params, grads)):
            usable = grad is not None and grad._data.dtype == self.dtype
            if grad is not None and not usable:
                loose.append(p)
            if start is not None and (not usable or self.alone[i] or self.alone[start]
                                      or keys[i] != keys[start]):
                found.append((start, i, keys[start]))
                start = None
            if usable and start is None:
                start = i
        if start is not None:
            found.append((start, len(self.params), keys[start]))
        return found

    def slices(self, i: int, j: int) -> tuple[np.ndarray, dict, tuple]:
        """Parameters ``i`` to ``j - 1``'s part of the buffers: the parameters, the state by
        name (of ``STEP``, one count each) and the scratch; made once per run and kept."""
        made = self._slices.get((i, j))
        if made is None:
            if len(self._slices) > 4 * len(self.params):  # runs that keep changing
                self._slices.clear()
            a, b = self.offsets[i], self.offsets[j]
            state = {name: buffer[i:j] if name == STEP else buffer[a:b]
                     for name, buffer in self.buffers.items()}
            made = self._slices[i, j] = (self.param[a:b], state,
                                         tuple(s[a:b] for s in self.scratch))
        return made

    def gather(self, i: int, j: int) -> np.ndarray:
        """The gradients of ``params[i:j]``, flat: copied end to end into the gradient buffer,
        or for a single parameter its gradient itself (the updates never write a gradient)."""
        if j - i == 1:
            return self.params[i]._grad._data.reshape(-1)
        out = self.grad[self.offsets[i]:self.offsets[j]]
        return np.concatenate([p._grad._data.reshape(-1) for p in self.params[i:j]], out=out)

    def start(self, i: int, j: int, state) -> None:
        """Give parameters ``i`` to ``j - 1`` that have no state yet views of the buffers as
        their state tensors (the buffers hold zeros there, Adam's initial state)."""
        new = [k for k in range(i, j) if not self.started[k]]
        for k in new:
            entries = self.entries[k] = state[self.params[k]]
            for name in self.names:
                entries[name] = wrap(self.views[name][k])
            self.started[k] = True
        if new:
            self._watch()
