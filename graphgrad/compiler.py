"""``graphgrad.compile``: run a training step once eagerly, record it, then replay the record.

The first call with inputs of given shapes and dtypes runs the function as usual while a
recorder listens: every primitive's forward (``op.forward`` on NumPy arrays), each
``backward()``, random draws and factories (``rand_like`` in dropout), and the calls marked
``_state.replayed`` (an optimizer's ``step`` and ``zero_grad``, gradient clipping, lr
schedulers), which work on NumPy memory out of sight of the op stream. The record becomes a
plan, written out as one Python function (``plan.source``) whose lines are the primitives'
NumPy forwards and vjps on local variables. A replay calls it: no Tensor, no autograd node, no
engine; the backward pass runs the vjps in the engine's order and sums gradients as the engine
does, so the results are the eager results, bit for bit. Each value is dropped after its last
use, as the engine frees what backward no longer needs.

A plan is kept per input signature (shapes, dtypes, ``requires_grad``, Python values, grad
mode) and replayed while its guards hold: the tensors it read from outside (a model's weights)
keep their shapes, dtypes and ``requires_grad``, and every module it called keeps its
``training`` flag. When a guard fails the function is recorded again. What a plan cannot be
trusted with (a tensor value read into Python by ``.item()``, ``bool()``, ``.tolist()`` or
``.numpy()``, an in-place tensor operation, ``create_graph``, tensors made outside the op
stream, results that still need a graph) makes the function run eagerly from then on, after one
warning that says why.
"""

from __future__ import annotations

import builtins
import functools
import warnings
from collections.abc import Iterator

import numpy as np

from . import _state, engine
from .ops import arrays_in, numpy_ns
from .ops.numpy_ns import VjpContext
from .tensor import Tensor, _new

_ndarray = np.ndarray


class CompileWarning(UserWarning):
    """A compiled function runs eagerly: its record could not be trusted (the message says why)."""


def compile(fn=None, *, fullgraph: bool = False):  # noqa: A001 - torch's name
    """Compile ``fn`` (also as ``@compile`` or ``@compile(fullgraph=True)``).

    With ``fullgraph=True`` a function whose record cannot be trusted raises instead of
    running eagerly with a warning, as torch refuses graph breaks then.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = gg.optim.SGD([w], lr=0.1)
    >>> @gg.compile
    ... def step(x):
    ...     opt.zero_grad()
    ...     loss = (w * x).sum()
    ...     loss.backward()
    ...     opt.step()
    ...     return loss
    >>> [round(step(gg.tensor([1.0, 1.0])).item(), 4) for _ in range(3)]
    [3.0, 2.8, 2.6]
    """
    if fn is None:
        return functools.partial(compile, fullgraph=fullgraph)
    if not callable(fn):
        raise TypeError(f"compile: expected a callable, got {type(fn).__name__}")
    return CompiledFunction(fn, fullgraph)


