"""The lab: the seeds' interactive demos in the browser, with graphgrad's engine doing the work.

``graphgrad lab [--port 8765] [--host 127.0.0.1] [--open]`` serves four pages (needs the
``lab`` extra, Starlette and uvicorn):

- **graph**: an expression or a seed's graph stepped forward and backward node by node on the
  real StepExecutor, each node's value and gradient beside its row of ``explain``; the same graph
  run on the ThreadPoolExecutor, its real event log replayed with waiting / active / completed
  counts and a speed control.
- **backprop**: seed 003 with editable constants, both iterations digit for digit with
  ``graphgrad explain``.
- **train**: ``graphgrad.train.fit`` in a background thread per session, its History streamed
  as server-sent events; the learning rate changes live; pause, step, reset; a loss curve, a
  decision-boundary heat map and the verdict of a run that diverges.
- **sweep**: a sweep's folder read from its Optuna record (table, best settings, failures,
  pictures); a small sweep of the seed polynomial started and followed live.

Each page keeps one state object in its URL's query string. Every input has a limit
(:data:`~graphgrad.lab.limits.LIMITS`) answered with a 4xx JSON ``{"error": ...}``; no endpoint
runs user code (expressions go through graphgrad's own parser). Importing this package does not
import Starlette: :func:`create_app` lives in ``graphgrad.lab.app``.
"""

from .limits import LIMITS, LabError, Limits

__all__ = ["LIMITS", "LabError", "Limits"]
