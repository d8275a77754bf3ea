"""``graphgrad.viz``: pictures of training runs, drawn with matplotlib (the ``plot`` extra).

- :func:`plot_history`: loss, learning rate and gradient norm per epoch, with a diverged run
  marked as such.
- :func:`plot_lr_find`: loss against learning rate from a learning-rate range test.
- :func:`plot_schedule`: a learning-rate (and momentum) schedule, step by step.

Each writes a PNG, SVG or PDF file (by the path's suffix) atomically and returns its path.
Importing this package does not import matplotlib; calling a function without it installed raises
an ImportError that says how to install it.
"""

from .plots import plot_history, plot_lr_find, plot_schedule

__all__ = ["plot_history", "plot_lr_find", "plot_schedule"]
