"""Products (outer, einsum, addmm, baddbmm, addmv, bmm) and graphgrad.linalg against torch 2.13:
forward and gradients in float32 and float64, batched and edge shapes, gradcheck in float64,
torch's result types and errors, and one compiled training step. The op table
(tests/op_rows_linalg.py) adds finite differences and second order for every primitive.

Singular vectors and eigenvectors have LAPACK's signs: only sign-independent quantities are
compared (U diag(S) Vh, |U|, S, eigenvalues)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import graphgrad as gg

TOL = {"float32": (2e-5, 2e-5), "float64": (1e-11, 1e-11)}
# the deprecation notices of torch.qr and torch.cholesky (graphgrad's give none)
pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.qr is deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:torch.cholesky is deprecated:UserWarning"),
]


def spd(L, x):
    return x @ x.mT + 3 * L.eye(x.shape[-1], dtype=x.dtype)


def _compare(f, shapes, dtype, seed=0, tol=None):
    """f(lib, *tensors) in graphgrad and torch on the same inputs: outputs (a tensor or tuple)
    and the gradients of a weighted sum of them."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    results = []
    for L in (gg, torch):
        xs = [L.tensor(a, dtype=getattr(L, dtype), requires_grad=True) for a in arrays]
        outs = f(L, *xs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        weights = np.random.default_rng(1)
        loss = sum(
            (o * L.tensor(weights.uniform(0.5, 1.5, tuple(o.shape)), dtype=o.dtype)).sum()
            for o in outs
            if o.is_floating_point()
        )
        grads = L.autograd.grad(loss, xs, allow_unused=True)
        results.append(([o.detach().numpy() for o in outs], [g for g in grads]))
    (ours, our_grads), (theirs, their_grads) = results
    rtol, atol = tol or TOL[dtype]
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol, atol)
    for a, b in zip(our_grads, their_grads):
        if b is None:
            assert a is None
            continue
        assert a.dtype.name == dtype
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol, atol)


DTYPES = ["float32", "float64"]

# ---------------------------------------------------------------------- products

