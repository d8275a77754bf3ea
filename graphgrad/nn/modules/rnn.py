"""Recurrent layers: RNN, LSTM, GRU and their cells, with torch's weight names."""

from __future__ import annotations

__all__: list[str] = []