class CompiledFunction:
    """``fn`` with its plans, one per input signature; call it as you would call ``fn``."""

    def __init__(self, fn, fullgraph: bool = False) -> None:
        self.fn = fn
        self.fullgraph = fullgraph
        self.plans: dict = {}  # signature -> Plan, or None where fn runs eagerly
        self.recordings = 0  # how many times fn was recorded (re-recorded on failed guards)
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if _state.state.capture is not None:  # inside a recording: its recorder sees the ops
            return self.fn(*args, **kwargs)
        inputs = (*args, *kwargs.values())
        key = _signature(inputs, kwargs)
        if key is None:  # an argument that cannot key a plan (a list, say): nothing to replay
            return self.fn(*args, **kwargs)
        plan = self.plans.get(key, _NO_PLAN)
        if plan is None:
            return self.fn(*args, **kwargs)
        if plan is not _NO_PLAN and plan.guards_hold():
            if plan.verified:
                return plan.replay(inputs)
            return self._record(key, inputs, args, kwargs, plan)
        return self._record(key, inputs, args, kwargs, None)

    def _record(self, key, inputs, args, kwargs, first: Plan | None):
        """Run fn eagerly and record it. A new plan is replayed only once a second record,
        on other inputs, came out the same: a difference means some operation's parameters
        or constants were computed from the inputs' values outside the op stream (which the
        plan would freeze), and fn then runs eagerly."""
        recorder = _Recorder(inputs)
        _state.state.capture = recorder
        clock = engine._clock[0]
        try:
            result = self.fn(*args, **kwargs)
        finally:
            _state.state.capture = None
        self.recordings += 1
        plan = recorder.finish(result, engine._clock[0] - clock)
        if plan is not None and first is not None:
            difference = first.difference(plan)
            if difference is None:
                plan.verified = True
            else:
                recorder.refuse(f"its record changed between two calls: {difference} depends "
                                f"on the inputs' values, computed outside the recorded "
                                f"operations")
        if recorder.distrust is not None:
            self._distrust(recorder.distrust)
            self.plans[key] = None
        else:
            self.plans[key] = plan
        return result

    def _distrust(self, reason: str) -> None:
        message = (f"compile: {getattr(self.fn, '__qualname__', 'the function')} runs eagerly: "
                   f"{reason}")
        if self.fullgraph:
            raise RuntimeError(message)
        warnings.warn(message, CompileWarning, stacklevel=4)


_NO_PLAN = object()


def _signature(inputs: tuple, kwargs: dict):
    """What a plan is keyed by: each tensor's shape, dtype and requires_grad, each other value
    itself, the keyword names and the grad mode; None when a value cannot be hashed."""
    key = [_state.state.grad_enabled, tuple(kwargs)]
    for x in inputs:
        if isinstance(x, Tensor):
            key.append((x._data.shape, x._data.dtype, x._requires_grad))
        else:
            try:
                hash(x)
            except TypeError:
                return None
            key.append((type(x), x))
    return tuple(key)


# ---------------------------------------------------------------------- recording


