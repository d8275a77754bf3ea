"""graphgrad.distributed, DistributedDataParallel, DistributedSampler and the launcher, on real
processes started by ``graphgrad run`` (127.0.0.1, free ports, every wait bounded).

Each rank prints ``RESULT <json>``; the launcher prefixes it with ``[rank N]``. References are
independent: sums worked in rank order in this process, torch's DistributedSampler, and one
process trained on the same global batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch.utils.data.distributed as torch_dist_data

import graphgrad as gg
from graphgrad import cli
from graphgrad.data import DistributedSampler
from graphgrad.distributed import shm
from graphgrad.distributed._hub import free_port

SHM = Path("/dev/shm")
LIMIT = 60  # seconds: no launcher run in these tests may take longer


def _segments() -> set:
    return {p.name for p in SHM.glob(f"{shm.PREFIX}*")} if SHM.is_dir() else set()


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """No shared memory segment of ours may outlive a test."""
    before = _segments()
    yield
    assert _segments() - before == set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


def _launch(tmp_path: Path, body: str, nproc: int, *flags: str, wait=True, mpiexec=None):
    """Run ``body`` (with a preamble that joins the group) on ``nproc`` ranks via the launcher
    (or ``mpiexec``); returns (exit code, {rank: result}, output) or, with wait=False, the
    Popen."""
    script = tmp_path / "worker.py"
    script.write_text(PREAMBLE + textwrap.dedent(body))
    command = [sys.executable, "-m", "graphgrad.distributed.run", "--nproc-per-node",
               str(nproc), *flags, str(script)]
    if mpiexec:
        command = [mpiexec, "-n", str(nproc), sys.executable, str(script)]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True, cwd=tmp_path)
    if not wait:
        return launcher
    try:
        output, _ = launcher.communicate(timeout=LIMIT)
    finally:
        _end_group(launcher)
    if mpiexec:
        files = sorted(tmp_path.glob("RESULT.*.json"))
        results = {int(f.name.split(".")[1]): json.loads(f.read_text()) for f in files}
        for f in files:
            f.unlink()
        return launcher.returncode, results, output
    return launcher.returncode, _results(output), output


def _end_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def _results(output: str, marker: str = "RESULT") -> dict:
    """{rank: value} from the lines "[rank N] MARKER json" of graphgrad run's output."""
    found = re.findall(rf"^\[rank (\d+)\] {marker} (.*)$", output, re.MULTILINE)
    return {int(rank): json.loads(value) for rank, value in found}


PREAMBLE = """\
import datetime, json, os, sys, time
import numpy as np
import graphgrad as gg
import graphgrad.distributed as dist

def result(value, marker="RESULT"):
    if os.environ.get("GG_RESULT_FILES"):  # mpiexec interleaves long lines of several ranks
        with open(f"{marker}.{dist.get_rank()}.json", "w") as out:
            json.dump(value, out)
    else:
        print(f"{marker} " + json.dumps(value), flush=True)

timeout = datetime.timedelta(seconds=float(os.environ.get("GG_TEST_TIMEOUT", "20")))
backend = os.environ.get("GG_BACKEND", "shm")
dist.init_process_group(None if backend == "default" else backend, timeout=timeout)
rank, world = dist.get_rank(), dist.get_world_size()
"""


def _inputs(rank: int, shape=(7, 5)) -> np.ndarray:
    return np.random.default_rng(rank).standard_normal(shape)


# all_gather, reduce_scatter and broadcast, run by both backends' rank scripts
OTHER_COLLECTIVES = """
gathered = [gg.zeros(2, 3, dtype=gg.float64) for _ in range(world)]
dist.all_gather(gathered, gg.from_numpy(data(rank, (2, 3))))
out["gathered"] = [g.tolist() for g in gathered]
scattered = gg.zeros(4, dtype=gg.float64)
dist.reduce_scatter(scattered, [gg.from_numpy(data(rank * 10 + j, (4,))) for j in range(world)])
out["scattered"] = scattered.tolist()
b = gg.from_numpy(data(rank, (3,)))
dist.broadcast(b, src=world - 1)
out["broadcast"] = b.tolist()
"""

