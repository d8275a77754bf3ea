"""Matrix decompositions and solvers behind graphgrad.linalg, and einsum (issue 13).

The gradients are torch's formulas (torch/csrc/autograd/FunctionsManual.cpp). A decomposition with
several results (qr, svd, eigh, slogdet) is one primitive whose output packs them side by side in
its last axis, each flattened per matrix (:func:`pack`); the tensor layer slices them out, and the
slices' gradients arrive here packed the same way. Matrices are real, so ``^H`` is ``^T``.
"""

import math

import numpy as np

from . import Op, register

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------- einsum


def explicit_subscripts(equation: str, ndims: list) -> str:
    """torch's einsum equation with every dimension named by a letter and the output explicit:
    ``'...'`` becomes letters (right-aligned, so they broadcast as torch's do) and an implicit
    output is the ellipsis then the letters seen once, in order (torch's and NumPy's rule)."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        more = "more" if len(ndims) > len(terms) else "fewer"
        raise RuntimeError(
            f"einsum(): {more} operands were provided than specified in the equation"
        )
    for i, term in enumerate(terms):
        if term.count("...") > 1:
            raise RuntimeError(
                f"einsum(): found '.' for operand {i} for which an ellipsis was already found"
            )
    for index, c in enumerate(equation):
        if c not in LETTERS and c not in ".,->":
            raise RuntimeError(
                f"einsum(): invalid subscript given at index {index} in the equation string, "
                "subscripts must be in [a-zA-Z]"
            )
    named = [len(t.replace("...", "")) for t in terms]
    for i, (term, n, ndim) in enumerate(zip(terms, named, ndims)):
        if ("..." in term and n > ndim) or ("..." not in term and n != ndim):
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({n}) does not match the "
                f"number of dimensions ({ndim}) for operand {i}"
                + ("" if "..." in term else " and no ellipsis was given")
            )
    spare = [c for c in LETTERS if c not in equation]
    width = max([ndim - n for term, n, ndim in zip(terms, named, ndims) if "..." in term] + [0])
    ellipsis = "".join(spare[:width])
    if not arrow:
        seen_once = sorted(c for c in set(inputs) if c in LETTERS and inputs.count(c) == 1)
        output = ("..." if "..." in inputs else "") + "".join(seen_once)
    for c in output.replace("...", ""):
        if output.count(c) > 1:
            raise RuntimeError(
                f"einsum(): output subscript {c} appears more than once in the output"
            )
        if c not in inputs:
            raise RuntimeError(
                f"einsum(): output subscript {c} does not appear in the equation for any input "
                "operand"
            )
    terms = [t.replace("...", ellipsis[width - (nd - n):]) for t, n, nd in zip(terms, named, ndims)]
    return ",".join(terms) + "->" + output.replace("...", ellipsis)


@register
class Einsum(Op):
    """``np.einsum`` on explicit subscripts (:func:`explicit_subscripts`). The gradient of each
    operand is einsum again: the output's gradient with the other operands, onto the operand's
    subscripts; a letter only that operand has is spread by a ones vector, a repeated letter (a
    diagonal) by an identity matrix."""

    name, grad_fn_name = "einsum", "EinsumBackward0"

    @staticmethod
    def forward(*args):
        *operands, subscripts = args
        # NumPy's path search costs tens of microseconds; it pays for chains and large operands.
        big = len(operands) > 2 or sum(op.size for op in operands) > 4096
        return np.einsum(subscripts, *operands, optimize=big)

    @staticmethod
    def vjp(ctx, g, *operands):
        xp = ctx.xp
        (subscripts,) = ctx.params
        inputs, output = subscripts.split("->")
        terms = inputs.split(",")
        spare = iter(c for c in LETTERS if c not in subscripts)
        grads = []
        for i, need in enumerate(ctx.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            others = [j for j in range(len(terms)) if j != i]
            available = {}  # letter -> its size among the gradient and the other operands
            for term, array in [(output, g)] + [(terms[j], operands[j]) for j in others]:
                for letter, size in zip(term, array.shape):
                    available[letter] = max(size, available.get(letter, 1))
            x = operands[i]
            subs, arrays, target = [output], [g], []
            subs += [terms[j] for j in others]
            arrays += [operands[j] for j in others]
            for letter, size in zip(terms[i], x.shape):
                if letter in target:  # a repeated letter: the gradient lies on the diagonal
                    fresh = next(spare)
                    subs.append(letter + fresh)
                    arrays.append(xp.eye_like(x, size))
                    target.append(fresh)
                    continue
                if available.get(letter, -1) < size:  # summed here alone, or broadcast from 1
                    subs.append(letter)
                    arrays.append(xp.ones_vector(x, size))
                    available[letter] = size
                target.append(letter)
            grads.append(xp.einsum(",".join(subs) + "->" + "".join(target), *arrays))
        return tuple(grads)

    @staticmethod
    def error(*args):
        *operands, subscripts = args
        shapes = " ".join(str(list(op.shape)) for op in operands)
        return f"operands of shapes {shapes} do not broadcast for the equation {subscripts!r}"


# ---------------------------------------------------------------------- addmm


@register
class Addmm(Op):
    """``beta * input + alpha * (a @ b)``, one op for addmm (matrices), baddbmm (batches) and
    addmv (a matrix and a vector). With beta 0 the input is not read (nan stays out), as
    torch's; its gradient is then zero."""

    name, grad_fn_name = "addmm", "AddmmBackward0"

    @classmethod
    def node_name(cls, node):
        a, b = node.arrays[1:]
        if a.ndim == 3:
            return "BaddbmmBackward0"
        return "AddmvBackward0" if b.ndim == 1 else cls.grad_fn_name

    @staticmethod
    def forward(input, a, b, beta, alpha):  # noqa: A002 - torch's name
        out = np.matmul(a, b)
        if alpha != 1:
            out = out * alpha
        if beta == 0:
            return np.broadcast_to(out, np.broadcast_shapes(out.shape, input.shape)).copy()
        return out + (input if beta == 1 else input * beta)

    @staticmethod
    def vjp(ctx, g, input, a, b):  # noqa: A002
        xp = ctx.xp
        beta, alpha = ctx.params
        need_input, need_a, need_b = ctx.needs_input_grad
        scaled = g if alpha == 1 else g * alpha
        ga = gb = None
        if need_a:
            if b.ndim == 1:  # addmv: the outer product of g and the vector
                ga = xp.expand_dims(scaled, (1,)) * xp.expand_dims(b, (0,))
            else:
                ga = scaled @ _t(xp, b)
        if need_b:
            gb = _t(xp, a) @ scaled
        return (g * beta if need_input else None), ga, gb


