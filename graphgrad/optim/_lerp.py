"""In-place linear interpolation with torch's two formulas, shared by Adam and RMSprop."""

from __future__ import annotations

import numpy as np


def lerp_(start: np.ndarray, end: np.ndarray, weight: float, scratch=None) -> np.ndarray:
    """``start += weight * (end - start)`` in place, computed as torch's ``lerp_`` does.

    torch switches formula at ``weight = 0.5`` so that each end is reproduced exactly.

    >>> import numpy as np
    >>> lerp_(np.array([0.0, 10.0]), np.array([10.0, 0.0]), 0.25)
    array([2.5, 7.5])
    """
    diff = np.subtract(end, start, out=scratch)  # scratch: an optional buffer shaped like start
    if abs(weight) < 0.5:
        diff *= weight
        start += diff
    else:
        diff *= 1 - weight
        np.subtract(end, diff, out=start)
    return start
