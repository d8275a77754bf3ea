"""``graphgrad.train``: a training loop that explains itself.

``fit(model, loss_fn, train_data, ...)`` trains an ``nn.Module`` (loss ``loss_fn(model(x), y)``)
or a ``Graph`` whose first output is the loss (``loss_fn=None``; data a dict of input name ->
array, batched along dim 0), and returns a :class:`History`:

- data: a ``(features, targets)`` pair, a Dataset or a DataLoader (used as is);
  ``batch_size=None`` is full batch; shuffling draws from a ``Generator`` seeded with ``seed``,
  which also seeds the global generator (dropout) at the start. A DataLoader whose sampler has
  ``set_epoch`` (a DistributedSampler) gets ``set_epoch(epoch - 1)`` as each epoch starts.
- a ``DistributedDataParallel`` model trains data-parallel: the History names its ``module``'s
  parameters and records each step's loss over every rank's batch, the same on every rank.
- ``optimizer``: an Optimizer or one of ``sgd adam adamw rmsprop adagrad``, built with ``lr``,
  ``momentum`` (sgd, rmsprop) and ``weight_decay``.
- ``scheduler``: None, a scheduler, ``callable(optimizer) -> scheduler`` or one of ``step cosine
  exponential onecycle plateau`` (sized to ``epochs``), stepped once per epoch; then every
  group's ``lr = max(min_lr, lr * lr_decay)``. ``max_grad`` clamps each gradient element,
  ``max_grad_norm`` the global norm.
- ``metric``: None, ``"accuracy"`` or ``callable(output, target) -> float``, on the validation
  data (the training data without it) after each epoch.
- a run whose loss or gradient turns non-finite, or whose loss rises over 10 times its best
  (and above the first epoch's, from epoch 3 on), stops with ``history.verdict`` set: what
  happened, the likely cause and the remedy, read from the numbers and the knobs.
- ``diagnose``: plain-sentence ``history.notes`` on plateaus, vanishing or exploding layer
  gradients, dead ReLU units, parameters without gradients and a learning rate at its floor;
  on a Module trained eagerly, also the findings of :func:`watch` (the training doctor).
- ``callbacks``: :class:`Callback` objects, e.g. :class:`EarlyStopping`.
- ``checkpoint_dir`` (a checkpoint every ``checkpoint_every`` epochs, default 1, and at the
  step where Ctrl-C stops the run with :class:`TrainingInterrupted`) and ``resume`` (a path, or
  True for ``checkpoint_dir``'s file): a resumed run gives the same bits as an uninterrupted
  one, from the same step on. ``epochs`` is the total, counting the epochs before the resume;
  ``fit`` says what a resume with other settings does.
- ``compile=True`` replays each batch's forward and backward from a record
  (:func:`graphgrad.compile`): the same bits as eager, with less Python per step.
- ``progress``: None shows per-epoch lines (a tqdm bar when installed) on a terminal, True
  always, False never (and keeps the notes and verdict unprinted).

:func:`lr_find` runs the learning-rate range test and leaves the model as it was.

>>> import graphgrad as gg
>>> from graphgrad.train import fit
>>> _ = gg.manual_seed(0)
>>> x = gg.randn(128, 2)
>>> y = (x[:, 0] > x[:, 1]).long()
>>> model = gg.nn.Sequential(gg.nn.Linear(2, 16), gg.nn.ReLU(), gg.nn.Linear(16, 2))
>>> history = fit(model, gg.nn.CrossEntropyLoss(), (x, y), optimizer="adam", lr=0.01,
...               metric="accuracy", epochs=20, progress=False)
>>> history.epochs[-1]["metric"] > 0.9, history.verdict
(True, None)
"""

from .callbacks import Callback, EarlyStopping
from .checkpoint import load_checkpoint
from .history import History, Verdict
from .interrupt import TrainingInterrupted
from .loop import Trainer, fit
from .lr_find import LRFinderResult, lr_find
from .watch import Diagnosis, TrainingStopped, Watch, watch

__all__ = [
    "Callback",
    "Diagnosis",
    "EarlyStopping",
    "History",
    "LRFinderResult",
    "Trainer",
    "TrainingInterrupted",
    "TrainingStopped",
    "Verdict",
    "Watch",
    "fit",
    "load_checkpoint",
    "lr_find",
    "watch",
]