class _Recorder:
    """Listens to one eager run (as ``_state.state.capture``) and builds its plan."""

    def __init__(self, inputs: tuple) -> None:
        self.values: list = []  # slot -> the array it held while recording
        self.slot_of: dict[int, int] = {}  # id(array) -> slot (arrays are kept alive in values)
        self.externals: list[tuple[int, Tensor]] = []  # (slot, tensor) read live at each replay
        self.inputs: list[tuple[int, int]] = []  # (slot, position) of the tensor arguments
        self.leaves: dict[int, tuple] = {}  # slot -> ("input", position) or ("external", tensor)
        self.node_step: dict[int, int] = {}  # id(grad_fn) -> index of the step that made it
        self.steps: list = []
        self.modules: dict[int, tuple] = {}  # id(module) -> (module, training)
        self.pending_grads: list = []  # leaves whose .grad slots wait for a backward to finish
        self.distrust: str | None = None
        self.opaque_clock = 0  # in-place modifications made inside replayed calls
        self.opaque_results: set[int] = set()  # id() of arrays a replayed call returned
        self.in_backward = False  # the engine is running a recorded backward
        self.input_tensors = inputs
        for position, x in enumerate(inputs):
            if isinstance(x, Tensor):
                slot = self._new_slot(x._data)
                self.inputs.append((slot, position))
                if x._requires_grad:
                    self.leaves[slot] = ("input", position)

    def _new_slot(self, array) -> int:
        self.values.append(array)
        slot = len(self.values) - 1
        if type(array) is _ndarray:
            self.slot_of[id(array)] = slot
        return slot

    def _slot(self, x, array) -> int:
        """The slot of an operand: a recorded array, a tensor from outside, or a constant."""
        known = self.slot_of.get(id(array))
        if known is not None and self.values[known] is array:
            return known
        if id(array) in self.opaque_results:
            self.refuse("it computes with what a replayed call returned (say, the norm "
                        "clip_grad_norm_ returns)")
        if not isinstance(x, Tensor):
            self.values.append(array)  # a number's operand, an index: the same every replay
            return len(self.values) - 1
        if x.grad_fn is not None:
            self.refuse(f"it uses a tensor computed outside the recorded operations "
                        f"({x.grad_fn.name()}, e.g. by a custom autograd.Function)")
        slot = self._new_slot(array)
        self.externals.append((slot, x))
        if x._requires_grad:
            self.leaves[slot] = ("external", x)
        return slot

    def refuse(self, reason: str) -> None:
        if self.distrust is None:
            self.distrust = reason

    def _settle_grads(self) -> None:
        """After a backward: the leaves' new ``.grad`` arrays get slots, so that operations
        reading ``p.grad`` read this replay's gradient. Any event after a backward means the
        engine has finished it (its gradient hooks, replayed too, may change tensors in place)."""
        if self.in_backward:
            self.opaque_clock += engine._clock[0] - self.backward_clock
            self.in_backward = False
        for step in self.pending_grads:
            for leaf_slot, grad_slot in step.grad_slots.items():
                tensor = self._leaf_tensor(leaf_slot)
                grad = tensor._grad
                if grad is not None:
                    self.values[grad_slot] = grad._data
                    self.slot_of[id(grad._data)] = grad_slot
        self.pending_grads = []

    def _leaf_tensor(self, slot: int) -> Tensor:
        kind, where = self.leaves[slot]
        return where if kind == "external" else self.input_tensors[where]

    # the events ----------------------------------------------------------------
    def __call__(self, op, inputs, params, out: Tensor, arrays) -> None:
        self._settle_grads()
        if any(id(p) in self.slot_of for p in arrays_in(params)):
            self.refuse(f"{op.name} is indexed by a tensor that is an input or computed inside "
                        f"the function (a plan would freeze its values)")
        args = tuple(self._slot(x, a) for x, a in zip(inputs, arrays))
        node = out.grad_fn
        step = _Forward(op, args, params, self._new_slot(out._data), node)
        step.shapes = tuple((a.shape, a.dtype) if type(a) is _ndarray else (None, None)
                            for a in arrays)  # fixed while the guards hold
        if node is not None:
            self.node_step[id(node)] = len(self.steps)
            step.targets = tuple(self._target(x, arg, need)
                                 for x, arg, need in zip(inputs, args, node.needs_input_grad))
        self.steps.append(step)

    def _target(self, x, slot: int, need: bool):
        """Where the gradient for this operand goes: a step's buffer, a leaf, or nowhere."""
        if not need:
            return None
        if x.grad_fn is not None:
            index = self.node_step.get(id(x.grad_fn))
            if index is None:  # already refused by _slot: a graph from outside the function
                return None
            return ("step", index)
        return ("leaf", slot)

    def backward(self, outputs, grads, create_graph) -> None:
        self._settle_grads()
        if create_graph:
            self.refuse("backward(create_graph=True) builds a graph a replay cannot")
            return
        roots = []
        for out, seed in zip(outputs, grads):
            index = self.node_step.get(id(out.grad_fn))
            if index is None:
                self.refuse("backward() of a tensor computed outside the function")
                return
            roots.append((index, self._slot(None, seed)))
        with_nodes = [i for i, s in enumerate(self.steps)
                      if type(s) is _Forward and s.node is not None]
        for i in with_nodes:
            node = self.steps[i].node
            if node.pre_hooks is not None or node.retained is not None:
                self.refuse("a tensor inside the graph has a hook or retains its gradient")
        step = _Backward(roots, with_nodes, self.steps)
        step.grad_slots = {slot: self._new_slot(None) for slot in self.leaves}
        self.steps.append(step)
        self.pending_grads.append(step)
        self.in_backward, self.backward_clock = True, engine._clock[0]

    def read(self, tensor: Tensor, how: str) -> None:
        self.refuse(f"{how} reads a tensor's value into Python, and Python code may branch on "
                    f"it; read it outside the compiled function")

    def assign_grad(self, tensor: Tensor, value) -> None:
        if self.in_backward:  # the engine (or a gradient hook) storing this pass's gradient
            return
        self._settle_grads()
        if value is not None:
            self.refuse("it assigns a tensor to .grad")
            return
        slot = self._slot(tensor, tensor._data)
        if slot not in self.leaves:
            self.refuse("it clears the .grad of a tensor that does not require grad")
            return
        self.steps.append(_ClearGrad(slot))

    def draw(self, fill, shape, dtype, tensor: Tensor) -> None:
        self._settle_grads()
        if tensor._requires_grad:
            self.refuse("it creates a tensor that requires grad")
        self.steps.append(_Draw(fill, shape, dtype, self._new_slot(tensor._data)))

    def module(self, module) -> None:
        self.modules.setdefault(id(module), (module, module.training))
        if module._forward_pre_hooks:
            self.refuse(f"{type(module).__name__} has a forward pre-hook")

    def hook(self, hook, module, args, output):
        """A module's forward hook: run now, and at each replay on that replay's tensors."""
        self._settle_grads()
        slots = []
        for t in (*args, output):
            slot = self.slot_of.get(id(t._data)) if isinstance(t, Tensor) else None
            if slot is None:
                self.refuse(f"a forward hook of {type(module).__name__} sees a value that is "
                            "not a recorded tensor")
                return hook(module, args, output)
            slots.append(slot)
        _state.state.capture = None
        try:
            result = hook(module, args, output)
        finally:
            _state.state.capture = self
        if result is not None:
            self.refuse(f"a forward hook of {type(module).__name__} replaces its output")
        self.steps.append(_Hook(hook, module, tuple(slots[:-1]), slots[-1]))
        return result

    def call(self, function, args, kwargs):
        """A replayed call (``optimizer.step``): run now with the recorder deaf, and again at
        each replay."""
        self._settle_grads()
        if kwargs.get("closure") is not None or any(callable(a) for a in args[1:]):
            self.refuse(f"{function.__qualname__} was given a closure")
        # an iterator (model.parameters()) would be spent after one call: keep its items
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        clock = engine._clock[0]
        _state.state.capture = None
        try:
            result = function(*args, **kwargs)
        finally:
            _state.state.capture = self
        self.opaque_clock += engine._clock[0] - clock
        if isinstance(result, Tensor):
            self.opaque_results.add(id(result._data))
        self.steps.append(_Call(function, args, kwargs))
        return result

    def finish(self, result, clock_moved: int) -> Plan | None:
        self._settle_grads()
        if clock_moved > self.opaque_clock:
            self.refuse("it changes a tensor in place (a replay would not see the change)")
        try:
            shape = _output_shape(result, self)
        except _Untraceable as exc:
            self.refuse(str(exc))
            return None
        if self.distrust is not None:
            return None
        return Plan(self, shape)


