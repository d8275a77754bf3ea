"""The expression language of graphgrad.graph.expr: trees, values, variables, errors and limits.

Oracles are independent of the parser: hand-built trees, Python's own arithmetic and math module
written out by hand, and (in the property test only) Python's eval of generated strings.
"""

from __future__ import annotations

import math
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphgrad.graph.expr import (
    CONSTANTS,
    FUNCTIONS,
    BinOp,
    Call,
    ExprError,
    Neg,
    Num,
    Var,
    evaluate,
    parse,
    variables,
)

SEED = "tanh(log(1 + z*2*x/sin(y)))"


def value(text: str, **values: float) -> float:
    return evaluate(parse(text), values)


def parse_error(text: str) -> ExprError:
    with pytest.raises(ExprError) as info:
        parse(text)
    return info.value


# ---------------------------------------------------------------------- trees and values


def test_seed_expression_tree():
    # Columns counted by hand from 1: t=1, l=6, 1=10, +=12, z=14, 2=16, x=18, /=19, sin=20, y=24.
    y = Var("y", 24)
    product = BinOp("*", BinOp("*", Var("z", 14), Num(2.0, 16), 15), Var("x", 18), 17)
    quotient = BinOp("/", product, Call("sin", (y,), 20), 19)
    log = Call("log", (BinOp("+", Num(1.0, 10), quotient, 12),), 6)
    assert parse(SEED) == Call("tanh", (log,), 1)


def test_seed_expression_value():
    expected = math.tanh(math.log(1 + 3 * 2 * 1 / math.sin(2)))
    assert value(SEED, x=1, y=2, z=3) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2^3^2", 2**3**2),  # 512: right associative
        ("2**3**2", 2**3**2),
        ("(2^3)^2", (2**3) ** 2),
        ("-2^2", -(2**2)),  # -4: '^' binds tighter than the sign on its left
        ("(-2)^2", (-2) ** 2),
        ("2^-2", 2**-2),
        ("2^-1^2", 2 ** -(1**2)),
        ("1-2-3", 1 - 2 - 3),  # -4: left associative
        ("8/4/2", 8 / 4 / 2),  # 1
        ("2*3+4*5", 2 * 3 + 4 * 5),
        ("2+3*4", 2 + 3 * 4),
        ("(2+3)*4", (2 + 3) * 4),
        ("2*3^2", 2 * 3**2),
        ("-3*2", -3 * 2),
        ("2*-3", 2 * -3),
        ("1 - -1", 1 - -1),
        ("--2", 2),
        ("+-+2", -2),
        ("10/4*2", 10 / 4 * 2),
        ("2^3*2^2", 2**3 * 2**2),
    ],
)
def test_precedence_and_associativity(text, expected):
    assert value(text) == expected


def test_power_is_right_associative_and_double_star_is_normalised():
    assert parse("a^b^c") == BinOp("^", Var("a", 1), BinOp("^", Var("b", 3), Var("c", 5), 4), 2)
    assert parse("a**b") == BinOp("^", Var("a", 1), Var("b", 4), 2)


def test_minus_binds_looser_than_power_and_tighter_than_product():
    assert parse("-x^2") == Neg(BinOp("^", Var("x", 2), Num(2.0, 4), 3), 1)
    assert parse("-x*y") == BinOp("*", Neg(Var("x", 2), 1), Var("y", 4), 3)
    assert parse("x^-y") == BinOp("^", Var("x", 1), Neg(Var("y", 4), 3), 2)


def test_left_associative_chains():
    one_minus_two = BinOp("-", Num(1.0, 1), Num(2.0, 3), 2)
    assert parse("1-2-3") == BinOp("-", one_minus_two, Num(3.0, 5), 4)
    assert parse("a/b*c") == BinOp("*", BinOp("/", Var("a", 1), Var("b", 3), 2), Var("c", 5), 4)


def test_unary_plus_is_dropped_and_whitespace_ignored():
    assert parse("+x") == Var("x", 2)
    assert parse(" \t1 +\n 2 ") == BinOp("+", Num(1.0, 3), Num(2.0, 8), 5)
    assert parse("sin (x)") == Call("sin", (Var("x", 6),), 1)
    assert parse("max( a ,b )") == Call("max", (Var("a", 6), Var("b", 9)), 1)


