"""The ``graphgrad`` command.

    graphgrad explain                          the seed 003 example, both iterations, worked
    graphgrad explain EXPR --at x=2,w=3,b=1    any expression, forward, backward and update
    graphgrad graph EXPR --at x=1,y=2,z=3      value and every partial derivative; --svg, --dot
    graphgrad graph --torch model.py:Net --input-shape 8,64 --svg net.svg   a torch model's graph
    graphgrad tour [--out DIR]                 the whole journey, written to DIR/index.html
    graphgrad fit TASK [--lr ... | --config run.toml]   train a task; verdict if it fails
    graphgrad fit TASK --nproc N               the same, data-parallel on N processes
    graphgrad lr-find TASK                     the learning-rate range test
    graphgrad lab [--port 8765] [--open]       the interactive demos in the browser
    graphgrad sweep TASK [--space s.toml]      many trials in parallel; sweep-report DIR
    graphgrad run --nproc-per-node N train.py  a training script on N processes (torchrun)
    graphgrad run-torch train.py [ARGS...]     an unmodified PyTorch script, torch = graphgrad
    graphgrad doctor [--json] train.py [ARGS...]   run a training script, say what is wrong

Bad input (flags, expressions, values, files) gets one line naming the problem and exit code 2;
Ctrl-C gets a line or two on what was saved and how to go on, and exit code 130. A command is
registered in build_parser with add_parser(...) and set_defaults(run=function).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import inspect
import json
import math
import os
import re
import shlex
import sys
import time
import warnings
from pathlib import Path

from . import torch_alias
from ._args import positive_int, whole
from ._files import atomic_write
from ._version import __version__
from .distributed import run as run_command
from .graph import examples
from .graph.expr import ExprError
from .graph.from_text import graph_from_expression
from .graph.render import to_dot, to_svg
from .lab import command as lab_command
from .sweep import command as sweep_command
from .tasks import TASKS, TaskError, get_task

FORMATS = ("text", "markdown", "json")


class UsageError(Exception):
    """A problem with what the user typed: reported in one line, exit code 2."""


class Interrupted(Exception):
    """Ctrl-C: what was saved and how to go on, reported in a line or two, exit code 130."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: {message}{_suggest_choice(message, self)} "
                         f"(see {self.prog} --help)")


class _CommandParser(_Parser):
    """A command's parser names its own unknown arguments: argparse leaves them to the top
    parser, which knows neither the command nor its flags."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(_unrecognized(extra[0], self))
        return parsed, extra


def _did_you_mean(word: str, options) -> str | None:
    close = difflib.get_close_matches(word, list(options), n=1)
    return close[0] if close else None


def _suggest_choice(message: str, parser: argparse.ArgumentParser) -> str:
    """'; did you mean 'fit'?' for argparse's "invalid choice: 'fti'" (of a command or flag)."""
    match = re.search(r"invalid choice: '([^']*)'", message)
    if match is None:
        return ""
    choices = [c for action in parser._actions if action.choices for c in action.choices]
    guess = _did_you_mean(match.group(1), choices)
    return f"; did you mean {guess!r}?" if guess else ""


def _unrecognized(token: str, parser: argparse.ArgumentParser) -> str:
    if not token.startswith("-"):
        return f"unexpected argument {token!r}"
    flag = token.split("=", 1)[0]
    guess = _did_you_mean(flag, parser._option_string_actions)
    return f"unknown flag {flag}" + (f"; did you mean {guess}?" if guess else "")