class _Untraceable(Exception):
    """The function's result is something a replay cannot rebuild."""


def _output_shape(result, recorder: _Recorder):
    """The function's result as a template: slots for tensors, values for everything else."""
    if isinstance(result, Tensor):
        if result._requires_grad and not any(type(s) is _Backward for s in recorder.steps):
            raise _Untraceable("it returns a tensor that requires grad and runs no backward: a "
                               "replay builds no graph; call backward() inside the function")
        slot = recorder.slot_of.get(id(result._data))
        if slot is None or recorder.values[slot] is not result._data:
            raise _Untraceable("it returns a tensor computed outside the recorded operations")
        return _Out(slot)
    if isinstance(result, (tuple, list)):
        return type(result)(_output_shape(r, recorder) for r in result)
    if isinstance(result, dict):
        return {k: _output_shape(v, recorder) for k, v in result.items()}
    if result is None or isinstance(result, (bool, int, float, str)):
        return result
    raise _Untraceable(f"it returns a {type(result).__name__}, which a replay cannot rebuild")


# ---------------------------------------------------------------------- the plan


class _Out:
    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        self.slot = slot


class _Forward:
    """``values[out] = op.forward(*values[args], *params)``; with a node, its gradient too."""

    __slots__ = ("op", "args", "params", "out", "node", "targets", "ctx", "free", "shapes")

    def __init__(self, op, args, params, out, node) -> None:
        self.op, self.args, self.params, self.out, self.node = op, args, params, out, node
        self.targets = ()
        self.ctx = None if node is None else VjpContext(params, None, node.needs_input_grad)
        self.free = ()  # slots whose last use this is: a replay drops them after it
        self.shapes = ()  # each operand's (shape, dtype) while recording


