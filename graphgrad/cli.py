"""The ``graphgrad`` command.

    graphgrad explain                          the seed 003 example, both iterations, worked
    graphgrad explain EXPR --at x=2,w=3,b=1    any expression, forward, backward and update
    graphgrad graph EXPR --at x=1,y=2,z=3      value and every partial derivative; --svg, --dot
    graphgrad tour [--out DIR]                 the whole journey, written to DIR/index.html
    graphgrad fit TASK [--lr ... | --config run.toml]   train a task; verdict if it fails
    graphgrad lr-find TASK                     the learning-rate range test

Bad input (flags, expressions, values, files) gets one line naming the problem and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ._files import atomic_write
from ._version import __version__
from .graph import examples
from .graph.expr import ExprError
from .graph.from_text import graph_from_expression
from .graph.render import to_dot, to_svg
from .tasks import TASKS, TaskError, get_task

FORMATS = ("text", "markdown", "json")


class UsageError(Exception):
    """A problem with what the user typed: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphgrad", description="Neural-network optimisation on an explicit "
                     "computational graph.")
    parser.add_argument("--version", action="version", version=f"graphgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    explain = commands.add_parser(
        "explain", help="work a forward pass, backward pass and update as a table",
        description="Without EXPR: the seed 003 branch-and-merge example, two iterations "
                    "(x=2 then x=0). With EXPR: that expression, every variable a parameter.")
    explain.add_argument("expr", nargs="?", help="an expression such as 'x*w + b'")
    explain.add_argument("--at", type=_assignments, default={},
                         help="variable values, e.g. x=2,w=3,b=1")
    explain.add_argument("--lr", type=_positive_float, default=0.1,
                         help="learning rate of the update step (default 0.1)")
    explain.add_argument("--format", choices=FORMATS, default="text")
    explain.set_defaults(run=_explain)

    graph = commands.add_parser(
        "graph", help="evaluate an expression and all its partial derivatives",
        description="Print the value of EXPR and its partial derivative with respect to every "
                    "variable; optionally draw the graph.")
    graph.add_argument("expr", help="an expression such as 'tanh(log(1 + z*2*x/sin(y)))'")
    graph.add_argument("--at", type=_assignments, required=True,
                       help="variable values, e.g. x=1,y=2,z=3")
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
    fit.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                     help="write a checkpoint every N epochs (and on Ctrl-C)")
    fit.add_argument("--resume", action="store_true",
                     help="continue from the checkpoint in --out")
    fit.add_argument("--config", type=Path, help="a TOML file with any of the flags' keys")
    fit.set_defaults(run=_fit)

    finder = commands.add_parser("lr-find", help="the learning-rate range test for a task")
    finder.add_argument("task", help=f"{' | '.join(TASKS)} | FILE.py")
    finder.add_argument("--optimizer", choices=OPTIMIZERS)
    finder.add_argument("--start-lr", type=_positive_float, default=1e-7)
    finder.add_argument("--end-lr", type=_positive_float, default=10.0)
    finder.add_argument("--steps", type=_positive_int, default=100)
    finder.add_argument("--batch-size", type=_positive_int)
    finder.add_argument("--seed", type=int, default=0)
    finder.add_argument("--out", type=Path, help="folder for the plot (default runs/TASK)")
    finder.set_defaults(run=_lr_find)
    return parser


OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "cosine", "exponential", "onecycle", "plateau")
# The training settings a flag, a config file or a task's defaults can give, with their types.
SETTINGS = {"lr": float, "lr_decay": float, "min_lr": float, "max_grad": float,
            "max_grad_norm": float, "epochs": int, "batch_size": int, "optimizer": str,
            "scheduler": str, "seed": int, "momentum": float, "weight_decay": float}


def _add_training_flags(parser) -> None:
    parser.add_argument("--lr", type=_positive_float, help="learning rate")
    parser.add_argument("--lr-decay", type=_positive_float,
                        help="multiply the learning rate by this after each epoch (seed: LR_DECAY)")
    parser.add_argument("--min-lr", type=_non_negative_float,
                        help="floor of the decayed learning rate (seed: MIN_LR)")
    parser.add_argument("--max-grad", type=_positive_float,
                        help="clip every gradient element to +-this (seed: MAX_GRAD)")
    parser.add_argument("--max-grad-norm", type=_positive_float,
                        help="clip the global gradient norm to this")
    parser.add_argument("--epochs", type=_positive_int)
    parser.add_argument("--batch-size", type=_positive_int)
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--scheduler", choices=SCHEDULERS)
    parser.add_argument("--seed", type=int)


def _assignments(text: str) -> dict[str, float]:
    values = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {item!r}")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name.strip()}={value!r} is not a number") from None
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value:g}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def _explain(args) -> None:
    if args.expr is None:
        graph = examples.branch_and_merge()
        for step, x in enumerate((2.0, 0.0), start=1):
            explanation = graph.explain({"x": x, "y": 1.0}, lr=args.lr)
            _print_explanation(explanation, args.format,
                               f"Seed 003, iteration {step}: x = {x:g}, y = 1")
            explanation.apply_update()
        return
    graph = _expression_graph(args.expr, args.at)
    _print_explanation(graph.explain(lr=args.lr), args.format, args.expr)


