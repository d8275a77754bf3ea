"""How the gradient reaches each parameter of a watched loop, read as ``fit`` reads it.

:class:`GradientFlow` records each parameter's gradient norm at the steps a watch samples and
finds, over the run, a parameter that never got a gradient (unused), one whose gradient
vanishes while others' do not, and one whose gradient explodes against the others: ``fit``'s
judgements (its thresholds and sentences, from ``diagnose``), on a loop of one's own.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from .diagnose import exploding, unused_parameter, vanishing

EXPLODING_RATIO = 100.0  # global gradient norm over weight norm (healthy runs: below 1)
SAMPLE_SIZE = 4096  # numbers of a large array that a norm or an update is measured on


def norm(array: np.ndarray) -> float:
    """The L2 norm of ``array`` as one dot product in float64, where no float32 square
    overflows (np.linalg.norm under an errstate cost several times as much, at every sampled
    step; what is measured is mostly a 4,096-number sample, so the copy is small)."""
    flat = array.reshape(-1).astype(np.float64, copy=False)
    return math.sqrt(float(np.dot(flat, flat)))


def spaced(array: np.ndarray) -> np.ndarray:
    """At most about SAMPLE_SIZE evenly spaced numbers of ``array`` (a view)."""
    flat = array.reshape(-1)
    return flat[::max(1, flat.size // SAMPLE_SIZE)]


def estimated_norm(array: np.ndarray) -> float:
    """``array``'s L2 norm from its evenly spaced sample (exact for small arrays): orders of
    magnitude are what the judgements compare."""
    sample = spaced(array)
    return norm(sample) * math.sqrt(array.size / max(sample.size, 1))


class GradientFlow:
    """Per-parameter gradient norms at sampled steps, kept by parameter (a model that joins
    later does not rename the others)."""

    def __init__(self) -> None:
        self.norms: dict[int, list[float]] = {}  # id(parameter) -> its norm at each sample
        self.names: dict[int, str] = {}
        self.samples = 0
        self.ratios: list[float] = []  # per sample: global gradient norm / global weight norm

    def record(self, named_parameters) -> None:
        """One sampled step: ``(name, parameter)`` pairs of the models that were trained."""
        self.samples += 1
        grads = weights = 0.0
        for name, p in named_parameters:
            if p.requires_grad:
                self.names[id(p)] = name
                norms = self.norms.setdefault(id(p), [])
                if p.grad is not None:
                    norms.append(estimated_norm(p.grad._data))
                    grads += norms[-1] ** 2
                    weights += estimated_norm(p._data) ** 2
        if weights > 0:
            self.ratios.append(math.sqrt(grads / weights))

    def findings(self):
        """``(kind, message)`` for each parameter in trouble, over all samples."""
        if self.samples < 2 or not any(self.norms.values()):
            return
        where = f"over {self.samples} sampled steps"
        for key, norms in self.norms.items():
            if not norms:
                yield "unused_params", unused_parameter(
                    self.names[key], f"at any of {self.samples} sampled steps")
        if self.ratios and statistics.median(self.ratios) > EXPLODING_RATIO:
            yield "exploding_gradients", (
                f"The gradients are {statistics.median(self.ratios):.3g} times the weights "
                f"(global norms, in the median {where}; healthy runs stay below 1): cap them "
                "with torch.nn.utils.clip_grad_norm_ (fit's max_grad_norm), lower the learning "
                "rate or the initial weights' scale (an RNN: or use an LSTM or GRU).")
        medians = {self.names[k]: statistics.median(v) for k, v in self.norms.items() if v}
        if len(medians) < 2:
            return
        for name, norm in medians.items():
            others = [v for k, v in medians.items() if k != name]
            sentence = vanishing(name, norm, max(others), f"in the median {where}")
            if sentence is not None:
                yield "vanishing_gradients", sentence
                continue
            sentence = exploding(name, norm, statistics.median(others), f"in the median {where}")
            if sentence is not None:
                yield "exploding_gradients", sentence