FUNCTION_CASES = [
    ("exp(0.5)", math.exp(0.5)),
    ("log(3)", math.log(3)),
    ("sin(0.7)", math.sin(0.7)),
    ("cos(0.7)", math.cos(0.7)),
    ("tan(0.7)", math.tan(0.7)),
    ("tanh(0.7)", math.tanh(0.7)),
    ("sigmoid(0.3)", 1 / (1 + math.exp(-0.3))),
    ("sigmoid(-0.3)", 1 / (1 + math.exp(0.3))),
    ("sigmoid(-800)", 0.0),  # finite where 1/(1 + exp(800)) would overflow
    ("sigmoid(800)", 1.0),
    ("relu(-2)", 0.0),
    ("relu(2.5)", 2.5),
    ("sqrt(2)", math.sqrt(2)),
    ("abs(-2.5)", 2.5),
    ("log1p(1e-10)", math.log1p(1e-10)),
    ("max(2, 3)", 3.0),
    ("min(2, 3)", 2.0),
    ("pow(2, 10)", 1024.0),
    ("pow(2, -0.5)", 2**-0.5),
]


@pytest.mark.parametrize("text, expected", FUNCTION_CASES)
def test_functions(text, expected):
    assert value(text) == pytest.approx(expected, rel=1e-15, abs=0)


def test_every_function_is_tested_with_its_arity():
    called = {parse(text) for text, _ in FUNCTION_CASES}
    assert {node.func for node in called} == set(FUNCTIONS)
    assert all(len(node.args) == FUNCTIONS[node.func] for node in called)


def test_constants_are_numbers():
    assert parse("pi") == Num(math.pi, 1)
    assert parse("2*e") == BinOp("*", Num(2.0, 1), Num(math.e, 3), 2)
    assert set(CONSTANTS) == {"pi", "e"}
    assert value("sin(pi/2) + log(e)") == math.sin(math.pi / 2) + math.log(math.e)
    assert parse("e2") == Var("e2", 1)  # only the exact names are constants
    assert parse("pi_x") == Var("pi_x", 1)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", 3.0),
        ("0", 0.0),
        ("42", 42.0),
        ("007", 7.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e-3", 1e-3),
        ("1E3", 1e3),
        ("2.5e+2", 2.5e2),
        (".5e1", 5.0),
        ("5.e-1", 0.5),
        ("123456789012345678901234567890", 123456789012345678901234567890.0),
    ],
)
def test_number_formats(text, expected):
    assert parse(text) == Num(expected, 1)


def test_identifiers():
    assert parse("_a1 + B_2") == BinOp("+", Var("_a1", 1), Var("B_2", 7), 5)


@pytest.mark.parametrize(
    "text, names",
    [
        (SEED, ["z", "x", "y"]),
        ("y*x + z - x*y", ["y", "x", "z"]),
        ("b^a^b", ["b", "a"]),
        ("-(q)", ["q"]),
        ("max(w, v) + min(v, u)", ["w", "v", "u"]),
        ("pi * e + sin(2)", []),
    ],
)
def test_variables_in_order_of_first_appearance(text, names):
    assert variables(parse(text)) == names


def test_variables_of_hand_built_tree():
    tree = BinOp("+", Var("b", 0), Call("exp", (Var("a", 0),), 0), 0)
    assert variables(tree) == ["b", "a"]


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, col, message",
    [
        # unknown character
        ("x $ y", 3, "unknown character '$' at column 3"),
        ("2 # 3", 3, "unknown character '#' at column 3"),
        ("x\x00", 2, r"unknown character '\x00' at column 2"),
        # implicit multiplication and other missing operators
        ("2x", 2, "expected an operator at column 2 (found 'x')"),
        ("2 sin(x)", 3, "expected an operator at column 3 (found 'sin')"),
        ("(1)(2)", 4, "expected an operator at column 4 (found '(')"),
        ("x y", 3, "expected an operator at column 3 (found 'y')"),
        ("1e", 2, "expected an operator at column 2 (found 'e')"),
        # unknown function
        ("foo(x)", 1, "unknown function 'foo' at column 1; known: abs, cos, exp, log, log1p, max"),
        ("1 + bar (2)", 5, "unknown function 'bar' at column 5"),
        ("pi(2)", 1, "unknown function 'pi' at column 1"),
        # wrong number of arguments
        ("sin(1, 2)", 1, "sin takes 1 argument, got 2"),
        ("2*sin()", 3, "sin takes 1 argument, got 0"),
        ("max(1)", 1, "max takes 2 arguments, got 1"),
        ("x + pow(1, 2, 3)", 5, "pow takes 2 arguments, got 3"),
        # a function name without a call
        ("sin", 4, "expected '(' after function name 'sin' at column 4 (found end of input)"),
        ("1 + exp * 2", 9, "expected '(' after function name 'exp' at column 9 (found '*')"),
        # unbalanced parentheses
        ("(x", 3, "expected ')' at column 3 (found end of input) to close '(' at column 1"),
        ("tanh(log(1 + x)", 16, "expected ')' at column 16 (found end of input) to close 'tanh('"),
        ("max(1", 6, "expected ',' at column 6 (found end of input) to close 'max(' at column 1"),
        ("(1, 2)", 3, "expected ')' at column 3 (found ',') to close '(' at column 1"),
        ("x)", 2, "expected end of input at column 2 (found ')')"),
        ("(x))", 4, "expected end of input at column 4 (found ')')"),
        ("1, 2", 2, "expected end of input at column 2 (found ',')"),
        # missing operands
        ("", 1, "empty input"),
        (" \t\n ", 1, "empty input"),
        ("1 +", 4, "expected a number, variable, function call or '(' at column 4 (found end of"),
        ("()", 2, "at column 2 (found ')')"),
        ("2 * * 3", 5, "at column 5 (found '*')"),
        ("x ** ** 2", 6, "at column 6 (found '**')"),
        ("max(1,)", 7, "at column 7 (found ')')"),
        ("sin(+)", 6, "at column 6 (found ')')"),
        (",", 1, "at column 1 (found ',')"),
        # malformed numbers
        ("1.2.3", 1, "malformed number '1.2.3' at column 1"),
        ("x + 1..5", 5, "malformed number '1..5' at column 5"),
        ("1e3.5", 1, "malformed number '1e3.5' at column 1"),
        ("x.y", 2, "malformed number '.' at column 2"),
    ],
)
def test_errors(text, col, message):
    err = parse_error(text)
    assert err.col == col
    assert message in str(err).splitlines()[0]
    assert err.text == text
    assert err.expected