class _Backward:
    """A backward pass over the forward steps before it, as the engine runs it: nodes in
    decreasing creation order, gradients summed as they arrive, leaves finished last-first."""

    def __init__(self, roots, node_steps, steps) -> None:
        self.roots = roots  # (step index, slot of the seed gradient)
        self.order = [steps[i] for i in reversed(node_steps)]
        self.index_of = {id(steps[i]): i for i in node_steps}
        self.grad_slots: dict[int, int] = {}  # leaf slot -> slot of its .grad after the pass
        self.free_after: dict[int, tuple] = {}  # id(forward step) -> slots dead after its vjp


class _Draw:
    """A factory's fill (``rand_like``'s draw from the generator), run again at each replay."""

    __slots__ = ("fill", "shape", "dtype", "out")

    def __init__(self, fill, shape, dtype, out) -> None:
        self.fill, self.shape, self.dtype, self.out = fill, shape, dtype, out


class _ClearGrad:
    """``leaf.grad = None`` written in the function itself."""

    __slots__ = ("leaf",)

    def __init__(self, leaf: int) -> None:
        self.leaf = leaf


class _Hook:
    """A module's forward hook, called with tensors around this replay's arrays."""

    __slots__ = ("hook", "module", "args", "out", "free")

    def __init__(self, hook, module, args, out) -> None:
        self.hook, self.module, self.args, self.out = hook, module, args, out
        self.free = ()


class _Call:
    __slots__ = ("function", "args", "kwargs")

    def __init__(self, function, args, kwargs) -> None:
        self.function, self.args, self.kwargs = function, args, kwargs


class Plan:
    """The record of one call, replayed on new inputs of the same signature."""

    def __init__(self, recorder: _Recorder, output) -> None:
        self.steps = recorder.steps
        self.output = output
        self.inputs = recorder.inputs
        self.leaves = recorder.leaves
        self.externals = recorder.externals
        self.external_shapes = [(t._data.shape, t._data.dtype, t._requires_grad)
                                for _, t in self.externals]
        self.modules = list(recorder.modules.values())
        live = {slot for slot, _ in (*self.inputs, *self.externals)}
        for step in self.steps:
            if type(step) is _Forward or type(step) is _Draw:
                live.add(step.out)
            elif type(step) is _Backward:
                live.update(step.grad_slots.values())
            if type(step) is _Forward:
                step.node = None  # the record's node holds the record's arrays
        # what the record computed is dropped; operands that were no tensor stay
        self.constants = {slot: value for slot, value in enumerate(recorder.values)
                          if slot not in live}
        _mark_last_uses(self.steps, _slots_in(output))
        self.source, self.replay_code = _generate(self)
        self.verified = False

    def difference(self, other: Plan) -> str | None:
        """What differs between two records of one signature, or None."""
        if len(self.steps) != len(other.steps):
            return f"the number of steps ({len(self.steps)} then {len(other.steps)})"
        for i, (a, b) in enumerate(zip(self.steps, other.steps)):
            if _step_key(a) != _step_key(b):
                return f"step {i} ({_step_name(a)})"
        mine = {k: _value_key(v) for k, v in self.constants.items()}
        if mine != {k: _value_key(v) for k, v in other.constants.items()}:
            return "a constant operand"
        return None

    def guards_hold(self) -> bool:
        for (_, t), expected in zip(self.externals, self.external_shapes):
            data = t._data
            if (data.shape, data.dtype, t._requires_grad) != expected:
                return False
        return all(m.training == training for m, training in self.modules)

    def replay(self, inputs: tuple):
        return self.replay_code(inputs)


