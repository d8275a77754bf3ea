"""L-BFGS: torch.optim.LBFGS's algorithm, step for step, with its optional strong-Wolfe line
search (``_strong_wolfe`` and ``_cubic_interpolate`` as in torch/optim/lbfgs.py).

torch keeps most of the algorithm's scalars as 0-d tensors of the parameters' dtype (dot
products, the step ``t``, ``H_diag``) and some as Python floats (the losses): here they are
NumPy scalars and Python floats in the same places, and NumPy's scalar promotion (NEP 50) is
torch's, so float32 runs round where torch's do.
"""

from __future__ import annotations

import numpy as np

from .. import _state, engine
from ..autograd import enable_grad, no_grad
from ..tensor import Tensor, wrap
from .optimizer import Optimizer


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clipped
    to ``bounds`` (default: between x1 and x2)."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """A line search along ``d`` from the point ``x`` (loss ``f``, gradient ``g``, slope ``gtd``)
    for a step ``t`` meeting the strong Wolfe conditions; returns the loss and gradient there,
    the step and the number of evaluations."""
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    # bracket an interval containing a point satisfying the conditions
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # interpolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:  # reached the maximum number of iterations
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom: shrink the bracket until a point satisfies the conditions
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        # keep away from the bracket's ends unless progress stalls
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    t = bracket[low_pos]
    return bracket_f[low_pos], bracket_g[low_pos], t, ls_func_evals


class LBFGS(Optimizer):
    """L-BFGS (torch.optim.LBFGS): quasi-Newton steps from a history of gradient changes.
    ``step(closure)`` runs up to ``max_iter`` iterations, each evaluating ``closure`` (which
    zeroes the gradients, computes the loss, calls ``backward`` and returns the loss). One
    parameter group only; the parameters must share a dtype.

    >>> import graphgrad as gg
    >>> w = gg.tensor([3.0, -2.0], requires_grad=True)
    >>> opt = LBFGS([w], line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = ((w - 1) ** 2).sum()
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> [round(v, 4) for v in w.tolist()]
    [1.0, 1.0]
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                    "history_size": history_size, "line_search_fn": line_search_fn}
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        dtypes = {p._data.dtype for g in self.param_groups for p in g["params"]}
        if len(dtypes) > 1:
            raise TypeError(f"LBFGS: all parameters must have one dtype, got "
                            f"{sorted(map(str, dtypes))}")

    def _gather_flat_grad(self) -> np.ndarray:
        return np.concatenate([np.zeros(p._data.size, p._data.dtype) if p.grad is None
                               else p.grad._data.reshape(-1) for p in self._params])

    def _add_grad(self, step_size, update: np.ndarray) -> None:
        offset = 0
        for p in self._params:
            data = p._data
            add_scaled_(data, update[offset:offset + data.size].reshape(data.shape), step_size)
            offset += data.size

    def _clone_param(self) -> list:
        return [p._data.copy() for p in self._params]

    def _set_param(self, params_data: list) -> None:
        for p, data in zip(self._params, params_data):
            np.copyto(p._data, data)

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    @_state.replayed  # so that graphgrad.compile refuses it by name: it takes a closure
    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; return the loss ``closure()`` gave first.
        torch's algorithm in one piece, so that it reads side by side with torch's."""

        def evaluate():
            with enable_grad():
                return closure()

        group = self.param_groups[0]
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        line_search_fn, history_size = group["line_search_fn"], group["history_size"]
        self._opt_called = True
        with no_grad():
            state = self.state[self._params[0]]
            state.setdefault("func_evals", 0)
            state.setdefault("n_iter", 0)
            orig_loss = evaluate()
            loss = float(orig_loss)
            current_evals = 1
            state["func_evals"] += 1
            flat_grad = self._gather_flat_grad()
            opt_cond = np.abs(flat_grad).max() <= tolerance_grad  # the optimality condition
            if opt_cond:
                return orig_loss
            d, t = _array(state.get("d")), _number(state.get("t"))
            old_dirs = [_array(v) for v in state.get("old_dirs", [])]
            old_stps = [_array(v) for v in state.get("old_stps", [])]
            ro = [_number(v) for v in state.get("ro", [])]
            h_diag = _number(state.get("H_diag"))
            prev_flat_grad = _array(state.get("prev_flat_grad"))
            prev_loss = state.get("prev_loss")
            al = [_number(v) for v in state["al"]] if "al" in state else None
            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1
                # the descent direction
                if state["n_iter"] == 1:
                    d = -flat_grad
                    old_dirs, old_stps, ro = [], [], []
                    h_diag = 1
                else:
                    y = flat_grad - prev_flat_grad
                    s = d * t
                    ys = y.dot(s)
                    if ys > 1e-10:  # update the memory
                        if len(old_dirs) == history_size:
                            old_dirs.pop(0)
                            old_stps.pop(0)
                            ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(np.reciprocal(ys))  # torch's 1.0 / tensor
                        h_diag = ys / y.dot(y)
                    # two-loop recursion for the inverse Hessian times the gradient
                    num_old = len(old_dirs)
                    if al is None:
                        al = [None] * history_size
                    q = -flat_grad
                    for i in range(num_old - 1, -1, -1):
                        al[i] = old_stps[i].dot(q) * ro[i]
                        add_scaled_(q, old_dirs[i], -al[i])
                    d = r = q * h_diag
                    for i in range(num_old):
                        be_i = old_dirs[i].dot(r) * ro[i]
                        add_scaled_(r, old_stps[i], al[i] - be_i)
                prev_flat_grad = flat_grad.copy()
                prev_loss = loss
                # the step length
                if state["n_iter"] == 1:
                    t = min(1.0, np.reciprocal(np.abs(flat_grad).sum())) * lr
                else:
                    t = lr
                gtd = flat_grad.dot(d)  # the directional derivative
                if gtd > -tolerance_change:
                    break
                ls_func_evals = 0
                if line_search_fn is not None:
                    if line_search_fn != "strong_wolfe":
                        raise RuntimeError("only 'strong_wolfe' is supported")
                    x_init = self._clone_param()

                    def obj_func(x, t, d):
                        return self._directional_evaluate(evaluate, x, t, d)

                    loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                        obj_func, x_init, t, d, loss, flat_grad, gtd,
                        max_ls=max_eval - current_evals)
                    self._add_grad(t, d)
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                else:
                    self._add_grad(t, d)  # a fixed step
                    if n_iter != max_iter:
                        loss = float(evaluate())
                        flat_grad = self._gather_flat_grad()
                        opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                        ls_func_evals = 1
                current_evals += ls_func_evals
                state["func_evals"] += ls_func_evals
                # the stopping conditions
                if (n_iter == max_iter or current_evals >= max_eval or opt_cond
                        or np.abs(d * t).max() <= tolerance_change
                        or abs(loss - prev_loss) < tolerance_change):
                    break
            for p in self._params:
                engine.mark_modified(p)
        state["d"], state["t"] = wrap(d), _tensor(t)
        state["old_dirs"], state["old_stps"] = list(map(wrap, old_dirs)), list(map(wrap, old_stps))
        state["ro"], state["H_diag"] = list(map(_tensor, ro)), _tensor(h_diag)
        state["prev_flat_grad"], state["prev_loss"] = wrap(prev_flat_grad), prev_loss
        if al is not None:
            state["al"] = [_tensor(a) for a in al]
        return orig_loss


def add_scaled_(target: np.ndarray, other: np.ndarray, alpha) -> np.ndarray:
    """``target += alpha * other`` as torch's ``add_(other, alpha=alpha)`` computes it on the
    CPU: a fused multiply-add (one rounding). In float32 that is done in float64, where the
    product is exact and the sum rounds as the fused one does but for a double rounding about
    once in 2**29; float64 rounds twice. L-BFGS's iterations compound every rounding, so its
    flat vectors are worth the extra pass."""
    alpha = target.dtype.type(alpha)  # torch casts the scalar to the tensor's dtype
    if target.dtype == np.float32:
        wide = np.multiply(other, alpha, dtype=np.float64)
        wide += target
        np.copyto(target, wide, casting="same_kind")
    else:
        target += other * alpha
    return target


def _tensor(value):
    """A 0-d tensor for a NumPy scalar (torch keeps a tensor there), else the Python number."""
    return wrap(np.array(value)) if isinstance(value, np.generic) else value


def _number(value):
    """The NumPy scalar of a 0-d tensor kept in the state, else the value itself."""
    return value._data[()] if isinstance(value, Tensor) else value


def _array(value):
    return value._data if isinstance(value, Tensor) else value