# ---------------------------------------------------------------------- packing


def pack(*parts: np.ndarray, batch: tuple) -> np.ndarray:
    """``parts`` (each ``batch + core``) flattened per matrix and laid side by side."""
    flat = [p.reshape(batch + (math.prod(p.shape[len(batch):]),)) for p in parts]
    return np.concatenate(flat, axis=-1)


def unpack(xp, packed, cores: list) -> list:
    """The parts of a :func:`pack`'ed array (or tensor) back, with core shapes ``cores``."""
    batch = tuple(packed.shape[:-1])
    parts, start = [], 0
    for core in cores:
        size = math.prod(core)
        parts.append(xp.reshape(xp.narrow(packed, len(batch), start, start + size), batch + core))
        start += size
    return parts


@register
class DecompPart(Op):
    """One result of a packed decomposition: ``packed[..., start:stop]`` in its own shape. Its
    node takes the decomposition's name (S.grad_fn is LinalgSvdBackward0, as torch's)."""

    name, grad_fn_name, saves = "decomp_part", "ViewBackward0", False
    vjp_reads_inputs = False

    @classmethod
    def node_name(cls, node):
        parent = getattr(node.inputs[0], "grad_fn", None)
        return parent.op.node_name(parent) if parent is not None else cls.grad_fn_name

    @staticmethod
    def forward(packed, start, stop, core, total):
        # A copy: an in-place change to one result must not change the saved decomposition.
        return packed[..., start:stop].reshape(packed.shape[:-1] + core).copy()

    @staticmethod
    def vjp(ctx, g, packed):
        start, stop, core, total = ctx.params
        batch = tuple(g.shape[: g.ndim - len(core)])
        return (ctx.xp.embed_last(ctx.xp.reshape(g, batch + (stop - start,)), start, total),)


