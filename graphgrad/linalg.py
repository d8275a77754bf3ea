"""``graphgrad.linalg``: torch.linalg's names, arguments and results, with gradients.

The decompositions are primitives of ``ops/decomp.py`` (NumPy's LAPACK forward, torch's gradient
formulas); norms, pinv and lstsq are built on them.

>>> import graphgrad as gg
>>> a = gg.tensor([[4.0, 1.0], [1.0, 3.0]], requires_grad=True)
>>> gg.linalg.det(a).item()
11.0
>>> gg.linalg.det(a).backward()
>>> a.grad.tolist()
[[3.0, -1.0], [-1.0, 4.0]]
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .ops import OPS
from .ops.decomp import qr_cores, svd_cores
from .tensor import Tensor, apply, matmul, with_out, wrap

matmul = with_out(matmul)  # torch.linalg.matmul is torch.matmul

__all__ = [
    "LinAlgError", "inv", "solve", "det", "slogdet", "cholesky", "qr", "svd", "svdvals", "eigh",
    "eigvalsh", "lstsq", "pinv", "matrix_rank", "norm", "vector_norm", "matrix_norm", "matmul",
    "multi_dot", "vecdot", "matrix_power",
]


_part = OPS["decomp_part"]


class LinAlgError(RuntimeError):
    """A matrix the operation cannot handle: singular, not positive-definite (torch's)."""


SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
QRResult = namedtuple("linalg_qr", ["Q", "R"])
SVDResult = namedtuple("linalg_svd", ["U", "S", "Vh"])
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])


