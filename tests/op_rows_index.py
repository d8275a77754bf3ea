"""Op-table rows: sorting, scans and indexing (graphgrad/ops/select.py, ops/scan.py)."""

import numpy as np
from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401

ZEROS = np.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
INDEX = np.array([[0, 2], [1, 1], [2, 0]])
SHAPES = [((5,),), ((3, 4),)]


def _running(pick, x):
    """Where the running extremum of each row was reached, one prefix at a time."""
    return np.array([[pick(row[: i + 1]) for i in range(len(row))] for row in x])


ROWS: list[OpCase] = [
    OpCase("argsort", lambda L, x: L.argsort(x, dim=0), lambda x: np.argsort(x, 0), SHAPES,
           grad=False, distinct=True),
    OpCase("topk_indices", lambda L, x: L.topk(x, 2).indices, lambda x: np.argsort(-x)[..., :2],
           SHAPES, grad=False, distinct=True),
    OpCase("cum_extremum_indices", lambda L, x: L.cummax(x, 1).indices,
           lambda x: _running(np.argmax, x), [((3, 4),)], grad=False, distinct=True),
    OpCase("cum_extremum_indices", lambda L, x: L.cummin(x, 1).indices,
           lambda x: _running(np.argmin, x), [((2, 5),)], grad=False, distinct=True),
    OpCase("take_along_dim", lambda L, x: L.take_along_dim(x, L.tensor(INDEX), 1),
           lambda x: np.take_along_axis(x, INDEX, 1), [((3, 4),)]),
    OpCase("sort", lambda L, x: L.sort(x, dim=-1).values, lambda x: np.sort(x, -1), SHAPES,
           distinct=True),
    OpCase("sort", lambda L, x: x.sort(0, descending=True).values, lambda x: -np.sort(-x, 0),
           [((3, 4),)], distinct=True),
    OpCase("topk", lambda L, x: L.topk(x, 2).values, lambda x: -np.sort(-x)[..., :2], SHAPES,
           distinct=True),
    OpCase("topk", lambda L, x: x.topk(2, dim=0, largest=False).values,
           lambda x: np.sort(x, 0)[:2], [((3, 4),)], distinct=True),
    OpCase("cummax", lambda L, x: L.cummax(x, 1).values, lambda x: np.maximum.accumulate(x, 1),
           [((3, 4),)], distinct=True),
    OpCase("cummin", lambda L, x: x.cummin(0).values, lambda x: np.minimum.accumulate(x, 0),
           [((3, 4),)], distinct=True),
    OpCase("cumsum", lambda L, x: L.cumsum(x, -1), lambda x: np.cumsum(x, -1), SHAPES),
    OpCase("cumsum", lambda L, x: x.cumsum(0), lambda x: np.cumsum(x, 0), [((3, 2),)]),
    OpCase("cumprod", lambda L, x: L.cumprod(x, -1), lambda x: np.cumprod(x, -1), SHAPES),
    OpCase("cumprod", lambda L, x: L.cumprod(x * L.tensor(ZEROS, dtype=x.dtype), 1),
           lambda x: np.cumprod(x * ZEROS, 1), [((3, 4),)]),
    OpCase("cumprod", lambda L, x: (x * L.tensor(ZEROS, dtype=x.dtype)).cumprod(0),
           lambda x: np.cumprod(x * ZEROS, 0), [((3, 4),)]),
    OpCase("logcumsumexp", lambda L, x: L.logcumsumexp(x, -1),
           lambda x: np.log(np.cumsum(np.exp(x), -1)), SHAPES),
    OpCase("logcumsumexp", lambda L, x: L.logcumsumexp(x, 0) * L.tensor([1.0, -2.0, 0.5],
                                                                       dtype=x.dtype)[:, None],
           lambda x: np.log(np.cumsum(np.exp(x), 0)) * np.array([[1.0], [-2.0], [0.5]]),
           [((3, 2),)]),
]
