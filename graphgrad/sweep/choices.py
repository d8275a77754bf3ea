"""The samplers and pruners a sweep can use, by name (all of them Optuna's)."""

from __future__ import annotations

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving", "none")


def make_sampler(name: str, seed: int, space=None):
    """Optuna's sampler called ``name``, seeded; ``grid`` needs the space's grid.

    >>> type(make_sampler("random", 0)).__name__
    'RandomSampler'
    """
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(name: str):
    """Optuna's pruner called ``name``: ``median`` stops a trial whose loss is worse than the
    median of the finished trials at the same epoch (after 3 trials and 5 epochs), ``halving``
    is successive halving, ``none`` never prunes.

    >>> type(make_pruner("halving")).__name__
    'SuccessiveHalvingPruner'
    """
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=5)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")