COLLECTIVES = """
import hashlib

def data(r, shape=(7, 5)):
    return np.random.default_rng(r).standard_normal(shape)

out = {}
for name in ("SUM", "AVG", "PRODUCT", "MIN", "MAX"):
    t = gg.from_numpy(data(rank).copy())
    dist.all_reduce(t, op=dist.ReduceOp[name])
    out[name] = t.numpy().tobytes().hex()
big = gg.from_numpy(data(rank, (300, 1000)))  # larger than the first segments: they grow
dist.all_reduce(big)
out["big"] = hashlib.sha256(big.numpy().tobytes()).hexdigest()  # a short line
strided = gg.from_numpy(data(rank).copy()).t()  # not contiguous
dist.all_reduce(strided)
out["strided"] = strided.numpy().tolist()
ints = gg.tensor([rank, 10 * rank + 1])
dist.all_reduce(ints, op=dist.ReduceOp.MAX)
out["ints"] = ints.tolist()
""" + OTHER_COLLECTIVES + """
dist.barrier()
t = gg.zeros(4 if rank == 1 else 3, dtype=gg.float64)
try:  # a mismatched call: every rank hears of it; the group is broken from then on
    dist.all_reduce(t)
except dist.DistBackendError as exc:
    out["mismatch"] = str(exc)
out["pid"] = os.getpid()
result(out)
dist.destroy_process_group()
"""


def test_collectives_on_three_ranks_equal_sums_worked_in_rank_order_and_check_shapes(tmp_path):
    port = free_port()
    code, results, output = _launch(tmp_path, COLLECTIVES, 3, "--master-port", str(port))
    assert code == 0, output
    assert sorted(results) == [0, 1, 2]
    for got in results.values():  # each rank's process group (it, its resource tracker) is gone
        with pytest.raises(ProcessLookupError):
            os.killpg(got["pid"], 0)
    with socket.create_server(("127.0.0.1", port)):  # the rendezvous port is free again
        pass
    _check_collectives(results)


def _check_collectives(results: dict) -> None:
    x = [_inputs(r) for r in range(3)]
    expected = {"SUM": (x[0] + x[1]) + x[2], "AVG": ((x[0] + x[1]) + x[2]) / 3,
                "PRODUCT": (x[0] * x[1]) * x[2], "MIN": np.minimum(np.minimum(x[0], x[1]), x[2]),
                "MAX": np.maximum(np.maximum(x[0], x[1]), x[2])}
    big = [_inputs(r, (300, 1000)) for r in range(3)]
    for rank, got in results.items():
        for name, value in expected.items():  # bit for bit, on every rank
            assert got[name] == value.tobytes().hex(), (rank, name)
        assert got["big"] == hashlib.sha256(((big[0] + big[1]) + big[2]).tobytes()).hexdigest()
        assert got["strided"] == ((x[0] + x[1]) + x[2]).T.tolist()
        assert got["ints"] == [2, 21]
        assert got["gathered"] == [_inputs(r, (2, 3)).tolist() for r in range(3)]
        pieces = [_inputs(r * 10 + rank, (4,)) for r in range(3)]
        assert got["scattered"] == ((pieces[0] + pieces[1]) + pieces[2]).tolist()
        assert got["broadcast"] == _inputs(2, (3,)).tolist()
        assert ("ranks called different collectives (shapes, dtypes or ops differ): rank 0: "
                "all_reduce float64 (3,) SUM; rank 1: all_reduce float64 (4,) SUM; rank 2: "
                "all_reduce float64 (3,) SUM") == got["mismatch"]


FAULTS = """
if rank == int(os.environ["GG_FAULTY"]):
    if os.environ["GG_FAULT"] == "kill":
        os.kill(os.getpid(), 9)
    if os.environ["GG_FAULT"] == "raise":
        raise ValueError("this rank gives up")
    time.sleep(1.6)  # "hang": longer than the timeout
start = time.monotonic()
try:
    dist.all_reduce(gg.ones(3))
except dist.DistBackendError as exc:
    result([str(exc), time.monotonic() - start])
    raise
"""


