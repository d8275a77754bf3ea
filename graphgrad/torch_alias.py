"""Run an unmodified PyTorch script on graphgrad: ``graphgrad run-torch train.py [ARGS...]``.

The same as ``python -m graphgrad.torch_alias train.py [ARGS...]``. The script runs as
``__main__``, as ``python train.py ARGS...`` would run it (``sys.argv``, ``sys.path[0]``, its
exceptions' tracebacks and exit code 1, ``sys.exit(n)``), in a process in which every
``import torch...`` of a module in :data:`ALIASES` is answered by graphgrad's module of the same
meaning. Any other ``torch`` module, and any name graphgrad's modules lack, raises an error saying
that graphgrad does not have it yet: the real torch is never imported.

In a program of one's own, :func:`install` does the same for the rest of the process (which
must not have imported the real torch): afterwards ``import torch.utils.data`` gives a module
whose names are those of the module ALIASES names for it,

>>> from graphgrad.torch_alias import ALIASES
>>> ALIASES["torch.utils.data"], ALIASES["torch.optim.lr_scheduler"]
('graphgrad.utils.data', 'graphgrad.optim.lr_scheduler')
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import os
import runpy
import sys
import types

from ._version import __version__ as _graphgrad_version

# Every torch module that graphgrad answers, and the graphgrad module that answers it: a module,
# or a namespace object in one (graphgrad.cuda, graphgrad.backends.cudnn). A name whose graphgrad
# module does not exist yet (nn.utils.rnn while it is being written) gets the "not yet" error,
# as does every torch module not listed here. Not torch.distributed (nor
# nn.parallel): scripts ask for the 'gloo' backend, which graphgrad.distributed takes from the
# real torch.
ALIASES = {
    "torch": "graphgrad",
    "torch.nn": "graphgrad.nn",
    "torch.nn.functional": "graphgrad.nn.functional",
    "torch.nn.init": "graphgrad.nn.init",
    "torch.nn.parameter": "graphgrad.nn.parameter",
    "torch.nn.utils": "graphgrad.nn.utils",
    "torch.nn.utils.rnn": "graphgrad.nn.utils.rnn",
    "torch.nn.modules": "graphgrad.nn.modules",
    **{f"torch.nn.modules.{name}": f"graphgrad.nn.modules.{name}" for name in (
        "activation", "container", "conv", "distance", "linear", "loss", "module",
        "normalization", "padding", "pixelshuffle", "pooling", "rnn", "transformer",
        "upsampling")},
    "torch.optim": "graphgrad.optim",
    "torch.optim.optimizer": "graphgrad.optim.optimizer",
    "torch.optim.lr_scheduler": "graphgrad.optim.lr_scheduler",
    "torch.utils": "graphgrad.utils",
    "torch.utils.data": "graphgrad.utils.data",
    **{f"torch.utils.data.{name}": f"graphgrad.data.{name}" for name in (
        "dataset", "dataloader", "sampler")},
    "torch.autograd": "graphgrad.autograd",
    "torch.autograd.function": "graphgrad.autograd.function",
    "torch.linalg": "graphgrad.linalg",
    "torch.onnx": "graphgrad.onnx",
    "torch.cuda": "graphgrad.cuda",
    "torch.version": "graphgrad.version",
    "torch.backends": "graphgrad.backends",
    **{f"torch.backends.{name}": f"graphgrad.backends.{name}" for name in (
        "cuda", "cudnn", "mkl", "mkldnn", "mps", "openmp")},
}

# torch.__version__: graphgrad's own version, marked as graphgrad's with a PEP 440 local label
# (as torch marks its builds, '2.13.0+cpu'), so that printing it or parsing it both work.
VERSION = f"{_graphgrad_version}+graphgrad"
_SEE = "run-torch answers torch imports with graphgrad; see README"

DESCRIPTION = ("Run a PyTorch script unchanged on graphgrad: as `python SCRIPT ARGS...`, with "
               "every `import torch...` answered by graphgrad's module of the same name "
               "(torch, torch.nn, torch.nn.functional, torch.nn.init, torch.nn.utils, "
               "torch.optim, torch.optim.lr_scheduler, torch.utils.data, torch.autograd, "
               "torch.linalg, torch.onnx, torch.cuda, torch.backends, torch.version and the "
               "submodules listed in graphgrad.torch_alias.ALIASES). A torch name graphgrad "
               "lacks raises an error saying so; the real torch is never imported. The script's "
               "exit code is python's: 0, 1 after an exception (its traceback printed), n for "
               "sys.exit(n); 2 when SCRIPT cannot be run.")


def _no_module(name: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(f"graphgrad's torch alias has no module {name} yet ({_SEE})",
                               name=name)


def _not_aliased(name: str) -> ImportError:
    """The error for importing ``name``, a torch.* not in ALIASES. For ``from torch import
    cdist`` (Python tries the module torch.cdist when the name is missing) it does not say
    "module": the name may be a function. A plain ImportError, for Python drops a
    ModuleNotFoundError of that attempt and would say only "cannot import name"."""
    if _in_from_import():
        return ImportError(str(_no_name(name)), name=name)
    return ImportError(str(_no_module(name)), name=name)


def _in_from_import() -> bool:
    """Whether the import under way is importlib's attempt at a ``from X import name``."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename == __file__
                                 or frame.f_code.co_filename.startswith("<frozen importlib")):
        if frame.f_code.co_name == "_handle_fromlist":
            return True
        frame = frame.f_back
    return False


