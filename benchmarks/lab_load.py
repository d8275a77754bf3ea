"""Load test of the lab: 20 clients stepping graphs and 4 training runs streaming at once.

Starts ``graphgrad lab`` on a free 127.0.0.1 port in a subprocess (stopped at the end, however
the script ends), then for ``--seconds`` (default 10, at most 60):

- 20 client threads, each on its own keep-alive connection, open a graph session (seed 001 or
  seed 003, alternately) and step it one state change per request at ``--pace`` steps per second
  (default 10: faster than anyone clicks; 0 for as fast as the answers come), starting over at
  the end; every step's round trip is timed;
- 4 training sessions (f(x) = 3x + 7 at 50 epochs per second) each read by a thread on the
  server-sent event stream, counting messages.

Reports the median and 95th-percentile step latency (target: p95 under 50 ms) and each stream's
update rate (target: at least 20 updates per second). Loopback only; every loop is bounded in
count and time. ``python benchmarks/lab_load.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time

GRAPH_CLIENTS, TRAINING_RUNS = 20, 4
SPEED = 50  # epochs per second of each training run (the train page's default is 30)
MAX_STEPS_PER_CLIENT = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(conn, path: str, body: dict) -> dict:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    if response.status >= 400:
        raise RuntimeError(f"{path}: {response.status} {data}")
    return data


def graph_client(port: int, index: int, until: float, pace: float, latencies: list,
                 errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    next_step = time.monotonic()
    try:
        key = post(conn, "/api/graph/sessions", {"example": "001" if index % 2 else "003"})[
            "session"]
        for _ in range(MAX_STEPS_PER_CLIENT):
            if time.monotonic() >= until:
                break
            if pace:  # a person clicking Step, or the page's animation: not a tight loop
                next_step += 1.0 / pace
                time.sleep(max(0.0, next_step - time.monotonic()))
            start = time.perf_counter()
            change = post(conn, f"/api/graph/sessions/{key}/step", {"count": 1})["changes"][0]
            latencies.append(time.perf_counter() - start)
            if change["phase"] == "done":
                post(conn, f"/api/graph/sessions/{key}/reset", {})
        conn.request("DELETE", f"/api/graph/sessions/{key}")
        conn.getresponse().read()
    except Exception as exc:  # reported, and the run counts as failed
        errors.append(f"graph client {index}: {exc}")
    finally:
        conn.close()


def training_client(port: int, index: int, until: float, rates: list, errors: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        key = post(conn, "/api/train/sessions", {"task": "linear", "epochs": 5000, "lr": 0.01,
                                                 "speed": SPEED, "seed": index})["session"]
        stream = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        stream.request("GET", f"/api/train/sessions/{key}/stream")
        response = stream.getresponse()
        messages, epochs, start = 0, 0, time.monotonic()
        while time.monotonic() < until:
            line = response.fp.readline()
            if not line:
                break
            if line.startswith(b"data: {\"status"):
                messages += 1
                epochs += len(json.loads(line[6:])["records"])
        elapsed = time.monotonic() - start
        stream.close()
        rates.append((messages / elapsed, epochs / elapsed))
        conn.close()  # idle past the server's keep-alive while the stream ran: reconnect
        conn.request("DELETE", f"/api/train/sessions/{key}")
        conn.getresponse().read()
    except Exception as exc:
        errors.append(f"training client {index}: {exc}")
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pace", type=float, default=10.0,
                        help="steps per second per graph client; 0: as fast as answers come")
    args = parser.parse_args()
    seconds = min(max(args.seconds, 1.0), 60.0)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "graphgrad", "lab", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until_up(port)
        latencies, rates, errors = [], [], []
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=graph_client, args=(port, k, until, args.pace, latencies,
                                                            errors))
                   for k in range(GRAPH_CLIENTS)]
        threads += [threading.Thread(target=training_client, args=(port, k, until, rates, errors))
                    for k in range(TRAINING_RUNS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 30)
        report(latencies, rates, errors, seconds, args.pace)
        return 1 if errors else 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_until_up(port: int) -> None:
    for _ in range(200):  # up to 20 s
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/pages")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("graphgrad lab did not start within 20 s")


def report(latencies: list, rates: list, errors: list, seconds: float, pace: float) -> None:
    ms = sorted(1000 * x for x in latencies)
    p95 = ms[int(0.95 * (len(ms) - 1))] if ms else float("nan")
    paced = f"{pace:g} steps/s each" if pace else "each as fast as it is answered"
    print(f"{GRAPH_CLIENTS} graph clients ({paced}), {TRAINING_RUNS} training streams at "
          f"{SPEED} epochs/s, {seconds:g} s")
    print(f"steps: {len(ms)} ({len(ms) / seconds:.0f}/s); latency median "
          f"{statistics.median(ms):.1f} ms, p95 {p95:.1f} ms (target < 50 ms)")
    for k, (messages, epochs) in enumerate(rates):
        print(f"training stream {k + 1}: {messages:.1f} updates/s carrying {epochs:.0f} epochs/s "
              "(target >= 20 updates/s)")
    for error in errors:
        print("error:", error)


if __name__ == "__main__":
    sys.exit(main())
