"""``summary``: a table of a model's layers, their output shapes and parameter counts."""

from __future__ import annotations

from ..autograd import no_grad
from ..creation import zeros
from ..tensor import Tensor
from .modules.module import Module


class ModelSummary:
    """What :func:`summary` returns: ``rows`` of (name, type, output shape, parameters), the
    totals, and a printable table as ``str()``."""

    def __init__(self, rows: list, total_params: int, trainable_params: int) -> None:
        self.rows = rows
        self.total_params = total_params
        self.trainable_params = trainable_params

    def __str__(self) -> str:
        header = ("Layer", "Type", "Output shape", "Param #")
        cells = [header] + [(n, t, str(s), f"{p:,}") for n, t, s, p in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(4)]
        rule = "-" * (sum(widths) + 6)
        lines = [rule, _line(header, widths), rule]
        lines += [_line(row, widths) for row in cells[1:]]
        lines += [
            rule,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            rule,
        ]
        return "\n".join(lines)

    __repr__ = __str__


def _line(cells, widths) -> str:
    name, kind, shape, count = cells
    return f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {shape:<{widths[2]}}  {count:>{widths[3]}}"


def _shape_of(output):
    if isinstance(output, Tensor):
        return list(output.shape)
    if isinstance(output, (tuple, list)):
        return [_shape_of(o) for o in output]
    return type(output).__name__


def summary(model: Module, input_shape, dtype=None, batch_size: int = 1) -> ModelSummary:
    """Run ``model`` in eval mode on zeros of shape (batch_size, *input_shape) and tabulate
    every submodule it calls, in call order, with its own parameter count.

    >>> import graphgrad as gg
    >>> net = gg.nn.Sequential(gg.nn.Linear(4, 3), gg.nn.ReLU())
    >>> s = gg.nn.summary(net, (4,))
    >>> s.rows[0], s.total_params
    (('0', 'Linear', [1, 3], 15), 15)
    """
    rows, handles = [], []
    for name, module in model.named_modules():
        if module is model:
            continue

        def record(mod, args, output, name=name):
            own = sum(p.numel() for p in mod.parameters(recurse=False))
            rows.append((name, type(mod).__name__, _shape_of(output), own))

        handles.append(module.register_forward_hook(record))
    modes = [(m, m.training) for m in model.modules()]
    model.eval()  # no running-statistics updates, no dropout, batch size 1 allowed
    try:
        with no_grad():
            model(zeros((batch_size, *input_shape), dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes:
            module.training = mode
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return ModelSummary(rows, total, trainable)
