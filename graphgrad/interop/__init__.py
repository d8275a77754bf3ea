"""From graphgrad to PyTorch and back (issue 14): modules with their weights
(:func:`to_torch`, :func:`from_torch`), Graphs as ``torch.fx`` programs (``Graph.to_torch``)
and torch models read into Graphs (``Graph.from_torch``). torch is an optional extra: every
function here imports it when called, so ``import graphgrad`` never needs it."""

from ..graph import core as _core
from .from_fx import UnmappableNodesError, graph_from_torch
from .modules import SUPPORTED, UnsupportedModuleError, from_torch, to_torch, torch_state_dict
from .to_fx import LoweringError, graph_to_fx, lowerings

_core.TORCH_BRIDGE.update(to_torch=graph_to_fx, from_torch=graph_from_torch)

__all__ = ["SUPPORTED", "LoweringError", "UnmappableNodesError", "UnsupportedModuleError",
           "from_torch", "graph_from_torch", "graph_to_fx", "lowerings", "to_torch",
           "torch_state_dict"]
