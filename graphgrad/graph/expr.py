"""A small, safe expression language: user-typed maths such as ``tanh(log(1 + z*2*x/sin(y)))``.

The command line (``graphgrad graph EXPR --at x=1,y=2``) and the web lab turn such text into a
computational graph. This module only reads it: :func:`parse` gives a tree of frozen dataclasses
(:class:`Num`, :class:`Var`, :class:`Call`, :class:`BinOp`, :class:`Neg`), :func:`variables` lists
its free variables and :func:`evaluate` is a plain-float reference evaluator for checking.

No ``eval`` and no ``ast``: our own tokenizer and parser, so every error is an :class:`ExprError`
that names the column (counted from 1, in errors and in every node's ``col``) and what was
expected there. Grammar, loosest binding first::

    expr    := expr ('+' | '-') term | term               left associative
    term    := term ('*' | '/') unary | unary               left associative
    unary   := ('-' | '+') unary | power                    -x^2 is -(x^2), as in Python
    power   := primary ('^' | '**') unary | primary         right associative: 2^3^2 = 2^9
    primary := number | name | name '(' expr {',' expr} ')' | '(' expr ')'

The parser is iterative (shunting-yard with a state for "operand expected next"), and so are the
tree walkers, so no input reaches Python's recursion limit. The nesting limit (parentheses, calls,
signs and powers together) exists for the code downstream that walks trees recursively.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Num", "Var", "Call", "BinOp", "Neg", "Node", "FUNCTIONS", "CONSTANTS", "MAX_LENGTH",
           "MAX_DEPTH", "ExprError", "parse", "variables", "evaluate"]


@dataclass(frozen=True)
class Num:
    """A number literal, or a named constant (``pi``, ``e``)."""

    value: float
    col: int


@dataclass(frozen=True)
class Var:
    """A variable."""

    name: str
    col: int


@dataclass(frozen=True)
class Call:
    """A call of one of :data:`FUNCTIONS`; ``args`` is a tuple of nodes."""

    func: str
    args: tuple
    col: int


@dataclass(frozen=True)
class BinOp:
    """A binary operation; ``op`` is one of ``+ - * / ^`` (``**`` is normalised to ``^``)."""

    op: str
    left: object
    right: object
    col: int


@dataclass(frozen=True)
class Neg:
    """Unary minus (unary plus is dropped by the parser)."""

    operand: object
    col: int


Node = Num | Var | Call | BinOp | Neg

FUNCTIONS = {"exp": 1, "log": 1, "sin": 1, "cos": 1, "tan": 1, "tanh": 1, "sigmoid": 1, "relu": 1,
             "sqrt": 1, "abs": 1, "log1p": 1, "max": 2, "min": 2, "pow": 2}  # name -> arity
CONSTANTS = {"pi": math.pi, "e": math.e}  # parsed as Num
MAX_LENGTH = 10_000  # characters of input
MAX_DEPTH = 200  # open parentheses, calls, signs and powers at any one point


class ExprError(ValueError):
    """An expression that cannot be parsed or evaluated.

    ``text`` is the input (empty for evaluation errors, where no text is at hand), ``col`` the
    column of the problem, counted from 1 as editors and compilers do (``text[col - 1]`` is the
    character at fault), and ``expected`` what would have been valid there.

    >>> from graphgrad.graph.expr import parse, ExprError
    >>> try:
    ...     parse("tanh(log(1 + x)")
    ... except ExprError as err:
    ...     print(err)
    ...     print(err.col, err.expected)
    expected ')' at column 16 (found end of input) to close 'tanh(' at column 1
      tanh(log(1 + x)
                     ^
    16 ')'
    """

    def __init__(self, message: str, text: str, col: int, expected: str) -> None:
        # All four go to args so that the error pickles (the web lab may pass it between processes).
        super().__init__(message, text, col, expected)
        self.message, self.text, self.col, self.expected = message, text, col, expected

    def __str__(self) -> str:
        if not self.text:
            return self.message
        return f"{self.message}\n{_excerpt(self.text, self.col)}"


_EXCERPT_WIDTH = 72  # characters of input shown around the caret


def _excerpt(text: str, col: int) -> str:
    """The input (or a window of it around column ``col``) on one line, and a caret under it."""
    col -= 1  # an index into text from here on
    start = max(0, min(col - _EXCERPT_WIDTH // 2, len(text) - _EXCERPT_WIDTH))
    end = start + _EXCERPT_WIDTH
    prefix = "..." if start > 0 else ""
    suffix = "..." if end < len(text) else ""
    # One character per column keeps the caret aligned and the excerpt on one line.
    shown = "".join(
        " " if char.isspace() else char if char.isprintable() else "?" for char in text[start:end]
    )
    return f"  {prefix}{shown}{suffix}\n  {' ' * (len(prefix) + col - start)}^"


# ---------------------------------------------------------------------------------- tokenizer


class _Token(NamedTuple):
    kind: str  # "number", "name", "call" (a name and its '('), "op", "(", ")", "," or "end"
    text: str
    col: int  # counted from 1


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL_PAREN = re.compile(r"\s*\(")
# A number-like run is taken whole, so that "1.2.3" is one bad number, not "1.2" then ".3".
_NUMBER_RUN = re.compile(r"[0-9.]+(?:[eE][+-]?[0-9][0-9.]*)?")
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PUNCTUATION = {"+": "op", "-": "op", "*": "op", "/": "op", "^": "op", "(": "(", ")": ")",
                ",": ","}


def _tokenize(text: str) -> Iterator[_Token]:
    """Yield the tokens of ``text`` lazily, so that the leftmost error is the one reported."""
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            yield _Token("end", "", pos + 1)
            return
        token, pos = _next_token(text, pos)
        yield token


def _next_token(text: str, pos: int) -> tuple[_Token, int]:
    """The token starting at index ``pos`` (not whitespace, not the end) and the index after it.
    Tokens and errors carry the column, ``pos + 1``."""
    col = pos + 1
    if name := _NAME.match(text, pos):
        # A name directly followed by '(' is a call; deciding it here spares the parser lookahead.
        if paren := _CALL_PAREN.match(text, name.end()):
            return _Token("call", name.group(), col), paren.end()
        return _Token("name", name.group(), col), name.end()
    if run := _NUMBER_RUN.match(text, pos):
        if not _NUMBER.fullmatch(run.group()):
            raise ExprError(f"malformed number '{run.group()}' at column {col}", text, col,
                            "a number such as 3, 0.5, .5 or 1e-3")
        return _Token("number", run.group(), col), run.end()
    if text.startswith("**", pos):
        return _Token("op", "**", col), pos + 2
    if text[pos] in _PUNCTUATION:
        return _Token(_PUNCTUATION[text[pos]], text[pos], col), pos + 1
    raise ExprError(f"unknown character {text[pos]!r} at column {col}", text, col,
                    "a number, name, operator, parenthesis or comma")


# ------------------------------------------------------------------------------------- parser

_OPERAND = "a number, variable, function call or '('"
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}
_UNARY_PRECEDENCE = 3  # below '^' so that -x^2 is -(x^2), above '*' so that -x*y is (-x)*y


@dataclass
class _Frame:
    """An entry of the parser's stack: an operator waiting for operands, or an open parenthesis."""

    kind: str  # "binary", "unary", "paren" or "call"
    text: str  # the operator ('^' for '**') or the function name
    col: int
    precedence: int = 0
    nargs: int = 0  # arguments of a call completed so far

    @property
    def nests(self) -> bool:
        # What counts towards MAX_DEPTH: every frame whose operand nests to the right.
        return self.kind != "binary" or self.text == "^"


def _found(token: _Token) -> str:
    return "end of input" if token.kind == "end" else f"'{token.text}'"


class _Parser:
    """Shunting-yard: operands go to ``output``, operators and open parentheses to ``frames``.

    The parser alternates between two states: expecting an operand (a number, name, call, '(' or
    a sign) and expecting an operator (a binary operator, ',', ')' or the end).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.output: list[Node] = []
        self.frames: list[_Frame] = []
        self.depth = 0
        self.previous: _Token | None = None

    def run(self) -> Node:
        expecting_operand = True
        token = next(self.tokens)
        # The end of input is an error where an operand is expected: _operand raises on it.
        while expecting_operand or token.kind != "end":
            handler = self._operand if expecting_operand else self._operator
            expecting_operand = handler(token)
            self.previous = token
            token = next(self.tokens)
        return self._finish(token)

    def _error(self, expected: str, token: _Token, detail: str = "") -> ExprError:
        message = f"expected {expected} at column {token.col} (found {_found(token)}){detail}"
        return ExprError(message, self.text, token.col, expected)

    # Each handler consumes one token and says whether an operand is expected next.

    def _operand(self, token: _Token) -> bool:
        if token.kind == "number":
            self.output.append(Num(float(token.text), token.col))
            return False
        if token.kind == "name":
            self.output.append(self._name(token))
            return False
        if token.kind == "call":
            self._open_call(token)
            return True
        if token.kind == "(":
            self._push(_Frame("paren", "(", token.col))
            return True
        if token.text == "-":
            self._push(_Frame("unary", "-", token.col, _UNARY_PRECEDENCE))
            return True
        if token.text == "+":
            return True  # unary plus changes nothing, so it leaves no trace in the tree
        if token.kind == ")" and self.previous is not None and self.previous.kind == "call":
            raise self._arity_error(self.frames[-1], 0)  # "f()"; every function takes arguments
        raise self._error(_OPERAND, token)

    def _operator(self, token: _Token) -> bool:
        if token.kind == "op":
            self._binary(token)
            return True
        if token.kind == ")":
            self._close(token)
            return False
        if token.kind == ",":
            self._comma(token)
            return True
        # A number, name or '(' right after an operand: implicit multiplication is not allowed.
        raise self._error("an operator", token)

    def _name(self, token: _Token) -> Node:
        if token.text in FUNCTIONS:
            raise self._error(f"'(' after function name '{token.text}'", next(self.tokens))
        if token.text in CONSTANTS:
            return Num(CONSTANTS[token.text], token.col)
        return Var(token.text, token.col)

    def _open_call(self, token: _Token) -> None:
        if token.text not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            message = f"unknown function '{token.text}' at column {token.col}; known: {known}"
            raise ExprError(message, self.text, token.col, f"one of the functions {known}")
        self._push(_Frame("call", token.text, token.col))

    def _binary(self, token: _Token) -> None:
        op = "^" if token.text == "**" else token.text
        precedence = _PRECEDENCE[op]
        right_associative = op == "^"
        while self._top_is_operator() and (
            self.frames[-1].precedence > precedence
            or (self.frames[-1].precedence == precedence and not right_associative)
        ):
            self._reduce()
        self._push(_Frame("binary", op, token.col, precedence))

    def _close(self, token: _Token) -> None:
        frame = self._innermost_group(token)
        self._pop()
        if frame.kind == "call":
            self._complete_call(frame, frame.nargs + 1)

    def _comma(self, token: _Token) -> None:
        frame = self._innermost_group(token)
        if frame.kind != "call":
            raise self._error("')'", token, self._closing(frame))
        frame.nargs += 1

    def _finish(self, token: _Token) -> Node:
        self._reduce_operators()
        if self.frames:
            frame = self.frames[-1]
            raise self._error(self._expected_in_group(frame), token, self._closing(frame))
        (tree,) = self.output
        return tree

    def _innermost_group(self, token: _Token) -> _Frame:
        """Reduce the operators after the innermost open parenthesis, and return its frame."""
        self._reduce_operators()
        if not self.frames:
            raise self._error("end of input", token)
        return self.frames[-1]

    @staticmethod
    def _expected_in_group(frame: _Frame) -> str:
        if frame.kind == "call" and frame.nargs + 1 < FUNCTIONS[frame.text]:
            return "','"
        return "')'"

    @staticmethod
    def _closing(frame: _Frame) -> str:
        opener = f"{frame.text}(" if frame.kind == "call" else "("
        return f" to close '{opener}' at column {frame.col}"

    def _arity_error(self, frame: _Frame, nargs: int) -> ExprError:
        arity = FUNCTIONS[frame.text]
        plural = "" if arity == 1 else "s"
        return ExprError(
            f"{frame.text} takes {arity} argument{plural}, got {nargs}, "
            f"in the call at column {frame.col}",
            self.text, frame.col, f"{arity} argument{plural}",
        )

    def _complete_call(self, frame: _Frame, nargs: int) -> None:
        if nargs != FUNCTIONS[frame.text]:
            raise self._arity_error(frame, nargs)
        args = tuple(self.output[len(self.output) - nargs:])
        del self.output[len(self.output) - nargs:]
        self.output.append(Call(frame.text, args, frame.col))

    def _top_is_operator(self) -> bool:
        return bool(self.frames) and self.frames[-1].kind in ("binary", "unary")

    def _reduce_operators(self) -> None:
        while self._top_is_operator():
            self._reduce()

    def _reduce(self) -> None:
        """Pop the top operator and replace its operands on the output by the node it makes."""
        frame = self._pop()
        if frame.kind == "unary":
            self.output.append(Neg(self.output.pop(), frame.col))
        else:
            right = self.output.pop()
            self.output.append(BinOp(frame.text, self.output.pop(), right, frame.col))

    def _push(self, frame: _Frame) -> None:
        self.frames.append(frame)
        self.depth += frame.nests
        if self.depth > MAX_DEPTH:
            raise ExprError(
                f"nesting deeper than {MAX_DEPTH} levels at column {frame.col} "
                "(parentheses, calls, signs and powers count)",
                self.text, frame.col, f"at most {MAX_DEPTH} levels of nesting",
            )

    def _pop(self) -> _Frame:
        frame = self.frames.pop()
        self.depth -= frame.nests
        return frame


def parse(text: str) -> Node:
    """Parse ``text`` into a tree of :class:`Num`, :class:`Var`, :class:`Call`, :class:`BinOp`
    and :class:`Neg`; raise :class:`ExprError` with the column of the first problem.

    >>> from graphgrad.graph.expr import parse
    >>> parse("2*x")
    BinOp(op='*', left=Num(value=2.0, col=1), right=Var(name='x', col=3), col=2)
    >>> parse("sin(pi)")
    Call(func='sin', args=(Num(value=3.141592653589793, col=5),), col=1)
    >>> parse("2x")
    Traceback (most recent call last):
        ...
    graphgrad.graph.expr.ExprError: expected an operator at column 2 (found 'x')
      2x
       ^
    """
    if len(text) > MAX_LENGTH:
        raise ExprError(f"input too long: {len(text)} characters (limit {MAX_LENGTH})", text,
                        MAX_LENGTH + 1, f"at most {MAX_LENGTH} characters")
    if not text.strip():
        raise ExprError(f"empty input: expected {_OPERAND} at column 1", text, 1, _OPERAND)
    return _Parser(text).run()


# ------------------------------------------------------------------------------- tree walkers


def _children(node: Node) -> tuple:
    if isinstance(node, (Num, Var)):
        return ()
    if isinstance(node, Neg):
        return (node.operand,)
    if isinstance(node, BinOp):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    raise TypeError(f"not an expression node: {node!r}")


def _preorder(tree: Node) -> Iterator[Node]:
    """Every node, parents before children and children left to right (the order of the text)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(_children(node)))