# torch names dtypes in these messages by its C++ scalar types
_SCALAR_TYPES = {"float64": "Double", "float32": "Float", "float16": "Half", "int64": "Long",
                 "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _scalar_type(x: Tensor) -> str:
    return _SCALAR_TYPES.get(x.dtype.name, x.dtype.name)


def _not_floating(name: str, x: Tensor) -> RuntimeError:
    return RuntimeError(
        f"{name}: Expected a floating point or complex tensor as input. Got {_scalar_type(x)}"
    )


def _matrices(name: str, a, square: bool = True, arg: str = "A") -> Tensor:
    """Check ``a`` is a float batch of (square) matrices, as torch's linalg functions do."""
    if not isinstance(a, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' must be Tensor, not {type(a).__name__}")
    if a.ndim < 2:
        raise RuntimeError(
            f"{name}: The input tensor {arg} must have at least 2 dimensions."
        )
    if not a.is_floating_point():
        raise _not_floating(name, a)
    if square and a.shape[-1] != a.shape[-2]:
        raise RuntimeError(
            f"{name}: {arg} must be batches of square matrices, but they are "
            f"{a.shape[-2]} by {a.shape[-1]} matrices"
        )
    return a


def _run(name: str, op: str, inputs: tuple, params: tuple = ()) -> Tensor:
    """``apply``, with a failed factorisation raised as torch raises it: LinAlgError."""
    try:
        return apply(OPS[op], inputs, params)
    except RuntimeError as exc:
        detail = str(exc).removeprefix(f"{op}: ")
        raise LinAlgError(f"{name}: {detail}") from None


def _unpack(packed: Tensor, cores: list) -> list:
    """The results of a packed decomposition (``ops.decomp.pack``), each its own tensor."""
    total, start, parts = packed.shape[-1], 0, []
    for core in cores:
        stop = start + math.prod(core)
        parts.append(apply(_part, (packed,), (start, stop, tuple(core), total)))
        start = stop
    return parts


# ---------------------------------------------------------------------- inverse, solve, det


@with_out
def inv(A: Tensor) -> Tensor:  # noqa: N803 - torch's argument name
    """The inverse of each square matrix; its gradient is ``-A^-T g A^-T``."""
    return _run("linalg.inv", "linalg_inv", (_matrices("linalg.inv", A),))


@with_out
def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803
    """``X`` with ``A @ X = B`` (``X @ A = B`` when not ``left``). B is a batch of vectors when
    it is 1-D or has the shape ``A.shape[:-1]`` (torch's rule), else of matrices; batch
    dimensions broadcast.

    >>> import graphgrad as gg
    >>> gg.linalg.solve(gg.tensor([[2.0, 0.0], [0.0, 4.0]]), gg.tensor([2.0, 2.0])).tolist()
    [1.0, 0.5]
    """
    _matrices("linalg.solve", A)
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve(): argument 'B' must be Tensor, not {type(B).__name__}")
    if A.dtype != B.dtype:
        raise RuntimeError(
            f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
            f"{_scalar_type(A)} and B of type {_scalar_type(B)} instead"
        )
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    n = A.shape[-1]
    rows, cols = (B.shape[-1], 1) if vector else (B.shape[-2], B.shape[-1])
    if (rows if left else cols) != n or (vector and not left):
        raise RuntimeError(
            f"linalg.solve: Incompatible shapes of A and B for the equation "
            f"{'AX' if left else 'XA'} = B ({n}x{n} and {rows}x{cols})"
        )
    if not left:  # X A = B is A^T X^T = B^T
        return solve(A.mT, B.mT).mT
    _broadcast_batch("linalg.solve", A.shape[:-2], B.shape[:-1] if vector else B.shape[:-2])
    return _run("torch.linalg.solve", "linalg_solve", (A, B), (vector,))


def _broadcast_batch(name: str, a: tuple, b: tuple) -> tuple:
    try:
        return np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        raise RuntimeError(
            f"{name}: the batch dimensions {list(a)} and {list(b)} do not broadcast"
        ) from None


@with_out
def det(A: Tensor) -> Tensor:  # noqa: N803
    """The determinant; its gradient is the cofactor matrix, also for a singular matrix (as
    torch's under create_graph; torch's first-order gradient of an exactly singular matrix is
    zero instead)."""
    return _run("linalg.det", "linalg_det", (_matrices("linalg.det", A),))


def slogdet(A: Tensor) -> SlogdetResult:  # noqa: N803
    """``(sign, logabsdet)`` with ``det = sign * exp(logabsdet)``; sign has no gradient."""
    packed = _run("linalg.slogdet", "linalg_slogdet", (_matrices("linalg.slogdet", A),))
    return SlogdetResult(*_unpack(packed, [(), ()]))


# ---------------------------------------------------------------------- factorisations


@with_out
def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:  # noqa: N803
    """``L`` lower-triangular with ``A = L @ L.mT`` (``U = L.mT`` when ``upper``), from A's
    lower triangle."""
    A = _matrices("linalg.cholesky", A)  # noqa: N806
    return _run("linalg.cholesky", "linalg_cholesky", (A,), (bool(upper),))


def qr(A: Tensor, mode: str = "reduced") -> QRResult:  # noqa: N803
    """``A = Q @ R``; mode 'reduced' (k = min(m, n) columns of Q), 'complete' (m), or 'r' (R
    only, Q empty, as torch, and then not differentiable)."""
    _matrices("linalg.qr", A, square=False)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
            "'r', or 'complete'"
        )
    packed = _run("linalg.qr", "linalg_qr", (A,), (mode,))
    if mode == "r":  # Q is not computed: torch returns it empty
        (r,) = _unpack(packed, qr_cores(A.shape, mode))
        return QRResult(wrap(np.empty((0,), A._data.dtype)), r)
    return QRResult(*_unpack(packed, qr_cores(A.shape, mode)))


def svd(A: Tensor, full_matrices: bool = True, *, driver=None) -> SVDResult:  # noqa: N803
    """``A = U @ diag(S) @ Vh``, S descending. The singular vectors' signs are LAPACK's; a loss
    that depends on them has no derivative (torch's caveat): differentiate U @ diag(S) @ Vh,
    S, |U| and the like."""
    _matrices("linalg.svd", A, square=False)
    cores = svd_cores(A.shape, full_matrices)
    packed = _run("linalg.svd", "linalg_svd", (A,), (bool(full_matrices),))
    return SVDResult(*_unpack(packed, cores))


@with_out
def svdvals(A: Tensor, *, driver=None) -> Tensor:  # noqa: N803
    """The singular values, descending."""
    _matrices("linalg.svdvals", A, square=False)
    packed = _run("linalg.svd", "linalg_svd", (A,), (False,))
    return _unpack(packed, svd_cores(A.shape, False))[1]


def eigh(A: Tensor, UPLO: str = "L") -> EighResult:  # noqa: N803
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices, read from the triangle
    ``UPLO``; the eigenvectors' signs are LAPACK's."""
    _matrices("linalg.eigh", A)
    _check_uplo("linalg.eigh", UPLO)
    n = A.shape[-1]
    packed = _run("linalg.eigh", "linalg_eigh", (A,), (UPLO,))
    return EighResult(*_unpack(packed, [(n,), (n, n)]))


@with_out
def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:  # noqa: N803
    _matrices("linalg.eigvalsh", A)
    _check_uplo("linalg.eigvalsh", UPLO)
    n = A.shape[-1]
    return _unpack(_run("linalg.eigvalsh", "linalg_eigh", (A,), (UPLO,)), [(n,), (n, n)])[0]


def _check_uplo(name: str, uplo) -> None:
    if uplo not in ("L", "U"):
        raise RuntimeError(f"{name}: Expected UPLO argument to be 'L' or 'U', but got {uplo}")


# ---------------------------------------------------------------------- from the SVD


def _tolerances(shape: tuple, dtype, atol, rtol) -> tuple:
    """torch's ``(atol, rtol)``: rtol defaults to eps * max(m, n) when neither is given, else
    to 0 (the cut-off is ``max(atol, rtol * S_max)``)."""
    if rtol is None:
        rtol = np.finfo(dtype).eps * max(shape[-2:]) if atol is None else 0.0
    return (0.0 if atol is None else float(atol)), float(rtol)


@with_out
def pinv(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:  # noqa: N803
    """The pseudo-inverse from the SVD, singular values at or below the cut-off dropped
    (``hermitian`` is accepted; the SVD serves symmetric matrices too)."""
    _matrices("linalg.pinv", A, square=False)
    params = _tolerances(A.shape, A._data.dtype, atol, rtol)
    return _run("linalg.svd", "linalg_pinv", (A,), params)  # torch names the SVD that fails


@with_out
def matrix_rank(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:  # noqa
    """How many singular values exceed the cut-off (int64)."""
    _matrices("linalg.matrix_rank", A, square=False)
    s = svdvals(A.detach())._data
    atol, rtol = _tolerances(A.shape, s.dtype, atol, rtol)
    largest = s.max(-1, keepdims=True, initial=0.0)
    return wrap((s > np.maximum(atol, rtol * largest)).sum(-1).astype(np.int64))


def lstsq(A: Tensor, B: Tensor, rcond=None, *, driver=None) -> LstsqResult:  # noqa: N803
    """The least-squares (minimum-norm) solution of ``A @ X = B``, with torch's results per
    driver: for the default 'gelsy' the residuals and singular values are empty; 'gelsd' and
    'gelss' give the singular values; every driver but 'gelsy' the residuals when m > n and A
    has full rank, and every driver but 'gels' the rank. The gradient is torch's, through the
    pseudo-inverse."""
    _matrices("linalg.lstsq", A, square=False)
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.lstsq(): argument 'B' must be Tensor, not {type(B).__name__}")
    if A.dtype != B.dtype:
        raise RuntimeError(
            f"torch.linalg.lstsq: Expected input and other to have the same dtype, but got "
            f"input's dtype {_scalar_type(A)} and other's dtype {_scalar_type(B)}"
        )
    driver = "gelsy" if driver is None else driver
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise RuntimeError(
            f"torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, "
            f"gelss), but got {driver}"
        )
    vector = B.ndim == A.ndim - 1  # torch's rule for lstsq (solve's differs)
    matrix_b = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2:]
    if matrix_b.ndim < 2 or matrix_b.shape[-2] != m:
        raise RuntimeError(
            f"torch.linalg.lstsq: input.size(-2) should match other.size(-2), got {m} and "
            f"{matrix_b.shape[-2] if matrix_b.ndim >= 2 else B.shape[-1]}"
        )
    rtol = None if rcond is None or rcond < 0 else rcond
    _broadcast_batch("torch.linalg.lstsq", A.shape[:-2], matrix_b.shape[:-2])
    _, rtol_or_default = _tolerances(A.shape, A._data.dtype, None, rtol)
    solution = _run("torch.linalg.lstsq", "linalg_lstsq", (A, matrix_b), (rtol_or_default,))
    empty = wrap(np.empty((0,), A._data.dtype))
    if driver == "gels":  # QR without pivoting: no rank, A assumed of full rank
        rank, full_rank = wrap(np.empty((0,), np.int64)), True
    else:
        rank = matrix_rank(A, rtol=rtol)
        full_rank = bool((rank._data == min(m, n)).all())
    values = svdvals(A.detach()) if driver in ("gelsd", "gelss") else empty
    residuals = empty
    if driver != "gelsy" and m > n and full_rank:
        residuals = ((matmul(A, solution) - matrix_b) ** 2).sum(-2)  # (..., 1) for a vector B
    return LstsqResult(solution.squeeze(-1) if vector else solution, residuals, rank, values)


# ---------------------------------------------------------------------- norms


def _float_input(name: str, x, dtype) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'x' must be Tensor, not {type(x).__name__}")
    if dtype is not None:
        x = x.to(dtype)
    if not x.is_floating_point():
        raise _not_floating(name, x)
    return x


def _axes(dim, ndim: int):
    """torch's dim (None or an empty list: every dimension) as sorted non-negative axes."""
    dims = () if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    if not dims:
        return None
    axes = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
                f"{max(ndim, 1) - 1}], but got {d})"
            )
        axes.append(d % max(ndim, 1))
    if len(set(axes)) != len(axes):
        repeated = next(d for d in axes if axes.count(d) > 1)
        raise RuntimeError(f"dim {repeated} appears multiple times in the list of dims")
    return tuple(sorted(axes)) if ndim else None


