"""What ``fit`` and ``lr_find`` build from their arguments: the task (a Module with its loss
function, or a Graph whose output is the loss), batches, the optimizer and the scheduler."""

from __future__ import annotations

import math

import numpy as np

from .. import distributed as dist
from .. import optim
from ..autograd import no_grad
from ..compiler import compile
from ..creation import as_tensor
from ..data import DataLoader, Dataset, TensorDataset
from ..graph import Graph
from ..nn.parallel import DistributedDataParallel
from ..optim import lr_scheduler
from ..tensor import Tensor, cat

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("step", "cosine", "exponential", "onecycle", "plateau")
METRICS = ("accuracy",)


def check(ok: bool, argument: str, message: str) -> None:
    """Raise ValueError naming ``argument`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{argument}: {message}")


# ---------------------------------------------------------------------------------- tasks
class ModuleTask:
    """A Module and a loss function: ``loss_fn(model(x), y)`` for each batch ``(x, y)``.

    A DistributedDataParallel model trains as its ``module`` is named (no ``module.`` prefix
    in the history) and each step's loss is the mean over every rank's batch, so that all
    ranks record the same losses and reach the same verdicts."""

    def __init__(self, model, loss_fn, compiled: bool = False) -> None:
        check(callable(loss_fn), "loss_fn", "an nn.Module model needs a loss function")
        self.model, self.loss_fn, self.compiled = model, loss_fn, compiled
        # the forward and backward of a batch, replayed from a record with compile=True
        self._forward_backward = compile(self._loss_backward) if compiled else self._loss_backward
        self.parallel = isinstance(model, DistributedDataParallel)
        self.inner = model.module if self.parallel else model
        self.named = {n: p for n, p in self.inner.named_parameters() if p.requires_grad}

    def _loss_backward(self, x, y) -> Tensor:
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        return loss

    def loss_and_backward(self, batch) -> tuple[float, int]:
        x, y = batch
        loss = self._forward_backward(x, y)
        if self.parallel:
            return _mean_over_ranks(float(loss.item()), len(x))
        return float(loss.item()), len(x)

    def evaluate(self, batches, metric) -> tuple[float, float | None]:
        """Mean loss over ``batches`` and the metric on all of them, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        total, count, outputs, targets = 0.0, 0, [], []
        with no_grad():
            for x, y in batches:
                out = self.model(x)
                total += float(self.loss_fn(out, y).item()) * len(x)
                count += len(x)
                if metric is not None:
                    outputs.append(out)
                    targets.append(y)
        self.model.train(was_training)
        value = None if metric is None else float(metric(cat(outputs), cat(targets)))
        return total / count, value

    def state(self) -> dict:
        return self.model.state_dict()

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state)

    def set_training(self, mode: bool) -> None:
        self.model.train(mode)


class GraphTask:
    """A Graph whose first output is the loss; each batch is a dict of input name -> values.
    The gradient is taken on the graph itself (``graph.run(..., backward=True)``), as
    ``graphgrad.graph.fit`` does, so plain SGD follows its trajectory exactly."""

    def __init__(self, graph: Graph, loss_fn) -> None:
        check(loss_fn is None, "loss_fn", "must be None for a Graph: its first output is the loss")
        check(bool(graph.parameters), "model", "the graph has no parameters to train")
        self.graph = graph
        self.named = {node.name: node.value for node in graph.parameters}

    def loss_and_backward(self, batch: dict) -> tuple[float, int]:
        run = self.graph.run(batch, backward=True)
        return float(run.output.detach().numpy().sum()), _rows(batch)

    def evaluate(self, batches, metric) -> tuple[float, float | None]:
        total, count = 0.0, 0
        with no_grad():
            for batch in batches:
                n = _rows(batch)
                total += float(self.graph.run(batch).output.detach().numpy().sum()) * n
                count += n
        return total / count, None

    def state(self) -> dict:
        return {name: p.detach() for name, p in self.named.items()}

    def load_state(self, state: dict) -> None:
        for name, p in self.named.items():
            p.detach().numpy()[...] = state[name].numpy()

    def set_training(self, mode: bool) -> None:
        """Graphs have no train/eval modes."""


def _mean_over_ranks(loss: float, count: int) -> tuple[float, int]:
    """The loss over every rank's batch and their total size (a sum in float64)."""
    totals = as_tensor(np.array([loss * count, count], dtype=np.float64))
    dist.all_reduce(totals)
    total, rows = totals.tolist()
    return total / rows, int(rows)


def make_task(model, loss_fn, compiled: bool = False):
    if isinstance(model, Graph):
        check(not compiled, "compile", "compile=True trains an nn.Module; a Graph is already "
              "run without Python code (use Graph.compile() for a graph outside fit)")
        return GraphTask(model, loss_fn)
    check(callable(model) and hasattr(model, "named_parameters"), "model",
          f"expected an nn.Module or a Graph, got {type(model).__name__}")
    return ModuleTask(model, loss_fn, compiled)


