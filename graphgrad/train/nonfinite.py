"""Where a non-finite value first appears in a model's forward: the op and the layer.

``first_nonfinite(model, args)`` runs ``model(*args)`` once more under ``no_grad`` while a
recorder (graphgrad's op stream, the one ``trace`` uses) checks every primitive's output, and
module hooks keep the path of the layer that is running. The first op whose output holds a NaN
or an infinity is the source: every later one may only have inherited it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _state
from ..autograd import no_grad
from ..nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

REMEDIES = {
    "log": "clamp its input above 0 first (x.clamp_min(1e-12)), or use a log-space form "
           "(log_softmax, logsigmoid, BCEWithLogitsLoss)",
    "sqrt": "keep its input above 0 (x.clamp_min(1e-12), or add an epsilon)",
    "rsqrt": "keep its input above 0 (add an epsilon)",
    "div": "keep the denominator away from 0 (add an epsilon)",
    "exp": "subtract the maximum first (logsumexp) or clamp its input",
    "pow": "keep the base positive or the exponent an integer",
}


@dataclass(frozen=True)
class Source:
    """The op whose output first held a non-finite value, and the layer that ran it."""

    op: str
    layer: str  # the module path in the model ("" for the model's own forward)
    layer_type: str
    count: int  # non-finite numbers in that output
    size: int

    def describe(self) -> str:
        where = (f"layer {self.layer!r} ({self.layer_type})" if self.layer
                 else f"{self.layer_type}.forward")
        remedy = REMEDIES.get(self.op, "guard its input so the op stays defined")
        return (f"op {self.op} in {where} made {self.count} of {self.size} values non-finite "
                f"from finite inputs: {remedy}")


class _FirstNonFinite:
    """A capture recorder: told of every primitive; keeps the first non-finite output."""

    def __init__(self, layers: list) -> None:
        self.layers = layers  # the stack of running modules, (path, type name)
        self.found: Source | None = None

    def __call__(self, op, inputs, params, out, arrays) -> None:
        if self.found is not None:
            return
        data = out._data
        if not np.issubdtype(data.dtype, np.inexact):
            return
        finite = np.isfinite(data)
        if not finite.all():
            path, kind = self.layers[-1] if self.layers else ("", "model")
            self.found = Source(op.name, path, kind, int(data.size - finite.sum()), data.size)


def first_nonfinite(model, args: tuple) -> Source | None:
    """Re-run ``model(*args)`` and return the first op to produce a NaN or an infinity."""
    paths = {id(module): path for path, module in model.named_modules()}
    layers: list = []
    recorder = _FirstNonFinite(layers)

    def enter(module, _args):
        layers.append((paths.get(id(module), ""), type(module).__name__))

    def leave(module, _args, _output):
        if layers:
            layers.pop()

    handles = [register_module_forward_pre_hook(enter), register_module_forward_hook(leave)]
    previous, _state.state.capture = _state.state.capture, recorder
    try:
        with no_grad():
            model(*args)
    except Exception:  # noqa: BLE001 - the forward failed this time: what was seen stands
        pass
    finally:
        _state.state.capture = previous
        for handle in handles:
            handle.remove()
    return recorder.found