class TorchModule(types.ModuleType):
    """The module ``torch...`` of the alias: its names are those of its graphgrad module, read
    when asked (so they are always graphgrad's current ones); a submodule in ALIASES is the
    alias module, so ``torch.nn`` is ``import torch.nn``'s module. Setting a name sets
    graphgrad's (``torch.backends.cudnn.benchmark = True``), as in torch, whose own code reads
    the value a script set."""

    def __init__(self, name: str, target) -> None:
        super().__init__(name, target.__doc__)
        self.__file__ = _source_file(target)  # the graphgrad source that answers
        self.__graphgrad__ = target
        if name in ("torch", "torch.version"):
            self.__version__ = VERSION

    def __getattr__(self, attr: str):
        target = self.__dict__["__graphgrad__"]
        if attr == "__all__":  # for `from torch.nn import *`: names that getattr answers
            names = getattr(target, "__all__", [n for n in dir(target) if n[:1] != "_"])
            return [n for n in names if f"{self.__name__}.{n}" in ALIASES
                    or not isinstance(getattr(target, n, None), types.ModuleType)]
        if attr.startswith("__"):  # __path__, __wrapped__...: the alias's own, never graphgrad's
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        submodule = f"{self.__name__}.{attr}"
        if submodule in ALIASES:
            try:
                return importlib.import_module(submodule)
            except ModuleNotFoundError:
                raise _no_name(submodule) from None
        value = getattr(target, attr, _MISSING)
        if value is _MISSING or isinstance(value, types.ModuleType):  # e.g. graphgrad.train
            raise _no_name(submodule)
        return value

    def __setattr__(self, attr: str, value) -> None:
        # the import system's own names (__spec__, a submodule's alias) stay the alias's
        if attr.startswith("__") or isinstance(value, TorchModule):
            super().__setattr__(attr, value)
        else:
            setattr(self.__dict__["__graphgrad__"], attr, value)

    def __delattr__(self, attr: str) -> None:
        if attr in self.__dict__:
            super().__delattr__(attr)
        else:
            delattr(self.__dict__["__graphgrad__"], attr)

    def __dir__(self):
        target = self.__dict__["__graphgrad__"]
        names = {n for n in dir(target)
                 if not isinstance(getattr(target, n, None), types.ModuleType)}
        names |= {last for parent, _, last in map(lambda n: n.rpartition("."), ALIASES)
                  if parent == self.__name__}
        return sorted(names | set(self.__dict__))

    def __repr__(self) -> str:
        return f"<module {self.__name__!r} (graphgrad's {ALIASES[self.__name__]})>"


