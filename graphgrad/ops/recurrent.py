"""Recurrent and attention primitives, where a fused kernel beats composites (issue 13)."""

import numpy as np  # noqa: F401

from . import Op, register, shape_str  # noqa: F401
