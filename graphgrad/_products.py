"""Products beyond matmul: outer, einsum, addmm, baddbmm, as Tensor methods and functions."""

from __future__ import annotations

__all__: list[str] = []
