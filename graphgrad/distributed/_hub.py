"""Coordination over TCP for the ``shm`` backend: rendezvous and checked barriers.

Rank 0 listens on MASTER_ADDR:MASTER_PORT until every rank has connected, then closes the
listening socket (no port stays open); each rank keeps one connection to rank 0. A barrier sends
a short description of the collective (its name, op, dtype and shapes) to rank 0, which answers
every rank only when all descriptions agree. So a rank that died (its connection closes), one that
never arrives (the timeout) and a mismatched call each end in the same error on every rank,
naming the rank at fault, instead of a hang.
"""

from __future__ import annotations

import secrets
import selectors
import socket
import struct
import time

_LENGTH = struct.Struct(">I")
_RETRY = 0.05  # seconds between attempts to reach rank 0 while it starts listening
_GRACE = 5.0  # other ranks wait this much longer than rank 0, so that its message arrives first


class DistBackendError(RuntimeError):
    """A collective could not complete: a rank failed, timed out or called it differently."""


def _send(sock: socket.socket, text: str) -> None:
    data = text.encode()
    sock.sendall(_LENGTH.pack(len(data)) + data)


def _recv(sock: socket.socket, deadline: float) -> str | None:
    """One message, or None when the peer closed the connection; socket.timeout at deadline."""
    header = _recv_exact(sock, _LENGTH.size, deadline)
    if header is None:
        return None
    body = _recv_exact(sock, _LENGTH.unpack(header)[0], deadline)
    return None if body is None else body.decode()


