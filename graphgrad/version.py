"""``graphgrad.version``: what ``torch.version`` tells a script about its build.

graphgrad is pure Python on NumPy: it is built for no GPU toolkit, so ``cuda``, ``hip``, ``rocm``
and ``xpu`` are None (a script's ``if torch.version.cuda:`` takes its CPU branch), and it is
never a debug build. ``git_version`` is ``'Unknown'``, torch's value for a build made outside a
git checkout: graphgrad records no commit when it is installed.

>>> import graphgrad.version
>>> graphgrad.version.cuda is None, graphgrad.version.__version__ == graphgrad.__version__
(True, True)
"""

from ._version import __version__

__all__ = ["__version__", "debug", "cuda", "git_version", "hip", "rocm", "xpu"]

debug = False
cuda: str | None = None
git_version = "Unknown"
hip: str | None = None
rocm: str | None = None
xpu: str | None = None
