"""The Graph: build it node by node or capture it, replay it, run independent nodes in parallel,
explain it, draw it."""

from . import examples
from .capture import from_outputs, trace
from .core import Graph, GraphError, GraphNode, Ref
from .execute import GraphRun
from .explain import Explanation, explain
from .fit import FitResult, fit
from .schedule import (
    Event,
    NodeFailed,
    NodeState,
    Scheduler,
    SerialExecutor,
    StepExecutor,
    ThreadPoolExecutor,
)

__all__ = [
    "Graph",
    "GraphError",
    "GraphNode",
    "GraphRun",
    "Ref",
    "trace",
    "from_outputs",
    "Explanation",
    "explain",
    "FitResult",
    "fit",
    "Event",
    "NodeFailed",
    "NodeState",
    "Scheduler",
    "SerialExecutor",
    "StepExecutor",
    "ThreadPoolExecutor",
]
