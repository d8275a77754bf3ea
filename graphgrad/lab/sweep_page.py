"""The sweep page: open a sweep's output folder and show its table, best settings, failure
sentences and pictures; start a small sweep of the seed polynomial and follow it live.

Everything shown comes from the record, the Optuna study in the folder's journal, through
:mod:`graphgrad.sweep`'s own report functions (``trial_rows``, ``summarize``); the pictures are
the report's files, and only the ones its ``index.html`` shows are served. Folders are opened
only under one root (``graphgrad lab --sweeps DIR``, the working directory by default).

A sweep started here is ``graphgrad sweep polynomial`` in a child process, on the demo space
with the page's epochs, into a new folder under the root. A child rather than a thread of the
lab: the driver stops cleanly (every finished trial kept, its workers stopped, the report
written) on SIGTERM, which only a main thread can take, so closing the run or stopping the
server can end it at any moment. Its workers die with it (they are tied to their driver).
"""

from __future__ import annotations

import asyncio
import contextlib
import html.parser
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

from starlette.responses import FileResponse
from starlette.routing import Route

from ..sweep import DEMO_SPACES, PRUNERS, Space, summarize
from ..sweep.record import JOURNAL, STUDY, storage_url
from ..sweep.report import trial_rows
from .limits import LabError, bad, choice, integer
from .page import Page
from .sessions import plain
from .web import answer, event_stream, in_thread, read_json

MAX_TRIALS, MAX_WORKERS, MAX_EPOCHS = 16, 2, 300  # a sweep started from the page
SAMPLERS = ("tpe", "random")  # grid needs a step for every float: not the demo space
DEFAULTS = {"trials": 8, "workers": 2, "epochs": 300, "sampler": "tpe", "pruner": "median",
            "seed": 0}
PICTURE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
FOLDER_CHARS = 1000
SCAN_DEPTH, SCAN_DIRS, SCAN_FOUND = 3, 2000, 100  # how far the folder list looks
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages"}
POLL = 0.25  # seconds between two looks at a running sweep's record by its stream
STOP_WAIT = 15.0  # seconds a stopped sweep has to keep its trials and write its report
NEED_OPTUNA = "the sweep page needs Optuna: pip install 'graphgrad[sweep]'"


# ------------------------------------------------------------------ folders under the root
def root_of(request) -> Path:
    return request.app.state.sweeps_root


def sweep_folder(root: Path, raw) -> Path:
    """The folder ``raw`` names (relative to ``root``, or absolute), resolved, refused unless it
    lies under ``root`` and holds a sweep's journal."""
    if not isinstance(raw, str) or not raw.strip():
        raise bad(f"folder: give a sweep's output folder, relative to {root}")
    if len(raw) > FOLDER_CHARS or "\x00" in raw:
        raise bad(f"folder: not a folder name (over {FOLDER_CHARS} characters or a NUL)")
    path = (root / raw.strip()).resolve()
    if path != root and root not in path.parents:
        raise LabError(403, f"folder: {raw!r} is outside the sweeps folder {root}; the lab "
                       "opens only folders under it (graphgrad lab --sweeps DIR)")
    if not path.is_dir():
        raise LabError(404, f"folder: {raw!r} is not a folder under {root}")
    if not (path / JOURNAL).is_file():
        raise LabError(404, f"folder: {raw!r} has no {JOURNAL}, so it is not a sweep's output "
                       "folder (graphgrad sweep --out DIR)")
    return path


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() or "."


def find_folders(root: Path) -> list:
    """Sweep folders under ``root`` (a few levels down), the newest first."""
    found, queue, seen = [], [(root, 0)], 0
    while queue and seen < SCAN_DIRS and len(found) < SCAN_FOUND:
        folder, depth = queue.pop(0)
        seen += 1
        journal = folder / JOURNAL
        if journal.is_file():
            found.append({"folder": relative(root, folder), "modified": journal.stat().st_mtime})
        if depth >= SCAN_DEPTH:
            continue
        with contextlib.suppress(OSError):
            queue += [(child, depth + 1) for child in sorted(folder.iterdir())
                      if child.is_dir() and not child.is_symlink()
                      and not child.name.startswith(".") and child.name not in SKIP_DIRS]
    return sorted(found, key=lambda f: -f["modified"])


