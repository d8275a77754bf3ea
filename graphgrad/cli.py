"""The ``graphgrad`` command.

    graphgrad explain                          the seed 003 example, both iterations, worked
    graphgrad explain EXPR --at x=2,w=3,b=1    any expression, forward, backward and update
    graphgrad graph EXPR --at x=1,y=2,z=3      value and every partial derivative; --svg, --dot

Bad input (flags, expressions, values, files) gets one line naming the problem and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._version import __version__
from .graph import examples
from .graph.expr import ExprError
from .graph.from_text import graph_from_expression
from .graph.render import to_dot, to_svg

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
    return parser


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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
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
    """Write atomically: a complete file or none, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.run(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. head, which stopped reading: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so Python's exit flush stays quiet
    return 0


if __name__ == "__main__":
    sys.exit(main())