@with_out
def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """``sum(|x|^ord)^(1/ord)`` over ``dim`` (all elements when None); ord may be inf, -inf, 0
    (the count of non-zeros) or any real number. The gradient is zero where the norm is.

    >>> import graphgrad as gg
    >>> gg.linalg.vector_norm(gg.tensor([3.0, -4.0])).item()
    5.0
    """
    x = _float_input("linalg.vector_norm", x, dtype)
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(
            f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, not "
            f"{type(ord).__name__}"
        )
    axis = _axes(dim, x.ndim)
    if x.numel() == 0 and ord in (math.inf, -math.inf) or (x.numel() == 0 and ord < 0):
        name = "inf" if ord == math.inf else "-inf" if ord == -math.inf else str(ord)
        raise RuntimeError(
            f"linalg.vector_norm cannot compute the {name} norm on an empty tensor because the "
            "operation does not have an identity"
        )
    return apply(OPS["vector_norm"], (x,), (float(ord), axis, bool(keepdim)))


_MATRIX_ORDS = ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)


@with_out
def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None):  # noqa
    """torch's matrix norms: 'fro', 'nuc' (sum of singular values), 2 / -2 (largest / smallest
    singular value), inf / -inf (max / min row sum of |A|), 1 / -1 (max / min column sum)."""
    A = _float_input("linalg.matrix_norm", A, dtype)  # noqa: N806
    if A.ndim < 2:
        raise RuntimeError(
            "linalg.matrix_norm: The input tensor A must have at least 2 dimensions."
        )
    if ord not in _MATRIX_ORDS:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if isinstance(dim, int) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}")
    row, col = (_axes(d, A.ndim)[0] for d in dim)
    if row == col:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({row}, {col})")
    if ord == "fro":
        return vector_norm(A, 2, (row, col), keepdim)
    if ord in ("nuc", 2, -2):
        rest = [d for d in range(A.ndim) if d not in (row, col)]
        s = svdvals(A.permute(*rest, row, col))
        out = s.sum(-1) if ord == "nuc" else s.amax(-1) if ord == 2 else s.amin(-1)
    else:
        summed, over = (col, row) if ord in (math.inf, -math.inf) else (row, col)
        sums = A.abs().sum(summed, keepdim=True)
        out = sums.amax(over, True) if ord > 0 else sums.amin(over, True)
        out = out.squeeze((row, col))
    if keepdim:
        for d in sorted((row, col)):
            out = out.unsqueeze(d)
    return out


