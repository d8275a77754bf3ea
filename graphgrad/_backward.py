"""The entry point of a backward pass: checks the roots and their gradients, then runs the engine.

It sits beside the tensor (``Tensor.backward`` calls it); ``graphgrad.autograd`` re-exports it.
"""

from __future__ import annotations

import numpy as np

from . import _state, _tensor_ns, engine
from .tensor import Tensor


def _as_list(x) -> list:
    if x is None:
        return []
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _root_grads(outputs: list, grad_outputs: list, create_graph: bool, who: str) -> list:
    """One gradient per output: given, or ones for a scalar output (torch's implicit gradient)."""
    if grad_outputs and len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"{who}: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs"
        )
    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if grad_outputs else None
        if not out.requires_grad:
            raise RuntimeError(
                f"{who}: element {i} of tensors does not require grad and does not have a grad_fn"
            )
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"{who}: grad can be implicitly created only for scalar outputs "
                    f"(output {i} has shape {tuple(out.shape)}); pass gradient="
                )
            g = np.array(1, dtype=out._data.dtype).reshape(out._data.shape)
        else:
            g_arr = g._data if isinstance(g, Tensor) else np.asarray(g, dtype=out._data.dtype)
            if g_arr.shape != out._data.shape:
                raise RuntimeError(
                    f"{who}: Mismatch in shape: grad_output[{i}] has a shape of "
                    f"{tuple(g_arr.shape)} and output[{i}] has a shape of "
                    f"{tuple(out.shape)}."
                )
            if create_graph and isinstance(g, Tensor):
                grads.append(g)
                continue
            g = g_arr.astype(out._data.dtype, copy=False)
        grads.append(_tensor_ns.wrap(g) if create_graph else g)
    return grads


def backward(
    tensors,
    grad_tensors=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs=None,
) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves they depend on."""
    outputs = _as_list(tensors)
    grads = _root_grads(outputs, _as_list(grad_tensors), create_graph, "backward")
    if inputs is not None:
        raise NotImplementedError("backward(inputs=...) is not supported; use autograd.grad")
    if _state.state.capture is not None:  # graphgrad.compile records the pass to replay it
        _state.note("backward", outputs, grads, create_graph)
    engine.run_backward(
        outputs,
        grads,
        retain_graph=create_graph if retain_graph is None else retain_graph,
        create_graph=create_graph,
        tensor_ns=_tensor_ns,
    )
