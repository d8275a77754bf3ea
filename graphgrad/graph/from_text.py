"""A Graph from a typed expression: ``tanh(log(1 + z*2*x/sin(y)))`` becomes nodes, with each
variable a parameter (so every partial derivative is computed) or an input."""

from __future__ import annotations

from collections.abc import Collection

from .core import Graph, Ref
from .expr import BinOp, Call, Neg, Num, Var, parse, variables

_BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
_CALLS = {"max": "maximum", "min": "minimum"}


def graph_from_expression(text: str, values: dict | None = None, *,
                          as_parameters: bool = True, inputs: Collection[str] = (),
                          dtype: str = "float64") -> Graph:
    """Parse ``text`` and build its graph; ``values`` gives each variable's value (required for
    parameters). Every variable is a parameter, except those named in ``inputs`` (all of them
    when ``as_parameters`` is False), which are inputs given at each run and never updated.
    The expression is the graph's only output, named ``f``.

    >>> g = graph_from_expression("x*w + b", {"x": 2, "w": 3, "b": 1})
    >>> run = g.run(backward=True)
    >>> run.output.item(), [float(run.grad(v)) for v in "xwb"]
    (7.0, [3.0, 2.0, 1.0])
    >>> [node.name for node in graph_from_expression("x*w + b", {"w": 3, "b": 1},
    ...                                             inputs=["x"]).parameters]
    ['w', 'b']
    """
    tree = parse(text)
    values = values or {}
    names = variables(tree)
    unknown = [name for name in inputs if name not in names]
    if unknown:
        raise ValueError(f"inputs {', '.join(map(repr, unknown))} not in {text!r}; its "
                         f"variables are {', '.join(names)}")
    g = Graph()
    refs: dict[str, Ref] = {}  # variable name -> its node
    built: dict[int, Ref] = {}  # id(tree node) -> ref
    for node in _children_first(tree):
        if isinstance(node, Var):
            if node.name not in refs:
                parameter = as_parameters and node.name not in inputs
                refs[node.name] = _variable(g, node.name, values, parameter, dtype)
            ref = refs[node.name]
        elif isinstance(node, Num):
            ref = g.constant(node.value, name=f"{node.value:g}", dtype=dtype)
        elif isinstance(node, Neg):
            ref = g.neg(built[id(node.operand)])
        elif isinstance(node, BinOp):
            left, right = built[id(node.left)], built[id(node.right)]
            if node.op == "^":  # a number exponent is a parameter of pow, not a node
                exponent = node.right.value if isinstance(node.right, Num) else right
                ref = g.pow(left, exponent)
            else:
                ref = g.op(_BINARY[node.op], left, right)
        else:
            args = [built[id(a)] for a in node.args]
            if node.func == "pow":
                ref = g.pow(*args)
            else:
                ref = g.op(_CALLS.get(node.func, node.func), *args)
        built[id(node)] = ref
    g.output(built[id(tree)], name="f" if not isinstance(tree, Var) else "")
    return g


def _variable(g: Graph, name: str, values: dict, as_parameters: bool, dtype: str) -> Ref:
    if not as_parameters:
        return g.input(name, shape=(), dtype=dtype)
    if name not in values:
        raise ValueError(f"no value for variable {name!r}: give it with --at {name}=...")
    return g.parameter(name, values[name], dtype=dtype)


def _children_first(tree):
    """Every node of the parsed tree, children before parents (iterative post-order)."""
    stack, order = [(tree, False)], []
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        stack.append((node, True))
        if isinstance(node, Neg):
            children = (node.operand,)
        elif isinstance(node, BinOp):
            children = (node.left, node.right)
        elif isinstance(node, Call):
            children = node.args
        else:
            children = ()
        stack.extend((child, False) for child in reversed(children))
    return order