PRODUCTS = [
    (lambda L, a, b: L.outer(a, b), [(3,), (4,)]),
    (lambda L, a, b: L.ger(a, b), [(3,), (1,)]),
    (lambda L, a, b: a.outer(b) + a.ger(b), [(2,), (3,)]),
    (lambda L, a, b: L.einsum("ij,jk->ik", a, b), [(3, 4), (4, 2)]),
    (lambda L, a, b: L.einsum("ij,jk", [a, b]), [(3, 4), (4, 2)]),  # implicit, a list
    (lambda L, a, b: L.einsum("bij, bkj -> bik", a, b), [(2, 3, 4), (2, 5, 4)]),  # spaces
    (lambda L, a, b: L.einsum("...ij,...jk", a, b), [(2, 1, 3, 4), (5, 4, 2)]),
    (lambda L, a: L.einsum("ii", a), [(3, 3)]),
    (lambda L, a: L.einsum("...ii->...i", a), [(2, 3, 3)]),
    (lambda L, a: L.einsum("ij->ji", a), [(2, 3)]),
    (lambda L, a: L.einsum("ijk->", a), [(2, 3, 4)]),
    (lambda L, a, b: L.einsum("i,i->i", a, b), [(1,), (4,)]),  # size-1 broadcasting
    (lambda L, a, b: L.einsum("Ab,bC->AC", a, b), [(2, 3), (3, 2)]),  # upper-case letters
    (lambda L, a, b, c: L.einsum("ab,bc,cd->ad", a, b, c), [(2, 3), (3, 4), (4, 2)]),
    (lambda L, a, b: L.einsum(a, [0, 1], b, [1, 2], [0, 2]), [(2, 3), (3, 4)]),  # sublists
    (lambda L, a, b: L.einsum(a, [Ellipsis, 0], b, [0]), [(2, 3), (3,)]),
    (lambda L, a, b: L.einsum("ij,jk->ik", a, b), [(0, 3), (3, 2)]),  # empty
    (lambda L, a: L.einsum("ij->", a), [(0, 3)]),
    (lambda L, i, a, b: L.addmm(i, a, b), [(3,), (2, 4), (4, 3)]),
    (lambda L, i, a, b: L.addmm(i, a, b, beta=0.5, alpha=-2), [(2, 3), (2, 4), (4, 3)]),
    (lambda L, i, a, b: i.addmm(a, b, alpha=3), [(1, 3), (2, 4), (4, 3)]),
    (lambda L, i, a, b: L.baddbmm(i, a, b, beta=2, alpha=0.5), [(2, 1, 3), (2, 2, 4), (2, 4, 3)]),
    (lambda L, i, a, b: i.baddbmm(a, b), [(3,), (2, 2, 4), (2, 4, 3)]),
    (lambda L, i, a, b: L.addmv(i, a, b, beta=0.5, alpha=2), [(2,), (2, 4), (4,)]),
    (lambda L, i, a, b: i.addmv(a, b), [(), (2, 4), (4,)]),
    (lambda L, i, a, b: L.addbmm(i, a, b, beta=0.5, alpha=2), [(3,), (2, 2, 4), (2, 4, 3)]),
    (lambda L, i, a, b: i.addbmm(a, b), [(2, 3), (2, 2, 4), (2, 4, 3)]),
    (lambda L, i, a, b: L.addr(i, a, b, beta=2, alpha=0.5), [(2, 1), (2,), (3,)]),
    (lambda L, i, a, b: i.addr(a, b), [(2, 3), (2,), (3,)]),
    (lambda L, a, b: L.mv(a, b) + a.mv(b), [(2, 3), (3,)]),
    (lambda L, a, b: L.vdot(a, b) + a.vdot(b), [(3,), (3,)]),
    (lambda L, a, b: L.inner(a, b) + a.inner(b), [(2, 3), (4, 3)]),
    (lambda L, a, b: L.inner(a, b), [(), (4, 3)]),
    (lambda L, a, b: L.tensordot(a, b), [(2, 3, 4), (3, 4, 5)]),
    (lambda L, a, b: L.tensordot(a, b, dims=([1, 2], [1, 0])), [(2, 3, 4), (4, 3, 5)]),
    (lambda L, a, b: L.tensordot(a, b, dims=0), [(2, 3), (4,)]),
    (lambda L, a, b: L.tensordot(a, b, dims=([0], [-1])), [(3, 2), (4, 3)]),
    (lambda L, a, b: L.kron(a, b) + a.kron(b), [(2, 3), (4, 1)]),
    (lambda L, a, b: L.kron(a, b), [(3,), (2, 2, 2)]),
    (lambda L, a, b: L.bmm(a, b), [(2, 3, 4), (2, 4, 5)]),
    (lambda L, a, b: a.bmm(b), [(1, 1, 4), (1, 4, 0)]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", range(len(PRODUCTS)))
def test_products_match_torch(n, dtype):
    f, shapes = PRODUCTS[n]
    _compare(f, shapes, dtype)


def test_addmm_with_beta_zero_ignores_nan_in_input():
    out = gg.addmm(gg.full((2, 2), float("nan")), gg.eye(2), gg.eye(2), beta=0)
    expected = torch.addmm(torch.full((2, 2), float("nan")), torch.eye(2), torch.eye(2), beta=0)
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_einsum_of_integers_stays_integer_as_torch():
    a = [[1, 2], [3, 4]]
    out = gg.einsum("ij,jk->ik", gg.tensor(a), gg.tensor(a))
    expected = torch.einsum("ij,jk->ik", torch.tensor(a), torch.tensor(a))
    assert out.dtype == gg.int64 and out.tolist() == expected.tolist()


def test_einsum_second_order_matches_torch():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal((4, 4))]
    results = []
    for L in (gg, torch):
        a, b = (L.tensor(x, requires_grad=True) for x in arrays)
        out = L.einsum("ij,jk,lk->il", a, b, a).sin().sum()
        ga, gb = L.autograd.grad(out, (a, b), create_graph=True)
        results.append([x.detach().numpy() for x in L.autograd.grad((ga**2).sum(), (a, b))])
        results[-1] += [gb.detach().numpy()]
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda L: L.einsum("ij,jk", L.ones(2, 3), L.ones(2, 3)), "subscript j has size 2"),
        (lambda L: L.einsum("ij,jk->ik", L.ones(2, 3)), "fewer operands"),
        (lambda L: L.einsum("ij->ijk", L.ones(2, 3)), "output subscript k"),
        (lambda L: L.einsum("ijk", L.ones(2, 3)), "number of subscripts"),
        (lambda L: L.outer(L.ones(2, 2), L.ones(2)), "outer: Expected 1-D argument self"),
        (lambda L: L.addmm(L.ones(2, 2), L.ones(2), L.ones(2, 2)), "mat1 must be a matrix"),
        (lambda L: L.addmm(L.ones(2, 2), L.ones(2, 3), L.ones(2, 2)), "cannot be multiplied"),
        (lambda L: L.addmv(L.ones(2), L.ones(2, 3), L.ones(2)), "size mismatch"),
    ],
)
def test_product_errors_are_torchs(call, message):
    with pytest.raises(RuntimeError, match=message):
        call(torch)
    with pytest.raises(RuntimeError, match=message):
        call(gg)


