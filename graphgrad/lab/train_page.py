"""The train page: graphgrad.train.fit in a background thread per session, paced, paused and
stepped from the page, its learning rate set live, its History streamed as server-sent events.

A callback (:class:`_Live`) does all of it between epochs: it publishes the epoch's record,
writes a requested learning rate into the running optimizer's ``param_groups`` (so the next
step uses it), waits while the run is paused, and sleeps to hold the chosen pace. Every task
trains full batch, so an epoch is one optimizer step.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import threading
import time

import numpy as np
from starlette.routing import Route

from .. import nn
from ..autograd.grad_mode import no_grad
from ..creation import from_numpy, tensor
from ..data import datasets
from ..graph import examples
from ..train import Callback, fit
from .limits import LIMITS, LabError, bad, choice, integer, number
from .page import Page
from .sessions import Session, Sessions, plain
from .web import answer, event_stream, in_thread, read_body, read_json

TASKS = ("linear", "polynomial", "moons", "spirals", "points")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "cosine", "exponential")
MAX_CLASSES = 5
GRID = 40  # cells per side of the decision-boundary heat map
PICTURE_EVERY = 0.2  # seconds between heat maps (or fitted curves) sent to the page
STREAM_TICK = 0.02  # seconds between looks at a session by its event stream
IDLE_STOP = 60.0  # a run nobody streams or polls for this long stops
# Each task's defaults: the settings the seeds and graphgrad's tasks train it with.
DEFAULTS = {
    "linear": dict(optimizer="sgd", lr=0.1, epochs=100),
    "polynomial": dict(optimizer="sgd", lr=0.01, lr_decay=0.999, min_lr=1e-3, max_grad=1000.0,
                       epochs=300),
    "moons": dict(optimizer="adam", lr=0.03, epochs=300),
    "spirals": dict(optimizer="adam", lr=0.02, epochs=600),
    "points": dict(optimizer="adam", lr=0.05, epochs=300),
}

train_sessions = Sessions("training", LIMITS.train_sessions)


# ------------------------------------------------------------------ settings and problems
def settings(data: dict) -> dict:
    """The run's settings from a request, each checked against its limit."""
    task = choice(data, "task", "linear", TASKS)
    base = {"lr_decay": 1.0, "min_lr": 0.0, "max_grad": None, "scheduler": "none",
            **DEFAULTS[task]}
    s = {"task": task}
    s["optimizer"] = choice(data, "optimizer", base["optimizer"], OPTIMIZERS)
    s["scheduler"] = choice(data, "scheduler", base["scheduler"], SCHEDULERS)
    s["lr"] = number(data, "lr", base["lr"], positive=True, high=10)
    s["lr_decay"] = number(data, "lr_decay", base["lr_decay"], positive=True, high=1)
    s["min_lr"] = number(data, "min_lr", base["min_lr"], low=0, high=10)
    cap = data.get("max_grad", base["max_grad"])
    s["max_grad"] = None if cap in (None, "", 0) else number({"max_grad": cap}, "max_grad",
                                                              positive=True)
    s["epochs"] = integer(data, "epochs", base["epochs"], low=1, high=LIMITS.epochs)
    s["speed"] = number(data, "speed", 60, low=1, high=LIMITS.epochs_per_second)
    s["seed"] = integer(data, "seed", 0, low=0, high=2**31 - 1)
    s["paused"] = bool(data.get("paused", False))
    s["points"] = points(data.get("points")) if task == "points" else None
    return s


def points(raw) -> list:
    """User points: ``[x, y]`` pairs (a line is fitted) or ``[x1, x2, class]`` triples (a
    classifier is trained)."""
    if not isinstance(raw, list) or not raw:
        raise bad("points: a non-empty list of [x, y] or [x1, x2, class] points is required")
    if len(raw) > LIMITS.points:
        raise LabError(413, f"points: {len(raw)} points, the limit is {LIMITS.points}")
    width = len(raw[0]) if isinstance(raw[0], list) else 0
    if width not in (2, 3):
        raise bad("points: each point is [x, y] or [x1, x2, class]")
    checked = []
    for k, p in enumerate(raw):
        if not isinstance(p, list) or len(p) != width:
            raise bad(f"points[{k}]: expected {width} numbers like the first point, got {p!r}")
        row = [number({f"points[{k}]": v}, f"points[{k}]") for v in p]
        if width == 3 and (not row[2].is_integer() or not 0 <= row[2] < MAX_CLASSES):
            raise bad(f"points[{k}]: the class must be a whole number from 0 to "
                      f"{MAX_CLASSES - 1}, got {p[2]!r}")
        checked.append(row)
    if width == 3 and len({p[2] for p in checked}) < 2:
        raise bad("points: a classifier needs points of at least two classes")
    if width == 2 and len({p[0] for p in checked}) < 2:
        raise bad("points: a line needs points at two or more different x")
    return checked


