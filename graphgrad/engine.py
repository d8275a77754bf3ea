"""The backward engine: one iterative scheduler over the recorded graph.

Every operation on tensors that require grad records a :class:`Node` (PyTorch's ``grad_fn``): the
op, its inputs and what its vjp needs. ``run_backward`` runs the nodes reachable from the roots
latest created first (PyTorch's sequence_nr order): a node is created after its inputs' nodes, so
by the time it runs every consumer has sent it its gradient. It runs its vjp once on the summed
gradient and passes the results to its inputs. No recursion anywhere, so a chain of any length
differentiates, and gradients that meet at a node are summed in a fixed order: every run gives
the same bits.
"""

from __future__ import annotations

import heapq
import itertools
import sys

import numpy as _np

from . import _state
from .ops import numpy_ns

_sequence = itertools.count()
_ndarray = _np.ndarray
# The dtypes a gradient flows through (torch's isDifferentiableType; graphgrad has no complex).
# An op's output of any other dtype never gets a node, so it never requires grad: comparisons,
# logical ops, argmax, integer casts. This is the one rule; no op declares it.
GRAD_DTYPES = frozenset(_np.dtype(t) for t in (_np.float16, _np.float32, _np.float64))
_OWNED_REFCOUNT = 4


_clock = [0]  # in-place modifications so far; a tensor's _version is the clock at its last one
# A node's stamp is the clock at its creation, or one of these:
_OUTPUT_CHANGED = -1  # its output tensor was modified in place
_FREED = -2  # a backward pass without retain_graph released it


def mark_modified(tensor) -> None:
    """Record that ``tensor``'s memory changed in place, so that a backward pass that saved it
    fails loudly instead of computing a wrong gradient."""
    version = _clock[0] = _clock[0] + 1
    tensor._version = version
    base = tensor._base
    if base is not None:  # an alias made by detach(): the memory it shares changed too
        base._version = version
    node = tensor.grad_fn
    if node is not None and node.stamp != _FREED:
        node.stamp = _OUTPUT_CHANGED


def _storage_version(x) -> int:
    """When x's memory last changed in place, through x or through an alias of it."""
    if not hasattr(x, "_version"):
        return 0  # a constant
    base = x._base
    return x._version if base is None else max(x._version, base._version)


class Node:
    """A recorded operation: what backward needs to send gradient to the op's inputs.

    The node holds its inputs (tensors or constants) and their arrays, but never its output
    tensor, so no reference cycle keeps a graph alive. ``stamp`` is the in-place clock at
    creation: while the clock has not moved, nothing the node saved can have changed.
    ``needed`` holds the indices of the inputs that need a gradient. ``exact`` says that the
    vjp's gradients need no fitting to their inputs' shape and dtype as long as ``g`` has the
    output's and an input tensor still holds the array recorded (an elementwise op whose inputs
    had the output's shape, in a dtype its constants never widen): the engine then skips the
    check, a third of the work per node on small tensors.
    Nodes are made by :func:`record`.
    """

    __slots__ = (
        "op",
        "inputs",
        "arrays",
        "params",
        "out",
        "needs_input_grad",
        "needed",
        "exact",
        "seq",
        "stamp",
        "pre_hooks",
        "retained",
        "__weakref__",
    )
    xp = numpy_ns  # first-order vjps compute on arrays

    def name(self) -> str:
        return self.op.node_name(self)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    @property
    def next_functions(self) -> tuple:
        """The nodes gradient flows to, as in torch: ``((node_or_None, 0), ...)``."""
        return tuple(
            (getattr(x, "grad_fn", None) if need else None, 0)
            for x, need in zip(self.inputs, self.needs_input_grad)
        )

    def check_saved(self) -> None:
        """Raise if what the vjp reads was freed by an earlier backward or changed in place."""
        op = self.op
        if self.stamp == _FREED and op.saves:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (or directly access saved "
                f"tensors after they have already been freed) at {op.grad_fn_name}. Saved "
                f"intermediate values of the graph are freed when you call .backward() or "
                f"autograd.grad(). Specify retain_graph=True if you need to backward through the "
                f"graph a second time or if you need to access saved tensors after calling "
                f"backward."
            )
        if self.stamp in (_clock[0], _FREED) or not op.saves:
            return
        if self.stamp == _OUTPUT_CHANGED:
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: the output of {op.grad_fn_name} was changed after it was "
                f"computed."
            )
        for i, x in enumerate(self.inputs):
            if _storage_version(x) > self.stamp:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: input {i} of {op.grad_fn_name} (shape "
                    f"{tuple(x.shape)}) was changed after {op.grad_fn_name} saved it."
                )