def test_error_expected_and_type():
    assert parse_error("(x").expected == "')'"
    assert parse_error("2x").expected == "an operator"
    assert parse_error("x)").expected == "end of input"
    assert parse_error("max(1)").expected == "2 arguments"
    assert issubclass(ExprError, ValueError)


def test_error_shows_the_text_and_a_caret():
    assert str(parse_error("tanh(log(1 + x)")) == (
        "expected ')' at column 16 (found end of input) to close 'tanh(' at column 1\n"
        "  tanh(log(1 + x)\n"
        "                 ^"
    )
    # Tabs and newlines are shown as spaces, so the caret stays under its column.
    assert str(parse_error("1 +\t2 $")).splitlines()[1:] == ["  1 + 2 $", "        ^"]


def test_columns_count_from_1_as_counted_by_hand():
    # "1 + $": '1' is column 1, the spaces 2 and 4, '+' 3, so '$' is column 5.
    err = parse_error("1 + $")
    assert (err.col, "1 + $"[err.col - 1]) == (5, "$")
    assert str(err).splitlines() == ["unknown character '$' at column 5", "  1 + $", "      ^"]
    # "sin(x" ends after 5 characters: the missing ')' is expected at column 6, and the
    # unclosed call opened at column 1.
    assert str(parse_error("sin(x")).splitlines()[0] == (
        "expected ')' at column 6 (found end of input) to close 'sin(' at column 1")


def test_error_on_long_text_shows_a_window_around_the_column():
    text = "+".join(["x"] * 2000) + " $ " + "+".join(["y"] * 2000)
    err = parse_error(text)
    first, shown, caret = str(err).splitlines()
    assert err.col == 4001  # 2000 x's, 1999 '+', a space: the '$' is character 4001
    assert len(shown) < 100 and shown.startswith("  ...") and shown.endswith("...")
    assert shown[caret.index("^")] == "$"


def test_error_pickles():
    err = parse_error("2x")
    copy = pickle.loads(pickle.dumps(err))
    assert (str(copy), copy.col, copy.text, copy.expected) == (str(err), 2, "2x", "an operator")


# ---------------------------------------------------------------------- limits


def nested_parens(depth: int) -> str:
    return "(" * depth + "x" + ")" * depth


def test_nesting_up_to_the_limit_parses_and_evaluates():
    assert parse(nested_parens(200)) == Var("x", 201)
    calls = "sin(" * 200 + "x" + ")" * 200
    expected = 0.5
    for _ in range(200):
        expected = math.sin(expected)
    assert value(calls, x=0.5) == expected
    assert value("-" * 200 + "2") == 2.0
    assert value("1^" * 200 + "1") == 1.0


@pytest.mark.parametrize(
    "text, col",
    [
        pytest.param(nested_parens(201), 201, id="201 parentheses"),
        pytest.param(nested_parens(4999), 201, id="4999 parentheses"),
        pytest.param("sin(" * 201 + "x" + ")" * 201, 801, id="201 calls"),
        pytest.param("-" * 201 + "x", 201, id="201 signs"),
        pytest.param("-" * 9999 + "x", 201, id="9999 signs"),
        pytest.param("2^" * 201 + "2", 402, id="201 powers"),
        pytest.param("-(" * 101 + "x" + ")" * 101, 201, id="signs and parentheses add up"),
    ],
)
def test_nesting_beyond_the_limit(text, col):
    err = parse_error(text)
    assert err.col == col
    assert "nesting deeper than 200 levels" in str(err)


