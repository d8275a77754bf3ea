"""Op-table rows: recurrent layers and attention."""

from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401

ROWS: list[OpCase] = []