_MISSING = object()


def _source_file(target) -> str | None:
    """The file of graphgrad's module ``target``, or of the module a namespace object is in."""
    if isinstance(target, types.ModuleType):
        return getattr(target, "__file__", None)
    owner = target if isinstance(target, type) else type(target)
    return getattr(sys.modules.get(owner.__module__), "__file__", None)


def graphgrad_target(name: str):
    """graphgrad's module named ``name``, or the namespace object its parent module has at that
    name (``graphgrad.cuda``); None when neither exists (yet)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name and not name.startswith(f"{exc.name}."):
            raise  # a module that graphgrad's imports is missing: its own error
        if exc.name != name:  # its parent is missing too
            return None
    parent, _, attr = name.rpartition(".")
    value = getattr(sys.modules[parent], attr, None)
    return None if isinstance(value, types.ModuleType) else value


def _no_name(name: str) -> AttributeError:
    return AttributeError(f"graphgrad does not have {name} yet ({_SEE})")


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):
        target = graphgrad_target(self.target)
        if target is None:
            raise _no_module(spec.name)
        return TorchModule(spec.name, target)

    def exec_module(self, module) -> None:
        """Nothing to run: the module reads graphgrad's."""


class TorchFinder(importlib.abc.MetaPathFinder):
    """First in ``sys.meta_path``: answers every ``torch`` and ``torch.*`` import."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != "torch" and not fullname.startswith("torch."):
            return None
        if fullname not in ALIASES:
            raise _not_aliased(fullname)
        # a package with no folder: submodules are found by this finder only
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(ALIASES[fullname]),
                                              is_package=True)


def install() -> None:
    """Answer ``import torch...`` with graphgrad from now on, in this process.

    Raises RuntimeError when the real torch is already imported: its modules and graphgrad's
    cannot both be ``torch``."""
    if any(isinstance(finder, TorchFinder) for finder in sys.meta_path):
        return
    real = sorted(name for name, module in sys.modules.items()
                  if (name == "torch" or name.startswith("torch."))
                  and not isinstance(module, TorchModule))
    if real:
        where = getattr(sys.modules[real[0]], "__file__", None) or "?"
        raise RuntimeError(f"the real PyTorch is already imported in this process ({real[0]} "
                           f"from {where}): graphgrad can answer `import torch` only in a "
                           "process that has not imported it; start the script with "
                           "graphgrad run-torch")
    sys.meta_path.insert(0, TorchFinder())


class ScriptError(Exception):
    """The script cannot be run (no such file): one line, exit code 2."""


def run_script(script: str, args: list[str]) -> int:
    """Run ``script`` as ``__main__`` with ``sys.argv = [script, *args]``, torch answered by
    graphgrad; return python's exit code for it (``sys.exit`` in the script passes through)."""
    if not os.path.exists(script):
        raise ScriptError(f"graphgrad run-torch: script {script} does not exist")
    if os.path.isdir(script):
        raise ScriptError(f"graphgrad run-torch: {script} is a folder, not a Python script")
    try:
        install()
    except RuntimeError as exc:
        raise ScriptError(f"graphgrad run-torch: {exc}") from None
    sys.argv = [script, *args]
    sys.path[0:1] = [os.path.dirname(os.path.abspath(script))]  # python script.py's, not ours
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - as python: the traceback, then exit code 1
        trimmed = _from_script(exc.__traceback__, script)
        sys.excepthook(type(exc), exc.with_traceback(trimmed), trimmed)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    return 0


def _from_script(tb, script: str):
    """The traceback from the script's first frame on, without runpy's and graphgrad's frames
    above it, as python's own starts at the script; None when the script never ran (a
    SyntaxError: python prints only where it is)."""
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    return tb


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", help="the PyTorch script, run as `python SCRIPT` would run it")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="its arguments (sys.argv[1:]), passed as they are")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphgrad.torch_alias",
                                     description=DESCRIPTION)
    add_arguments(parser)  # argparse's own errors exit with code 2
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run_script(args.script, args.script_args)
    except ScriptError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
