"""Convolution and pooling primitives on BLAS: im2col by strided views (issue 13)."""

import numpy as np  # noqa: F401

from . import Op, register, shape_str  # noqa: F401
