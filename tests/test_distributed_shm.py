"""The ``shm`` backend's two-rank all-reduce (each rank combines the whole array itself) on two
spawned processes: the bits of sums worked in rank order in this process, for every op, a
strided input, integers, segments that grow, and a mismatched call. Every wait is bounded;
the processes and their segments are gone when the test ends.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np

from graphgrad.distributed import DistBackendError, ReduceOp
from graphgrad.distributed._hub import free_port
from graphgrad.distributed.shm import PREFIX, ShmBackend

LIMIT = 60  # seconds for the whole exchange
OPS = ("SUM", "AVG", "PRODUCT", "MIN", "MAX")


def _inputs(rank: int, shape=(7, 5), dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(rank).standard_normal(shape).astype(dtype)


def _worker(rank: int, port: int, out) -> None:
    backend = ShmBackend(rank, 2, "127.0.0.1", port, 20.0)
    got = {}
    try:
        for name in OPS:
            array = _inputs(rank)
            backend.all_reduce(array, ReduceOp[name], f"all_reduce {name}")
            got[name] = array.tobytes()
        big = _inputs(rank, (300, 1000), np.float32)  # 1.2 MB: more than the first segments
        backend.all_reduce(big, ReduceOp.SUM, "all_reduce big")
        got["big"] = big.tobytes()
        strided = _inputs(rank).T  # not contiguous
        backend.all_reduce(strided, ReduceOp.SUM, "all_reduce strided")
        got["strided"] = strided.copy().tobytes()
        ints = np.array([rank, 10 * rank + 1])
        backend.all_reduce(ints, ReduceOp.MAX, "all_reduce ints")
        got["ints"] = ints.tolist()
        try:
            wrong = np.zeros(3 + rank)  # as graphgrad.distributed describes it:
            backend.all_reduce(wrong, ReduceOp.SUM, f"all_reduce float64 {wrong.shape} SUM")
        except DistBackendError as exc:
            got["mismatch"] = str(exc)
    finally:
        backend.close()
        out.put((rank, got))


def _segments() -> set:
    return {p.name for p in Path("/dev/shm").glob(f"{PREFIX}*")}


def test_two_rank_all_reduce_gives_every_rank_the_sums_worked_in_rank_order():
    before = _segments()
    context = mp.get_context("spawn")
    out = context.Queue()
    port = free_port()
    workers = [context.Process(target=_worker, args=(r, port, out)) for r in range(2)]
    for worker in workers:
        worker.start()
    try:
        results = dict(out.get(timeout=LIMIT) for _ in workers)
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join(timeout=10)
    x = [_inputs(r) for r in range(2)]
    big = [_inputs(r, (300, 1000), np.float32) for r in range(2)]
    expected = {"SUM": x[0] + x[1], "AVG": (x[0] + x[1]) / 2, "PRODUCT": x[0] * x[1],
                "MIN": np.minimum(x[0], x[1]), "MAX": np.maximum(x[0], x[1]),
                "big": big[0] + big[1], "strided": (x[0] + x[1]).T}
    assert sorted(results) == [0, 1]
    for rank, got in results.items():
        for name, value in expected.items():  # bit for bit, on both ranks
            assert got[name] == value.tobytes(), (rank, name)
        assert got["ints"] == [1, 11]
        assert got["mismatch"] == ("ranks called different collectives (shapes, dtypes or ops "
                                   "differ): rank 0: all_reduce float64 (3,) SUM; rank 1: "
                                   "all_reduce float64 (4,) SUM")
    assert [w.exitcode for w in workers] == [0, 0]
    assert _segments() - before == set()
