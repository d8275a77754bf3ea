"""Products beyond matmul (outer, einsum, addmm, baddbmm, addmv, addbmm, addr, mv, vdot, inner,
tensordot, kron), as Tensor methods and functions where torch has them; and torch's top-level
names of linear algebra (det, inverse, slogdet, logdet, and the older svd, qr, cholesky,
pinverse, matrix_power).

>>> import graphgrad as gg
>>> gg.einsum("ij,j->i", gg.ones(2, 3), gg.arange(3.0)).tolist()
[3.0, 3.0]
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import linalg
from .ops import OPS
from .ops.decomp import LETTERS, explicit_subscripts
from .tensor import Tensor, _tensor_argument, apply, matmul, tensor_method, where, with_out, wrap

__all__ = [
    "outer", "ger", "einsum", "addmm", "baddbmm", "addmv", "addbmm", "addr", "mv", "vdot",
    "inner", "tensordot", "kron", "det", "inverse", "slogdet", "logdet", "svd", "qr", "cholesky",
    "pinverse", "matrix_power",
]

_einsum, _addmm_op = OPS["einsum"], OPS["addmm"]


@with_out
@tensor_method
def outer(input: Tensor, vec2: Tensor) -> Tensor:  # noqa: A002 - torch's names
    """``input[i] * vec2[j]``.

    >>> import graphgrad as gg
    >>> gg.outer(gg.tensor([1.0, 2.0]), gg.tensor([1.0, 10.0])).tolist()
    [[1.0, 10.0], [2.0, 20.0]]
    """
    vec2 = _tensor_argument("outer", "vec2", vec2)
    for name, x in (("self", input), ("vec2", vec2)):
        if x.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {x.ndim}-D")
    return input.unsqueeze(1) * vec2.unsqueeze(0)


@with_out
@tensor_method
def ger(input: Tensor, vec2: Tensor) -> Tensor:  # noqa: A002
    """torch's older name of :func:`outer`."""
    return outer(input, vec2)


def einsum(*args) -> Tensor:
    """torch.einsum: ``einsum(equation, *operands)``, operands also as one list, or torch's
    sublist form ``einsum(op1, [0, 1], op2, [1, 2], [0, 2])``; '...' and an implicit output as
    torch. The gradient of each operand is einsum again, to any order.

    >>> import graphgrad as gg
    >>> gg.einsum("...ii", gg.eye(3).expand(2, 3, 3)).tolist()
    [3.0, 3.0]
    """
    if not args:
        raise TypeError("einsum(): must specify the equation string and at least one operand")
    if isinstance(args[0], str):
        equation, operands = args[0], list(args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
    else:
        equation, operands = _sublist_equation(args)
    for i, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise TypeError(f"einsum(): operand {i} must be Tensor, not {type(op).__name__}")
    subscripts = explicit_subscripts(equation, [op.ndim for op in operands])
    _check_sizes(subscripts, operands)
    dtypes = {op._data.dtype for op in operands}
    if len(dtypes) > 1:
        names = ", ".join(str(op.dtype) for op in operands)
        raise RuntimeError(f"einsum(): expected operands of one dtype, got {names}")
    return apply(_einsum, tuple(operands), (subscripts,))


def _sublist_equation(args) -> tuple:
    """torch's sublist form: operands each followed by a list of ints (0..25 for A..Z, 26..51
    for a..z, or Ellipsis), then optionally the output's list."""
    pairs = len(args) // 2
    operands, terms = list(args[0 : 2 * pairs : 2]), list(args[1 : 2 * pairs : 2])
    output = args[-1] if len(args) % 2 else None
    words = []
    for sub in terms + ([] if output is None else [output]):
        word = ""
        for n in sub:
            if n is Ellipsis:
                word += "..."
            elif isinstance(n, int) and 0 <= n < len(LETTERS):
                word += LETTERS[n]
            else:
                raise ValueError(
                    "einsum(): subscript in subscript list is not within the valid range [0, 52)"
                )
        words.append(word)
    equation = ",".join(words[: len(terms)])
    if output is not None:
        equation += "->" + words[-1]
    return equation, operands


def _check_sizes(subscripts: str, operands) -> None:
    """torch's check: a letter's sizes agree across the operands, or are 1 (broadcast)."""
    seen: dict = {}
    for i, (term, op) in enumerate(zip(subscripts.split("->")[0].split(","), operands)):
        for letter, size in zip(term, op.shape):
            known = seen.get(letter, 1)
            if size != 1 and known != 1 and size != known:
                raise RuntimeError(
                    f"einsum(): subscript {letter} has size {size} for operand {i} which does "
                    f"not broadcast with previously seen size {known}"
                )
            seen[letter] = max(known, size)


def _addmm(name: str, input, a: Tensor, b: Tensor, beta, alpha) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (a @ b)`` (ops.decomp.Addmm); with beta 0 input is not read."""
    input = _tensor_argument(name, "input", input)  # noqa: A001
    dtypes = {t._data.dtype for t in (input, a, b)}
    if len(dtypes) > 1:
        raise RuntimeError(
            f"{name}: expected input, and the matrices to have the same dtype, but got "
            f"{', '.join(str(t.dtype) for t in (input, a, b))}"
        )
    return apply(_addmm_op, (input, a, b), (beta, alpha))


def _check_input(name: str, input, shape) -> None:  # noqa: A002
    _tensor_argument(name, "input", input)
    try:
        input.expand(*shape)
    except RuntimeError:
        raise RuntimeError(
            f"{name}: the input of shape {list(input.shape)} does not broadcast to the product's "
            f"shape {list(shape)}"
        ) from None


@with_out
@tensor_method
def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (mat1 @ mat2)``.

    >>> import graphgrad as gg
    >>> gg.addmm(gg.ones(2, 2), gg.eye(2), gg.eye(2), beta=0.5, alpha=2).tolist()
    [[2.5, 0.5], [0.5, 2.5]]
    """
    for name, m in (("mat1", mat1), ("mat2", mat2)):
        if _tensor_argument("addmm", name, m).ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {m.ndim}-D tensor")
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x{mat1.shape[1]} and "
            f"{mat2.shape[0]}x{mat2.shape[1]})"
        )
    _check_input("addmm", input, (mat1.shape[0], mat2.shape[1]))
    return _addmm("addmm", input, mat1, mat2, beta, alpha)


