"""``graphgrad.linalg``: torch.linalg's names, arguments and results, with gradients."""

from __future__ import annotations

__all__: list[str] = []