def _generate(plan: Plan):
    """The plan as the source of one Python function, and that function: a line or two a step,
    a local variable a slot, every object bound by name (the source holds only names and
    numbers, never a value). This is the replay, as torch.fx turns a graph into code: no loop
    over steps, no dispatch on their kinds, no lists of operands."""
    writer = _Writer(plan)
    for step in plan.steps:
        writer.step(step)
    writer.line(f"return {writer.result(plan.output)}")
    source = "\n".join(writer.lines)
    namespace = dict(writer.names)
    exec(builtins.compile(source, "<graphgrad.compile plan>", "exec"), namespace)  # noqa: S102
    return source, namespace["replay"]


class _Writer:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.names = {"ndarray": _ndarray, "asarray": np.asarray, "new": _new, "fit": _fit,
                      "finish": _finish_leaf}
        self.bound: dict[int, str] = {}
        self.read = _slots_in(plan.output) | {
            a for step in plan.steps if type(step) in (_Forward, _Hook)
            for a in (*step.args, *((step.out,) if type(step) is _Hook else ()))}
        self.lines = ["def replay(inputs):"]
        for slot, position in plan.inputs:
            self.line(f"v{slot} = inputs[{position}]._data")
        self.read_externals()

    def line(self, text: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + text)

    def bind(self, obj, prefix: str = "k") -> str:
        """A name for ``obj`` in the function's globals (one name an object)."""
        name = self.bound.get(id(obj))
        if name is None:
            name = self.bound[id(obj)] = f"{prefix}{len(self.names)}"
            self.names[name] = obj
        return name

    def ref(self, slot: int) -> str:
        if slot in self.plan.constants:
            return self.bind(self.plan.constants[slot], "c")
        return f"v{slot}"

    def leaf(self, slot: int) -> str:
        kind, where = self.plan.leaves[slot]
        return self.bind(where, "t") if kind == "external" else f"inputs[{where}]"

    def read_externals(self) -> None:
        for slot, tensor in self.plan.externals:
            self.line(f"v{slot} = {self.bind(tensor, 't')}._data")

    def free(self, slots, depth: int = 1) -> None:
        if slots:
            self.line(" = ".join(f"v{s}" for s in slots) + " = None", depth)

    def step(self, step) -> None:
        kind = type(step)
        if kind is _Forward:
            operands = [self.ref(a) for a in step.args]
            operands += [self.bind(p, "p") for p in step.params]
            self.line(f"v{step.out} = {self.bind(step.op.forward, 'f')}({', '.join(operands)})")
            self.line(f"if type(v{step.out}) is not ndarray: v{step.out} = asarray(v{step.out})")
            self.free(step.free)
        elif kind is _Backward:
            self.backward(step)
        elif kind is _Draw:
            self.line(f"v{step.out} = {self.bind(step.fill)}({self.bind(step.shape)}, "
                      f"{self.bind(step.dtype)})")
        elif kind is _ClearGrad:
            self.line(f"{self.leaf(step.leaf)}.grad = None")
        elif kind is _Hook:
            arguments = "".join(f"new(v{a}, False), " for a in step.args)
            self.line(f"{self.bind(step.hook)}({self.bind(step.module)}, ({arguments}), "
                      f"new(v{step.out}, False))")
            self.free(step.free)
        else:
            self.line(f"{self.bind(step.function)}(*{self.bind(step.args)}, "
                      f"**{self.bind(step.kwargs)})")
            self.read_externals()  # an optimizer step may have given a weight a new array

    def backward(self, step: _Backward) -> None:
        """The vjps in the engine's order; each node's gradient a local summed as contributions
        arrive, each leaf's too, the leaves finished last-first as the engine finishes them."""
        index_of = step.index_of
        seeded = set()
        for index, seed in step.roots:  # several roots on one node add up, as in the engine
            total = f"g{index} + {self.ref(seed)}" if index in seeded else self.ref(seed)
            self.line(f"g{index} = {total}")
            seeded.add(index)
        for forward in step.order:
            if index_of[id(forward)] not in seeded:
                self.line(f"g{index_of[id(forward)]} = None")
        leaves = list(dict.fromkeys(target[1] for forward in step.order
                                    for target in forward.targets
                                    if target is not None and target[0] == "leaf"))
        for slot in leaves:
            self.line(f"l{slot} = None")
        for forward in step.order:
            index = index_of[id(forward)]
            ctx = self.bind(forward.ctx, "x")
            if forward.op.vjp_reads_inputs:
                operands = ", ".join(self.ref(a) for a in forward.args)
            else:  # the vjp reads its output only: the inputs may be gone already
                operands = ", ".join("None" for _ in forward.args)
            self.line(f"if g{index} is not None:")
            if forward.op.vjp_reads_output:
                self.line(f"{ctx}.out = v{forward.out}", 2)
            self.line(f"r = {self.bind(forward.op.vjp, 'b')}({ctx}, g{index}, {operands})", 2)
            self.line(f"{ctx}.out = g{index} = None", 2)
            for position, target in enumerate(forward.targets):
                if target is None:
                    continue
                shape, dtype = (self.bind(x) for x in forward.shapes[position])
                self.line(f"gi = r[{position}]", 2)
                self.line("if gi is not None:", 2)
                self.line(f"if gi.shape != {shape} or gi.dtype != {dtype}: "
                          f"gi = fit({self.bind(forward.op.name)}, {shape}, {dtype}, gi)", 3)
                kind, where = target
                name = f"g{where}" if kind == "step" else f"l{where}"
                self.line(f"{name} = gi if {name} is None else {name} + gi", 3)
            self.line("r = gi = None", 2)
            self.free(step.free_after[id(forward)])
        for slot in reversed(leaves):
            leaf = self.leaf(slot)
            self.line(f"if l{slot} is not None:")
            self.line(f"finish({leaf}, l{slot})", 2)
            self.line(f"l{slot} = None", 2)
            grad_slot = step.grad_slots.get(slot)
            if grad_slot in self.read:  # a later operation, or the result, reads this .grad
                self.line(f"v{grad_slot} = {leaf}._grad._data", 2)

    def result(self, template) -> str:
        if type(template) is _Out:
            return f"new(v{template.slot}, False)"
        if isinstance(template, (tuple, list)):
            items = "".join(f"{self.result(t)}, " for t in template)
            return f"({items})" if isinstance(template, tuple) else f"[{items}]"
        if isinstance(template, dict):
            return "{" + "".join(f"{self.bind(k)}: {self.result(v)}, "
                                 for k, v in template.items()) + "}"
        return self.bind(template)