def _print_explanation(explanation, fmt: str, title: str) -> None:
    if fmt == "json":
        print(explanation.to_json())
    elif fmt == "markdown":
        print(f"### {title}\n\n{explanation.to_markdown()}\n")
    else:
        print(f"== {title} ==\n{explanation.to_text()}\n")


def _graph(args) -> None:
    for path in (args.svg, args.dot):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"graphgrad: cannot write {path}: folder {path.parent} does not exist")
    graph = _expression_graph(args.expr, args.at)
    run = graph.run(backward=True)
    print(f"f = {args.expr}")
    print(f"f({', '.join(f'{k}={v:g}' for k, v in args.at.items())}) = {run.output.item():.10g}")
    for node in graph.parameters:
        print(f"  df/d{node.name} = {float(run.grad(node.id)):.10g}")
    values = {i: v.detach().numpy() for i, v in run.values.items()}
    picture = graph.to_dict()
    for path, draw in ((args.svg, to_svg), (args.dot, to_dot)):
        if path is not None:
            _write(path, draw(picture, values=values, grads=run.grads, title=args.expr))
            print(f"wrote {path}")


def _expression_graph(text: str, values: dict):
    try:
        return graph_from_expression(text, values)
    except ExprError as exc:  # its first line names the column and what was expected there
        first_line = str(exc).splitlines()[0]
        raise UsageError(f"graphgrad: bad expression {text!r}: {first_line}") from None
    except ValueError as exc:
        raise UsageError(f"graphgrad: {exc}") from None


def _write(path: Path, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as out:
        out.write(text)


def _tour(args) -> None:
    from .tour import Tour

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"graphgrad tour: --out {args.out} exists and is not a folder")
    print(f"graphgrad tour: writing to {args.out}")
    start = time.perf_counter()
    Tour(args.out, quick=args.quick).run()
    print(f"done in {time.perf_counter() - start:.1f} s: open {args.out / 'index.html'}")


def _settings(args, task) -> dict:
    """The task's defaults, overridden by the config file, overridden by the flags."""
    settings = {k: v for k, v in task.config.items()}
    if getattr(args, "config", None) is not None:
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
    if not path.is_file():
        raise UsageError(f"graphgrad: config file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"graphgrad: config file {path} is not valid TOML: {exc}") from None
    config = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in SETTINGS:
            raise UsageError(f"graphgrad: unknown key {key!r} in {path}; allowed: "
                             f"{', '.join(sorted(SETTINGS))}")
        kind = SETTINGS[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise UsageError(f"graphgrad: {key} in {path} must be a {kind.__name__}, got "
                             f"{value!r}")
        if name == "optimizer" and value not in OPTIMIZERS:
            raise UsageError(f"graphgrad: optimizer {value!r} in {path}; choose from "
                             f"{', '.join(OPTIMIZERS)}")
        if name == "scheduler" and value not in SCHEDULERS:
            raise UsageError(f"graphgrad: scheduler {value!r} in {path}; choose from "
                             f"{', '.join(SCHEDULERS)}")
        config[name] = value
    return config


def _load_task(name: str, seed: int):
    try:
        return get_task(name, seed=seed)
    except TaskError as exc:
        raise UsageError(f"graphgrad: {exc}") from None
    except ImportError as exc:  # an extra that the task needs (scikit-learn for digits)
        raise UsageError(f"graphgrad: {exc}") from None


def _fit(args) -> int:
    from . import train

    task = _load_task(args.task, args.seed or 0)
    settings = _settings(args, task)
    out = args.out or Path("runs") / task.name
    out.mkdir(parents=True, exist_ok=True)
    history = train.fit(task.model, task.loss_fn, task.train_data, val_data=task.val_data,
                        metric=task.metric, checkpoint_dir=out if args.checkpoint_every
                        or args.resume else None, checkpoint_every=args.checkpoint_every,
                        resume=args.resume or None, **settings)
    _save_run(history, task, out)
    print(history.summary())
    print(f"wrote history, plot and weights to {out}")
    return 1 if history.verdict is not None else 0


def _save_run(history, task, out: Path) -> None:
    from .graph import Graph
    from .io import save

    history.to_csv(out / "history.csv")
    history.to_json(out / "history.json")
    try:
        history.plot(out / "history.png")
    except ImportError as exc:  # matplotlib is an extra
        print(f"(no plot: {exc})")
    if isinstance(task.model, Graph):
        weights = {n.name: n.value.detach() for n in task.model.parameters}
    else:
        weights = task.model.state_dict()
    save(weights, out / "weights.safetensors")


def _lr_find(args) -> None:
    from . import train

    task = _load_task(args.task, args.seed)
    settings = dict(task.config)
    optimizer = args.optimizer or settings.get("optimizer", "sgd")
    batch_size = args.batch_size or settings.get("batch_size")
    result = train.lr_find(task.model, task.loss_fn, task.train_data, optimizer=optimizer,
                           start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps,
                           batch_size=batch_size, seed=args.seed)
    out = args.out or Path("runs") / task.name
    out.mkdir(parents=True, exist_ok=True)
    print(f"suggested learning rate for {task.name} with {optimizer}: {result.suggestion:.3g}")
    try:
        result.plot(out / "lr_find.png")
        print(f"wrote {out / 'lr_find.png'}")
    except ImportError as exc:
        print(f"(no plot: {exc})")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args) or 0
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. head, which stopped reading: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so Python's exit flush stays quiet
    return 0


if __name__ == "__main__":
    sys.exit(main())