def parse_csv(body: bytes) -> list:
    """Points from CSV text: rows of ``x,y`` or ``x1,x2,class``; a header row is skipped."""
    try:
        content = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad("upload: the file is not UTF-8 text") from None
    rows = [r for r in csv.reader(io.StringIO(content)) if any(c.strip() for c in r)]
    found = []
    for line, row in enumerate(rows, start=1):
        try:
            found.append([float(c) for c in row])
        except ValueError:
            if line == 1 and not found:
                continue  # a header
            raise bad(f"upload: line {line}: expected 2 or 3 numbers separated by commas, "
                      f"got {','.join(row)[:60]!r}") from None
    if not found:
        raise bad("upload: no rows of numbers in the file")
    return points(found)


class Problem:
    """A model, its loss and data, and how the page draws it (``kind``)."""

    def __init__(self, s: dict) -> None:
        task, seed = s["task"], s["seed"]
        self.metric, self.loss_fn, self.classes = None, None, 0
        if task == "linear" or (task == "points" and len(s["points"][0]) == 2):
            self.kind = "line"
            if task == "linear":
                x, y = (t.numpy() for t in datasets.line(seed=seed).tensors)
            else:
                table = np.asarray(s["points"], dtype=np.float32)
                x, y = table[:, :1], table[:, 1:]
            self.model = nn.Linear(1, 1)  # seed 001's start: w = -2, b = 15
            self.model.load_state_dict({"weight": tensor([[-2.0]]), "bias": tensor([15.0])})
            self.loss_fn, self.data = nn.MSELoss(), (from_numpy(x), from_numpy(y))
            self.points = np.concatenate([x, y], axis=1)
        elif task == "polynomial":
            self.kind = "polynomial"
            self.model, self.data = examples.polynomial(), examples.polynomial_data(seed=seed)
            self.points = self.data["y"][:, None]  # drawn against the predictions
        else:
            self.kind = "classes"
            if task == "points":
                table = np.asarray(s["points"])
                x, y = table[:, :2].astype(np.float32), table[:, 2].astype(np.int64)
            else:
                data = datasets.two_moons(n=200, seed=seed) if task == "moons" else \
                    datasets.spirals(n=300, seed=seed)
                x, y = (t.numpy() for t in data.tensors)
            self.classes = int(y.max()) + 1
            # own points are drawn in the page's fixed click box, the data sets in their own
            self.bounds = [[-2.0, 2.0], [-2.0, 2.0]] if task == "points" else _bounds(x)
            hidden, act = (32, nn.ReLU) if task == "spirals" else (16, nn.Tanh)
            self.model = nn.Sequential(nn.Linear(2, hidden), act(), nn.Linear(hidden, hidden),
                                       act(), nn.Linear(hidden, max(self.classes, 2)))
            _initialise(self.model, seed)
            self.loss_fn, self.metric = nn.CrossEntropyLoss(), "accuracy"
            self.data = (from_numpy(x), from_numpy(y))
            self.points = np.concatenate([x, y[:, None].astype(np.float32)], axis=1)

    def picture(self) -> dict:
        """What the page draws beside the loss curve, for the current parameters."""
        with no_grad(), np.errstate(all="ignore"):
            if self.kind == "line":
                return {"w": float(self.model.weight.item()), "b": float(self.model.bias.item())}
            if self.kind == "polynomial":
                run = self.model.run(self.data)
                params = {n.name: float(n.value.item()) for n in self.model.parameters}
                return {"params": params,
                        "prediction": run.value("prediction").numpy().round(4).tolist()}
            return {"heat": self._heat(), "grid": GRID, "bounds": self.bounds}

    def _heat(self) -> list:
        """Per grid cell (row by row, top row first): class * 10 + confidence decile."""
        (x0, x1), (y0, y1) = self.bounds
        xs = np.linspace(x0, x1, GRID)
        ys = np.linspace(y1, y0, GRID)
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
        probs = self.model(from_numpy(grid)).softmax(dim=1).numpy()
        chance = 1.0 / probs.shape[1]
        confidence = (probs.max(axis=1) - chance) / (1 - chance)
        deciles = np.clip((confidence * 10).astype(int), 0, 9)
        return (probs.argmax(axis=1) * 10 + deciles).tolist()

    def view(self) -> dict:
        out = {"kind": self.kind, "points": self.points.round(4).tolist(),
               "classes": self.classes}
        if self.kind == "classes":
            out["bounds"] = self.bounds
        return out


