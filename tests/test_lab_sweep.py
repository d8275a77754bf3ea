"""The lab's sweep page through Starlette's TestClient, against Optuna's own record.

A real small sweep (graphgrad.sweep.run: 6 trials, 2 worker processes, 30 epochs) makes the
folder the page opens; what the page answers is checked against ``optuna.load_study`` on the
journal, read with Optuna's own storage classes. Sweeps started from the API run the real
``graphgrad sweep`` child; every process they start carries a marker in its environment, and
/proc must hold none of them once a sweep has ended or been stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings

import pytest

pytest.importorskip("starlette")
optuna = pytest.importorskip("optuna")

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 and says so on import
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from graphgrad import sweep  # noqa: E402
from graphgrad.lab import app, sweep_page  # noqa: E402

SPACE = {**sweep.DEMO_SPACES["polynomial"], "epochs": 30}
MARK = "GRAPHGRAD_LAB_SWEEP_TEST"


def optuna_study(folder):
    """The study as Optuna itself reads the journal (no graphgrad code in between)."""
    backend = optuna.storages.journal.JournalFileBackend(str(folder / "study.journal"))
    return optuna.load_study(study_name="sweep",
                             storage=optuna.storages.JournalStorage(backend))


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    sweep.run("polynomial", SPACE, trials=6, workers=2, sampler="random", seed=3,
              out=root / "made", progress=False)
    return root


@pytest.fixture(scope="module")
def client(root):
    with TestClient(app.create_app(sweeps=root)) as c:
        yield c


@pytest.fixture
def marked(monkeypatch):
    """Mark the processes this test starts; none may be left alive after it."""
    token = uuid.uuid4().hex
    monkeypatch.setenv(MARK, token)
    yield token
    left = alive_marked(token, wait=10)
    assert not left, f"processes of the sweep left alive: {left}"


def alive_marked(token: str, wait: float = 0.0) -> list:
    needle, deadline = f"{MARK}={token}".encode(), time.monotonic() + wait
    while True:
        found = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/environ", "rb") as env:
                    if needle not in env.read().split(b"\0"):
                        continue
                with open(f"/proc/{entry}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if b"resource_tracker" in cmdline.read():  # pytest's own, ends with it
                        continue
            except OSError:
                continue
            found.append(int(entry))
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def follow(client, key: str, seconds: float = 60) -> list:
    """Every progress message of a run's stream, until its end event (bounded in time)."""
    messages, deadline = [], time.monotonic() + seconds
    with client.stream("GET", f"/api/sweep/runs/{key}/stream") as stream:
        for line in stream.iter_lines():
            assert time.monotonic() < deadline, "the sweep's stream did not end in time"
            if line.startswith("event: end"):
                return messages
            if line.startswith("data: {\"run\""):
                messages.append(json.loads(line[len("data: "):]))
    raise AssertionError("the stream closed without an end event")


# ---------------------------------------------------------------------------- opening a folder
def test_the_page_is_listed_and_served(client):
    assert client.get("/sweep").status_code == 200
    assert "sweep" in [p["slug"] for p in client.get("/api/pages").json()["pages"]]
    for name in ("sweep.js", "sweep.html"):
        assert client.get(f"/static/{name}").status_code == 200
    defaults = client.get("/api/sweep/defaults").json()
    assert defaults["limits"] == {"trials": 16, "workers": 2, "epochs": 300, "running": 1}
    assert set(defaults["space"]) == set(SPACE)