def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        sock.settimeout(max(deadline - time.monotonic(), 1e-3))
        try:
            chunk = sock.recv(n - got)
        except ConnectionError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class Hub:
    """Rank 0's end (``peers`` maps rank -> socket) or another rank's (``peers`` = {0: socket})."""

    def __init__(self, rank: int, world_size: int, addr: str, port: int, timeout: float) -> None:
        self.rank, self.world_size, self.timeout = rank, world_size, timeout
        self.broken: str | None = None
        self.peers: dict[int, socket.socket] = {}
        self.token = secrets.token_hex(4)  # names this group's segments; rank 0's wins
        if world_size > 1:
            if rank == 0:
                self._serve(addr, port)
            else:
                self._join(addr, port)

    # ------------------------------------------------------------------ rendezvous
    def _serve(self, addr: str, port: int) -> None:
        try:
            server = socket.create_server((addr, port), backlog=self.world_size)
        except OSError as exc:
            raise DistBackendError(f"rank 0 cannot listen on {addr}:{port} (MASTER_ADDR:"
                                   f"MASTER_PORT): {exc.strerror or exc}") from None
        deadline = time.monotonic() + self.timeout
        host = socket.gethostname()
        try:
            while len(self.peers) < self.world_size - 1:
                server.settimeout(max(deadline - time.monotonic(), 1e-3))
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    missing = sorted(set(range(1, self.world_size)) - set(self.peers))
                    self._fail(f"rank(s) {_ranks(missing)} did not join the process group at "
                               f"{addr}:{port} within {self.timeout:g} s")
                _nodelay(conn)
                self._admit(conn, _recv(conn, deadline), host)
        finally:
            server.close()
        for sock in self.peers.values():
            _send(sock, f"ok {self.token}")

    def _admit(self, conn: socket.socket, hello: str | None, host: str) -> None:
        rank, world_size, their_host = (hello or "? ? ?").split(" ", 2)
        problem = None
        if world_size != str(self.world_size):
            problem = (f"rank {rank} was started with world_size {world_size}, rank 0 with "
                       f"{self.world_size}")
        elif not rank.isdigit() or not 0 < int(rank) < self.world_size:
            problem = f"a rank joined as rank {rank}; ranks are 0..{self.world_size - 1}"
        elif int(rank) in self.peers:
            problem = f"two processes joined as rank {rank}"
        elif their_host != host:
            problem = (f"backend 'shm' needs every rank on one machine: rank {rank} is on "
                       f"{their_host}, rank 0 on {host}; use backend='gloo'")
        if problem:
            _try_send(conn, problem)
            conn.close()
            self._fail(problem)
        self.peers[int(rank)] = conn

    def _join(self, addr: str, port: int) -> None:
        deadline = time.monotonic() + self.timeout + _GRACE
        while True:
            try:
                sock = socket.create_connection((addr, port), timeout=1.0)
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise DistBackendError(f"rank {self.rank} could not reach rank 0 at "
                                           f"{addr}:{port} within {self.timeout:g} s: "
                                           f"{exc.strerror or exc}") from None
                time.sleep(_RETRY)
        _nodelay(sock)
        self.peers[0] = sock
        _send(sock, f"{self.rank} {self.world_size} {socket.gethostname()}")
        reply = self._reply("the rendezvous", deadline)
        if not reply.startswith("ok "):  # rank 0's reason for refusing this rank
            self.close()
            raise DistBackendError(reply)
        self.token = reply[3:]

    # ------------------------------------------------------------------ barriers
    def barrier(self, what: str) -> None:
        """Wait for every rank to reach the collective described by ``what``; raise if one
        failed, timed out or described a different call."""
        if self.broken:
            raise DistBackendError(self.broken)
        if self.world_size == 1:
            return
        if self.rank != 0:
            _send_or_fail(self, what)
            reply = self._reply(_name(what), time.monotonic() + self.timeout + _GRACE)
            if reply:
                self.broken = reply
                raise DistBackendError(reply)
            return
        seen = {0: what}
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as waiting:
            for rank, sock in self.peers.items():
                waiting.register(sock, selectors.EVENT_READ, rank)
            while len(seen) < self.world_size:
                ready = waiting.select(max(deadline - time.monotonic(), 0))
                if not ready:
                    late = sorted(set(self.peers) - set(seen))
                    self._fail(f"rank(s) {_ranks(late)} did not reach {_name(what)} within "
                               f"{self.timeout:g} s")
                for key, _ in ready:
                    message = _recv(key.fileobj, deadline)
                    if message is None:
                        self._lost(key.data, what)
                    seen[key.data] = message
                    waiting.unregister(key.fileobj)
        if len(set(seen.values())) > 1:
            calls = "; ".join(f"rank {r}: {seen[r]}" for r in sorted(seen))
            self._fail(f"ranks called different collectives (shapes, dtypes or ops differ): "
                       f"{calls}")
        for sock in self.peers.values():
            _try_send(sock, "")

    def _reply(self, what: str, deadline: float) -> str:
        try:
            reply = _recv(self.peers[0], deadline)
        except TimeoutError:
            reply = f"rank 0 did not answer in {what} within {self.timeout:g} s"
            self.broken = reply
            raise DistBackendError(reply) from None
        if reply is None:
            self.broken = (f"rank 0 failed: its process exited or left the process group "
                           f"(seen by rank {self.rank} in {what})")
            raise DistBackendError(self.broken)
        return reply

    def _lost(self, rank: int, what: str) -> None:
        self.peers.pop(rank).close()
        self._fail(f"rank {rank} failed: its process exited or left the process group "
                   f"(seen in {_name(what)})")

    def _fail(self, message: str) -> None:
        """Tell every rank still connected, then raise here too."""
        self.broken = message
        for sock in self.peers.values():
            _try_send(sock, message)
        raise DistBackendError(message)

    def close(self) -> None:
        for sock in self.peers.values():
            sock.close()
        self.peers.clear()


def _send_or_fail(hub: Hub, what: str) -> None:
    try:
        _send(hub.peers[0], what)
    except OSError:
        hub.broken = (f"rank 0 failed: its process exited or left the process group (seen by "
                      f"rank {hub.rank} in {_name(what)})")
        raise DistBackendError(hub.broken) from None


def _try_send(sock: socket.socket, text: str) -> None:
    try:
        _send(sock, text)
    except OSError:  # that rank is gone already; the others still need to hear
        pass


def _nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _name(what: str) -> str:
    return what.split(" ", 1)[0]


def _ranks(ranks: list) -> str:
    return ", ".join(map(str, ranks))


def free_port(addr: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on now (for a single machine's rendezvous)."""
    with socket.socket() as probe:
        probe.bind((addr, 0))
        return probe.getsockname()[1]