@with_out
@tensor_method
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (batch1 @ batch2)`` over a batch of matrices."""
    for name, b in (("batch1", batch1), ("batch2", batch2)):
        if _tensor_argument("baddbmm", name, b).ndim != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    if batch1.shape[0] != batch2.shape[0] or batch1.shape[2] != batch2.shape[1]:
        raise RuntimeError(
            f"baddbmm: batch1 {list(batch1.shape)} and batch2 {list(batch2.shape)} cannot be "
            "multiplied: batch sizes and inner dimensions must match"
        )
    _check_input("baddbmm", input, (batch1.shape[0], batch1.shape[1], batch2.shape[2]))
    return _addmm("baddbmm", input, batch1, batch2, beta, alpha)


@with_out
@tensor_method
def addmv(input, mat, vec, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (mat @ vec)``."""
    mat, vec = _tensor_argument("addmv", "mat", mat), _tensor_argument("addmv", "vec", vec)
    if mat.ndim != 2 or vec.ndim != 1 or mat.shape[1] != vec.shape[0]:
        raise RuntimeError(
            f"size mismatch, got input ({', '.join(map(str, input.shape))}), mat "
            f"({'x'.join(map(str, mat.shape))}), vec ({', '.join(map(str, vec.shape))})"
        )
    _check_input("addmv", input, (mat.shape[0],))
    return _addmm("addmv", input, mat, vec, beta, alpha)


def _scaled_sum(input, product: Tensor, beta, alpha) -> Tensor:  # noqa: A002
    """``beta * input + alpha * product``; with beta 0 input is not read (nan stays out)."""
    product = product if alpha == 1 else product * alpha
    if beta == 0:
        return product
    return product + (input if beta == 1 else input * beta)


@with_out
@tensor_method
def addbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * sum_b(batch1[b] @ batch2[b])``."""
    for name, b in (("batch1", batch1), ("batch2", batch2)):
        if _tensor_argument("addbmm", name, b).ndim != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    _check_input("addbmm", input, (batch1.shape[1], batch2.shape[2]))
    return _scaled_sum(input, einsum("bij,bjk->ik", batch1, batch2), beta, alpha)


@with_out
@tensor_method
def addr(input, vec1, vec2, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * outer(vec1, vec2)``."""
    product = outer(_tensor_argument("addr", "vec1", vec1), _tensor_argument("addr", "vec2", vec2))
    _check_input("addr", input, tuple(product.shape))
    return _scaled_sum(input, product, beta, alpha)


@with_out
@tensor_method
def mv(input: Tensor, vec: Tensor) -> Tensor:  # noqa: A002
    """Matrix times vector."""
    vec = _tensor_argument("mv", "vec", vec)
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(
            f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}"
        )
    return matmul(input, vec)