def _t(xp, x):
    return xp.matrix_transpose(x)


def _column(xp, v):
    """``v[..., :, None]``."""
    return xp.expand_dims(v, (v.ndim,))


def _row(xp, v):
    """``v[..., None, :]``."""
    return xp.expand_dims(v, (v.ndim - 1,))


def _diag_embed(xp, v):
    return _column(xp, v) * xp.eye_like(v, v.shape[-1])


def _right_solve(xp, a, b):
    """``X`` with ``X @ a = b``."""
    return _t(xp, xp.solve(_t(xp, a), _t(xp, b)))


# ---------------------------------------------------------------------- inverse, solve, det


def batch_prefix(batch_index: int | None) -> str:
    return "" if batch_index is None else f"(Batch element {batch_index}): "


def first_failure(failed: np.ndarray):
    """The flat index of the first failed matrix of a batch (None when not batched), with the
    failure's number, as torch reports the first LAPACK ``info`` that is not zero."""
    flat = failed.reshape(-1)
    first = int(np.flatnonzero(flat)[0])
    return (None if failed.ndim == 0 else first), int(flat[first])


def zero_pivots(a: np.ndarray) -> np.ndarray:
    """Per matrix, the 1-based position of the first zero pivot of its LU factorisation with
    partial pivoting (LAPACK getrf's ``info``), 0 when there is none. For error messages only:
    it runs one NumPy step per column."""
    n = a.shape[-1]
    u = a.reshape((-1, n, n)).astype(np.float64)
    info = np.zeros(len(u), dtype=np.int64)
    rows = np.arange(len(u))
    for k in range(n):
        pivot = k + np.argmax(np.abs(u[:, k:, k]), axis=1)
        u[rows, k], u[rows, pivot] = u[rows, pivot], u[rows, k].copy()
        diagonal = u[:, k, k]
        info[(diagonal == 0) & (info == 0)] = k + 1
        factors = u[:, k + 1:, k] / np.where(diagonal == 0, 1.0, diagonal)[:, None]
        u[:, k + 1:, k:] -= factors[:, :, None] * u[:, None, k, k:]
    return info.reshape(a.shape[:-2])


def has_nan(a: np.ndarray) -> np.ndarray:
    """Per matrix of a batch: does it hold a nan? LAPACK's results are then nan, as torch gives
    them, where NumPy raises or returns numbers."""
    return np.isnan(a).any(axis=(-2, -1))