# kill rank 0, which coordinates; rank 1 of 3 raises, and rank 2 hears of it through rank 0
@pytest.mark.parametrize("fault, faulty, world", [("kill", 0, 2), ("raise", 1, 3),
                                                  ("hang", 1, 2)])
def test_a_failed_rank_stops_every_other_rank_with_an_error_naming_it(tmp_path, monkeypatch,
                                                                      fault, faulty, world):
    monkeypatch.setenv("GG_FAULT", fault)
    monkeypatch.setenv("GG_FAULTY", str(faulty))
    monkeypatch.setenv("GG_TEST_TIMEOUT", "1")
    start = time.monotonic()
    code, results, output = _launch(tmp_path, FAULTS, world)
    assert code == 1
    # a hung rank that wakes up meets the broken group too
    assert sorted(results) == sorted({*range(world)} - ({faulty} if fault != "hang" else set())), \
        output
    for message, seconds in results.values():
        if fault == "hang":
            assert f"rank(s) {faulty} did not reach all_reduce within 1 s" in message
        else:
            assert f"rank {faulty} failed" in message
            assert seconds < 1
    assert f"graphgrad run: rank {faulty} " in output
    assert time.monotonic() - start < 15


SLEEPER = """
import subprocess
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
result([os.getpid(), child.pid])
dist.barrier()
while True:
    time.sleep(0.05)
"""


def _wait_for_results(launcher: subprocess.Popen, count: int) -> tuple[dict, list]:
    """Read the launcher's output until ``count`` ranks have reported (bounded)."""
    results, lines, deadline = {}, [], time.monotonic() + LIMIT
    while len(results) < count and time.monotonic() < deadline:
        line = launcher.stdout.readline()
        if not line:
            break
        lines.append(line)
        results.update(_results(line))
    return results, lines


def test_ctrl_c_through_the_launcher_stops_every_rank_and_what_it_started(tmp_path):
    launcher = _launch(tmp_path, SLEEPER, 2, wait=False)
    try:
        results, _ = _wait_for_results(launcher, 2)
        assert sorted(results) == [0, 1]
        launcher.send_signal(signal.SIGINT)
        output, _ = launcher.communicate(timeout=LIMIT)
        assert launcher.returncode == 130, output
        assert "interrupted" in output
        assert not [pid for pids in results.values() for pid in pids if _alive(pid)]
    finally:
        _end_group(launcher)


def test_ranks_die_with_a_killed_launcher(tmp_path):
    launcher = _launch(tmp_path, SLEEPER, 2, wait=False)
    try:
        results, _ = _wait_for_results(launcher, 2)
        ranks = [pids[0] for pids in results.values()]
        launcher.kill()  # no chance to clean up: PR_SET_PDEATHSIG must end the ranks
        launcher.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in ranks) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in ranks if _alive(pid)]
    finally:
        _end_group(launcher)
        for pids in results.values():  # the ranks' own children, not the launcher's
            for pid in pids:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_the_launcher_sets_torchruns_environment(tmp_path):
    script = tmp_path / "env.py"
    script.write_text("import json, os\nprint(json.dumps({k: os.environ[k] for k in ('RANK', "
                      "'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', "
                      "'MASTER_ADDR', 'MASTER_PORT')}))\n")
    done = subprocess.run([sys.executable, "-m", "graphgrad", "run", "--nproc-per-node", "2",
                           "--nnodes", "3", "--node-rank", "1", "--master-port", "29999",
                           str(script)], capture_output=True, text=True, timeout=LIMIT)
    assert done.returncode == 0, done.stderr
    seen = {}
    for line in done.stdout.splitlines():
        prefix, text = line.split("] ", 1)
        seen[prefix] = json.loads(text)
    assert seen == {f"[rank {2 + i}": {"RANK": str(2 + i), "LOCAL_RANK": str(i),
                                       "WORLD_SIZE": "6", "LOCAL_WORLD_SIZE": "2",
                                       "GROUP_RANK": "1", "MASTER_ADDR": "127.0.0.1",
                                       "MASTER_PORT": "29999"} for i in range(2)}