@with_out
@tensor_method
def vdot(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The dot product of two 1-D tensors (real: no conjugation)."""
    other = _tensor_argument("vdot", "other", other)
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(
            f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors"
        )
    return matmul(input, other)


@with_out
@tensor_method
def inner(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The sum of products over the last dimensions; a 0-d operand multiplies."""
    other = _tensor_argument("inner", "other", other)
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    return tensordot(input, other, dims=([-1], [-1]))


@with_out
def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Contract ``a``'s last ``dims`` dimensions with ``b``'s first ones, or the dimensions
    listed in ``dims = (dims_a, dims_b)``; the rest of ``a`` then of ``b`` remain, in order."""
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        dims = (list(range(a.ndim - dims, a.ndim)), list(range(dims)))
    dims_a, dims_b = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(dims_a) != len(dims_b):
        raise RuntimeError("both dimension lists should have same length")
    letters_a = list(LETTERS[: a.ndim])
    letters_b = list(LETTERS[a.ndim : a.ndim + b.ndim])
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise RuntimeError(
                f"contracted dimensions need to match, but first has size {a.shape[da]} in dim "
                f"{da} and second has size {b.shape[db]} in dim {db}"
            )
        letters_b[db] = letters_a[da]
    contracted = {letters_a[d] for d in dims_a}
    output = [c for c in letters_a if c not in contracted] + [
        c for c in letters_b if c not in contracted
    ]
    return einsum(f"{''.join(letters_a)},{''.join(letters_b)}->{''.join(output)}", a, b)


@with_out
@tensor_method
def kron(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The Kronecker product: block ``i`` of the result is ``input[i] * other``."""
    other = _tensor_argument("kron", "other", other)
    ndim = max(input.ndim, other.ndim)
    a_shape = (1,) * (ndim - input.ndim) + tuple(input.shape)
    b_shape = (1,) * (ndim - other.ndim) + tuple(other.shape)
    # interleaved dimensions (a0, b0, a1, b1, ...), merged pairwise
    a = input.reshape(*[n for d in a_shape for n in (d, 1)])
    b = other.reshape(*[n for d in b_shape for n in (1, d)])
    return (a * b).reshape(*[i * j for i, j in zip(a_shape, b_shape)])


# ---------------------------------------------------------------------- torch's top-level names

SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])


@tensor_method
def det(input: Tensor) -> Tensor:  # noqa: A002
    return linalg.det(input)


@with_out
@tensor_method
def inverse(input: Tensor) -> Tensor:  # noqa: A002
    return linalg.inv(input)


@tensor_method
def slogdet(input: Tensor):  # noqa: A002
    return SlogdetResult(*linalg.slogdet(input))


@tensor_method
def logdet(input: Tensor) -> Tensor:  # noqa: A002
    """``log(det(input))``: nan for a negative determinant, -inf for a zero one (torch's)."""
    sign, logabsdet = linalg.slogdet(input)
    return where(sign.detach() < 0, float("nan"), logabsdet)


SvdResult = namedtuple("svd", ["U", "S", "V"])
QrResult = namedtuple("qr", ["Q", "R"])


@tensor_method
def svd(input: Tensor, some: bool = True, compute_uv: bool = True):  # noqa: A002
    """torch's older SVD: ``(U, S, V)`` with V, not Vh; without ``compute_uv``, U and V are
    zeros of shapes (m, m) and (n, n), as torch's."""
    if not compute_uv:
        m, n = input.shape[-2:]
        s = linalg.svdvals(input)
        zeros = [wrap(np.zeros(tuple(input.shape[:-2]) + (k, k), input._data.dtype))
                 for k in (m, n)]
        return SvdResult(zeros[0], s, zeros[1])
    u, s, vh = linalg.svd(input, full_matrices=not some)
    return SvdResult(u, s, vh.mT)


@tensor_method
def qr(input: Tensor, some: bool = True):  # noqa: A002
    """torch's older QR: ``some`` for mode 'reduced', else 'complete'."""
    return QrResult(*linalg.qr(input, "reduced" if some else "complete"))


@with_out
@tensor_method
def cholesky(input: Tensor, upper: bool = False) -> Tensor:  # noqa: A002
    """torch's older name of ``linalg.cholesky``."""
    return linalg.cholesky(input, upper=upper)


@tensor_method
def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:  # noqa: A002
    return linalg.pinv(input, rtol=rcond)


@tensor_method
def matrix_power(input: Tensor, n: int) -> Tensor:  # noqa: A002
    return linalg.matrix_power(input, n)