# ------------------------------------------------------------------ the record
def load_study(folder: Path, name: str | None = None):
    """The folder's Optuna study (``name``, else graphgrad's default, else the only one)."""
    try:
        import optuna
    except ImportError:
        raise LabError(501, NEED_OPTUNA) from None
    from ..sweep import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        storage = open_storage(storage_url(folder, None))
        names = optuna.get_all_study_names(storage)
    except (OSError, ValueError) as exc:
        raise LabError(422, f"folder: cannot read {folder / JOURNAL}: {exc}") from None
    if name is None:
        name = STUDY if STUDY in names or len(names) != 1 else names[0]
    if name not in names:
        raise LabError(404, f"study: no study {name!r} in {folder / JOURNAL} (it holds: "
                       f"{', '.join(names) or 'none yet'})")
    return optuna.load_study(study_name=name, storage=storage)


def table_row(row: dict) -> dict:
    """A row of :func:`trial_rows` without its History (the pictures draw the curves)."""
    out = {k: v for k, v in row.items() if k != "history"}
    out["outcome"] = (row["verdict"]["message"] if row["verdict"] else
                      row["error"].strip().splitlines()[-1] if row["error"] else
                      f"pruned at step {row['last_step']}" if row["state"] == "PRUNED" else "")
    return out


def sweep_view(root: Path, folder: Path, study_name: str | None = None) -> dict:
    """What the page shows of a folder: the summary, the table and the report's pictures."""
    study = load_study(folder, study_name)
    plan = study.user_attrs.get("graphgrad", {})
    rel = relative(root, folder)
    pictures = [{"name": name, "url": f"/api/sweep/picture?folder={_quote(rel)}&name="
                 f"{_quote(name)}&v={int((folder / name).stat().st_mtime)}"}
                for name in report_pictures(folder)]
    return {"folder": rel, "study": study.study_name, "summary": summarize(study),
            "rows": [table_row(r) for r in trial_rows(study)], "pictures": pictures,
            "plan": {k: plan.get(k) for k in ("objective", "space", "sampler", "pruner", "seed")},
            "report": (folder / "index.html").is_file()}


def _quote(text: str) -> str:
    return quote(text, safe="")


class _Images(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "img":
            self.sources += [value for key, value in attrs if key == "src" and value]


def report_pictures(folder: Path) -> list:
    """The pictures the folder's report shows: the png/svg files its ``index.html`` names that
    sit in the folder itself. Nothing else in the folder is ever served."""
    index = folder / "index.html"
    if not index.is_file():
        return []
    parser = _Images()
    parser.feed(index.read_text(encoding="utf-8", errors="replace")[:2_000_000])
    names = []
    for source in dict.fromkeys(parser.sources):
        path = (folder / source).resolve()
        if ("/" not in source and "\\" not in source and path.parent == folder
                and path.suffix.lower() in PICTURE_TYPES and path.is_file()):
            names.append(source)
    return names


# ------------------------------------------------------------------ a sweep started here
def sweep_settings(data: dict) -> dict:
    return {
        "trials": integer(data, "trials", DEFAULTS["trials"], low=1, high=MAX_TRIALS),
        "workers": integer(data, "workers", DEFAULTS["workers"], low=1, high=MAX_WORKERS),
        "epochs": integer(data, "epochs", DEFAULTS["epochs"], low=1, high=MAX_EPOCHS),
        "sampler": choice(data, "sampler", DEFAULTS["sampler"], SAMPLERS),
        "pruner": choice(data, "pruner", DEFAULTS["pruner"], PRUNERS),
        "seed": integer(data, "seed", DEFAULTS["seed"], low=0, high=2**31 - 1),
    }


def demo_space(epochs: int) -> dict:
    """The seed polynomial's demo space with the page's epochs, as the record keeps spaces."""
    return Space({**DEMO_SPACES["polynomial"], "epochs": epochs}).to_dict()


def space_toml(space: dict) -> str:
    """``space`` (from :meth:`Space.to_dict`) as the TOML ``graphgrad sweep --space`` reads.

    >>> print(space_toml({"lr": {"low": 0.001, "high": 0.3, "log": True},
    ...                   "epochs": {"value": 30}}))
    lr = {low = 0.001, high = 0.3, log = true}
    epochs = {value = 30}
    <BLANKLINE>
    """
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v) if isinstance(v, str) else repr(v)

    return "".join(f"{name} = {{" + ", ".join(f"{k} = {value(v)}" for k, v in fields.items())
                   + "}\n" for name, fields in space.items())