def _solved(solver, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``solver(a, b)`` (b a batch of matrices, batches broadcast); a matrix holding a nan
    gives nans instead of NumPy's "singular" error."""
    try:
        return solver(a, b)
    except np.linalg.LinAlgError:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = np.broadcast_to(a, batch + a.shape[-2:])
        b = np.broadcast_to(b, batch + b.shape[-2:])
        nan = has_nan(a)
        if not nan.any():
            raise
        out = np.full(batch + b.shape[-2:], np.nan, np.result_type(a, b))
        out[~nan] = solver(a[~nan], b[~nan])
        return out


def singular_message(a: np.ndarray) -> str:
    a = np.where(has_nan(a)[..., None, None], np.eye(a.shape[-1]), a)  # nan is no failure
    index, pivot = first_failure(zero_pivots(a))
    return (
        f"{batch_prefix(index)}The diagonal element {pivot} is zero, the inversion could not "
        "be completed because the input matrix is singular."
    )


@register
class LinalgInv(Op):
    name, grad_fn_name = "linalg_inv", "LinalgInvExBackward0"
    vjp_reads_inputs, vjp_reads_output = False, True

    @staticmethod
    def forward(a):
        return _solved(lambda a, _: np.linalg.inv(a), a, a)

    @staticmethod
    def vjp(ctx, g, a):
        inverse_t = _t(ctx.xp, ctx.out)
        return (-(inverse_t @ (g @ inverse_t)),)

    @staticmethod
    def error(a):
        return singular_message(a)


@register
class LinalgSolve(Op):
    """``X`` with ``A @ X = B``, B a batch of matrices; batch dimensions broadcast."""

    name, grad_fn_name = "linalg_solve", "LinalgSolveExBackward0"
    vjp_reads_output = True

    @staticmethod
    def forward(a, b, vector):
        if vector:  # b is a batch of vectors: solved as one-column matrices
            return _solved(np.linalg.solve, a, b[..., None])[..., 0]
        return _solved(np.linalg.solve, a, b)

    @staticmethod
    def vjp(ctx, g, a, b):
        xp = ctx.xp
        (vector,) = ctx.params
        x = ctx.out
        if vector:
            g, x = _column(xp, g), _column(xp, x)
        gb = xp.solve(_t(xp, a), g)
        ga = -(gb @ _t(xp, x)) if ctx.needs_input_grad[0] else None
        if vector:
            gb = xp.reshape(gb, tuple(gb.shape[:-1]))
        return ga, gb

    @staticmethod
    def error(a, b, vector):
        return "The solver failed because the input matrix is singular."


@register
class LinalgDet(Op):
    """The determinant; its gradient is the cofactor matrix ``det(A) A^-T`` (a solve), or, when
    A is singular, torch's product-of-the-other-singular-values form."""

    name, grad_fn_name = "linalg_det", "LinalgDetBackward0"
    vjp_reads_output = True

    @staticmethod
    def forward(a):
        with np.errstate(invalid="ignore"):  # a nan: NumPy's LU warns, and may return 0
            return np.where(has_nan(a), np.nan, np.linalg.det(a))

    @staticmethod
    def vjp(ctx, g, a):
        xp = ctx.xp
        scale = _column(xp, _column(xp, g * ctx.out))
        if xp.any_zero(ctx.out):  # a singular matrix: no solve
            return (_singular_det_grad(xp, g, a),)
        return (xp.solve(_t(xp, a), scale * xp.eye_like(a, a.shape[-1])),)


def _singular_det_grad(xp, g, a):
    """``g * cofactor(A)`` from the SVD: ``det(U) det(Vh) U diag(prod of the other S) Vh``."""
    n = a.shape[-1]
    u, s, vh = unpack(xp, xp.primitive("linalg_svd", (a,), (False,)), [(n, n), (n,), (n, n)])
    sign = xp.primitive("linalg_det", (u,), ()) * xp.primitive("linalg_det", (vh,), ())
    others = xp.prod_of_others(s, (s.ndim - 1,))
    return (u * _row(xp, others * _column(xp, g * sign))) @ vh


@register
class LinalgSlogdet(Op):
    """``(sign, log|det|)`` packed in a last axis of 2; only log|det| has a gradient: A^-T."""

    name, grad_fn_name = "linalg_slogdet", "LinalgSlogdetBackward0"

    @staticmethod
    def forward(a):
        with np.errstate(invalid="ignore"):
            sign, logabsdet = np.linalg.slogdet(a)
        logabsdet = np.where(has_nan(a), np.nan, logabsdet)  # torch's (sign 0, logabsdet nan)
        return np.stack([sign, logabsdet], axis=-1)

    @staticmethod
    def vjp(ctx, g, a):
        xp = ctx.xp
        g_logabsdet = xp.narrow(g, g.ndim - 1, 1, 2)  # (..., 1)
        return (xp.solve(_t(xp, a), _column(xp, g_logabsdet) * xp.eye_like(a, a.shape[-1])),)


# ---------------------------------------------------------------------- cholesky, qr


def not_positive_definite_message(a: np.ndarray) -> str:
    """torch's message: the first leading minor whose factorisation step fails."""
    n = a.shape[-1]
    failed = np.zeros(a.shape[:-2], dtype=np.int64)
    for k in range(n, 0, -1):  # the smallest failing order wins: fill from the largest down
        minor = a[..., :k, :k].astype(np.float64)
        with np.errstate(invalid="ignore"):
            sign, _ = np.linalg.slogdet(minor)
        failed[(sign <= 0) | has_nan(minor)] = k
    if not failed.any():  # positive minors yet a failed factorisation: rounding at the last one
        failed[...] = n
    index, order = first_failure(failed)
    return (
        f"{batch_prefix(index)}The factorization could not be completed because the input is "
        f"not positive-definite (the leading minor of order {order} is not positive-definite)."
    )


@register
class LinalgCholesky(Op):
    """Lower-triangular ``L`` with ``A = L L^T``, from A's lower triangle."""

    name, grad_fn_name = "linalg_cholesky", "LinalgCholeskyExBackward0"
    vjp_reads_inputs, vjp_reads_output = False, True

    @staticmethod
    def forward(a, upper):
        low = np.linalg.cholesky(a)
        if np.isnan(low).any():  # a nan in A's lower triangle: LAPACK's potrf fails, as torch's
            raise np.linalg.LinAlgError("not positive-definite")
        return np.swapaxes(low, -1, -2).copy() if upper else low

    @staticmethod
    def vjp(ctx, g, a):
        # Iain Murray (2016), arXiv 1602.07527, as torch's cholesky_backward:
        # gA = L^-T Phi(L^T gL) L^-1, Phi symmetrising the lower triangle with the diagonal halved.
        xp = ctx.xp
        (upper,) = ctx.params
        low = _t(xp, ctx.out) if upper else ctx.out
        g = _t(xp, g) if upper else g
        ga = (_t(xp, low) @ g) * xp.tril_mask(low, 0)
        ga = 0.5 * (ga + _t(xp, ga * xp.tril_mask(low, -1)))
        ga = xp.solve(_t(xp, low), ga)
        return (_right_solve(xp, low, ga),)

    @staticmethod
    def error(a, upper):
        return not_positive_definite_message(a)


def qr_cores(shape: tuple, mode: str) -> list:
    """The shapes of Q and R (of R alone for mode 'r')."""
    m, n = shape[-2:]
    k = m if mode == "complete" else min(m, n)
    return [(k, n)] if mode == "r" else [(m, k), (k, n)]


@register
class LinalgQr(Op):
    """``(Q, R)`` packed, for mode 'reduced' or 'complete'; R alone for mode 'r', which has no
    gradient (as torch's, which needs Q)."""

    name, grad_fn_name = "linalg_qr", "LinalgQrBackward0"
    vjp_reads_output = True

    @staticmethod
    def forward(a, mode):
        if mode == "r":
            return pack(np.linalg.qr(a, mode="r"), batch=a.shape[:-2])
        q, r = np.linalg.qr(a, mode=mode)
        return pack(q, r, batch=a.shape[:-2])

    @staticmethod
    def vjp(ctx, g, a):
        xp = ctx.xp
        (mode,) = ctx.params
        m, n = a.shape[-2:]
        if mode == "r":
            raise RuntimeError(
                "The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
                "Please use linalg.qr(A, mode='reduced') if you are going to differentiate "
                "through linalg.qr."
            )
        if mode == "complete" and m > n:
            raise RuntimeError(
                "The QR decomposition is not differentiable when mode='complete' and "
                "nrows > ncols."
            )
        cores = qr_cores(a.shape, mode)
        q, r = unpack(xp, ctx.out, cores)
        gq, gr = unpack(xp, g, cores)
        if m >= n:
            return (_qr_tall_grad(xp, gq, gr, q, r),)
        # A = Q [R1 R2] with R2 = Q^T A2: A2 adds Q gR2 and moves A2 gR2^T onto gQ.
        a2 = xp.narrow(a, a.ndim - 1, m, n)
        gr2 = xp.narrow(gr, gr.ndim - 1, m, n)
        ga1 = _qr_tall_grad(
            xp, gq + a2 @ _t(xp, gr2), xp.narrow(gr, gr.ndim - 1, 0, m), q,
            xp.narrow(r, r.ndim - 1, 0, m),
        )
        return (xp.concat_last([ga1, q @ gr2]),)


def _qr_tall_grad(xp, gq, gr, q, r):
    """torch's linalg_qr_backward for m >= n: ``(gQ + Q syminvadj(triu(gR R^T - Q^T gQ))) R^-T``,
    syminvadj(X) = X + X^T with the diagonal halved."""
    core = gr @ _t(xp, r) - _t(xp, q) @ gq
    core = core * _t(xp, xp.tril_mask(core, 0))  # its upper triangle
    core = core + _t(xp, core) - core * xp.eye_like(r, r.shape[-2])
    return _right_solve(xp, _t(xp, r), gq + q @ core)


# ---------------------------------------------------------------------- svd, eigh


def svd_error(a: np.ndarray) -> str | None:
    finite = np.isfinite(a).all(axis=(-2, -1))
    if finite.all():
        return None
    index, _ = first_failure(~finite)
    return (
        f"{batch_prefix(index)}The algorithm failed to converge because the input matrix "
        "contained non-finite values."
    )


def svd_cores(shape: tuple, full_matrices: bool) -> list:
    m, n = shape[-2:]
    k = min(m, n)
    return [(m, m if full_matrices else k), (k,), (n if full_matrices else k, n)]


@register
class LinalgSvd(Op):
    """``(U, S, Vh)`` packed (NumPy's gesdd, as torch's CPU default)."""

    name, grad_fn_name = "linalg_svd", "LinalgSvdBackward0"
    vjp_reads_output = True  # and the input's shape

    @staticmethod
    def forward(a, full_matrices):
        u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
        return pack(u, s, vh, batch=a.shape[:-2])

    @staticmethod
    def error(a, full_matrices):
        return svd_error(a)

    @staticmethod
    def vjp(ctx, g, a):
        xp = ctx.xp
        (full_matrices,) = ctx.params
        cores = svd_cores(a.shape, full_matrices)
        (m, _), (k,), (_, n) = cores
        u, s, vh = unpack(xp, ctx.out, cores)
        gu, gs, gvh = unpack(xp, g, cores)
        if full_matrices:  # only the first k singular vectors enter A
            u, gu = xp.narrow(u, u.ndim - 1, 0, k), xp.narrow(gu, gu.ndim - 1, 0, k)
            vh, gvh = xp.narrow(vh, vh.ndim - 2, 0, k), xp.narrow(gvh, gvh.ndim - 2, 0, k)
        return (_svd_grad(xp, gu, gs, gvh, u, s, vh, m, n),)


def _svd_grad(xp, gu, gs, gvh, u, s, vh, m, n):
    """torch's svd_backward (real case); a loss of S alone takes its shortcut U diag(gS) Vh,
    which holds for repeated singular values too."""
    if xp.is_zero(gu) and xp.is_zero(gvh):
        return u @ (_column(xp, gs) * vh) if m >= n else (u * _row(xp, gs)) @ vh
    uhgu = _t(xp, u) @ gu
    vhgv = vh @ _t(xp, gvh)
    uhgu, vhgv = uhgu - _t(xp, uhgu), vhgv - _t(xp, vhgv)
    s2 = s * s
    e = _row(xp, s2) - _column(xp, s2) + xp.eye_like(s, s.shape[-1])
    ga = (uhgu * _row(xp, s) + _column(xp, s) * vhgv) / e + _diag_embed(xp, gs)
    if m > n:  # gA = [U gA + (I - U U^T) gU S^-1] Vh
        gu_sinv = gu / _row(xp, s)
        ga = u @ ga + gu_sinv - u @ (_t(xp, u) @ gu_sinv)
        return ga @ vh
    if m < n:  # gA = U [gA Vh + S^-1 gVh (I - V Vh)]
        sinv_gvh = gvh / _column(xp, s)
        ga = ga @ vh + sinv_gvh - (sinv_gvh @ _t(xp, vh)) @ vh
        return u @ ga
    return u @ (ga @ vh)


@register
class LinalgEigh(Op):
    """``(eigenvalues, eigenvectors)`` of a symmetric matrix (from the triangle UPLO), packed."""

    name, grad_fn_name = "linalg_eigh", "LinalgEighBackward0"
    vjp_reads_output = True  # and the input's shape

    @staticmethod
    def forward(a, uplo):
        values, vectors = np.linalg.eigh(a, UPLO=uplo)
        return pack(values, vectors, batch=a.shape[:-2])

    @staticmethod
    def vjp(ctx, g, a):
        # torch's linalg_eig_backward, Hermitian case.
        xp = ctx.xp
        n = a.shape[-1]
        values, vectors = unpack(xp, ctx.out, [(n,), (n, n)])
        g_values, g_vectors = unpack(xp, g, [(n,), (n, n)])
        if xp.is_zero(g_vectors):  # eigvalsh: V diag(gL) V^T
            return ((vectors * _row(xp, g_values)) @ _t(xp, vectors),)
        vhgv = _t(xp, vectors) @ g_vectors
        vhgv = 0.5 * (vhgv - _t(xp, vhgv))
        e = _row(xp, values) - _column(xp, values) + xp.eye_like(values, n)
        inner = vhgv / e + _diag_embed(xp, g_values)
        return (vectors @ (inner @ _t(xp, vectors)),)


# ---------------------------------------------------------------------- pinv, lstsq


def pinv_forward(a, atol, rtol):
    """torch's pseudo-inverse: ``Vh^T diag(1/S) U^T`` over the singular values above
    ``max(atol, rtol * S_max)``."""
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    largest = s[..., :1] if s.shape[-1] else np.zeros(s.shape[:-1] + (1,), s.dtype)
    kept = s > np.maximum(atol, rtol * largest)
    s_inverse = np.where(kept, 1 / np.where(kept, s, 1), 0).astype(a.dtype)
    return np.matmul(np.swapaxes(vh, -1, -2) * s_inverse[..., None, :], np.swapaxes(u, -1, -2))


@register
class LinalgPinv(Op):
    """The pseudo-inverse; torch's pinv_backward, which holds for repeated and zero singular
    values (a gradient through the SVD would divide by their differences)."""

    name, grad_fn_name = "linalg_pinv", "LinalgPinvBackward0"
    vjp_reads_output = True
    forward = staticmethod(pinv_forward)

    @staticmethod
    def error(a, atol, rtol):
        return svd_error(a)

    @staticmethod
    def vjp(ctx, g, a):
        return (_pinv_grad(ctx.xp, g, ctx.out, a),)


def _pinv_grad(xp, g, pinv, a):
    """torch's pinv_backward, arranged so that the products are of the smaller dimension."""
    m, n = a.shape[-2:]
    pinv_t, g_t = _t(xp, pinv), _t(xp, g)
    if m <= n:
        k = g_t @ pinv
        k_pinv_t = k @ pinv_t
        return (-_t(xp, pinv @ k) + k_pinv_t - (a @ pinv) @ k_pinv_t
                + (pinv_t @ pinv) @ (g_t - k @ a))
    k = pinv @ g_t
    pinv_t_k = pinv_t @ k
    return (-_t(xp, k @ pinv) + ((g_t - a @ k) @ pinv) @ pinv_t + pinv_t_k
            - (pinv_t_k @ pinv) @ a)


@register
class LinalgLstsq(Op):
    """The minimum-norm least-squares solution ``pinv(A) @ B`` (B a batch of matrices), with
    torch's linalg_lstsq_backward: through the pseudo-inverse."""

    name, grad_fn_name = "linalg_lstsq", "LinalgLstsqBackward0"

    @staticmethod
    def forward(a, b, rtol):
        return np.matmul(pinv_forward(a, 0.0, rtol), b)

    @staticmethod
    def vjp(ctx, g, a, b):
        xp = ctx.xp
        (rtol,) = ctx.params
        pinv = xp.primitive("linalg_pinv", (a,), (0.0, rtol))
        need_a, need_b = ctx.needs_input_grad
        ga = _pinv_grad(xp, g @ _t(xp, b), pinv, a) if need_a else None
        return ga, (_t(xp, pinv) @ g if need_b else None)


# ---------------------------------------------------------------------- vector norm


@register
class VectorNorm(Op):
    """``sum(|x|^ord)^(1/ord)`` over ``axis`` (None or a tuple), with inf, -inf and 0; the
    gradient is torch's norm_backward, zero where the norm is zero."""

    name, grad_fn_name = "vector_norm", "LinalgVectorNormBackward0"
    vjp_reads_output = True

    @staticmethod
    def forward(x, ord, axis, keepdims):  # noqa: A002 - torch's name
        if ord == 2:
            return np.sqrt(np.add.reduce(x * x, axis=axis, keepdims=keepdims))
        magnitude = np.abs(x)
        if ord == math.inf:
            return np.max(magnitude, axis=axis, keepdims=keepdims)
        if ord == -math.inf:
            return np.min(magnitude, axis=axis, keepdims=keepdims)
        if ord == 0:
            return np.add.reduce((x != 0).astype(x.dtype), axis=axis, keepdims=keepdims)
        if ord == 1:
            return np.add.reduce(magnitude, axis=axis, keepdims=keepdims)
        total = np.add.reduce(magnitude**ord, axis=axis, keepdims=keepdims)
        return total ** (1.0 / ord)

    @staticmethod
    def vjp(ctx, g, x):
        xp = ctx.xp
        ord, axis, keepdims = ctx.params  # noqa: A001
        norm = ctx.out
        if axis is not None and not keepdims:
            g, norm = xp.expand_dims(g, axis), xp.expand_dims(norm, axis)
        sign = xp.sign(x)
        magnitude = x * sign
        if ord == 0:  # piecewise constant: torch returns no gradient
            return (None,)
        if ord == 1:
            return (sign * g,)
        if ord in (math.inf, -math.inf):  # amax/amin of |x|: ties share the gradient
            mask = xp.cast(magnitude == norm, x.dtype)
            return (sign * (g / xp.sum(mask, axis, keepdims=True)) * mask,)
        zero_norm = norm == 0
        safe_norm = xp.where(zero_norm, 1.0, norm)
        if ord == 2:
            return (x * xp.where(zero_norm, 0.0, g / safe_norm),)
        if ord < 1:
            zero = x == 0
            scaled = sign * xp.where(zero, 0.0, xp.where(zero, 1.0, magnitude) ** (ord - 1))
            return (scaled * g * norm ** (1 - ord),)
        scale = xp.where(zero_norm, 0.0, g / safe_norm ** (ord - 1))
        if ord < 2:
            return (sign * magnitude ** (ord - 1) * scale,)
        return (x * magnitude ** (ord - 2) * scale,)

    @staticmethod
    def error(x, ord, axis, keepdims):  # noqa: A002
        if x.size == 0:
            return (
                f"Expected a non-empty tensor for the reduction of ord={ord} over {axis} "
                f"(input shape {tuple(x.shape)})"
            )
        return f"dim {axis} is out of range for a tensor of shape {tuple(x.shape)}"