def _mark_last_uses(steps: list, kept: set) -> None:
    """Tell each step which computed values it uses last, so that a replay drops them there:
    a forward value lives until the last forward step or vjp that reads it, as the engine
    frees what backward no longer needs. Values in ``kept`` (the results) are never dropped."""
    last: dict[int, tuple] = {}  # slot -> (step, forward step or None): where it is last read
    computed = []
    for step in steps:
        kind = type(step)
        if kind is _Forward or kind is _Draw:
            computed.append(step.out)
            last[step.out] = (step, None)
        if kind is _Forward or kind is _Hook:
            for slot in (*step.args, *((step.out,) if kind is _Hook else ())):
                last[slot] = (step, None)
        elif kind is _Backward:
            step.free_after = {id(f): [] for f in step.order}
            for forward in step.order:
                op = forward.op
                read = (*(forward.args if op.vjp_reads_inputs else ()),
                        *((forward.out,) if op.vjp_reads_output else ()))
                for slot in read:
                    last[slot] = (step, forward)
    frees: dict[int, list] = {}
    for slot in computed:
        if slot in kept:
            continue
        step, forward = last[slot]
        if forward is None:
            frees.setdefault(id(step), []).append(slot)
        else:
            step.free_after[id(forward)].append(slot)
    for step in steps:
        kind = type(step)
        if kind is _Forward or kind is _Hook:
            step.free = tuple(frees.get(id(step), ()))
        elif kind is _Backward:
            step.free_after = {k: tuple(v) for k, v in step.free_after.items()}