def _postorder(tree: Node) -> Iterator[Node]:
    """Every node, children (left to right) before their parent."""
    stack = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            yield node
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(_children(node)))


def variables(tree: Node) -> list[str]:
    """The distinct variable names of ``tree``, in order of first appearance.

    >>> from graphgrad.graph.expr import parse, variables
    >>> variables(parse("tanh(log(1 + z*2*x/sin(y))) + x*pi"))
    ['z', 'x', 'y']
    """
    names = (node.name for node in _preorder(tree) if isinstance(node, Var))
    return list(dict.fromkeys(names))


def _sigmoid(x: float) -> float:
    # exp of a large positive number overflows, so exponentiate only non-positive numbers.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


_FLOAT_FUNCTIONS = {
    "exp": math.exp, "log": math.log, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "tanh": math.tanh, "sigmoid": _sigmoid, "relu": lambda x: max(x, 0.0), "sqrt": math.sqrt,
    "abs": math.fabs, "log1p": math.log1p, "max": max, "min": min, "pow": math.pow,
}
_FLOAT_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul,
                    "/": operator.truediv, "^": math.pow}


def _float_values(tree: Node, values: Mapping[str, float]) -> dict[str, float]:
    """The values of the variables of ``tree`` as floats; every one must be given."""
    floats: dict[str, float] = {}
    for node in _preorder(tree):
        if not isinstance(node, Var) or node.name in floats:
            continue
        if node.name not in values:
            given = ", ".join(sorted(values)) or "none"
            raise ExprError(f"unknown variable '{node.name}' at column {node.col} "
                            f"(values given for: {given})", "", node.col,
                            f"a value for '{node.name}'")
        floats[node.name] = float(values[node.name])
    return floats