def test_a_folder_shows_the_table_and_best_settings_of_optunas_record(client, root):
    view = client.get("/api/sweep/open", params={"folder": "made"}).json()
    study = optuna_study(root / "made")
    trials = study.get_trials()
    assert [r["number"] for r in view["rows"]] == [t.number for t in trials]
    for row, trial in zip(view["rows"], trials):
        assert row["state"] == trial.state.name
        assert row["params"] == trial.params
        assert row["value"] == trial.value
        assert row["final_loss"] == trial.user_attrs.get("final_loss")
        assert "history" not in row
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = min(complete, key=lambda t: t.value)
    shown = view["summary"]["best"]
    assert (shown["number"], shown["value"], shown["params"]) == (best.number, best.value,
                                                                  best.params)
    assert shown["fixed"] == {"min_lr": 1e-3, "epochs": 30}  # the space given above
    states = [t.state.name for t in trials]
    assert view["summary"]["states"] == {s: states.count(s) for s in set(states)}
    pruned = states.count("PRUNED")
    sentences = [s for s in view["summary"]["failures"] if "pruned" in s]
    assert [s.startswith(f"{pruned} of 6 trials were pruned") for s in sentences] == \
        ([True] if pruned else [])
    # the report's pictures: loss against each swept setting, and the learning curves
    names = {p["name"] for p in view["pictures"]}
    assert names == {"loss_vs_lr.png", "loss_vs_max_grad.png", "loss_vs_lr_decay.png",
                     "curves.png"}
    for p in view["pictures"]:
        r = client.get(p["url"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == (root / "made" / p["name"]).read_bytes()
    listed = client.get("/api/sweep/folders").json()
    assert [f["folder"] for f in listed["folders"]] == ["made"]


def test_folders_outside_the_root_and_files_not_in_the_report_are_refused(client, root,
                                                                          tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(root / "made", outside)
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "empty").mkdir()
    (root / "made" / "notes.png").write_bytes(b"\x89PNG not the report's")
    try:
        for folder in ("../" + tmp_path.name, str(outside), "link", "made/../../x", "/etc"):
            message = error_of(client.get("/api/sweep/open", params={"folder": folder}), 403)
            assert "outside the sweeps folder" in message
        assert "no study.journal" in error_of(
            client.get("/api/sweep/open", params={"folder": "empty"}), 404)
        assert not (root / "empty" / "study.journal").exists()  # opening wrote nothing
        assert "not a folder" in error_of(
            client.get("/api/sweep/open", params={"folder": "missing"}), 404)
        assert "give a sweep's output folder" in error_of(client.get("/api/sweep/open"), 400)
        for name in ("study.journal", "trials.csv", "notes.png", "../made/curves.png",
                     "index.html", ""):
            r = client.get("/api/sweep/picture", params={"folder": "made", "name": name})
            assert "is not a picture of this sweep's report" in error_of(r, 404)
        r = client.get("/api/sweep/picture", params={"folder": "link", "name": "curves.png"})
        assert r.status_code == 403
        assert [f["folder"] for f in client.get("/api/sweep/folders").json()["folders"]] == \
            ["made"]
    finally:
        (root / "link").unlink()
        (root / "empty").rmdir()
        (root / "made" / "notes.png").unlink()


# ---------------------------------------------------------------------------- starting one
def test_the_limits_of_a_sweep_started_from_the_page(client, root):
    cases = [({"trials": 17}, "trials: must be between 1 and 16, got 17"),
             ({"workers": 3}, "workers: must be between 1 and 2, got 3"),
             ({"epochs": 301}, "epochs: must be between 1 and 300, got 301"),
             ({"epochs": 0}, "epochs: must be between 1 and 300, got 0"),
             ({"sampler": "grid"}, "sampler: 'grid' is not one of tpe, random"),
             ({"pruner": "never"}, "pruner: 'never' is not one of"),
             ({"trials": "many"}, "trials: expected a whole number")]
    for body, expected in cases:
        assert expected in error_of(client.post("/api/sweep/runs", json=body), 400)
    r = client.post("/api/sweep/runs", content=b"trials=4",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert error_of(r, 415)
    assert not (root / "runs").exists()  # nothing refused made a folder
    assert "no sweep run" in error_of(client.get("/api/sweep/runs/nope"), 404)


def test_a_sweep_started_from_the_api_streams_its_progress_and_opens(client, root, marked):
    r = client.post("/api/sweep/runs", json={"trials": 3, "workers": 2, "epochs": 20,
                                             "sampler": "random", "seed": 1})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["folder"].startswith("runs/lab-sweep-")
    again = client.post("/api/sweep/runs", json={"trials": 2})
    assert "already running" in error_of(again, 409)
    messages = follow(client, run["run"])
    done = [m["done"] for m in messages]
    assert done == sorted(done) and messages[-1]["status"] == "done", messages[-1]
    study = optuna_study(root / run["folder"])
    finished = [t for t in study.get_trials() if t.state.is_finished()]
    assert messages[-1]["done"] == len(finished) == 3
    assert messages[-1]["pruned"] == sum(t.state.name == "PRUNED" for t in finished)
    best = min((t for t in finished if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert messages[-1]["best"] == {"number": best.number, "value": best.value,
                                    "params": best.params}
    assert study.user_attrs["graphgrad"]["space"]["epochs"] == {"value": 20}
    view = client.get("/api/sweep/open", params={"folder": run["folder"]}).json()
    assert view["summary"]["best"]["params"] == best.params
    assert len(view["pictures"]) == 4
    assert client.get(f"/api/sweep/runs/{run['run']}").json()["status"] == "done"


def test_stopping_a_sweep_ends_its_processes_and_keeps_its_record(client, root, marked):
    run = client.post("/api/sweep/runs", json={"trials": 16, "workers": 2,
                                               "epochs": 300}).json()
    deadline = time.monotonic() + 30
    while client.get(f"/api/sweep/runs/{run['run']}").json()["running"] == 0:
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.1)
    assert alive_marked(marked)  # the sweep and its workers are up
    stopped = client.delete(f"/api/sweep/runs/{run['run']}").json()
    assert stopped["status"] == "stopped" and stopped["running"] == 0
    assert not alive_marked(marked, wait=5)
    states = {t.state.name for t in optuna_study(root / run["folder"]).get_trials()}
    assert "RUNNING" not in states  # the driver closed the trials it had out


def test_stopping_the_server_stops_a_running_sweep(root, marked):
    with TestClient(app.create_app(sweeps=root)) as c:
        assert c.post("/api/sweep/runs", json={"trials": 2, "epochs": 300}).status_code == 201
        assert alive_marked(marked)
    assert sweep_page.runs.current is None
    assert not alive_marked(marked, wait=5)