@with_out
def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """A vector norm over one dim (or all elements when ord and dim are None), a matrix norm
    over two, as torch.linalg.norm chooses."""
    A = _float_input("linalg.norm", A, dtype)  # noqa: N806
    if isinstance(ord, str):  # 'fro' and 'nuc' are matrix norms, as torch routes them
        return matrix_norm(A, ord, (-2, -1) if dim is None else dim, keepdim)
    if dim is not None:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        if len(dims) == 1:
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim)
        if len(dims) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim)
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. "
                           f"Got {list(dims)}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim)
    raise RuntimeError(
        f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
        f"Got {A.ndim}D."
    )


# ---------------------------------------------------------------------- products


@with_out
def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """``sum(x * y, dim)`` (real tensors: no conjugation)."""
    return (x * y).sum(dim)


@with_out
def multi_dot(tensors) -> Tensor:
    """The product of a chain of matrices; the first and the last may be vectors."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for position, t in (("first", tensors[0]), ("last", tensors[-1])):
        if t.ndim not in (1, 2):
            raise RuntimeError(
                f"multi_dot(): the {position} tensor must be 1D or 2D but got {t.ndim}D"
            )
    for i, t in enumerate(tensors[1:-1], start=1):
        if t.ndim != 2:
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {t.ndim}D")
    out = tensors[0]
    for t in tensors[1:]:
        out = matmul(out, t)
    return out


@with_out
def matrix_power(A: Tensor, n: int) -> Tensor:  # noqa: N803
    """``A`` multiplied by itself ``n`` times (by squaring); ``inv(A)`` to the power ``-n``
    for negative ``n``, the identity for 0."""
    _matrices("linalg.matrix_power", A)
    if n == 0:
        eye = np.broadcast_to(np.eye(A.shape[-1], dtype=A._data.dtype), tuple(A.shape))
        return wrap(eye.copy())
    base = inv(A) if n < 0 else A
    result, n = None, abs(n)
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result