# ---------------------------------------------------------------------- linalg


def _svd_invariants(L, x, full):
    u, s, vh = L.linalg.svd(x, full_matrices=full)
    k = s.shape[-1]
    u, vh = u[..., :k], vh[..., :k, :]
    return (u * s.unsqueeze(-2)) @ vh, u.abs(), s, vh.abs()


def _lstsq(L, a, b, driver=None):
    result = L.linalg.lstsq(a, b, driver=driver)
    return result.solution, result.residuals


LINALG = [
    (lambda L, x: L.linalg.inv(spd(L, x)), [(3, 3)]),
    (lambda L, x: L.linalg.inv(x + 3 * L.eye(3, dtype=x.dtype)), [(2, 3, 3)]),
    (lambda L, x: L.inverse(spd(L, x)) + spd(L, x).inverse(), [(1, 1)]),
    (lambda L, a, b: L.linalg.solve(spd(L, a), b), [(3, 3), (3,)]),
    (lambda L, a, b: L.linalg.solve(spd(L, a), b), [(2, 3, 3), (2, 3)]),  # vectors: A.shape[:-1]
    (lambda L, a, b: L.linalg.solve(spd(L, a), b), [(2, 3, 3), (3, 3)]),  # matrices, broadcast
    (lambda L, a, b: L.linalg.solve(spd(L, a), b), [(3, 3), (4, 1, 3, 2)]),
    (lambda L, a, b: L.linalg.solve(spd(L, a), b, left=False), [(2, 3, 3), (4, 3)]),
    (lambda L, x: L.linalg.det(x), [(3, 3)]),
    (lambda L, x: L.linalg.det(x) + L.det(x) + x.det(), [(2, 4, 4)]),
    (lambda L, x: L.linalg.det(x), [(0, 0)]),
    (lambda L, x: tuple(L.linalg.slogdet(x)), [(2, 3, 3)]),
    (lambda L, x: tuple(L.slogdet(x)) + tuple(x.slogdet()), [(3, 3)]),
    (lambda L, x: L.logdet(spd(L, x)) + spd(L, x).logdet(), [(2, 3, 3)]),
    (lambda L, x: L.linalg.cholesky(spd(L, x)), [(4, 4)]),
    (lambda L, x: L.linalg.cholesky(spd(L, x), upper=True), [(2, 3, 3)]),
    (lambda L, x: tuple(p.abs() for p in L.linalg.qr(x)), [(5, 3)]),
    (lambda L, x: tuple(p.abs() for p in L.linalg.qr(x)), [(2, 3, 5)]),
    (lambda L, x: tuple(p.abs() for p in L.linalg.qr(x, mode="complete")), [(3, 3)]),
    (lambda L, x: tuple(p.abs() for p in L.linalg.qr(x, mode="complete")), [(2, 4)]),
    (lambda L, x: _svd_invariants(L, x, False), [(2, 5, 3)]),
    (lambda L, x: _svd_invariants(L, x, True), [(3, 5)]),
    (lambda L, x: _svd_invariants(L, x, True), [(4, 4)]),
    (lambda L, x: L.linalg.svdvals(x), [(2, 3, 4)]),
    (lambda L, x: (lambda r: (r.eigenvalues, r.eigenvectors.abs()))(L.linalg.eigh(spd(L, x))),
     [(2, 4, 4)]),
    (lambda L, x: L.linalg.eigh(x + x.mT, UPLO="U").eigenvalues, [(3, 3)]),
    (lambda L, x: L.linalg.eigvalsh(spd(L, x)), [(3, 3)]),
    (lambda L, x: L.linalg.pinv(x), [(4, 3)]),
    (lambda L, x: L.linalg.pinv(x), [(2, 3, 5)]),
    (lambda L, a, b: _lstsq(L, a, b), [(5, 3), (5, 2)]),
    (lambda L, a, b: _lstsq(L, a, b), [(3, 5), (3,)]),
    (lambda L, a, b: _lstsq(L, a, b, "gelsd"), [(2, 5, 3), (1, 5, 2)]),
    (lambda L, a, b: _lstsq(L, a, b, "gelss"), [(5, 3), (5,)]),
    (lambda L, a, b: _lstsq(L, a, b, "gels"), [(5, 3), (5,)]),
    (lambda L, a, b: L.linalg.matmul(a, b), [(2, 3, 4), (4,)]),
    (lambda L, a, b: L.linalg.vecdot(a, b, dim=0), [(3, 4), (3, 1)]),
    (lambda L, a, b, c: L.linalg.multi_dot([a, b, c]), [(3,), (3, 4), (4, 2)]),
    (lambda L, a, b, c: L.linalg.multi_dot((a, b, c)), [(2, 3), (3, 4), (4,)]),
    (lambda L, x: L.linalg.matrix_power(x, 5), [(2, 3, 3)]),
    (lambda L, x: L.linalg.matrix_power(spd(L, x), -2), [(3, 3)]),
    (lambda L, x: L.matrix_power(x, 3) + x.matrix_power(2), [(3, 3)]),
    (lambda L, x: _old_svd(L, x, True), [(2, 4, 3)]),
    (lambda L, x: _old_svd(L, x, False), [(3, 4)]),
    (lambda L, x: tuple(L.svd(x, compute_uv=False)), [(4, 3)]),
    (lambda L, x: tuple(p.abs() for p in L.qr(x)) + tuple(p.abs() for p in x.qr(some=False)),
     [(3, 3)]),
    (lambda L, x: L.cholesky(spd(L, x)) + spd(L, x).cholesky(upper=True), [(3, 3)]),
    (lambda L, x: L.pinverse(x) + x.pinverse(rcond=1e-10), [(2, 4, 3)]),
]