def _evaluate_node(node: Node, args: list[float], values: dict[str, float]) -> float:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Var):
        return values[node.name]
    if isinstance(node, Neg):
        return -args[0]
    if isinstance(node, Call):
        function, what = _FLOAT_FUNCTIONS[node.func], f"{node.func}()"
    else:
        function, what = _FLOAT_OPERATORS[node.op], f"'{node.op}'"
    try:
        return function(*args)
    except (ArithmeticError, ValueError) as exc:  # math domain and range errors, division by 0
        raise ExprError(f"cannot evaluate {what} at column {node.col}: {exc}", "", node.col,
                        "operands with a real, representable result") from exc


def evaluate(tree: Node, values: Mapping[str, float]) -> float:
    """The value of ``tree`` in plain floats (the math module) with ``values`` for its variables.

    A missing variable, or a math error such as ``log(0)`` or ``1/0``, raises :class:`ExprError`
    with the column of the node at fault.

    >>> import math
    >>> from graphgrad.graph.expr import evaluate, parse
    >>> tree = parse("tanh(log(1 + z*2*x/sin(y)))")
    >>> evaluate(tree, {"x": 1, "y": 2, "z": 3}) == math.tanh(math.log(1 + 3*2*1/math.sin(2)))
    True
    """
    floats = _float_values(tree, values)
    results: list[float] = []
    for node in _postorder(tree):
        split = len(results) - len(_children(node))
        value = _evaluate_node(node, results[split:], floats)
        del results[split:]
        results.append(value)
    (result,) = results
    return result