def _check_top_level_flags(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Name an unknown flag before the command (argparse would only say a command is missing)."""
    for token in argv:
        if not token.startswith("-") or token == "--":
            return
        flags = parser._option_string_actions
        if token not in flags and not (token.startswith("--") and
                                       any(f.startswith(token) for f in flags)):
            guess = _did_you_mean(token, flags)
            hint = f"did you mean {guess}? " if guess else ""
            raise UsageError(f"graphgrad: unknown flag {token}; {hint}flags go after the "
                             f"command, e.g. graphgrad fit --help (see graphgrad --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphgrad", description="Neural-network optimisation on an explicit "
                     "computational graph.")
    parser.add_argument("--version", action="version", version=f"graphgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND",
                                     parser_class=_CommandParser)
    commands.required = True

    explain = commands.add_parser(
        "explain", help="work a forward pass, backward pass and update as a table",
        description="Without EXPR: the seed 003 branch-and-merge example, two iterations "
                    "(x=2 then x=0). With EXPR: that expression; every variable is a parameter "
                    "that the update step changes, except those named in --inputs.")
    explain.add_argument("expr", nargs="?", help="an expression such as 'x*w + b'")
    explain.add_argument("--at", type=_assignments, default={},
                         help="variable values, e.g. x=2,w=3,b=1")
    explain.add_argument("--inputs", type=_names, default=[], metavar="NAMES",
                         help="variables held fixed as inputs, not updated, e.g. x or x,y")
    explain.add_argument("--lr", type=_positive_float, default=0.1,
                         help="learning rate of the update step (default 0.1)")
    explain.add_argument("--format", choices=FORMATS, default="text")
    explain.set_defaults(run=_explain)

    graph = commands.add_parser(
        "graph", help="evaluate an expression and all its partial derivatives, or read a "
                      "PyTorch model into a graph",
        description="Print the value of EXPR and its partial derivative with respect to every "
                    "variable; optionally draw the graph. With --torch FILE.py:CLASS instead: "
                    "build CLASS() from the file (running its code), put it in eval mode, read "
                    "its forward through torch.fx on random float32 inputs of the --input-shape "
                    "shapes into a graphgrad Graph, print what the graph holds and draw it.")
    graph.add_argument("expr", nargs="?", help="an expression such as "
                       "'tanh(log(1 + z*2*x/sin(y)))'")
    graph.add_argument("--at", type=_assignments,
                       help="variable values, e.g. x=1,y=2,z=3 (needed with EXPR)")
    graph.add_argument("--torch", type=_torch_model, metavar="FILE.py:CLASS",
                       help="a torch.nn.Module class in a Python file, built with no arguments")
    graph.add_argument("--input-shape", type=_shape, action="append", default=[],
                       metavar="SHAPE", help="the shape of a forward argument, e.g. 8,64; "
                       "once per argument, in order (with --torch)")
    graph.add_argument("--svg", type=Path, help="write the graph as SVG to this file")
    graph.add_argument("--dot", type=Path, help="write the graph as Graphviz DOT to this file")
    graph.set_defaults(run=_graph)

    tour = commands.add_parser("tour", help="run the whole journey and write it to a folder",
                               description="Explain, draw, fit and train the seeds' examples; "
                               "write every picture and table to --out with an index.html.")
    tour.add_argument("--out", type=Path, default=Path("graphgrad-tour"),
                      help="folder to write (default ./graphgrad-tour)")
    tour.add_argument("--quick", action="store_true", help="fewer epochs and smaller graphs")
    tour.set_defaults(run=_tour)

    fit = commands.add_parser("fit", help="train a task with the seed's knobs and report why "
                              "it failed, if it did", description=f"TASK is one of "
                              f"{', '.join(TASKS)} or a Python file defining model, loss_fn, "
                              "train_data (and optionally val_data, metric, config).")
    fit.add_argument("task", help=f"{' | '.join(TASKS)} | FILE.py")
    _add_training_flags(fit)
    fit.add_argument("--out", type=Path, help="folder for history, plots and weights "
                     "(default runs/TASK)")
    fit.add_argument("--checkpoint-every", type=positive_int, metavar="N",
                     help="write a checkpoint every N epochs (and on Ctrl-C)")
    fit.add_argument("--resume", action="store_true",
                     help="continue from the checkpoint in --out")
    fit.add_argument("--config", type=Path, help="a TOML file with any of the flags' keys, "
                     "e.g. lr = 0.01 (flags override it)")
    fit.add_argument("--compile", action="store_true",
                     help="replay each step's forward and backward from a record "
                     "(graphgrad.compile): the same numbers, less Python per step")
    fit.add_argument("--nproc", type=positive_int, default=1, metavar="N",
                     help="train data-parallel on N processes (DistributedDataParallel, shm "
                     "backend); --batch-size is the global batch, split evenly")
    fit.set_defaults(run=_fit)

    finder = commands.add_parser("lr-find", help="the learning-rate range test for a task")
    finder.add_argument("task", help=f"{' | '.join(TASKS)} | FILE.py")
    finder.add_argument("--optimizer", type=_choice(OPTIMIZERS), metavar="|".join(OPTIMIZERS))
    finder.add_argument("--start-lr", type=_positive_float, default=1e-7)
    finder.add_argument("--end-lr", type=_positive_float, default=10.0)
    finder.add_argument("--steps", type=positive_int, default=100)
    finder.add_argument("--batch-size", type=positive_int)
    finder.add_argument("--seed", type=int, default=0)
    finder.add_argument("--out", type=Path, help="folder for the plot (default runs/TASK)")
    finder.set_defaults(run=_lr_find)
    lab_command.add_parser(commands)  # its flags and its run live in graphgrad/lab/command.py
    sweep_command.add_commands(commands)  # sweep and sweep-report: graphgrad/sweep/command.py
    run_command.add_parser(commands)  # the launcher: graphgrad/distributed/run.py
    run_torch = commands.add_parser(
        "run-torch", help="run an unmodified PyTorch script with graphgrad as torch",
        description=torch_alias.DESCRIPTION)
    torch_alias.add_arguments(run_torch)  # its aliases and its running: graphgrad/torch_alias.py
    run_torch.set_defaults(run=_run_torch, runs_a_script=True)
    doctor = commands.add_parser(
        "doctor", help="run a training script and say what is wrong with its training",
        description="Run SCRIPT as run-torch does (torch answered by graphgrad), watching "
                    "every optimizer it builds and every top-level module it calls, then print "
                    "one `graphgrad doctor: ...` line per problem seen: the evidence and the "
                    "remedy. A non-finite loss ends the run there. Exit code: the script's, "
                    "1 when the run had to stop, 2 when SCRIPT cannot be run.")
    doctor.add_argument("--json", action="store_true",
                        help="also print the diagnoses as a JSON list of {kind, message} on "
                             "the last line (give it before SCRIPT)")
    torch_alias.add_arguments(doctor)
    doctor.set_defaults(run=_doctor, runs_a_script=True)
    return parser


def _add_training_flags(parser) -> None:
    parser.add_argument("--lr", type=SETTINGS["lr"], help="learning rate")
    parser.add_argument("--lr-decay", type=SETTINGS["lr_decay"],
                        help="multiply the learning rate by this after each epoch (seed: LR_DECAY)")
    parser.add_argument("--min-lr", type=SETTINGS["min_lr"],
                        help="floor of the decayed learning rate (seed: MIN_LR)")
    parser.add_argument("--max-grad", type=SETTINGS["max_grad"],
                        help="clip every gradient element to +-this (seed: MAX_GRAD)")
    parser.add_argument("--max-grad-norm", type=SETTINGS["max_grad_norm"],
                        help="clip the global gradient norm to this")
    parser.add_argument("--epochs", type=SETTINGS["epochs"])
    parser.add_argument("--batch-size", type=SETTINGS["batch_size"])
    parser.add_argument("--optimizer", type=SETTINGS["optimizer"], metavar="|".join(OPTIMIZERS))
    parser.add_argument("--scheduler", type=SETTINGS["scheduler"], metavar="|".join(SCHEDULERS))
    parser.add_argument("--seed", type=SETTINGS["seed"])


# ---------------------------------------------------------------------------------- values
# One validator per kind of value, for a flag's text and a config file's value alike; each
# returns the value or raises ArgumentTypeError saying what is allowed.


def _number(value) -> float:
    if isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


def _positive_float(value) -> float:
    number = _number(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {number:g}")
    return number


def _non_negative_float(value) -> float:
    number = _number(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number:g}")
    return number


def _decay(value) -> float:
    number = _number(value)
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {number:g}")
    return number


def _choice(options: tuple):
    def check(value) -> str:
        if value not in options:
            guess = _did_you_mean(value, options) if isinstance(value, str) else None
            hint = f"did you mean {guess!r}? " if guess else ""
            raise argparse.ArgumentTypeError(f"invalid choice {value!r}; {hint}choose from "
                                             f"{', '.join(map(repr, options))}")
        return value

    return check


def _assignments(text: str) -> dict[str, float]:
    values = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {item!r}")
        try:
            values[name.strip()] = _number(value)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{name.strip()}: {exc}") from None
    return values


def _shape(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"expected a shape of positive whole numbers such as "
                                         f"8,64, got {text!r}")
    return tuple(int(part) for part in parts)


def _torch_model(text: str) -> tuple[Path, str]:
    path, sep, name = text.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected FILE.py:CLASS such as model.py:Net, got "
                                         f"{text!r}")
    return Path(path), name


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    bad = [name for name in names if not name.isidentifier()]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected variable names such as x or x,y, got {text!r}")
    return names


OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "cosine", "exponential", "onecycle", "plateau")
# The training settings a flag, a config file or a task's defaults can give: name -> validator.
SETTINGS = {"lr": _positive_float, "lr_decay": _decay, "min_lr": _non_negative_float,
            "max_grad": _positive_float, "max_grad_norm": _positive_float,
            "epochs": positive_int, "batch_size": positive_int,
            "optimizer": _choice(OPTIMIZERS), "scheduler": _choice(SCHEDULERS), "seed": whole,
            "momentum": _non_negative_float, "weight_decay": _non_negative_float}
NULLABLE = ("batch_size", "scheduler", "max_grad", "max_grad_norm")  # None: full batch, none...


def _checked(config: dict, source: str, nullable: tuple = ()) -> dict:
    """``config``'s settings through the flags' own validators; errors name source and key."""
    checked = {}
    for key, value in config.items():
        name = key.replace("-", "_") if isinstance(key, str) else key
        if name not in SETTINGS:
            guess = _did_you_mean(str(name), SETTINGS)
            hint = f"did you mean {guess!r}? " if guess else ""
            raise UsageError(f"graphgrad: unknown key {key!r} in {source}; {hint}allowed: "
                             f"{', '.join(sorted(SETTINGS))}")
        if value is None and name in nullable:
            checked[name] = None
            continue
        try:
            checked[name] = SETTINGS[name](value)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"graphgrad: {key} in {source}: {exc}") from None
    return checked


def _explain(args) -> None:
    if args.expr is None:
        if args.inputs:
            raise UsageError("graphgrad explain: --inputs needs an EXPR, e.g. graphgrad explain "
                             "'x*w + b' --at x=2,w=3,b=1 --inputs x")
        graph = examples.branch_and_merge()
        for step, x in enumerate((2.0, 0.0), start=1):
            explanation = graph.explain({"x": x, "y": 1.0}, lr=args.lr)
            _print_explanation(explanation, args.format,
                               f"Seed 003, iteration {step}: x = {x:g}, y = 1")
            explanation.apply_update()
        return
    graph = _expression_graph(args.expr, args.at, args.inputs)
    missing = [name for name in args.inputs if name not in args.at]
    if missing:
        raise UsageError(f"graphgrad explain: no value for input {missing[0]!r}: give it with "
                         f"--at {missing[0]}=...")
    with _numpy_warnings() as trouble:
        explanation = graph.explain({name: args.at[name] for name in args.inputs}, lr=args.lr)
    _print_explanation(explanation, args.format, args.expr,
                       _roles(args.inputs, [node.name for node in graph.parameters]))
    if trouble:
        print(f"note: NumPy met {' and '.join(trouble)} working {args.expr} at {_at(args.at)}: "
              "some values are inf or nan", file=sys.stderr if args.format == "json" else None)


def _roles(inputs: list, parameters: list) -> str:
    """Which variables the update step changes, said before the table."""
    if inputs:
        return (f"inputs (held fixed): {', '.join(inputs)}; parameters (updated by the step): "
                f"{', '.join(parameters) or 'none'}")
    if not parameters:
        return ""
    return (f"every variable is a parameter, so the update step changes {', '.join(parameters)}; "
            f"hold some fixed with --inputs, e.g. --inputs {parameters[0]}")


def _print_explanation(explanation, fmt: str, title: str, roles: str = "") -> None:
    if fmt == "json":  # the update rows say which variables are parameters
        print(explanation.to_json())
    elif fmt == "markdown":
        print(f"### {title}\n\n" + (f"{roles}\n\n" if roles else "")
              + f"{explanation.to_markdown()}\n")
    else:
        print(f"== {title} ==\n" + (f"{roles}\n" if roles else "") + f"{explanation.to_text()}\n")


def _at(values: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in values.items())


def _graph(args) -> None:
    for flag, path in (("--svg", args.svg), ("--dot", args.dot)):
        if path is not None and not path.parent.is_dir():
            problem = "is not a folder" if path.parent.exists() else "does not exist"
            raise UsageError(f"graphgrad graph: cannot write {flag} {path}: folder "
                             f"{path.parent} {problem}")
    if args.torch is not None:
        return _torch_graph(args)
    if args.expr is None:
        raise UsageError("graphgrad graph: give an EXPR with --at, e.g. graphgrad graph 'x*y' "
                         "--at x=1,y=2, or a model with --torch FILE.py:CLASS --input-shape 8,64")
    if args.input_shape:
        raise UsageError("graphgrad graph: --input-shape goes with --torch FILE.py:CLASS")
    if args.at is None:
        raise UsageError(f"graphgrad graph: {args.expr!r} needs its variables' values: --at "
                         "x=1,y=2,...")
    graph = _expression_graph(args.expr, args.at)
    with _numpy_warnings() as trouble:
        run = graph.run(backward=True)
    value = run.output.item()
    grads = {node.name: float(run.grad(node.id)) for node in graph.parameters}
    print(f"f = {args.expr}")
    print(f"f({_at(args.at)}) = {value:.10g}")
    for name, grad in grads.items():
        print(f"  df/d{name} = {grad:.10g}")
    if trouble:
        bad = [f"f = {value:g}"] if not math.isfinite(value) else []
        bad += [f"df/d{name} = {grad:g}" for name, grad in grads.items() if not math.isfinite(grad)]
        what = ", ".join(bad) or "finite results, but some intermediate values were not finite"
        print(f"note: {args.expr} at {_at(args.at)} gives {what} ({' and '.join(trouble)})")
    values = {i: v.detach().numpy() for i, v in run.values.items()}
    picture = graph.to_dict()
    for path, draw in ((args.svg, to_svg), (args.dot, to_dot)):
        if path is not None:
            _write(path, draw(picture, values=values, grads=run.grads, title=args.expr))
            print(f"wrote {path}")


def _torch_graph(args) -> None:
    """``graphgrad graph --torch FILE.py:CLASS``: the model read into a Graph, then drawn."""
    import numpy as np

    from .graph import GraphError
    from .interop.from_fx import graph_from_torch

    path, name = args.torch
    where = f"graphgrad graph: --torch {path}:{name}"
    if args.expr is not None or args.at is not None:
        raise UsageError(f"{where}: give either EXPR and --at or --torch, not both")
    if not args.input_shape:
        raise UsageError(f"{where} needs the shape of each forward argument: --input-shape 8,64")
    model = _torch_model_instance(path, name, where)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape).astype(np.float32) for shape in args.input_shape]
    try:
        graph = graph_from_torch(model.eval(), *inputs)
    except GraphError as exc:
        raise UsageError(f"{where}: {exc}") from None
    run = graph.run(inputs)
    numbers = sum(n.value.numel() for n in graph.parameters)
    print(f"{path}:{name} read through torch.fx into a graph of {len(graph.nodes)} nodes")
    print("inputs: " + ", ".join(f"{n.name} {tuple(n.shape)}" for n in graph.inputs))
    print(f"parameters: {len(graph.parameters)} tensors, {numbers:,} numbers")
    print(f"operations: {len(graph.operations)} "
          f"({', '.join(sorted({n.op for n in graph.operations}))})")
    print("outputs: " + ", ".join(str(tuple(t.shape)) for t in run.outputs))
    values = {i: v.detach().numpy() for i, v in run.values.items()}
    picture = graph.to_dict(values=False)
    for out, draw in ((args.svg, to_svg), (args.dot, to_dot)):
        if out is not None:
            _write(out, draw(picture, values=values, title=f"{path.name}:{name}"))
            print(f"wrote {out}")


def _torch_model_instance(path: Path, name: str, where: str):
    """``name()`` from the Python file ``path``, which runs as the user asked; never a pickle."""
    import importlib.util

    try:
        import torch
    except ImportError:
        raise UsageError(f"{where} needs PyTorch: pip install torch") from None
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise UsageError(f"{where}: {path} {problem}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{where}: {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # as `python FILE.py` would, for its imports
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: say where it failed, in one line
        raise UsageError(f"{where}: running {path} raised {type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(ValueError):  # unless the file took it out itself
            sys.path.remove(str(path.resolve().parent))
    found = getattr(module, name, None)
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        classes = sorted(k for k, v in vars(module).items() if isinstance(v, type)
                         and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__)
        what = "no" if found is None else f"a {type(found).__name__} named {name!r} but no"
        raise UsageError(f"{where}: {path} has {what} torch.nn.Module class {name!r}; its "
                         f"Module classes: {', '.join(classes) or 'none'}")
    try:
        return found()
    except Exception as exc:
        raise UsageError(f"{where}: {name}() raised {type(exc).__name__}: {exc} (--torch builds "
                         "the model with no arguments)") from None


def _expression_graph(text: str, values: dict, inputs: list = ()):
    try:
        return graph_from_expression(text, values, inputs=inputs)
    except ExprError as exc:  # its first line names the column and what was expected there
        first_line = str(exc).splitlines()[0]
        raise UsageError(f"graphgrad: bad expression {text!r}: {first_line}") from None
    except ValueError as exc:
        raise UsageError(f"graphgrad: {exc}") from None


@contextlib.contextmanager
def _numpy_warnings():
    """Collect NumPy's floating-point warnings ('divide by zero', 'overflow', 'invalid value')
    into the list it yields, for the command to say in its own words what happened, instead of
    Python printing each with a line of graphgrad's source. Other warnings show as usual."""
    trouble: list[str] = []
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            yield trouble
    finally:
        for warning in caught:
            text = str(warning.message)
            if issubclass(warning.category, RuntimeWarning) and " encountered in " in text:
                kind = text.split(" encountered in ")[0]
                trouble.extend([kind] if kind not in trouble else [])
            else:
                warnings.showwarning(warning.message, warning.category, warning.filename,
                                     warning.lineno)


def _write(path: Path, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as out:
        out.write(text)


def _folder(path: Path, where: str) -> Path:
    """``path`` as a folder that exists (made with its parents if need be) and can be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{where} {path}: exists and is not a folder") from None
    except OSError as exc:
        raise UsageError(f"{where} {path}: cannot make this folder: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"{where} {path}: cannot write to this folder: permission denied")
    return path


def _tour(args) -> None:
    from .tour import Tour

    _folder(args.out, "graphgrad tour: --out")
    print(f"graphgrad tour: writing to {args.out}")
    start = time.perf_counter()
    Tour(args.out, quick=args.quick).run()
    print(f"done in {time.perf_counter() - start:.1f} s: open {args.out / 'index.html'}")


def _settings(args, task) -> dict:
    """The task's defaults, overridden by the config file, overridden by the flags; all of them
    checked by the flags' validators."""
    settings = _checked(task.config, f"the config of {args.task}", NULLABLE)
    if args.config is not None:
        settings.update(_read_config(args.config))
    settings.update({k: v for k, v in vars(args).items() if k in SETTINGS and v is not None})
    if settings.get("scheduler") == "none":
        settings["scheduler"] = None
    return settings


def _read_config(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise UsageError("graphgrad: --config needs Python 3.11+ or 'pip install tomli'") \
                from None
    if not path.exists():
        raise UsageError(f"graphgrad: config file {path} does not exist")
    if path.is_dir():
        raise UsageError(f"graphgrad: config file {path} is a folder, not a TOML file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"graphgrad: cannot read config file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"graphgrad: config file {path} is not valid TOML: {exc}") from None
    return _checked(raw, str(path))


def _load_task(name: str, seed: int, command: str):
    try:
        return get_task(name, seed=seed)
    except TaskError as exc:
        raise UsageError(f"graphgrad {command}: {exc} (see graphgrad {command} --help)") from None
    except ImportError as exc:  # an extra that the task needs (scikit-learn for digits)
        raise UsageError(f"graphgrad {command}: {exc}") from None


def _fit(args) -> int:
    from . import train
    from .train.checkpoint import checkpoint_path

    task = _load_task(args.task, args.seed or 0, "fit")
    settings = _settings(args, task)
    out = args.out or Path("runs") / task.name
    if args.nproc > 1:
        _check_parallel(args, task, settings)
    if args.resume and not os.path.isfile(checkpoint_path(out)):
        raise UsageError(f"graphgrad fit: --resume: there is no checkpoint "
                         f"{checkpoint_path(out)}; a run with --checkpoint-every N writes one "
                         "every N epochs and on Ctrl-C")
    parallel = args.nproc > 1 and os.environ.get(_RANK_OF_FIT) == "1"
    rank = int(os.environ["RANK"]) if parallel else 0
    if rank == 0:
        _folder(out, "graphgrad fit: --out")
    if args.nproc > 1 and not parallel:  # the launcher: start the ranks, which do the rest
        return run_command.spawn(args.argv, args.nproc, {_RANK_OF_FIT: "1"})
    model, data, quiet = task.model, task.train_data, {}
    if parallel:
        model, data = _data_parallel(task, settings, args.nproc)
        quiet = {} if rank == 0 else {"progress": False}
    try:
        history = train.fit(model, task.loss_fn, data, val_data=task.val_data,
                            metric=task.metric, checkpoint_dir=out if args.checkpoint_every
                            or args.resume else None, checkpoint_every=args.checkpoint_every,
                            resume=args.resume or None, compile=args.compile, **quiet,
                            **settings)
    except KeyboardInterrupt as stop:  # train.TrainingInterrupted, or a plain Ctrl-C
        raise Interrupted(_resume_advice(stop, args.argv)) from None
    except ValueError as exc:  # fit's checks of the task's model and data (a task file's)
        raise UsageError(f"graphgrad fit {args.task}: {exc}") from None
    finally:
        if parallel:
            _leave_group()
    if rank != 0:  # rank 0 prints and writes for every rank: they hold the same weights
        return 1 if history.verdict is not None else 0
    weights = _weights(task.model)
    if history.verdict is None and sum(w.numel() for w in weights.values()) <= SMALL_MODEL:
        print("fitted parameters: " + ", ".join(f"{name} = {_values(w)}"
                                                  for name, w in weights.items()))
    _save_run(history, weights, out)
    return 1 if history.verdict is not None else 0


SMALL_MODEL = 10  # a model with at most this many numbers has them printed after a fit
_RANK_OF_FIT = "GRAPHGRAD_FIT_RANK"  # set in the processes of graphgrad fit --nproc N


def _check_parallel(args, task, settings: dict) -> None:
    """What ``--nproc N`` needs: a Module trained on a data set it can split evenly."""
    from . import nn
    from .data import DataLoader

    where = f"graphgrad fit {args.task}: --nproc {args.nproc}"
    if args.resume or args.checkpoint_every:
        raise UsageError(f"{where} does not support --resume or --checkpoint-every; train on "
                         "one process to checkpoint")
    if not isinstance(task.model, nn.Module):
        raise UsageError(f"{where} needs an nn.Module model; this task's is a "
                         f"{type(task.model).__name__}")
    if isinstance(task.train_data, DataLoader):
        raise UsageError(f"{where} splits the train_data itself: give a Dataset or "
                         "(features, targets), not a DataLoader")
    batch = _global_batch(settings)
    if batch is not None and batch % args.nproc:
        raise UsageError(f"{where}: the batch size {batch} is the global batch and must be a "
                         f"multiple of {args.nproc}")


def _data_parallel(task, settings: dict, nproc: int) -> tuple:
    """In a rank: the task's model in DistributedDataParallel and a DataLoader of this rank's
    share of each global batch (a DistributedSampler, reshuffled by fit every epoch)."""
    from . import distributed as dist
    from .creation import as_tensor
    from .data import DataLoader, DistributedSampler, TensorDataset
    from .nn.parallel import DistributedDataParallel

    dist.init_process_group("shm")  # RANK, WORLD_SIZE, MASTER_* from the launcher
    data = task.train_data
    if isinstance(data, (tuple, list)):
        data = TensorDataset(*(as_tensor(d) for d in data))
    sampler = DistributedSampler(data, shuffle=True, seed=settings.get("seed", 0))
    batch = _global_batch(settings)
    loader = DataLoader(data, batch_size=len(sampler) if batch is None else batch // nproc,
                        sampler=sampler)
    return DistributedDataParallel(task.model), loader


def _global_batch(settings: dict):
    from . import train

    return settings.get("batch_size", inspect.signature(train.fit).parameters["batch_size"]
                        .default)


def _leave_group() -> None:
    from . import distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _values(tensor) -> str:
    numbers = [f"{v:.5g}" for v in tensor.detach().numpy().reshape(-1).tolist()]
    return numbers[0] if tensor.numel() == 1 else f"[{', '.join(numbers)}]"


def _resume_advice(stop: KeyboardInterrupt, argv: list) -> str:
    """What Ctrl-C saved and the command that goes on from there. train.TrainingInterrupted
    carries ``checkpoint`` (None when nothing was saved), ``epoch`` and ``step``."""
    checkpoint, epoch = getattr(stop, "checkpoint", None), getattr(stop, "epoch", None)
    done = "" if epoch is None else (f" after {epoch} epoch{'s' if epoch != 1 else ''} "
                                     f"(step {getattr(stop, 'step', '?')})")
    if checkpoint is None:
        return (f"graphgrad fit: interrupted{done}; nothing was saved: use --checkpoint-every N "
                "to be able to resume")
    again = shlex.join(["graphgrad", *argv, *([] if "--resume" in argv else ["--resume"])])
    return (f"graphgrad fit: interrupted{done}; checkpoint in {checkpoint}\n"
            f"continue with: {again}")


def _weights(model) -> dict:
    from .graph import Graph

    if isinstance(model, Graph):
        return {n.name: n.value.detach() for n in model.parameters}
    return model.state_dict()


def _save_run(history, weights: dict, out: Path) -> None:
    """Write the history, its plot (with matplotlib) and the weights; say what was written."""
    from .io import save

    history.to_csv(out / "history.csv")
    history.to_json(out / "history.json")
    written = ["history.csv", "history.json"]
    try:
        history.plot(out / "history.png")
        written.append("history.png")
    except ImportError as exc:  # matplotlib is an extra
        print(f"no plot: {exc}")
    save(weights, out / "weights.safetensors")
    written.append("weights.safetensors")
    print(f"wrote {', '.join(written)} to {out}")


def _lr_find(args) -> None:
    from . import train

    task = _load_task(args.task, args.seed, "lr-find")
    settings = dict(task.config)
    optimizer = args.optimizer or settings.get("optimizer", "sgd")
    batch_size = args.batch_size or settings.get("batch_size")
    out = _folder(args.out or Path("runs") / task.name, "graphgrad lr-find: --out")
    try:
        result = train.lr_find(task.model, task.loss_fn, task.train_data, optimizer=optimizer,
                               start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps,
                               batch_size=batch_size, seed=args.seed)
    except ValueError as exc:
        raise UsageError(f"graphgrad lr-find {args.task}: {exc}") from None
    print(f"suggested learning rate for {task.name} with {optimizer}: {result.suggestion:.3g}")
    try:
        result.plot(out / "lr_find.png")
        print(f"wrote {out / 'lr_find.png'}")
    except ImportError as exc:
        print(f"no plot: {exc}")


def _run_torch(args) -> int:
    try:
        return torch_alias.run_script(args.script, args.script_args)
    except torch_alias.ScriptError as exc:
        raise UsageError(str(exc)) from None


def _doctor(args) -> int:
    from .train.watch import TrainingStopped, watch_everything

    if not os.path.isfile(args.script):
        what = "is a folder, not a Python script" if os.path.isdir(args.script) else \
            "does not exist"
        raise UsageError(f"graphgrad doctor: script {args.script} {what}")
    excepthook = sys.excepthook

    def quiet_when_stopped(kind, exc, tb):  # a stopped run is reported as its diagnosis
        if not isinstance(exc, TrainingStopped):
            excepthook(kind, exc, tb)

    watch = watch_everything()
    sys.excepthook = quiet_when_stopped
    try:
        code = torch_alias.run_script(args.script, args.script_args)
    except SystemExit as exc:  # the script's sys.exit(n)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except torch_alias.ScriptError as exc:
        raise UsageError(str(exc).replace("run-torch", "doctor")) from None
    finally:
        sys.excepthook = excepthook
        watch.close()
    diagnoses = watch.diagnoses
    for diagnosis in diagnoses:
        print(f"graphgrad doctor: {diagnosis.message}")
    if not diagnoses:
        print(f"graphgrad doctor: nothing wrong seen in {watch.steps} optimizer steps")
    if args.json:
        print(json.dumps([{"kind": d.kind, "message": d.message} for d in diagnoses]))
    return 1 if watch.stopped is not None else code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        _check_top_level_flags(parser, argv)
        args = parser.parse_args(argv)
        args.argv = argv  # for the command that resumes an interrupted run
        if getattr(args, "runs_a_script", False):  # its warnings, errors, exit code: python's
            return args.run(args)
        with _numpy_warnings() as trouble:
            code = args.run(args) or 0
        if trouble:
            print(f"note: NumPy met {' and '.join(trouble)} along the way: some values were inf "
                  "or nan")
        return code
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(exc, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("graphgrad: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. head, which stopped reading: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so Python's exit flush stays quiet
    except OSError as exc:  # a file or folder that could not be read or written, met part way
        where = f" {exc.filename}" if exc.filename else ""
        print(f"graphgrad: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