def _initialise(model, seed: int) -> None:
    """Each Linear uniform in +-1/sqrt(fan_in) (torch's default range) from NumPy's generator
    for ``seed``: the same start for a seed whatever other sessions draw meanwhile."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            k = 1.0 / math.sqrt(module.in_features)
            for p in (module.weight, module.bias):
                p.data = from_numpy(rng.uniform(-k, k, tuple(p.shape)).astype(np.float32))


def _bounds(x: np.ndarray) -> list:
    low, high = x.min(axis=0), x.max(axis=0)
    pad = 0.15 * (high - low) + 1e-3
    return [[float(low[0] - pad[0]), float(high[0] + pad[0])],
            [float(low[1] - pad[1]), float(high[1] + pad[1])]]


# ------------------------------------------------------------------ the running session
class TrainSession(Session):
    """One fit in a background thread; the page reads it and steers it."""

    def __init__(self, s: dict) -> None:
        super().__init__()
        self.settings, self.problem = s, Problem(s)
        self.records: list = []  # compact epoch records, appended by the training thread
        self.picture, self.picture_version = self.problem.picture(), 0
        self.status = "paused" if s["paused"] else "running"
        self.verdict = self.error = None
        self.notes: list = []
        self.trainer = None
        self.requested_lr: float | None = None
        self.steps_allowed, self.stop_requested = 0, False
        self.wake = threading.Condition()
        self.thread = threading.Thread(target=self._train, name="graphgrad-lab-train",
                                       daemon=True)
        self.thread.start()

    @property
    def finished(self) -> bool:
        return self.status in ("done", "diverged", "stopped", "failed")

    @property
    def lr(self) -> float:
        """The learning rate the optimizer will use at its next step."""
        if self.trainer is None:
            return self.settings["lr"]
        return float(self.trainer.optimizer.param_groups[0]["lr"])

    def _train(self) -> None:
        s, p = self.settings, self.problem
        try:
            history = fit(p.model, p.loss_fn, p.data, metric=p.metric, optimizer=s["optimizer"],
                          lr=s["lr"], lr_decay=s["lr_decay"], min_lr=s["min_lr"],
                          max_grad=s["max_grad"],
                          scheduler=None if s["scheduler"] == "none" else s["scheduler"],
                          epochs=s["epochs"], batch_size=None, shuffle=False, seed=s["seed"],
                          callbacks=[_Live(self)], progress=False)
        except Exception as exc:  # shown on the page; the server goes on
            self.error, self.status = f"{type(exc).__name__}: {exc}", "failed"
            return
        self._publish_picture()
        self.notes = list(history.notes)
        if history.verdict is not None:
            # The record of the epoch that diverged is in the History but the callback never
            # saw it: the run stopped inside that epoch.
            for record in history.epochs[len(self.records):]:
                self.records.append(_compact(record))
            self.verdict, self.status = history.verdict.message, "diverged"
        else:
            self.status = "stopped" if self.stop_requested else "done"

    def _publish_picture(self) -> None:
        self.picture = self.problem.picture()
        self.picture_version += 1

    def control(self, data: dict) -> None:
        action = choice(data, "action", "none", ("none", "pause", "resume", "step", "stop"))
        lr = None if data.get("lr") is None else number(data, "lr", positive=True, high=10)
        with self.wake:
            if lr is not None:
                self.requested_lr = lr
            if self.finished:
                if action != "none":
                    raise LabError(409, f"the run is over ({self.status}); reset to start "
                                   "another")
                return
            if action == "pause":
                self.status = "paused"
            elif action == "resume":
                self.status = "running"
            elif action == "step":
                self.status, self.steps_allowed = "paused", self.steps_allowed + 1
            elif action == "stop":
                self.stop_requested = True
            self.wake.notify_all()

    def close(self) -> None:
        with self.wake:
            self.stop_requested = True
            self.wake.notify_all()
        self.thread.join(timeout=5)

    def snapshot(self, since: int = 0, picture_version: int = -1) -> dict:
        out = {"status": self.status, "lr": self.lr, "requested_lr": self.requested_lr,
               "epoch": len(self.records), "epochs": self.settings["epochs"],
               "records": self.records[since:], "since": since, "verdict": self.verdict,
               "error": self.error, "notes": self.notes}
        if picture_version != self.picture_version:
            out["picture"], out["picture_version"] = self.picture, self.picture_version
        return out


class _Live(Callback):
    """Between epochs: publish, take the requested learning rate, pause, pace, stop."""

    def __init__(self, session: TrainSession) -> None:
        self.session = session
        self.next_time = time.monotonic()
        self.last_picture = 0.0

    def on_train_begin(self, trainer) -> None:
        self.session.trainer = trainer
        self._gate(trainer)  # a run started paused waits before its first step

    def on_epoch_end(self, trainer, record) -> bool:
        session = self.session
        session.records.append(_compact(record))
        now = time.monotonic()
        if now - self.last_picture >= PICTURE_EVERY or trainer.epoch == trainer.epochs:
            session._publish_picture()
            self.last_picture = now
        return self._gate(trainer)

    def _gate(self, trainer) -> bool:
        """Wait for the next epoch's turn; True ends the run."""
        session = self.session
        with session.wake:
            while True:
                if session.requested_lr is not None:
                    for group in trainer.optimizer.param_groups:
                        group["lr"] = session.requested_lr
                    session.requested_lr = None
                if session.stop_requested or time.monotonic() - session.last_seen > IDLE_STOP:
                    session.stop_requested = True
                    return True
                if session.status == "paused":
                    if session.steps_allowed:
                        session.steps_allowed -= 1
                        self.next_time = time.monotonic()
                        return False
                    session.wake.wait(timeout=1.0)
                    continue
                delay = self.next_time - time.monotonic()
                if delay <= 0:
                    self.next_time = max(self.next_time, time.monotonic() - 0.1) + \
                        1.0 / session.settings["speed"]
                    return False
                session.wake.wait(timeout=delay)