class _Needed(dict):
    """needs_input_grad -> the indices of the inputs that need a gradient, computed once."""

    def __missing__(self, needs: tuple) -> tuple:
        needed = self[needs] = tuple(i for i, need in enumerate(needs) if need)
        return needed


_NEEDED = _Needed()


def record(op, inputs, arrays, params, out, needs_input_grad, needed=None) -> Node:
    """Make the Node of a recorded op (a plain function: cheaper than calling a class).
    ``needed``: the indices of the inputs that need a gradient, if the caller knows them.
    The tensor ops' hot paths fill the same fields inline (``tensor._recorded``): a field added
    here goes there too."""
    node = Node()
    node.op = op
    node.inputs = inputs
    node.arrays = arrays
    node.params = params
    node.out = out
    node.needs_input_grad = needs_input_grad
    node.needed = _NEEDED[needs_input_grad] if needed is None else needed
    node.exact = False
    node.seq = next(_sequence)
    node.stamp = _clock[0]
    node.pre_hooks = None
    node.retained = None
    return node


class HigherOrderCtx:
    """What a vjp sees under ``create_graph=True``: tensors instead of arrays, so that the
    backward pass is itself recorded and can be differentiated again."""

    __slots__ = ("node", "xp", "inputs", "_out")

    def __init__(self, node: Node, tensor_ns) -> None:
        self.node = node
        self.xp = tensor_ns
        # Constant arrays (a number operand, where's condition, clamp's bounds) become constant
        # tensors: the vjp then computes on tensors only, never on an array and a tensor.
        self.inputs = tuple(tensor_ns.wrap(x) if type(x) is _ndarray else x for x in node.inputs)
        self._out = None

    @property
    def params(self):
        return self.node.params

    @property
    def needs_input_grad(self):
        return self.node.needs_input_grad

    @property
    def out(self):
        # Recomputed from the input tensors so that it is connected to them; only this mode pays.
        if self._out is None:
            self._out = self.xp.apply(self.node.op, self.inputs, self.node.params)
        return self._out


def run_backward(roots, root_grads, *, retain_graph, create_graph, tensor_ns, capture=None):
    """Propagate ``root_grads`` from ``roots`` back through the graph.

    With ``capture`` (a list of tensors) the gradients reaching those tensors are returned and no
    leaf's ``.grad`` changes (``autograd.grad``); otherwise leaves accumulate into ``.grad``.
    Gradients are arrays in first-order mode and tensors when ``create_graph`` is true.
    """
    previous = _state.state.grad_enabled
    _state.state.grad_enabled = create_graph
    try:
        backward_pass = _Pass(roots, root_grads, retain_graph, create_graph, tensor_ns, capture)
        backward_pass.run()
        return backward_pass.finish()  # after run() returns, so no frame of it holds a gradient
    finally:
        _state.state.grad_enabled = previous


