"""Elementwise math and activation primitives added for PyTorch programs (issue 13)."""

import numpy as np  # noqa: F401

from . import Op, register, shape_str  # noqa: F401