def _slots_in(template) -> set:
    if type(template) is _Out:
        return {template.slot}
    if isinstance(template, (tuple, list)):
        return set().union(*map(_slots_in, template)) if template else set()
    if isinstance(template, dict):
        return set().union(*map(_slots_in, template.values())) if template else set()
    return set()


def _step_name(step) -> str:
    if type(step) is _Forward:
        return step.op.name
    if type(step) is _Call:
        return step.function.__qualname__
    return type(step).__name__.strip("_").lower()


def _step_key(step) -> tuple:
    """A step as comparable values: what it runs, on which slots, with which parameters."""
    kind = type(step)
    if kind is _Forward:
        return ("forward", step.op.name, step.args, _value_key(step.params), step.out,
                step.targets)
    if kind is _Backward:
        return ("backward", tuple(step.roots), tuple(step.index_of.values()),
                tuple(step.grad_slots.items()))
    if kind is _Draw:
        fill = getattr(step.fill, "__code__", step.fill)  # a lambda's code; np.zeros itself
        return ("draw", fill, step.shape, str(step.dtype), step.out)
    if kind is _ClearGrad:
        return ("clear", step.leaf)
    if kind is _Hook:
        return ("hook", step.hook, id(step.module), step.args, step.out)
    return ("call", step.function, tuple(map(_identity_key, step.args)),
            tuple((k, _identity_key(v)) for k, v in step.kwargs.items()))


def _identity_key(x):
    """Objects a call is given (an optimizer, its parameters) by identity; plain values as
    they are."""
    if isinstance(x, list):
        return tuple(map(id, x))
    return x if isinstance(x, (int, float, bool, str, type(None))) else id(x)


def _value_key(x):
    if type(x) is _ndarray:
        return ("array", x.shape, x.dtype.str, x.tobytes())
    if isinstance(x, (tuple, list)):
        return tuple(_value_key(v) for v in x)
    return ("value", type(x).__name__, repr(x))


def _fit(name: str, shape: tuple, dtype, g):
    """The engine's rule: a broadcast gradient is summed back to the input's shape and dtype."""
    if g.shape != shape:
        g = numpy_ns.sum_to(g, shape)
        if g.shape != shape:
            raise RuntimeError(f"{name}.vjp: gradient has shape {g.shape}, input has {shape}")
    return numpy_ns.cast(g, dtype) if g.dtype != dtype else g


def _finish_leaf(leaf: Tensor, g) -> None:
    """The leaf's hooks, then ``.grad``: the gradient itself when nothing else can see it."""
    if leaf._hooks is not None:
        as_tensor = _new(g, False)
        for hook in list(leaf._hooks.values()):
            result = hook(as_tensor)
            if result is not None:
                as_tensor = result
        g = as_tensor._data
        del as_tensor
    if leaf._grad is None:
        # kept unless another can see it, as the engine decides (two frames hold g here too)
        leaf._grad = _new(engine._owned(g), False)  # the plan's shapes and dtypes are the leaf's
    else:
        grad = leaf._grad
        grad._data = grad._data + g