# ---------------------------------------------------------------------------------- batches
class GraphBatches:
    """Batches of a dict of arrays along dim 0 (the whole dict when ``batch_size`` is None),
    in an order drawn from ``generator`` when shuffling."""

    def __init__(self, data: dict, batch_size, shuffle: bool, generator) -> None:
        check(isinstance(data, dict) and bool(data), "train_data",
              "a Graph trains on a dict of input name -> array")
        self.data = {k: v.detach().numpy() if isinstance(v, Tensor) else np.asarray(v)
                     for k, v in data.items()}
        self.n = _rows(self.data)
        self.batch_size = batch_size or self.n
        self.shuffle, self.generator = shuffle, generator

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        return (self.take(rows) for rows in self.order())

    def order(self) -> list:
        """One pass's batches as lists of row indices (drawn now when shuffling)."""
        order = self.generator.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        return [order[start:start + self.batch_size].tolist()
                for start in range(0, self.n, self.batch_size)]

    def take(self, rows: list) -> dict:
        """The batch of ``rows`` (the data itself when that is every row, in order)."""
        if len(rows) == self.n and rows == list(range(self.n)):
            return self.data
        return {k: v[rows] if v.ndim else v for k, v in self.data.items()}


def _rows(batch: dict) -> int:
    sizes = [np.shape(v)[0] for v in batch.values() if np.ndim(v)]
    return sizes[0] if sizes else 1


def make_batches(task, data, batch_size, shuffle: bool, generator, argument: str):
    """An iterable of batches with ``len``: a DataLoader for a Module, GraphBatches for a Graph."""
    if isinstance(task, GraphTask):
        return GraphBatches(data, batch_size, shuffle, generator)
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)):
        check(len(data) == 2, argument, "a pair (features, targets), a Dataset or a DataLoader")
        data = TensorDataset(*(as_tensor(_array(d)) for d in data))
    check(isinstance(data, Dataset) or hasattr(data, "__getitem__"), argument,
          f"a pair (features, targets), a Dataset or a DataLoader, not {type(data).__name__}")
    return DataLoader(data, batch_size=batch_size or len(data), shuffle=shuffle,
                      generator=generator if shuffle else None)


def _array(values):
    return values if isinstance(values, Tensor) else np.asarray(values)


# ---------------------------------------------------------------------------------- metrics
def accuracy(output: Tensor, target: Tensor) -> float:
    """The fraction of rows whose largest logit is the target class (one logit per row: the
    sign of the logit against a 0/1 target).

    >>> import graphgrad as gg
    >>> accuracy(gg.tensor([[2.0, 1.0], [0.0, 3.0]]), gg.tensor([0, 0]))
    0.5
    """
    out, want = output.detach().numpy(), target.detach().numpy()
    guess = out.argmax(axis=1) if out.ndim == 2 and out.shape[1] > 1 else (out.reshape(-1) > 0)
    return float(np.mean(guess == want.reshape(guess.shape)))


def make_metric(metric):
    if metric is None or callable(metric):
        return metric
    check(metric in METRICS, "metric", f"None, a callable or one of {METRICS}, got {metric!r}")
    return accuracy


# ---------------------------------------------------------------------------------- optimizers
def make_optimizer(optimizer, params: list, *, lr: float, momentum: float, weight_decay: float):
    """``optimizer`` itself, or the named one built with the knobs."""
    if isinstance(optimizer, optim.Optimizer):
        return optimizer
    check(isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS, "optimizer",
          f"an Optimizer or one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    name = optimizer.lower()
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    kind = {"adam": optim.Adam, "adamw": optim.AdamW, "adagrad": optim.Adagrad}[name]
    return kind(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(scheduler, optimizer, epochs: int):
    """None, ``scheduler`` itself, ``scheduler(optimizer)``, or a named one sized to ``epochs``."""
    if scheduler is None or isinstance(scheduler, (lr_scheduler.LRScheduler)):
        return scheduler
    if callable(scheduler):
        return scheduler(optimizer)
    check(isinstance(scheduler, str) and scheduler.lower() in SCHEDULERS, "scheduler",
          f"None, a scheduler, a callable(optimizer) or one of {', '.join(SCHEDULERS)}, "
          f"got {scheduler!r}")
    name, s = scheduler.lower(), lr_scheduler
    if name == "step":  # a tenth of the rate at a third and two thirds of the run
        return s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "exponential":  # down to a hundredth of the rate by the last epoch
        return s.ExponentialLR(optimizer, gamma=0.01 ** (1 / epochs))
    if name == "onecycle":  # peaks at lr; momentum is the optimizer's own, never cycled
        lrs = [g["lr"] for g in optimizer.param_groups]
        return s.OneCycleLR(optimizer, max_lr=lrs, total_steps=epochs + 1, cycle_momentum=False)
    return s.ReduceLROnPlateau(optimizer, factor=0.1, patience=max(2, epochs // 10))