def _compact(record: dict) -> dict:
    return {"epoch": record["epoch"], "loss": record["train_loss"], "lr": record["lr"],
            "grad_norm": record["grad_norm"], "metric": record.get("metric")}


# ------------------------------------------------------------------ endpoints
async def open_session(request):
    s = settings(await read_json(request))
    train_sessions.check_room()
    session = await in_thread(TrainSession, s)
    try:
        key = train_sessions.add(session)
    except LabError:
        session.close()
        raise
    return answer({"session": key, "settings": {k: v for k, v in s.items() if k != "points"},
                   "view": session.problem.view(), **session.snapshot()}, status=201)


async def read_session(request):
    session = train_sessions.get(request.path_params["key"])
    since = integer(dict(request.query_params), "since", 0, low=0, high=LIMITS.epochs)
    return answer(session.snapshot(since))


async def control_session(request):
    session = train_sessions.get(request.path_params["key"])
    session.control(await read_json(request))
    return answer(session.snapshot(len(session.records)))


async def close_session(request):
    key = request.path_params["key"]
    train_sessions.get(key)
    await asyncio.to_thread(train_sessions.remove, key)
    return answer({"closed": True})


async def stream_session(request):
    """Server-sent events: one message whenever there are new epochs, a new picture or a new
    status, until the run is over and everything has been sent."""
    session = train_sessions.get(request.path_params["key"])
    cursor = integer(dict(request.query_params), "since", 0, low=0, high=LIMITS.epochs)

    async def messages():
        nonlocal cursor
        version, status, quiet = -1, None, 0.0
        while True:
            session.touch()
            finished = session.finished  # read first: then every record before it is seen
            snap = session.snapshot(cursor, version)
            if snap["records"] or "picture" in snap or snap["status"] != status:
                cursor += len(snap["records"])
                version = snap.get("picture_version", version)
                status = snap["status"]
                yield f"data: {json.dumps(plain(snap))}\n\n"
                quiet = 0.0
            elif quiet > 10:
                yield ": still here\n\n"
                quiet = 0.0
            if finished and cursor >= len(session.records):
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(STREAM_TICK)
            quiet += STREAM_TICK

    return event_stream(messages())


async def preview(request):
    """The data and the untrained model's picture, without starting a run."""
    s = settings(await read_json(request))
    problem = await in_thread(Problem, s)
    return answer({"view": problem.view(), "picture": await in_thread(problem.picture)})


async def upload_points(request):
    body = await read_body(request, LIMITS.upload_bytes)
    return answer({"points": parse_csv(body)})


async def defaults(request):
    return answer({"tasks": DEFAULTS, "optimizers": OPTIMIZERS, "schedulers": SCHEDULERS,
                   "limits": {"epochs": LIMITS.epochs, "points": LIMITS.points,
                              "upload_bytes": LIMITS.upload_bytes,
                              "speed": LIMITS.epochs_per_second,
                              "sessions": LIMITS.train_sessions}})


PAGE = Page(
    slug="train", title="Train",
    summary="Fit f(x) = 3x + 7, the seed polynomial, two moons, spirals or your own points; "
            "move the learning rate while it runs.",
    routes=[
        Route("/api/train/defaults", defaults, methods=["GET"]),
        Route("/api/train/points", upload_points, methods=["POST"]),
        Route("/api/train/preview", preview, methods=["POST"]),
        Route("/api/train/sessions", open_session, methods=["POST"]),
        Route("/api/train/sessions/{key}", read_session, methods=["GET"]),
        Route("/api/train/sessions/{key}", close_session, methods=["DELETE"]),
        Route("/api/train/sessions/{key}/control", control_session, methods=["POST"]),
        Route("/api/train/sessions/{key}/stream", stream_session, methods=["GET"]),
    ],
    close=train_sessions.close_all,
)