def new_folder(root: Path) -> Path:
    base = root / "runs" / time.strftime("lab-sweep-%Y%m%d-%H%M%S")
    for k in range(1, 100):
        folder = base if k == 1 else base.with_name(f"{base.name}-{k}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise LabError(403, f"cannot create a sweep folder under {root}: {exc.strerror}") \
                from None
    raise LabError(409, f"too many sweep folders named {base.name}-*; try again in a second")


class SweepRun:
    """``graphgrad sweep polynomial`` in a child process; its progress read from its record."""

    def __init__(self, key: str, root: Path, s: dict) -> None:
        self.key, self.root, self.settings = key, root, s
        self.folder = new_folder(root)
        (self.folder / "space.toml").write_text(space_toml(demo_space(s["epochs"])),
                                                encoding="utf-8")
        command = [sys.executable, "-m", "graphgrad", "sweep", "polynomial",
                   "--space", str(self.folder / "space.toml"), "--out", str(self.folder),
                   "--trials", str(s["trials"]), "--workers", str(s["workers"]),
                   "--sampler", s["sampler"], "--pruner", s["pruner"], "--seed", str(s["seed"])]
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - read when the child ends
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.started = time.monotonic()
        self.status, self.error, self.stopped = "running", None, False
        self.study = None
        self.lock = threading.Lock()

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def snapshot(self) -> dict:
        """Status and progress (trials done, failed, pruned, the best so far), from the record
        read after the exit code, so a finished run's last snapshot has every trial."""
        with self.lock:
            code = self.process.poll()
            rows = self._rows()
            if code is not None and self.status == "running":
                self._finish(code)
        counted = [r for r in rows if not r["abandoned"] and r["state"] != "RUNNING"]
        complete = [r for r in counted if r["state"] == "COMPLETE"]
        best = min(complete, key=lambda r: r["value"], default=None)
        running = sum(r["state"] == "RUNNING" for r in rows)
        stage = self.status if self.finished else "starting its workers" if not rows else \
            "writing the report" if len(counted) >= self.settings["trials"] and not running \
            else "running trials"
        return {"run": self.key, "folder": relative(self.root, self.folder),
                "status": self.status, "stage": stage, "error": self.error,
                "settings": self.settings,
                "trials": self.settings["trials"], "done": len(counted),
                "complete": len(complete),
                "failed": sum(r["state"] == "FAIL" for r in counted),
                "pruned": sum(r["state"] == "PRUNED" for r in counted),
                "running": running,
                "best": None if best is None else {k: best[k] for k in ("number", "value",
                                                                         "params")},
                "seconds": round(time.monotonic() - self.started, 1)}

    def _rows(self) -> list:
        if self.study is None:
            if not (self.folder / JOURNAL).is_file():
                return []  # the child is still starting
            try:
                self.study = load_study(self.folder, STUDY)
            except LabError:
                return []  # the journal is there, the study not yet
        return trial_rows(self.study)

    def _finish(self, code: int) -> None:
        if code == 0:
            self.status = "done"
        elif self.stopped or code in (130, -15):
            self.status = "stopped"
        else:
            self.stderr.seek(0)
            lines = self.stderr.read().decode(errors="replace").strip().splitlines()
            self.status = "failed"
            self.error = lines[-1] if lines else f"graphgrad sweep exited with code {code}"

    def close(self) -> None:
        """Stop the sweep (SIGTERM: it keeps its finished trials and writes its report), kill
        it if it does not stop in time; its workers die with it."""
        if self.process.poll() is None:
            self.stopped = True
            self.process.terminate()
            try:
                self.process.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.snapshot()
        self.stderr.close()


class _Runs:
    """The one sweep the page may run at a time, and the last one, kept for its stream."""

    def __init__(self) -> None:
        self.current: SweepRun | None = None
        self.lock = threading.Lock()

    def start(self, root: Path, s: dict) -> SweepRun:
        with self.lock:
            if self.current is not None and not self.current.finished:
                self.current.snapshot()  # it may have ended since anyone looked
            if self.current is not None and not self.current.finished:
                raise LabError(409, f"a sweep is already running (into "
                               f"{relative(self.current.root, self.current.folder)}); "
                               "wait for it to end or stop it first")
            previous = self.current
            self.current = SweepRun(os.urandom(8).hex(), root, s)
        if previous is not None:
            previous.close()
        return self.current

    def get(self, key: str) -> SweepRun:
        run = self.current
        if run is None or run.key != key:
            raise LabError(404, f"no sweep run {key!r} (it ended and another started, or it "
                           "never ran); open its folder instead")
        return run

    def close_all(self) -> None:
        with self.lock:
            run, self.current = self.current, None
        if run is not None:
            run.close()


runs = _Runs()


# ------------------------------------------------------------------ endpoints
async def defaults(request):
    return answer({"defaults": DEFAULTS, "samplers": SAMPLERS, "pruners": PRUNERS,
                   "space": demo_space(DEFAULTS["epochs"]), "root": str(root_of(request)),
                   "limits": {"trials": MAX_TRIALS, "workers": MAX_WORKERS,
                              "epochs": MAX_EPOCHS, "running": 1}})


async def folders(request):
    root = root_of(request)
    return answer({"root": str(root), "folders": await in_thread(find_folders, root)})


async def open_folder(request):
    query = dict(request.query_params)
    root = root_of(request)
    folder = sweep_folder(root, query.get("folder"))
    study = query.get("study") or None
    if study is not None and len(study) > FOLDER_CHARS:
        raise bad(f"study: over {FOLDER_CHARS} characters")
    return answer(await in_thread(sweep_view, root, folder, study))


async def picture(request):
    query = dict(request.query_params)
    folder = sweep_folder(root_of(request), query.get("folder"))
    name = query.get("name", "")
    allowed = await in_thread(report_pictures, folder)
    if name not in allowed:
        raise LabError(404, f"name: {name!r} is not a picture of this sweep's report (it shows: "
                       f"{', '.join(allowed) or 'none'})")
    return FileResponse(folder / name, media_type=PICTURE_TYPES[Path(name).suffix.lower()],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options":
                                 "nosniff", "Content-Security-Policy": "default-src 'none'"})