class _Pass:
    """One backward pass; only this object touches its queue and gradient buffers."""

    def __init__(self, roots, root_grads, retain_graph, create_graph, tensor_ns, capture):
        self.retain_graph = retain_graph
        self.create_graph = create_graph
        self.ns = tensor_ns
        self.buffers: dict[Node, object] = {}
        self.leaf_grads: dict[int, list] = {}  # id(leaf) -> [leaf, grad]; identity, never ==
        self.capture = capture
        self.captured = None if capture is None else [None] * len(capture)
        self.captured_nodes: dict[Node, list[int]] = {}
        for i, t in enumerate(capture or ()):
            if t.grad_fn is not None:
                self.captured_nodes.setdefault(t.grad_fn, []).append(i)
        self.ready = self._start(roots, root_grads)

    def _start(self, roots, root_grads) -> list:
        """Buffer the roots' gradients: the queue of reached nodes starts with the roots'."""
        ready = []
        for t, g in zip(roots, root_grads):
            node = t.grad_fn
            if node is None:
                self._add_leaf(t, g)
                continue
            if node not in self.buffers:
                ready.append((-node.seq, node))
            self._add(node, g)
        heapq.heapify(ready)
        return ready

    def _add(self, node: Node, g) -> None:
        buffers = self.buffers
        buffers[node] = buffers[node] + g if node in buffers else g

    def _add_leaf(self, leaf, g) -> None:
        entry = self.leaf_grads.get(id(leaf))
        if entry is None:
            self.leaf_grads[id(leaf)] = [leaf, g]
        else:
            entry[1] = entry[1] + g

    def run(self) -> None:
        """Run every node reachable from the roots, latest created first.

        A node's consumers were all created after it, so when the latest created of the nodes
        reached so far runs, every consumer that sends it gradient has run: its buffer is
        complete. No dependency count is needed, and the order (torch's sequence_nr order) fixes
        the order in which the gradients meeting at a node are summed.
        """
        buffers, leaf_grads, ready = self.buffers, self.leaf_grads, self.ready
        captured_nodes = self.captured_nodes
        create_graph, retain_graph = self.create_graph, self.retain_graph
        clock, freed = _clock, _FREED
        pop, push = heapq.heappop, heapq.heappush
        # The latest created node reached and not run, and its gradient so far, kept out of the
        # heap and the buffers: in a chain it is the only one, so neither is touched.
        following = following_g = None
        while True:
            if following is not None:
                node, g = following, following_g
                following = None
            elif ready:
                node = pop(ready)[1]
                g = buffers.pop(node)
            else:
                break
            if g is None:  # nothing reached this node: every path to it carried no gradient
                grads = (None,) * len(node.inputs)
            else:
                exact = node.exact
                if node.pre_hooks is not None or (captured_nodes and node in captured_nodes):
                    observed = self._observe(node, g)
                    exact = exact and observed is g  # a hook's gradient has any shape
                    g = observed
                if node.stamp != clock[0]:
                    node.check_saved()
                arrays = node.arrays
                if create_graph:
                    exact = False
                    ctx = HigherOrderCtx(node, self.ns)
                    grads = node.op.vjp(ctx, g, *ctx.inputs)
                else:  # the arrays spelled out: a third of the cost of a *arrays call
                    n = len(arrays)
                    if n == 1:
                        grads = node.op.vjp(node, g, arrays[0])
                    elif n == 2:
                        grads = node.op.vjp(node, g, arrays[0], arrays[1])
                    else:
                        grads = node.op.vjp(node, g, *arrays)
            inputs = node.inputs
            for i in node.needed:
                x = inputs[i]
                gi = grads[i]
                if gi is not None:
                    data = x._data
                    if exact and data is arrays[i]:
                        pass  # it has the shape and dtype of g, of the output, of this input
                    elif gi.shape != data.shape or gi.dtype is not data.dtype:
                        gi = self._fit(node, data, gi)
                child = x.grad_fn
                if child is None:  # a leaf: its gradient is summed here, given to it by finish()
                    if gi is not None:
                        entry = leaf_grads.get(id(x))
                        if entry is None:
                            leaf_grads[id(x)] = [x, gi]
                        else:
                            entry[1] = entry[1] + gi
                elif child is following:  # reached again from this node (``y * y``)
                    if gi is not None:
                        following_g = gi if following_g is None else following_g + gi
                elif child in buffers:
                    if gi is not None:
                        summed = buffers[child]
                        buffers[child] = gi if summed is None else summed + gi
                else:  # reached for the first time (gi None: reached, no gradient yet)
                    seq = child.seq
                    if following is None:
                        if ready and -ready[0][0] > seq:
                            buffers[child] = gi
                            push(ready, (-seq, child))
                        else:
                            following, following_g = child, gi
                    elif seq > following.seq:
                        buffers[following] = following_g
                        push(ready, (-following.seq, following))
                        following, following_g = child, gi
                    else:
                        buffers[child] = gi
                        push(ready, (-seq, child))
            if not retain_graph:
                node.stamp = freed  # what only backward needed goes, as torch frees saved tensors
                node.out = None

    def _observe(self, node: Node, g):
        """Hooks, retain_grad and autograd.grad's captures see a node's summed gradient."""
        if node.pre_hooks is not None:
            g = self._run_hooks(node.pre_hooks, g)
        if node.retained is not None:
            tensor = node.retained()
            if tensor is not None:
                self._accumulate(tensor, g)
        for i in self.captured_nodes.get(node, ()):
            self.captured[i] = g
        return g

    def _fit(self, node: Node, x, g):
        """Sum a broadcast gradient back to the input's shape and give it the input's dtype."""
        ns = self.ns if self.create_graph else numpy_ns
        if tuple(g.shape) != x.shape:
            g = ns.sum_to(g, x.shape)
            if tuple(g.shape) != x.shape:
                raise RuntimeError(
                    f"{node.op.name}.vjp: gradient has shape {tuple(g.shape)}, input has "
                    f"{tuple(x.shape)}"
                )
        dtype = g._data.dtype if self.create_graph else g.dtype
        if dtype != x.dtype:
            g = ns.cast(g, x.dtype)
        return g

    def _run_hooks(self, hooks, g):
        """Tensor hooks see and may replace the gradient, as a tensor."""
        as_tensor = g if self.create_graph else self.ns.wrap(g)
        for hook in list(hooks.values()):
            result = hook(as_tensor)
            if result is not None:
                as_tensor = result
        return as_tensor if self.create_graph else as_tensor._data

    def finish(self):
        """Leaves get their summed gradient, after their hooks: into ``.grad``, or captured."""
        if self.capture is not None:
            for i, t in enumerate(self.capture):
                entry = self.leaf_grads.get(id(t)) if t.grad_fn is None else None
                if entry is not None:
                    self.captured[i] = self._leaf_hooks(*entry)
            return self.captured
        leaf_grads = self.leaf_grads
        while leaf_grads:
            leaf, g = leaf_grads.popitem()[1]  # popped: the dict no longer holds the gradient
            self._accumulate(leaf, self._leaf_hooks(leaf, g), fitted=leaf._hooks is None)
        return None

    def _leaf_hooks(self, leaf, g):
        return g if leaf._hooks is None else self._run_hooks(leaf._hooks, g)

    def _accumulate(self, tensor, g, fitted: bool = False) -> None:
        """Add g into tensor.grad: in place in first-order mode (as torch), out of place when the
        gradient is itself part of a graph. ``fitted``: g is the engine's, fitted to the tensor's
        shape and dtype (no hook replaced it), so ``.grad``'s checks of a new value are skipped."""
        if self.create_graph:
            tensor.grad = g if tensor.grad is None else tensor.grad + g
            return
        grad = tensor._grad  # a leaf's or a retained one's: reading it never warns
        if grad is None:
            grad = self.ns.wrap(_owned(g))
            if fitted:
                tensor._grad = grad
            else:
                tensor.grad = grad
        else:
            grad._data = grad._data + g


def _owned(g):
    """The gradient itself when nothing else can see it, else a C-ordered copy: a vjp may hand
    the same array to several inputs (``add`` does), and ``.grad`` must not alias another
    gradient. PyTorch decides the same way, by reference count. A transposed layout (the
    gradient of ``x @ w.T``) is copied too: an optimizer's passes over it would be strided."""
    if type(g) is not _ndarray:
        return _np.array(g, order="C")
    flags = g.flags
    plain = flags.owndata and flags.writeable and flags.c_contiguous
    del flags  # a flags object holds a reference to its array, which the count below must not see
    if not plain:
        return _np.array(g, order="C")
    # Expected references: the two frames above this one (finish() and _accumulate here; a
    # compiled replay and its _finish_leaf), this frame's ``g`` and getrefcount's argument. Any
    # more (another leaf's entry, a retained .grad, a user's gradient= tensor, a constant of a
    # plan) means someone else can see this array.
    if sys.getrefcount(g) > _OWNED_REFCOUNT:
        return g.copy()
    return g
