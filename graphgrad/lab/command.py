"""``graphgrad lab [--port 8765] [--host 127.0.0.1] [--open] [--sweeps DIR]``: serve the lab
with uvicorn.

The command line registers this with :func:`add_parser`; nothing here imports Starlette or
uvicorn until the command runs, so the rest of graphgrad works without the ``lab`` extra.
"""

from __future__ import annotations

import os
import sys

from .._args import port

LOOPBACK = ("127.0.0.1", "localhost", "::1")
INSTALL_HINT = "graphgrad lab needs the 'lab' extra: pip install 'graphgrad[lab]'"


def add_parser(commands) -> None:
    """Add the ``lab`` subcommand to an argparse subparsers object."""
    lab = commands.add_parser(
        "lab", help="the seeds' interactive demos in the browser, on graphgrad's engine",
        description="Serve the lab: the graph, backprop, train and sweep pages. It binds "
                    "127.0.0.1 unless --host says otherwise.")
    lab.add_argument("--port", type=port, default=8765, help="TCP port (default 8765)")
    lab.add_argument("--host", default="127.0.0.1",
                     help="address to bind (default 127.0.0.1; anything else is reachable "
                          "from other machines)")
    lab.add_argument("--open", action="store_true", help="open the lab in a web browser")
    lab.add_argument("--sweeps", metavar="DIR", help="the folder whose sweeps the sweep page "
                     "may open, and where it starts new ones (default: the working directory)")
    lab.set_defaults(run=run)


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run(args) -> int:
    if args.sweeps is not None and not os.path.isdir(args.sweeps):
        print(f"graphgrad lab: --sweeps {args.sweeps}: no such folder", file=sys.stderr)
        return 2
    if not any(name in os.environ for name in BLAS_THREADS):
        _restart_with_one_blas_thread(args)
    try:
        import uvicorn

        from .app import LOCAL_HOSTS, create_app
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    hosts = None
    if args.host not in LOOPBACK:
        print(f"warning: graphgrad lab is binding {args.host}, so other machines can reach "
              "it; it has no login", file=sys.stderr)
        hosts = ["*"]
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/"
    config = uvicorn.Config(create_app(hosts or LOCAL_HOSTS, sweeps=args.sweeps),
                            host=args.host, port=args.port,
                            log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)
    # Training threads run Python between NumPy calls; a shorter switch interval than the
    # default 5 ms lets the event loop answer requests between their bytecodes sooner.
    sys.setswitchinterval(0.0005)
    server = uvicorn.Server(config)
    if args.open:
        _open_when_up(server, url)
    print(f"graphgrad lab: {url} (Ctrl-C to stop)", flush=True)
    try:
        server.run()
    except OSError as exc:
        print(f"graphgrad lab: cannot listen on {args.host}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 2
    if not server.started:  # uvicorn reports a busy port itself and gives up
        print(f"graphgrad lab: could not start on {args.host}:{args.port} (is the port in "
              "use? try --port)", file=sys.stderr)
        return 2
    return 0


def _restart_with_one_blas_thread(args) -> None:
    """Start this command again with BLAS on one thread: the lab's matrices are small, its
    requests many and its thread-pool page shows graphgrad's own threads, and a multi-threaded
    BLAS spinning on a busy machine can make a 160x160 matmul 100 times slower. BLAS reads its
    thread count once, when NumPy loads, so only a new process can change it."""
    argv = ["lab", "--port", str(args.port), "--host", args.host] + (["--open"] * args.open)
    if args.sweeps is not None:
        argv += ["--sweeps", os.path.abspath(args.sweeps)]
    env = dict(os.environ, **{name: "1" for name in BLAS_THREADS})
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "graphgrad", *argv], env)


def _open_when_up(server, url: str) -> None:
    import threading
    import time
    import webbrowser

    def wait_then_open():
        for _ in range(100):  # up to 10 s
            if server.started:
                webbrowser.open(url)
                return
            time.sleep(0.1)

    threading.Thread(target=wait_then_open, daemon=True).start()