def _old_svd(L, x, some):
    u, s, v = L.svd(x, some=some) if some else x.svd(some=False)
    k = s.shape[-1]
    u, v = u[..., :k], v[..., :k]
    return (u * s.unsqueeze(-2)) @ v.mT, u.abs(), s, v.abs()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", range(len(LINALG)))
def test_linalg_matches_torch(n, dtype):
    f, shapes = LINALG[n]
    _compare(f, shapes, dtype, tol=(1e-4, 1e-4) if dtype == "float32" else None)


NORMS = [
    (lambda L, x: L.linalg.vector_norm(x), [(3, 4)]),
    (lambda L, x: L.linalg.vector_norm(x, 3, dim=(0, 2), keepdim=True), [(2, 3, 4)]),
    (lambda L, x: L.linalg.vector_norm(x, 0.5, dim=-1), [(3, 4)]),
    (lambda L, x: L.linalg.vector_norm(x, -1, dim=0), [(3, 4)]),
    (lambda L, x: L.linalg.vector_norm(x, 1.5, dim=1), [(3, 4)]),
    (lambda L, x: L.linalg.vector_norm(x, 1), [(5,)]),
    (lambda L, x: L.linalg.vector_norm(x, 0, dim=1), [(3, 4)]),
    (lambda L, x: L.linalg.vector_norm(x, math.inf, dim=1), [(3, 4)]),
    (lambda L, x: L.linalg.vector_norm(x, -math.inf), [(3, 4)]),
    (lambda L, x: L.linalg.vector_norm(x, 2, dtype=L.float64), [(3,)]),
    (lambda L, x: L.linalg.vector_norm(x, 2, dim=()), [(2, 3)]),
    (lambda L, x: L.linalg.vector_norm(x), [()]),
    (lambda L, x: L.linalg.vector_norm(x, 2, dim=1), [(3, 0)]),
    (lambda L, x: L.linalg.vector_norm(x * 0, 2, dim=1), [(2, 3)]),  # zero norm: zero gradient
    (lambda L, x: L.linalg.vector_norm(x * 0, 3), [(2, 3)]),
    (lambda L, x: L.linalg.norm(x), [(2, 3, 4)]),
    (lambda L, x: L.linalg.norm(x, 3), [(4,)]),
    (lambda L, x: L.linalg.norm(x, "nuc"), [(3, 4)]),
    (lambda L, x: L.linalg.norm(x, dim=1), [(3, 4)]),
    (lambda L, x: L.linalg.norm(x, -2, dim=(2, 0), keepdim=True), [(3, 4, 2)]),
]
for _ord in ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2):
    NORMS.append((lambda L, x, o=_ord: L.linalg.matrix_norm(x, o), [(2, 3, 4)]))
    NORMS.append((lambda L, x, o=_ord: L.linalg.matrix_norm(x, o, dim=(0, 2), keepdim=True),
                  [(3, 2, 4)]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", range(len(NORMS)))
def test_norms_match_torch(n, dtype):
    f, shapes = NORMS[n]
    _compare(f, shapes, dtype, tol=(1e-5, 1e-5) if dtype == "float32" else None)


GRADCHECKS = [
    (lambda x: gg.linalg.inv(spd(gg, x)), (2, 3, 3)),
    (lambda x: gg.linalg.solve(spd(gg, x), x[..., :2]), (3, 3)),
    (lambda x: gg.linalg.det(x), (3, 3)),
    (lambda x: gg.linalg.slogdet(x).logabsdet, (2, 3, 3)),
    (lambda x: gg.linalg.cholesky(spd(gg, x)), (3, 3)),
    (lambda x: gg.linalg.qr(x).R.abs(), (4, 3)),
    (lambda x: gg.linalg.qr(x).Q.abs(), (2, 4)),
    (lambda x: gg.linalg.svd(x).U[..., :2].abs(), (2, 3)),
    (lambda x: gg.linalg.svd(x, full_matrices=False).S, (3, 2)),
    (lambda x: gg.linalg.eigh(spd(gg, x)).eigenvectors.abs(), (3, 3)),
    (lambda x: gg.linalg.pinv(x), (3, 2)),
    (lambda x: gg.linalg.lstsq(x, x.sum(-1)).solution, (4, 2)),
    (lambda x: gg.linalg.matrix_norm(x, "nuc"), (3, 3)),
    (lambda x: gg.linalg.vector_norm(x, 0.7, dim=0), (3, 2)),
    (lambda x: gg.einsum("ij,jk,kl->il", x, x.mT, x), (2, 3)),
]


@pytest.mark.parametrize("n", range(len(GRADCHECKS)))
def test_gradcheck(n):
    f, shape = GRADCHECKS[n]
    x = gg.tensor(np.random.default_rng(n).standard_normal(shape), requires_grad=True)
    assert gg.autograd.gradcheck(f, (x,))


NODE_NAMES = [
    lambda L, x: L.linalg.inv(x),
    lambda L, x: L.linalg.solve(x, x[0]),
    lambda L, x: L.linalg.det(x),
    lambda L, x: L.linalg.slogdet(x).sign,
    lambda L, x: L.linalg.cholesky(spd(L, x), upper=True),
    lambda L, x: L.linalg.qr(x).Q,
    lambda L, x: L.linalg.svd(x).Vh,
    lambda L, x: L.linalg.svdvals(x),
    lambda L, x: L.linalg.eigh(x).eigenvalues,
    lambda L, x: L.linalg.vector_norm(x, 3),
    lambda L, x: L.linalg.matrix_norm(x),
    lambda L, x: L.addmm(x, x, x),
    lambda L, x: L.baddbmm(x, x[None], x[None]),
    lambda L, x: L.addmv(x[0], x, x[1], beta=0),
    lambda L, x: L.outer(x[0], x[1]),
    lambda L, x: L.linalg.pinv(x),
    lambda L, x: L.linalg.lstsq(x, x).solution,
]


@pytest.mark.parametrize("n", range(len(NODE_NAMES)))
def test_node_names_are_torchs(n):
    x = np.random.default_rng(0).standard_normal((3, 3))
    ours = NODE_NAMES[n](gg, gg.tensor(x, requires_grad=True))
    theirs = NODE_NAMES[n](torch, torch.tensor(x, requires_grad=True))
    assert repr(ours.grad_fn).split()[0] == repr(theirs.grad_fn).split()[0]


def test_det_of_a_singular_matrix_has_the_cofactor_gradient():
    """torch's create_graph gradient (its first-order one is zero for an exactly singular
    matrix: graphgrad gives the cofactors in both modes)."""
    a = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]
    results = []
    for L in (gg, torch):
        x = L.tensor(a, dtype=L.float64, requires_grad=True)
        (grad,) = L.autograd.grad(L.linalg.det(x), x, create_graph=True)
        results.append(grad.detach().numpy())
    x = gg.tensor(a, dtype=gg.float64, requires_grad=True)
    gg.linalg.det(x).backward()
    results.append(x.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[2], results[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "matrix",
    [np.eye(3), [[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]], [[1.0, 0.0, 2.0], [2.0, 0.0, 4.0]]],
    ids=["repeated", "rank-1-tall", "rank-1-wide"],
)
def test_pinv_and_lstsq_gradients_at_repeated_and_zero_singular_values(matrix):
    results = []
    for L in (gg, torch):
        x = L.tensor(matrix, dtype=L.float64, requires_grad=True)
        b = L.ones(x.shape[0], 2, dtype=L.float64, requires_grad=True)
        loss = (L.linalg.pinv(x) * 1.5).sum() + L.linalg.lstsq(x, b).solution.sum()
        results.append([t.numpy() for t in L.autograd.grad(loss, (x, b))])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_svdvals_of_repeated_singular_values_have_a_gradient():
    results = []
    for L in (gg, torch):
        x = L.eye(3, dtype=L.float64, requires_grad=True)
        L.linalg.svdvals(x).sum().backward()
        results.append(x.grad.numpy())
    np.testing.assert_allclose(*results, rtol=1e-12, atol=1e-12)


def test_result_types_are_torchs_named_tuples():
    a = np.random.default_rng(0).standard_normal((4, 3))
    for fn, fields in [
        ("slogdet", ("sign", "logabsdet")),
        ("qr", ("Q", "R")),
        ("svd", ("U", "S", "Vh")),
        ("eigh", ("eigenvalues", "eigenvectors")),
        ("lstsq", ("solution", "residuals", "rank", "singular_values")),
    ]:
        square = fn in ("slogdet", "eigh")
        args_np = [a[:3] if square else a] + ([a[:, 0]] if fn == "lstsq" else [])
        ours = getattr(gg.linalg, fn)(*[gg.tensor(x) for x in args_np])
        theirs = getattr(torch.linalg, fn)(*[torch.tensor(x) for x in args_np])
        assert ours._fields == fields
        assert type(ours).__name__ == type(theirs).__name__
        for mine, ref in zip(ours, [getattr(theirs, name) for name in fields]):
            assert tuple(mine.shape) == tuple(ref.shape), fn
            assert mine.dtype.name == str(ref.dtype).removeprefix("torch.")
    for fn in ("slogdet", "svd", "qr"):
        ours, theirs = getattr(gg, fn)(gg.eye(2)), getattr(torch, fn)(torch.eye(2))
        assert type(ours).__name__ == type(theirs).__name__
        assert all(hasattr(theirs, name) for name in ours._fields)


def test_lstsq_rank_and_qr_mode_r_as_torch():
    a = np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 1.0], [1.0, 3.0]])
    a[:, 1] = 2 * a[:, 0]  # rank 1
    b = np.arange(4.0)
    ours = gg.linalg.lstsq(gg.tensor(a), gg.tensor(b))
    theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b))
    assert ours.rank.item() == theirs.rank.item() == 1
    np.testing.assert_allclose(ours.solution.numpy(), theirs.solution.numpy(), 1e-12, 1e-12)
    assert gg.linalg.matrix_rank(gg.tensor(a)).item() == torch.linalg.matrix_rank(
        torch.tensor(a)).item()
    x = gg.tensor(a, requires_grad=True)
    q, r = gg.linalg.qr(x, mode="r")
    ref = torch.linalg.qr(torch.tensor(a), mode="r")
    assert tuple(q.shape) == tuple(ref.Q.shape) == (0,)
    np.testing.assert_allclose(r.detach().numpy(), ref.R.numpy(), 1e-12, 1e-12)
    with pytest.raises(RuntimeError, match="mode='r'"):
        r.sum().backward()


