"""Sorting, scans, masks, selection and shape helpers as Tensor methods and free functions."""

from __future__ import annotations

__all__: list[str] = []
