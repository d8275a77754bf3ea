"""More elementwise math as Tensor methods and free functions (erf, asin, atan2, ...)."""

from __future__ import annotations

__all__: list[str] = []
