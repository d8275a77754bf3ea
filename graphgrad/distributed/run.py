"""``graphgrad run`` (or ``python -m graphgrad.distributed.run``): torchrun for graphgrad.

    graphgrad run --nproc-per-node 2 train.py --epochs 3

starts ``--nproc-per-node`` copies of the script with torchrun's environment (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), prefixes each line they print with ``[rank N]``, and returns non-zero when
any rank fails. The children are its own: each runs in a process group of its own, dies with
the launcher (``PR_SET_PDEATHSIG`` on Linux), gets Ctrl-C forwarded, and is killed (with
whatever it started) if it has not stopped soon after another rank failed or was interrupted.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

from .._args import port, positive_int, whole
from ._hub import free_port

GRACE = 10.0  # seconds the other ranks get to stop by themselves after one failed or Ctrl-C
_KILL_WAIT = 3.0  # seconds between SIGTERM and SIGKILL
_POLL = 0.05
_PR_SET_PDEATHSIG = 1


DESCRIPTION = ("Start N copies of a training script with torchrun's environment (RANK, "
               "LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, "
               "MASTER_PORT), prefix each line they print with [rank N], forward Ctrl-C, and "
               "exit non-zero when any rank fails (130 after Ctrl-C).")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, as every graphgrad command
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def add_parser(commands) -> None:
    """Add ``run`` to an argparse subparsers object."""
    _add_flags(commands.add_parser(
        "run", help="start N processes of a training script (torchrun's flags)",
        description=DESCRIPTION))


def _add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nproc-per-node", "--nproc_per_node", type=positive_int, default=1,
                        metavar="N", help="processes on this machine (default 1)")
    parser.add_argument("--nnodes", type=positive_int, default=1,
                        help="machines taking part (default 1)")
    parser.add_argument("--node-rank", "--node_rank", type=whole, default=0,
                        help="this machine's index, 0..nnodes-1 (default 0)")
    parser.add_argument("--master-addr", "--master_addr", default="127.0.0.1",
                        help="address of the machine with rank 0 (default 127.0.0.1)")
    parser.add_argument("--master-port", "--master_port", type=port,
                        help="its port (default: a free port on one machine, 29500 on several)")
    parser.add_argument("-m", "--module", action="store_true",
                        help="run the script argument as a module, as python -m")
    parser.add_argument("script", help="the training script (or module, with -m)")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")
    parser.set_defaults(run=run)


def run(args) -> int:
    """Start the ranks of this machine, relay their output, return 0 when all succeed."""
    if not 0 <= args.node_rank < args.nnodes:
        print(f"graphgrad run: --node-rank {args.node_rank} is not in 0..{args.nnodes - 1} "
              f"(--nnodes {args.nnodes})", file=sys.stderr)
        return 2
    if not args.module and not os.path.isfile(args.script):
        print(f"graphgrad run: script {args.script} does not exist", file=sys.stderr)
        return 2
    if args.master_port is None:
        args.master_port = free_port(args.master_addr) if args.nnodes == 1 else 29500
    return _Ranks(args).supervise()


def spawn(argv: list[str], nproc: int, env: dict | None = None) -> int:
    """Run ``python -m graphgrad ARGV`` on ``nproc`` ranks of this machine, as ``graphgrad run``
    runs a script, with ``env`` added to their environment. When every rank exits with the
    same code, that code is returned and nothing is added (each rank said why: 1 for a
    verdict, 2 for bad input); otherwise the verdict of ``graphgrad run``."""
    args = argparse.Namespace(nproc_per_node=nproc, nnodes=1, node_rank=0,
                              master_addr="127.0.0.1", master_port=free_port("127.0.0.1"),
                              module=True, script="graphgrad", script_args=list(argv))
    return _Ranks(args, env or {}, agreed=True).supervise()


class _Ranks:
    def __init__(self, args, env: dict | None = None, agreed: bool = False) -> None:
        self.args, self.env, self.agreed = args, env or {}, agreed
        self.children: list[subprocess.Popen] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        self.interrupted = False

    def _environment(self, local_rank: int) -> dict:
        a = self.args
        env = {**os.environ, **self.env}
        env.update(RANK=str(a.node_rank * a.nproc_per_node + local_rank),
                   LOCAL_RANK=str(local_rank), WORLD_SIZE=str(a.nnodes * a.nproc_per_node),
                   LOCAL_WORLD_SIZE=str(a.nproc_per_node), GROUP_RANK=str(a.node_rank),
                   MASTER_ADDR=a.master_addr, MASTER_PORT=str(a.master_port),
                   PYTHONUNBUFFERED="1")  # lines reach the prefixer as they are printed
        if a.nproc_per_node > 1:
            env.setdefault("OMP_NUM_THREADS", "1")  # as torchrun: the cores are shared
        return env

    def supervise(self) -> int:
        previous = {s: signal.signal(s, self._forward) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start()
            failed = self._wait()
        finally:
            self._stop_all()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return self._verdict(failed)

    def _start(self) -> None:
        a = self.args
        command = [sys.executable, "-u", *(["-m"] if a.module else []), a.script,
                   *a.script_args]
        parent = os.getpid()
        # every child first, then the threads: preexec_fn is unsafe once threads exist
        for local_rank in range(a.nproc_per_node):
            self.children.append(subprocess.Popen(
                command, env=self._environment(local_rank), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=lambda: _die_with(parent)))
        first = a.node_rank * a.nproc_per_node
        for i, child in enumerate(self.children):
            for source, sink in ((child.stdout, sys.stdout), (child.stderr, sys.stderr)):
                thread = threading.Thread(target=self._relay, args=(first + i, source, sink),
                                          daemon=True)
                thread.start()
                self.threads.append(thread)

    def _relay(self, rank: int, source, sink) -> None:
        for raw in iter(source.readline, b""):
            line = raw.decode(errors="replace")
            with self.lock:
                sink.write(f"[rank {rank}] {line}" + ("" if line.endswith("\n") else "\n"))
                sink.flush()
        source.close()

    def _forward(self, signum, frame) -> None:
        """Ctrl-C or SIGTERM to the launcher goes to every rank (each in its own group)."""
        self.interrupted = True
        for child in self.children:
            _signal_group(child, signal.SIGINT)

    def _wait(self) -> list:
        """Until every rank has exited; after a failure or Ctrl-C the others get GRACE seconds
        to stop by themselves. Returns the failed ranks' (rank, exit code), first first."""
        failed, deadline = [], None
        first = self.args.node_rank * self.args.nproc_per_node
        while any(child.poll() is None for child in self.children):
            for i, child in enumerate(self.children):
                code = child.poll()
                if code not in (None, 0) and all(r != first + i for r, _ in failed):
                    failed.append((first + i, code))
            if (failed or self.interrupted) and deadline is None:
                deadline = time.monotonic() + GRACE
            if deadline is not None and time.monotonic() > deadline:
                break
            time.sleep(_POLL)
        for i, child in enumerate(self.children):
            code = child.poll()
            if code not in (None, 0) and all(r != first + i for r, _ in failed):
                failed.append((first + i, code))
        return failed

    def _stop_all(self) -> None:
        """SIGTERM then SIGKILL every rank's process group: nothing they started survives."""
        alive = [c for c in self.children if c.poll() is None]
        for child in alive:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + _KILL_WAIT
        while any(c.poll() is None for c in alive) and time.monotonic() < deadline:
            time.sleep(_POLL)
        for child in self.children:
            _signal_group(child, signal.SIGKILL)  # also what a finished rank left running
            child.wait()
        deadline = time.monotonic() + _KILL_WAIT  # until the killed are gone, not dying
        while any(_group_alive(c) for c in self.children) and time.monotonic() < deadline:
            time.sleep(_POLL / 5)
        for thread in self.threads:
            thread.join(timeout=_KILL_WAIT)

    def _verdict(self, failed: list) -> int:
        if self.interrupted:
            print("graphgrad run: interrupted; every rank was stopped", file=sys.stderr)
            return 130
        if not failed:
            return 0
        codes = {code for _, code in failed}
        if self.agreed and len(failed) == len(self.children) and len(codes) == 1 \
                and min(codes) > 0:
            return failed[0][1]
        for rank, code in failed:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            print(f"graphgrad run: rank {rank} {how}", file=sys.stderr)
        return 1


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):  # the whole group has exited already
        pass


def _group_alive(child: subprocess.Popen) -> bool:
    try:
        os.killpg(child.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _die_with(parent: int) -> None:
    """In the child before exec: get SIGKILL when the launcher dies (Linux), so that no rank
    outlives it, even when the launcher itself is killed."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the launcher died before prctl took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="graphgrad run", description=DESCRIPTION)
    _add_flags(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