def test_long_flat_chains_are_not_nesting():
    text = "+".join(["x"] * 5000)  # 9999 characters, a tree 5000 levels deep
    tree = parse(text)
    assert variables(tree) == ["x"]
    assert evaluate(tree, {"x": 1}) == 5000.0
    assert value("*".join(["2"] * 1000)) == 2.0**1000


def test_length_limit():
    assert value("1" + " " * 9999) == 1.0
    err = parse_error("1" + " " * 10_000)
    assert err.col == 10_001  # the first character over the limit
    assert "input too long: 10001 characters (limit 10000)" in str(err)


# ---------------------------------------------------------------------- evaluate


def test_evaluate_unknown_variable_is_named():
    with pytest.raises(ExprError, match="unknown variable 'q' at column 5") as info:
        evaluate(parse("x + q*q"), {"x": 1.0, "y": 2.0})
    assert info.value.col == 5
    assert "values given for: x, y" in str(info.value)


@pytest.mark.parametrize(
    "text, col, message",
    [
        ("1 + log(0)", 5, "cannot evaluate log() at column 5"),
        ("sqrt(-1)", 1, "cannot evaluate sqrt()"),
        ("1/(2-2)", 2, "cannot evaluate '/' at column 2"),
        ("(-8)^(1/3)", 5, "cannot evaluate '^' at column 5"),
        ("10^400", 3, "cannot evaluate '^' at column 3"),
        ("exp(1000)", 1, "cannot evaluate exp()"),
    ],
)
def test_evaluate_math_errors(text, col, message):
    with pytest.raises(ExprError) as info:
        evaluate(parse(text), {})
    assert info.value.col == col
    assert message in str(info.value)


def test_evaluate_accepts_ints_and_returns_float():
    result = evaluate(parse("x + 1"), {"x": 2})
    assert result == 3.0 and isinstance(result, float)


def test_evaluate_rejects_non_nodes():
    with pytest.raises(TypeError, match="not an expression node"):
        evaluate(BinOp("+", Num(1.0, 0), "x", 1), {})


# ---------------------------------------------------------------------- properties

# Float literals only: with Python ints, eval of a generated 9**9**9 would never finish.
LITERALS = ["2.5", "0.5", ".5", "3.", "1e-1", "2.0E0", "1.5e+1", "0.0"]
UNARY_FUNCTIONS = ["exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "log1p", "relu"]
BINARY_FUNCTIONS = ["max", "min", "pow"]

# Python's eval sees the same names. abs is math.fabs so that a complex intermediate (from a
# negative number to a fractional power) raises TypeError instead of becoming real again.
EVAL_NAMES = {name: getattr(math, name) for name in UNARY_FUNCTIONS if hasattr(math, name)}
EVAL_NAMES.update(abs=math.fabs, relu=lambda v: max(v, 0.0), max=max, min=min, pow=math.pow,
                  pi=math.pi, e=math.e)


def _grow(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "^", "**"]), children).map(
            " ".join
        ),
        st.tuples(st.sampled_from(["-", "+"]), children).map("".join),
        children.map("({})".format),
        st.tuples(st.sampled_from(UNARY_FUNCTIONS), children).map("{0[0]}({0[1]})".format),
        st.tuples(st.sampled_from(BINARY_FUNCTIONS), children, children).map(
            "{0[0]}({0[1]}, {0[2]})".format
        ),
    )


EXPRESSIONS = st.recursive(
    st.sampled_from(LITERALS + ["x", "y", "z", "pi", "e"]), _grow, max_leaves=12
)
VALUES = st.floats(min_value=-3, max_value=3, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(EXPRESSIONS, VALUES, VALUES, VALUES)
def test_evaluate_matches_python_eval(text, x, y, z):
    tree = parse(text)
    namespace = dict(EVAL_NAMES, x=x, y=y, z=z)
    try:
        expected = eval(text.replace("^", "**"), {"__builtins__": {}}, namespace)
    except (ArithmeticError, ValueError, TypeError):
        expected = None
    if expected is None or isinstance(expected, complex):
        with pytest.raises(ExprError):
            evaluate(tree, {"x": x, "y": y, "z": z})
        return
    result = evaluate(tree, {"x": x, "y": y, "z": z})
    assert result == expected or (math.isnan(result) and math.isnan(expected))
    assert variables(tree) == list(dict.fromkeys(re.findall(r"\b[xyz]\b", text)))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789.eE+-*/^(), \txyzsinmaxpi_$", max_size=30))
def test_any_text_parses_or_raises_expr_error(text):
    try:
        tree = parse(text)
    except ExprError as err:
        assert 1 <= err.col <= len(text) + 1  # the end of input is just past the last character
        assert err.text == text
        return
    try:
        evaluate(tree, dict.fromkeys(variables(tree), 0.5))
    except ExprError as err:
        assert 1 <= err.col <= len(text)
