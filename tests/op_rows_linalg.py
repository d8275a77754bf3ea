"""Op-table rows: products and graphgrad.linalg (graphgrad/ops/decomp.py).

A decomposition's row differentiates a quantity that does not depend on LAPACK's choice of signs
(|U|, |Q|, eigenvalues...), of a well-conditioned matrix built from the input in both libraries
(x @ x.mT + 3 I: symmetric positive-definite, as eigh and cholesky read one triangle only)."""

import math

import numpy as np
from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401


def spd(L, x):
    return x @ x.mT + 3 * L.eye(x.shape[-1], dtype=x.dtype)


def spd_np(x):
    return x @ np.swapaxes(x, -1, -2) + 3 * np.eye(x.shape[-1])


def _flat(L, *parts):
    return L.cat([p.flatten(-2) if p.ndim > 1 else p for p in parts], -1)


def _flat_np(*parts):
    return np.concatenate([p.reshape(-1) for p in parts])


def _qr_np(x):
    q, r = np.linalg.qr(x)
    return _flat_np(np.abs(q), np.abs(r))


def _svd_np(x):
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    return _flat_np(np.abs(u), s, np.abs(vh))


def _eigh_np(x):
    values, vectors = np.linalg.eigh(spd_np(x))
    return _flat_np(values, np.abs(vectors))


def _norm_np(x, ord, axis):  # noqa: A002
    if ord == math.inf:
        return np.abs(x).max(axis)
    return (np.abs(x) ** ord).sum(axis) ** (1 / ord)


ROWS: list[OpCase] = [
    OpCase(  # the results of a packed decomposition, here S and |Vh| of one SVD
        "decomp_part",
        lambda L, x: (lambda r: r.S.sum() + r.Vh.abs().sum(-1))(L.linalg.svd(x)),
        lambda x: (lambda u, s, vh: s.sum() + np.abs(vh).sum(-1))(*np.linalg.svd(x)),
        [((3, 2),), ((2, 3, 3),)],
    ),
    OpCase(
        "einsum",
        lambda L, a, b: L.einsum("bij,bjk->bik", a, b),
        lambda a, b: np.einsum("bij,bjk->bik", a, b),
        [((2, 3, 4), (2, 4, 2)), ((1, 3, 4), (2, 4, 2))],
    ),
    OpCase(
        "einsum",
        lambda L, a, b: L.einsum("...ij,j->...i", a, b),
        lambda a, b: np.einsum("...ij,j->...i", a, b),
        [((2, 3, 4), (4,)), ((3, 4), (4,))],
    ),
    OpCase(
        "einsum",
        lambda L, a, b, c: L.einsum("i,ij,j", a, b, c),
        lambda a, b, c: np.einsum("i,ij,j", a, b, c),
        [((3,), (3, 4), (4,))],
    ),
    OpCase(  # a diagonal and a letter summed in one operand alone
        "einsum",
        lambda L, a, b: L.einsum("iij,k->ik", a, b),
        lambda a, b: np.einsum("iij,k->ik", a, b),
        [((3, 3, 2), (4,))],
    ),
    OpCase(
        "addmm",
        lambda L, i, a, b: L.addmm(i, a, b, beta=0.5, alpha=-2),
        lambda i, a, b: 0.5 * i - 2 * (a @ b),
        [((3,), (2, 4), (4, 3)), ((2, 3), (2, 4), (4, 3))],
    ),
    OpCase(
        "addmm",
        lambda L, i, a, b: L.baddbmm(i, a, b, beta=0.0),
        lambda i, a, b: a @ b,
        [((2, 1, 3), (2, 2, 4), (2, 4, 3))],
    ),
    OpCase(
        "addmm",
        lambda L, i, a, b: L.addmv(i, a, b, alpha=3),
        lambda i, a, b: i + 3 * (a @ b),
        [((2,), (2, 4), (4,)), ((), (3, 2), (2,))],
    ),
    OpCase(
        "linalg_inv",
        lambda L, x: L.linalg.inv(spd(L, x)),
        lambda x: np.linalg.inv(spd_np(x)),
        [((3, 3),), ((2, 3, 3),)],
    ),
    OpCase(
        "linalg_solve",
        lambda L, a, b: L.linalg.solve(spd(L, a), b),
        lambda a, b: np.linalg.solve(spd_np(a), b[..., None] if b.ndim == 1 else b).reshape(
            np.broadcast_shapes(a.shape[:-1], b.shape) if b.ndim == 1 else
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:]),
        [((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((3, 3), (2, 3, 1))],
    ),
    OpCase(
        "linalg_det",
        lambda L, x: L.linalg.det(x),
        np.linalg.det,
        [((3, 3),), ((2, 2, 2),), ((1, 1),)],
    ),
    OpCase(
        "linalg_slogdet",
        lambda L, x: L.linalg.slogdet(x).logabsdet,
        lambda x: np.linalg.slogdet(x)[1],
        [((3, 3),), ((2, 2, 2),)],
    ),
    OpCase(
        "linalg_cholesky",
        lambda L, x: L.linalg.cholesky(spd(L, x)),
        lambda x: np.linalg.cholesky(spd_np(x)),
        [((3, 3),), ((2, 2, 2),)],
    ),
    OpCase(
        "linalg_cholesky",
        lambda L, x: L.linalg.cholesky(spd(L, x), upper=True),
        lambda x: np.swapaxes(np.linalg.cholesky(spd_np(x)), -1, -2),
        [((2, 3, 3),)],
    ),
    OpCase(
        "linalg_qr",
        lambda L, x: _flat(L, *(p.abs() for p in L.linalg.qr(x))),
        _qr_np,
        [((4, 3),), ((3, 3),), ((2, 4),)],
    ),
    OpCase(
        "linalg_svd",
        lambda L, x: _flat(L, *(p.abs() for p in L.linalg.svd(x, full_matrices=False))),
        _svd_np,
        [((4, 3),), ((3, 3),), ((2, 4),)],
    ),
    OpCase(
        "linalg_svd",
        lambda L, x: L.linalg.svdvals(x),
        lambda x: np.linalg.svd(x, compute_uv=False),
        [((4, 3),), ((2, 2, 3),)],
    ),
    OpCase(
        "linalg_pinv",
        lambda L, x: L.linalg.pinv(x),
        np.linalg.pinv,
        [((4, 3),), ((2, 2, 4),), ((3, 3),)],
    ),
    OpCase(
        "linalg_lstsq",
        lambda L, a, b: L.linalg.lstsq(a, b).solution,
        lambda a, b: np.linalg.lstsq(a, b, rcond=None)[0],
        [((5, 3), (5, 2)), ((2, 4), (2, 3))],
    ),
    OpCase(
        "linalg_eigh",
        lambda L, x: _flat(L, *(p.abs() for p in L.linalg.eigh(spd(L, x)))),
        _eigh_np,
        [((3, 3),)],
    ),
    OpCase(
        "linalg_eigh",
        lambda L, x: L.linalg.eigvalsh(spd(L, x)),
        lambda x: np.linalg.eigvalsh(spd_np(x)),
        [((2, 3, 3),)],
    ),
]

for _ord in (2, 3, 1.5, 0.5, 1, math.inf):
    ROWS.append(
        OpCase(
            "vector_norm",
            lambda L, x, o=_ord: L.linalg.vector_norm(x, o, dim=-1),
            lambda x, o=_ord: _norm_np(x, o, -1),
            [((3, 4),), ((5,),)],
            distinct=True,  # no ties for inf, no zeros for the kinks of 1 and below
        )
    )