def _singular(L):
    return L.tensor([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.linalg.inv(_singular(L)),
        lambda L: L.linalg.inv(_singular(L).expand(2, 3, 3)),
        lambda L: L.linalg.inv(L.ones(2, 3)),
        lambda L: L.linalg.inv(L.ones(3)),
        lambda L: L.linalg.inv(L.ones(2, 2, dtype=L.int64)),
        lambda L: L.linalg.det(L.ones(2, 3)),
        lambda L: L.linalg.eigh(L.ones(2, 3)),
        lambda L: L.linalg.cholesky(L.tensor([[1.0, 2.0], [2.0, 1.0]])),
        lambda L: L.linalg.cholesky(L.stack([L.eye(3), -L.eye(3)])),
        lambda L: L.linalg.solve(L.eye(3), L.ones(4)),
        lambda L: L.linalg.solve(_singular(L), L.ones(3)),
        lambda L: L.linalg.matrix_norm(L.ones(3, 3), 3),
        lambda L: L.linalg.matrix_norm(L.ones(3)),
        lambda L: L.linalg.norm(L.ones(2, 3, 3), 2),
        lambda L: L.linalg.vector_norm(L.ones(0), math.inf),
        lambda L: L.linalg.vector_norm(L.arange(3)),
        lambda L: L.linalg.vector_norm(L.ones(2, 3), dim=[0, 0]),
        lambda L: L.linalg.matrix_norm(L.ones(3, 3), dim=(0, -2)),
        lambda L: L.linalg.norm(L.ones(3), "fro"),
        lambda L: L.linalg.solve(L.eye(3), L.ones(3), left=False),
        lambda L: L.linalg.solve(L.eye(3), L.ones(3, dtype=L.float64)),
        lambda L: L.linalg.svd(L.ones(3)),
        lambda L: L.linalg.qr(L.ones(3, 2, requires_grad=True), "complete").Q.sum().backward(),
    ],
)
def test_errors_are_torchs(call):
    with pytest.raises(RuntimeError) as theirs:
        call(torch)
    with pytest.raises(RuntimeError) as ours:
        call(gg)
    assert str(ours.value) == str(theirs.value)
    is_linalg_error = isinstance(theirs.value, torch.linalg.LinAlgError)
    assert isinstance(ours.value, gg.linalg.LinAlgError) == is_linalg_error