@pytest.mark.parametrize("flags, message", [
    (["--nproc-per-node", "0", "x.py"],
     "argument --nproc-per-node/--nproc_per_node: must be positive, got 0"),
    (["--nproc-per-node", "2", "missing.py"], "script missing.py does not exist"),
    (["--nnodes", "2", "--node-rank", "2", "x.py"], "--node-rank 2 is not in 0..1"),
])
def test_bad_launcher_input_gets_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys,
                                                         flags, message):
    (tmp_path / "x.py").write_text("")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ DistributedSampler
@pytest.mark.parametrize("n, replicas, drop_last", [
    (10, 3, False), (10, 3, True), (2, 5, False), (12, 4, False), (12, 4, True), (7, 2, True),
    (1, 3, False), (0, 2, False)])
def test_distributed_sampler_gives_torchs_indices(n, replicas, drop_last):
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_dist_data.DistributedSampler(range(n), replicas, rank, shuffle=False,
                                                    drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)


def test_shuffled_distributed_sampler_partitions_like_torch():
    # graphgrad's randperm is not torch's, so the shuffled order differs; what torch promises
    # about it holds: equal shares, one permutation split across ranks, padded by repetition,
    # the same on every rank for a seed and epoch, a new one for a new epoch
    for n, replicas, drop_last in ((10, 3, False), (10, 3, True), (2, 5, False)):
        ours = [DistributedSampler(range(n), replicas, r, seed=7, drop_last=drop_last)
                for r in range(replicas)]
        theirs = [torch_dist_data.DistributedSampler(range(n), replicas, r, seed=7,
                                                     drop_last=drop_last)
                  for r in range(replicas)]
        assert [len(s) for s in ours] == [len(s) for s in theirs]
        shares = [list(s) for s in ours]
        merged = [shares[i % replicas][i // replicas] for i in range(sum(map(len, shares)))]
        head = merged[:n] if not drop_last else merged
        assert len(set(head)) == len(head)  # one permutation (then its repeated start)
        if not drop_last:
            assert sorted(head) == list(range(n))
            assert merged[n:] == (merged[:n] * len(merged))[: len(merged) - n]
        assert shares == [list(DistributedSampler(range(n), replicas, r, seed=7,
                                                  drop_last=drop_last))
                          for r in range(replicas)]
    epochs = []
    for epoch in (0, 1):
        sampler = DistributedSampler(range(50), 2, 0, seed=3)
        sampler.set_epoch(epoch)
        epochs.append(list(sampler))
    assert epochs[0] != epochs[1]


def test_distributed_sampler_checks_its_rank():
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval"):
        DistributedSampler(range(4), num_replicas=3, rank=3)
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        DistributedSampler(range(4))


# ------------------------------------------------------------------ DDP equivalence
TRAIN = """
from graphgrad.data import DataLoader, DistributedSampler, TensorDataset
from graphgrad.nn.parallel import DistributedDataParallel as DDP

def model_for(seed):
    gg.manual_seed(seed)
    net = gg.nn.Sequential(gg.nn.Linear(3, 8), gg.nn.Tanh(), gg.nn.Linear(8, 2)).double()
    net.register_buffer("marker", gg.tensor([float(seed)]))
    return net

gg.manual_seed(1234)
data = TensorDataset(gg.randn(30, 3, dtype=gg.float64), gg.randn(30, 2, dtype=gg.float64))
cap, view = float(os.environ["GG_BUCKET_MB"]), os.environ["GG_BUCKET_VIEW"] == "1"
# rank 0's weights reach every rank
model = DDP(model_for(rank), bucket_cap_mb=cap, gradient_as_bucket_view=view)
optimizer = gg.optim.Adam(model.parameters(), lr=0.01)
sampler = DistributedSampler(data, seed=5)
loader = DataLoader(data, batch_size=4, sampler=sampler)
for epoch in range(2):
    sampler.set_epoch(epoch)
    for step, (x, y) in enumerate(loader):
        if step % 2 == 0:  # two micro-batches per step: the first without communication
            with model.no_sync():
                gg.nn.functional.mse_loss(model(x), y).backward()
            continue
        gg.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
state = model.state_dict()
result({k: v.numpy().tobytes().hex() for k, v in state.items()})
dist.destroy_process_group()
"""


def _reference(world: int) -> dict:
    """One process on the same global batches: each step's gradient is the mean, over ranks,
    of the ranks' micro-batch losses' gradients, accumulated over two micro-batches."""
    gg.manual_seed(0)
    net = gg.nn.Sequential(gg.nn.Linear(3, 8), gg.nn.Tanh(), gg.nn.Linear(8, 2)).double()
    net.register_buffer("marker", gg.tensor([0.0]))
    gg.manual_seed(1234)
    data = gg.data.TensorDataset(gg.randn(30, 3, dtype=gg.float64),
                                 gg.randn(30, 2, dtype=gg.float64))
    optimizer = gg.optim.Adam(net.parameters(), lr=0.01)
    samplers = [DistributedSampler(data, world, r, seed=5) for r in range(world)]
    for epoch in range(2):
        batches = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            indices = list(sampler)
            batches.append([indices[i:i + 4] for i in range(0, len(indices), 4)])
        for step in range(len(batches[0])):
            for r in range(world):  # the mean over ranks of each rank's mean loss
                x, y = data[gg.tensor(batches[r][step])]
                (gg.nn.functional.mse_loss(net(x), y) / world).backward()
            if step % 2 == 1:
                optimizer.step()
                optimizer.zero_grad()
    return {f"module.{k}": v.numpy() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("world, bucket_mb, bucket_view", [(2, "25", "0"), (3, "0.0005", "1")])
def test_ddp_on_n_ranks_ends_with_the_weights_of_one_process_on_the_global_batches(
        tmp_path, monkeypatch, world, bucket_mb, bucket_view):
    monkeypatch.setenv("GG_BUCKET_MB", bucket_mb)  # 0.0005 MB: a bucket per parameter or two
    monkeypatch.setenv("GG_BUCKET_VIEW", bucket_view)  # .grad as views of the buckets
    code, results, output = _launch(tmp_path, TRAIN, world)
    assert code == 0, output
    assert sorted(results) == list(range(world))
    _check_training(results, world)


COMPILED = """
import warnings
from graphgrad.compiler import CompileWarning
from graphgrad.nn.parallel import DistributedDataParallel as DDP

warnings.simplefilter("error", CompileWarning)  # a step that fell back to eager fails
weights = []
for compiled in (False, True):
    gg.manual_seed(0)
    model = DDP(gg.nn.Sequential(gg.nn.Linear(4, 8), gg.nn.Tanh(), gg.nn.Linear(8, 2)))
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y):
        optimizer.zero_grad()
        loss = gg.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    run = gg.compile(step) if compiled else step
    gg.manual_seed(10 + rank)  # each rank its own batches
    for _ in range(6):
        run(gg.randn(4, 4), gg.randn(4, 2))
    weights.append([p.detach().numpy().tobytes().hex() for p in model.parameters()])
result({"same": weights[0] == weights[1], "replayed": run.recordings == 2,
        "weights": weights[1]})
dist.destroy_process_group()
"""


def test_a_compiled_ddp_step_averages_gradients_as_the_eager_one(tmp_path):
    code, results, output = _launch(tmp_path, COMPILED, 2)
    assert code == 0, output
    assert [r["same"] and r["replayed"] for r in results.values()] == [True, True], output
    assert results[0]["weights"] == results[1]["weights"]  # the ranks agree, bit for bit


def _check_training(results: dict, world: int) -> None:
    assert len({json.dumps(r, sort_keys=True) for r in results.values()}) == 1  # same bits
    expected = _reference(world)
    got = {k: np.frombuffer(bytes.fromhex(v), dtype=expected[k].dtype).reshape(expected[k].shape)
           for k, v in results[0].items()}
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-12, err_msg=key)


def test_a_parameter_without_gradient_is_reported_at_the_next_forward():
    import graphgrad.distributed as dist
    from graphgrad.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group(init_method="tcp://127.0.0.1:0", world_size=1, rank=0)
    try:
        net = gg.nn.ModuleDict({"used": gg.nn.Linear(2, 1), "unused": gg.nn.Linear(2, 1)})
        net.forward = lambda x: net["used"](x)
        model = DDP(net)
        model(gg.ones(1, 2)).sum().backward()
        with pytest.raises(RuntimeError, match=r"2 parameter\(s\) got no gradient"):
            model(gg.ones(1, 2))
    finally:
        dist.destroy_process_group()


GLOO_COLLECTIVES = """
def data(r, shape=(7, 5)):
    return np.random.default_rng(r).standard_normal(shape)

out = {}
for name in ("SUM", "AVG", "MAX"):
    t = gg.from_numpy(data(rank).copy())
    dist.all_reduce(t, op=dist.ReduceOp[name])
    out[name] = t.numpy().tobytes().hex()
strided = gg.from_numpy(data(rank).copy()).t()
dist.all_reduce(strided)
out["strided"] = strided.numpy().tolist()
""" + OTHER_COLLECTIVES + """
try:
    dist.all_reduce(gg.zeros(4 if rank == 1 else 3, dtype=gg.float64))
except dist.DistBackendError as exc:
    out["mismatch"] = str(exc)
result(out, "COLLECTIVES")
"""


def test_gloo_collectives_and_ddp_equivalence_on_two_ranks(tmp_path, monkeypatch):
    # one run for both, to start torch in two processes only once
    monkeypatch.setenv("GG_BACKEND", "gloo")
    monkeypatch.setenv("GG_BUCKET_MB", "25")
    monkeypatch.setenv("GG_BUCKET_VIEW", "0")
    code, results, output = _launch(tmp_path, GLOO_COLLECTIVES + TRAIN, 2)
    assert code == 0, output
    collectives = _results(output, "COLLECTIVES")
    assert sorted(collectives) == sorted(results) == [0, 1]
    x = [_inputs(r) for r in range(2)]
    for rank, got in collectives.items():
        for name, value in (("SUM", x[0] + x[1]), ("AVG", (x[0] + x[1]) / 2),
                            ("MAX", np.maximum(x[0], x[1]))):
            assert got[name] == collectives[0][name]  # the same bits on both ranks
            np.testing.assert_allclose(np.frombuffer(bytes.fromhex(got[name])).reshape(7, 5),
                                       value, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["strided"], (x[0] + x[1]).T, rtol=0, atol=1e-12)
        assert got["gathered"] == [_inputs(r, (2, 3)).tolist() for r in range(2)]
        pieces = [_inputs(r * 10 + rank, (4,)) for r in range(2)]
        np.testing.assert_allclose(got["scattered"], pieces[0] + pieces[1], rtol=0, atol=1e-12)
        assert got["broadcast"] == _inputs(1, (3,)).tolist()
        assert got["mismatch"] == ("ranks called different collectives (shapes, dtypes or ops "
                                   "differ): rank 0: all_reduce float64 (3,) SUM; rank 1: "
                                   "all_reduce float64 (4,) SUM")
    _check_training(results, 2)


def _mpiexec() -> str:
    # the extra ``mpi`` (mpi4py and the MPICH wheels) is part of the test requirements
    import mpi4py  # noqa: F401 - its absence should fail here, with its own message

    path = shutil.which("mpiexec")
    assert path, "mpiexec not found: pip install 'graphgrad[mpi]'"
    return path


def test_mpi_collectives_and_ddp_equivalence_on_three_ranks(tmp_path, monkeypatch):
    monkeypatch.setenv("GG_BACKEND", "mpi")
    monkeypatch.setenv("GG_RESULT_FILES", "1")
    monkeypatch.setenv("GG_BUCKET_MB", "0.0005")
    monkeypatch.setenv("GG_BUCKET_VIEW", "0")
    code, results, output = _launch(tmp_path, COLLECTIVES, 3, mpiexec=_mpiexec())
    assert code == 0, output
    assert sorted(results) == [0, 1, 2]
    _check_collectives(results)  # the same bits as shm: sums in rank order
    monkeypatch.setenv("GG_BACKEND", "default")  # init_process_group() picks mpi by itself
    code, results, output = _launch(tmp_path, 'assert dist.get_backend() == "mpi"\n' + TRAIN, 3,
                                    mpiexec=_mpiexec())
    assert code == 0, output
    _check_training(results, 3)


def test_mpi_a_killed_rank_ends_the_job(tmp_path, monkeypatch):
    # MPI has no timeout of its own: mpiexec must end every rank when one dies
    monkeypatch.setenv("GG_BACKEND", "mpi")
    monkeypatch.setenv("GG_RESULT_FILES", "1")
    start = time.monotonic()
    mpich_before = set(SHM.glob("mpich_shm_*"))
    try:
        code, results, output = _launch(tmp_path, KILLED_UNDER_MPI, 3, mpiexec=_mpiexec())
    finally:  # MPICH leaves its own segment when a rank is killed: not ours, but ours to remove
        for segment in set(SHM.glob("mpich_shm_*")) - mpich_before:
            segment.unlink()
    assert code != 0 and results == {}, output
    assert time.monotonic() - start < 15
    pids = [int(p.read_text()) for p in tmp_path.glob("pid.*")]
    assert len(pids) == 3 and not [pid for pid in pids if _alive(pid)]


KILLED_UNDER_MPI = """
open(f"pid.{rank}", "w").write(str(os.getpid()))
dist.barrier()
if rank == 1:
    os.kill(os.getpid(), 9)
dist.all_reduce(gg.ones(3))
time.sleep(30)  # never reached by rank 1; the others must be ended by mpiexec
result("survived")
"""


# ------------------------------------------------------------------ graphgrad fit --nproc
def test_fit_on_two_processes_ends_as_one_process_on_the_same_global_batches(tmp_path):
    from graphgrad import train
    from graphgrad.data import DataLoader
    from graphgrad.tasks import get_task

    out = tmp_path / "run"
    command = [sys.executable, "-m", "graphgrad", "fit", "moons", "--nproc", "2", "--epochs",
               "3", "--out", str(out)]
    fitting = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True, cwd=tmp_path)
    try:
        output, _ = fitting.communicate(timeout=LIMIT)
    finally:
        _end_group(fitting)
    assert fitting.returncode == 0, output
    lines = output.strip().splitlines()
    assert all(line.startswith("[rank 0] ") for line in lines), output  # rank 1 is silent
    assert sum("wrote " in line for line in lines) == 1, output
    assert {p.name for p in out.iterdir()} <= {"history.csv", "history.json", "history.png",
                                               "weights.safetensors"}
    # one process, no collectives: each step's batch is the union of the ranks' batches, the
    # global order DistributedSampler splits (a shuffle seeded 0 + epoch), 32 rows at a time
    task = get_task("moons", seed=0)
    order = DistributedSampler(task.train_data, num_replicas=1, rank=0, shuffle=True, seed=0)
    alone = train.fit(task.model, task.loss_fn, DataLoader(task.train_data, batch_size=32,
                                                           sampler=order),
                      val_data=task.val_data, metric=task.metric, progress=False,
                      **{**task.config, "epochs": 3})
    weights = gg.load(out / "weights.safetensors")
    want = task.model.state_dict()
    assert list(weights) == list(want)  # no "module." prefix
    for name, value in want.items():
        assert weights[name].dtype == value.dtype == gg.float32
        np.testing.assert_allclose(weights[name].numpy(), value.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    assert not np.array_equal(weights["0.weight"].numpy(),
                              get_task("moons", seed=0).model.state_dict()["0.weight"].numpy())
    epochs = json.loads((out / "history.json").read_text())["epochs"]
    for theirs, ours in zip(alone.epochs, epochs, strict=True):  # the loss over both ranks
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)
        assert set(ours["layer_grad_norms"]) == set(theirs["layer_grad_norms"])


@pytest.mark.parametrize("flags, message", [
    (["moons", "--nproc", "0"], "--nproc"),
    (["moons", "--nproc", "2", "--checkpoint-every", "1"], "does not support --resume"),
    (["polynomial", "--nproc", "2"], "needs an nn.Module model; this task's is a Graph"),
    (["moons", "--nproc", "3"], "the batch size 32 is the global batch and must be a multiple"),
])
def test_bad_fit_nproc_input_gets_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys,
                                                           flags, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fit", *flags, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