async def start_run(request):
    s = sweep_settings(await read_json(request))
    run = await in_thread(runs.start, root_of(request), s)
    return answer(await in_thread(run.snapshot), status=201)


async def read_run(request):
    run = runs.get(request.path_params["key"])
    return answer(await in_thread(run.snapshot))


async def stop_run(request):
    run = runs.get(request.path_params["key"])
    await in_thread(run.close)
    return answer(await in_thread(run.snapshot))


async def stream_run(request):
    """Server-sent events: the progress whenever it changes, until the sweep has ended."""
    run = runs.get(request.path_params["key"])

    async def messages():
        last, quiet = None, 0.0
        while True:
            snap = await in_thread(run.snapshot)
            text = json.dumps(plain({k: v for k, v in snap.items() if k != "seconds"}))
            if text != last:
                last, quiet = text, 0.0
                yield f"data: {json.dumps(plain(snap))}\n\n"
            elif quiet > 10:
                yield ": still here\n\n"
                quiet = 0.0
            if snap["status"] != "running":
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL)
            quiet += POLL

    return event_stream(messages())


PAGE = Page(
    slug="sweep", title="Sweep",
    summary="Open a sweep's folder: its trials, best settings, failures and pictures, from the "
            "record; or start a small sweep of the seed polynomial and watch it.",
    routes=[
        Route("/api/sweep/defaults", defaults, methods=["GET"]),
        Route("/api/sweep/folders", folders, methods=["GET"]),
        Route("/api/sweep/open", open_folder, methods=["GET"]),
        Route("/api/sweep/picture", picture, methods=["GET"]),
        Route("/api/sweep/runs", start_run, methods=["POST"]),
        Route("/api/sweep/runs/{key}", read_run, methods=["GET"]),
        Route("/api/sweep/runs/{key}", stop_run, methods=["DELETE"]),
        Route("/api/sweep/runs/{key}/stream", stream_run, methods=["GET"]),
    ],
    close=runs.close_all,
)