def _with_nan(L):
    nan = L.tensor([[float("nan"), 1.0], [1.0, 1.0]])
    return L.stack([nan, 2 * L.eye(2)])


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.linalg.inv(_with_nan(L)),
        lambda L: L.linalg.solve(_with_nan(L), L.ones(3, 1, 2, 1)),
        lambda L: L.linalg.det(_with_nan(L)),
        lambda L: L.stack(list(L.linalg.slogdet(_with_nan(L)))),
        lambda L: L.linalg.eigvalsh(_with_nan(L)[1:]),
    ],
)
def test_a_nan_matrix_gives_nans_as_torch(call):
    np.testing.assert_array_equal(call(gg).numpy(), call(torch).numpy())


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.linalg.svd(_with_nan(L)),
        lambda L: L.linalg.pinv(_with_nan(L)),
        lambda L: L.linalg.svdvals(_with_nan(L)),
        lambda L: L.linalg.cholesky(_with_nan(L)),
        lambda L: L.linalg.cholesky(L.tensor([[1.0, 0.0], [float("nan"), 1.0]])),
    ],
)
def test_a_nan_matrix_fails_as_in_torch(call):
    with pytest.raises(torch.linalg.LinAlgError) as theirs:
        call(torch)
    with pytest.raises(gg.linalg.LinAlgError) as ours:
        call(gg)
    assert str(ours.value) == str(theirs.value)


