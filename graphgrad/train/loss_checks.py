"""What goes into a loss, checked against what that loss expects.

``check_loss_call(name, args, kwargs)`` looks at one call of an ``nn.functional`` loss (the loss
layers call them too) and returns ``(kind, message)`` for a wiring fault it sees, else None:
probabilities where logits belong (a softmax before ``cross_entropy``, a sigmoid before
``binary_cross_entropy_with_logits``), probabilities where log-probabilities belong (a softmax
before ``nll_loss`` or as ``kl_div``'s input), log-probabilities where probabilities belong
(``kl_div``'s target without ``log_target=True``), and predictions and targets of different
shapes that a regression loss broadcasts against each other.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor

REGRESSION = {"mse_loss": "MSELoss", "l1_loss": "L1Loss", "huber_loss": "HuberLoss",
              "smooth_l1_loss": "SmoothL1Loss"}
LAYER = {"cross_entropy": "CrossEntropyLoss", "nll_loss": "NLLLoss", "kl_div": "KLDivLoss",
         "binary_cross_entropy_with_logits": "BCEWithLogitsLoss", **REGRESSION}


def _array(value) -> np.ndarray | None:
    return np.asarray(value._data) if isinstance(value, Tensor) else None


def _name(function: str) -> str:
    """``cross_entropy`` as a user may have written it: ``CrossEntropyLoss`` (or ``F.…``)."""
    return f"{LAYER[function]} (F.{function})"


def _distributions(values: np.ndarray) -> np.ndarray | None:
    """The row sums along the class dim (1, or 0 of a 1-d input) when every value is in
    [0, 1] and every row sums to 1: the output of a softmax. Else None."""
    if values.size == 0 or not np.issubdtype(values.dtype, np.floating):
        return None
    if values.min() < 0 or values.max() > 1:
        return None
    sums = values.sum(axis=1 if values.ndim >= 2 else 0)
    return sums if np.allclose(sums, 1, atol=1e-3) else None


def _made_by(value, node_name: str) -> bool:
    """Whether tensor ``value`` is the output of the autograd node named ``node_name``."""
    grad_fn = getattr(value, "grad_fn", None)
    return grad_fn is not None and grad_fn.name() == node_name


def check_loss_call(name: str, args: tuple, kwargs: dict) -> tuple[str, str] | None:
    """The wiring fault in one call of the functional loss ``name``, if any."""
    given = args[0] if args else kwargs.get("input")
    prediction = _array(given)
    target = _array(args[1] if len(args) > 1 else kwargs.get("target"))
    if prediction is None or target is None:
        return None
    if name in REGRESSION:
        return _check_shapes(name, prediction, target)
    if name == "cross_entropy" and prediction.ndim >= 2:
        sums = _distributions(prediction)
        if sums is not None:
            return ("probabilities_as_logits", f"{_name(name)} got rows of values in [0, 1] "
                    f"that sum to 1 (mean row sum {sums.mean():.4f}): it applies log_softmax "
                    "itself, so give it the raw logits (drop the softmax)")
    if name in ("nll_loss", "kl_div"):
        sums = _distributions(prediction)
        if sums is not None and prediction.shape[-1] > 1:
            return ("probabilities_as_log_probabilities", f"{_name(name)} got inputs in "
                    f"[0, 1] whose rows sum to 1 (mean row sum {sums.mean():.4f}): it expects "
                    "log-probabilities, so apply log_softmax instead of softmax (or use "
                    "CrossEntropyLoss on the logits)")
    if name == "kl_div":
        return _check_kl_target(target, kwargs.get("log_target", args[5] if len(args) > 5
                                                   else False))
    if name == "binary_cross_entropy_with_logits" and _made_by(given, "SigmoidBackward0"):
        return ("sigmoid_before_bce_with_logits", f"{_name(name)} got the output of a sigmoid "
                f"(values in [{prediction.min():.3g}, {prediction.max():.3g}]), so it applies "
                "sigmoid twice: drop the model's final sigmoid or use BCELoss")
    return None


def _check_kl_target(target: np.ndarray, log_target: bool) -> tuple[str, str] | None:
    if log_target or target.size == 0 or not np.issubdtype(target.dtype, np.floating):
        return None
    if target.max() <= 0 and target.min() < 0:
        return ("log_probabilities_as_probabilities", f"{_name('kl_div')} got a target of "
                f"values in [{target.min():.3g}, {target.max():.3g}], log-probabilities, "
                "while it expects probabilities (the log of a negative target is NaN): pass "
                "log_target=True, or give it target.exp() (softmax, not log_softmax)")
    return None


def _check_shapes(name: str, prediction: np.ndarray, target: np.ndarray):
    if prediction.shape == target.shape:
        return None
    try:
        both = list(np.broadcast_shapes(prediction.shape, target.shape))
    except ValueError:  # the loss itself refuses these shapes, with its own error
        return None
    return ("target_shape_broadcast", f"{_name(name)} got predictions of shape "
            f"{list(prediction.shape)} and targets of shape {list(target.shape)}, which "
            f"broadcast to {both}: reshape them to the same shape (e.g. target.view(-1, 1) "
            "or output.squeeze(1))")