def test_solve_refuses_batches_that_do_not_broadcast():
    with pytest.raises(RuntimeError):
        torch.linalg.solve(torch.eye(3).expand(2, 3, 3), torch.ones(4, 3, 1))
    with pytest.raises(RuntimeError, match=r"linalg.solve: the batch dimensions \[2\] and \[4\]"):
        gg.linalg.solve(gg.eye(3).expand(2, 3, 3), gg.ones(4, 3, 1))


def test_a_compiled_step_through_linalg_gives_the_eager_bits():
    rng = np.random.default_rng(0)
    targets = [gg.tensor(rng.standard_normal((3, 3))) for _ in range(4)]

    def train(compiled):
        w = gg.tensor(np.eye(3) + 0.1 * rng_w.standard_normal((3, 3)), requires_grad=True)
        opt = gg.optim.SGD([w], lr=0.01)

        def step(t):
            opt.zero_grad()
            a = w @ w.mT + gg.eye(3, dtype=w.dtype)
            u, s, vh = gg.linalg.svd(w)
            loss = (gg.linalg.solve(a, t) ** 2).sum() + gg.linalg.slogdet(a).logabsdet
            loss = loss + gg.linalg.cholesky(a).sum() + s.sum() + gg.linalg.inv(a).sum()
            loss = loss + gg.linalg.eigh(a).eigenvalues.sum() + gg.linalg.qr(w).R.abs().sum()
            loss = loss + gg.linalg.det(w) + gg.einsum("ij,jk->", w, t)
            loss = loss + gg.linalg.vector_norm(w, 3) + gg.linalg.pinv(w).sum()
            loss = loss + gg.linalg.lstsq(w, t).solution.sum() + gg.addmm(t, w, t, beta=0.5).sum()
            loss.backward()
            opt.step()
            return loss

        run = gg.compile(step, fullgraph=True) if compiled else step
        losses = [run(t).detach().numpy().copy() for t in targets]
        return losses, w.detach().numpy().copy(), run

    rng_w = np.random.default_rng(1)
    eager = train(False)
    rng_w = np.random.default_rng(1)
    compiled = train(True)
    for a, b in zip(eager[0], compiled[0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(eager[1], compiled[1])
    assert compiled[2].recordings == 2
