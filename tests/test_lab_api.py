"""The lab's HTTP API through Starlette's TestClient: every endpoint, its limits and its errors.

Numbers are checked against the seeds' hand calculations (001: z = 7 and gradients 3, 2, 1;
003: the worked table), torch 2.13 (seed 004), gradient descent written out in NumPy (the
live learning-rate change) and the engine's own record (event order, verdicts).
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

pytest.importorskip("starlette")

import warnings  # noqa: E402

import torch  # noqa: E402

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 and says so on import
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from graphgrad.cli import main as cli_main  # noqa: E402
from graphgrad.data import datasets  # noqa: E402
from graphgrad.graph import SerialExecutor, examples  # noqa: E402
from graphgrad.lab import LIMITS, app, graph_page, train_page  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with TestClient(app.create_app()) as c:
        yield c


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]


def steps(client, key: str, count: int = 1000, **extra) -> list:
    r = client.post(f"/api/graph/sessions/{key}/step", json={"count": count, **extra})
    assert r.status_code == 200, r.text
    return r.json()["changes"]


def done_values(changes) -> tuple[dict, dict]:
    values = {c["name"]: c["value"] for c in changes if c.get("value") is not None}
    grads = {c["name"]: c["grad"] for c in changes if c.get("grad") is not None}
    return values, grads


# ---------------------------------------------------------------------------- pages
def test_pages_and_static_files(client):
    for path in ("/", "/graph", "/backprop", "/train"):
        r = client.get(path)
        assert r.status_code == 200 and "graphgrad lab" in r.text
    pages = client.get("/api/pages").json()
    assert [p["slug"] for p in pages["pages"]] == ["graph", "backprop", "train", "sweep"]
    assert pages["limits"]["expression_chars"] == LIMITS.expression_chars
    for name in ("common.js", "graph.js", "backprop.js", "train.js", "index.js", "lab.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and len(r.text) > 20
    assert "javascript" in client.get("/static/graph.js").headers["content-type"]


def test_unknown_paths_methods_and_hosts_get_clear_errors(client):
    assert "no such page" in error_of(client.get("/api/nothing"), 404)
    assert "not allowed" in error_of(client.get("/api/graph/sessions"), 405)
    # another site's name for this server (DNS rebinding) is refused
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400


def test_json_bodies_are_checked(client):
    r = client.post("/api/graph/sessions", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert "not valid JSON" in error_of(r, 400)
    r = client.post("/api/graph/sessions", content=b'{"example": "001"}',
                    headers={"content-type": "text/plain"})
    assert "Content-Type: application/json" in error_of(r, 415)
    r = client.post("/api/graph/sessions", content=b"[1, 2]",
                    headers={"content-type": "application/json"})
    assert "expected a JSON object" in error_of(r, 400)
    big = json.dumps({"expr": "x", "pad": "a" * LIMITS.body_bytes}).encode()
    r = client.post("/api/graph/sessions", content=big,
                    headers={"content-type": "application/json"})
    assert "limit" in error_of(r, 413)


# ---------------------------------------------------------------------------- graph page
def test_examples_list(client):
    data = client.get("/api/graph/examples").json()
    assert [e["id"] for e in data["examples"]] == ["001", "003", "004", "wide"]
    assert data["limits"]["nodes"] == LIMITS.nodes


def test_seed_001_steps_to_z_7_and_gradients_3_2_1(client):
    r = client.post("/api/graph/sessions", json={"example": "001"})
    assert r.status_code == 201
    opened = r.json()
    assert 'id="node-' in opened["svg"] and 'data-pass="forward"' in opened["explain_html"]
    key = opened["session"]
    first = steps(client, key, 1)[0]
    assert (first["phase"], first["state"], first["counts"]["active"]) == ("forward", "running", 1)
    forward = steps(client, key, phase="forward")
    assert all(c["phase"] == "forward" for c in forward)
    values, _ = done_values(forward)
    assert values["z"] == "7" and values["x*w"] == "6"
    rest = steps(client, key)
    _, grads = done_values(rest)
    assert (grads["x"], grads["w"], grads["b"], grads["z"]) == ("3", "2", "1", "1")
    assert rest[-1]["phase"] == "done"
    update = {row["name"]: row["new"] for row in rest[-1]["update"]}
    assert update == pytest.approx({"x": 2 - 0.1 * 3, "w": 3 - 0.1 * 2, "b": 1 - 0.1 * 1})
    # the step executor ran the nodes in the order the serial executor does
    graph, _, _ = graph_page.build({"example": "001"})
    serial = [e.node for e in graph.run(executor=SerialExecutor()).events]
    ran = [c["node"] for c in [first, *forward] if c["state"] == "done"]
    assert ran == serial
    # reset starts over at the first node
    assert client.post(f"/api/graph/sessions/{key}/reset").json()["phase"] == "forward"
    assert steps(client, key, 1)[0]["node"] == serial[0]
    assert client.delete(f"/api/graph/sessions/{key}").json() == {"closed": True}
    assert "no graph session" in error_of(client.post(f"/api/graph/sessions/{key}/step"), 404)
    assert error_of(client.delete(f"/api/graph/sessions/{key}"), 404)


def test_seed_003_session_matches_the_hand_calculation(client):
    key = client.post("/api/graph/sessions", json={"example": "003"}).json()["session"]
    values, grads = done_values(steps(client, key))
    assert values["J"] == "0.834694" and values["p"] == "0.142857"
    for name, expected in {"a": 0.449854, "b": 0.174927, "c": 0.239942, "d": 0.034985}.items():
        assert float(grads[name]) == pytest.approx(expected, abs=1e-6)


def test_seed_004_value_and_gradients_match_torch(client):
    r = client.post("/api/graph/sessions", json={"example": "004", "at": {"x": 1.5}})
    key = r.json()["session"]
    values, grads = done_values(steps(client, key))
    x, y, z = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.5, 2.0, 3.0))
    f = torch.tanh(torch.log(1 + z * 2 * x / torch.sin(y)))
    f.backward()
    assert float(values["f"]) == pytest.approx(f.item(), rel=1e-5)
    for name, t in zip("xyz", (x, y, z)):
        assert float(grads[name]) == pytest.approx(t.grad.item(), rel=1e-5)


def test_a_typed_expression_and_its_errors(client):
    r = client.post("/api/graph/sessions", json={"expr": "q = sin(a)*a", "at": {"a": 0.5}})
    key = r.json()["session"]
    values, grads = done_values(steps(client, key))
    assert float(values["q"]) == pytest.approx(math.sin(0.5) * 0.5, rel=1e-5)
    assert float(grads["a"]) == pytest.approx(math.cos(0.5) * 0.5 + math.sin(0.5), rel=1e-5)
    post = lambda body: client.post("/api/graph/sessions", json=body)  # noqa: E731
    assert "column 3" in error_of(post({"expr": "2*(x", "at": {"x": 1}}), 400)
    assert "unknown function" in error_of(post({"expr": "__import__(x)", "at": {"x": 1}}), 400)
    assert "no value for variable 'y'" in error_of(post({"expr": "x*y", "at": {"x": 1}}), 400)
    assert "limit is 500" in error_of(post({"expr": "x" * 501}), 413)
    assert "nodes, the limit" in error_of(post({"expr": "+".join(["1"] * 240)}), 413)
    assert "finite number" in error_of(post({"expr": "x", "at": {"x": "inf"}}), 400)
    assert "is not one of" in error_of(post({"example": "999"}), 400)
    assert "a string is required" in error_of(post({"at": {}}), 400)
    assert "seed 003 has no variable" in error_of(post({"example": "003", "at": {"q": 1}}), 400)


def test_step_limits(client):
    key = client.post("/api/graph/sessions", json={"example": "001"}).json()["session"]
    r = client.post(f"/api/graph/sessions/{key}/step", json={"count": LIMITS.steps_per_request + 1})
    assert "between 1 and" in error_of(r, 400)
    r = client.post(f"/api/graph/sessions/{key}/step", json={"phase": "sideways"})
    assert "is not one of" in error_of(r, 400)


def test_graph_sessions_are_limited(client, monkeypatch):
    monkeypatch.setattr(graph_page.graph_sessions, "limit", len(graph_page.graph_sessions) + 1)
    assert client.post("/api/graph/sessions", json={"example": "001"}).status_code == 201
    r = client.post("/api/graph/sessions", json={"example": "001"})
    assert "too many graph sessions" in error_of(r, 429)


def test_thread_pool_run_records_real_events(client):
    r = client.post("/api/graph/threads", json={"example": "003", "workers": 2})
    data = r.json()
    graph, _, _ = graph_page.build({"example": "003"})
    forward = [e for e in data["events"] if e["phase"] == "forward"]
    backward = [e for e in data["events"] if e["phase"] == "backward"]
    assert len(forward) == len(graph.nodes) and backward
    assert {e["worker"] for e in data["events"]} <= {"worker-1", "worker-2"}
    end = {e["node"]: e["end"] for e in forward}
    for e in forward:  # a node starts only once every input has finished
        assert all(end[i] <= e["start"] for i in graph.nodes[e["node"]].inputs)
    assert data["wall"] == max(e["end"] for e in data["events"])
    r = client.post("/api/graph/threads", json={"example": "001", "workers": 9})
    assert "between 1 and 4" in error_of(r, 400)


# ---------------------------------------------------------------------------- backprop page
SEED_003 = {  # the seed's worked numbers, iteration by iteration
    1: {"J": "0.834694", "grads": {"a": "0.449854", "b": "0.174927", "c": "0.239942",
                                   "d": "0.034985"},
        "new": {"a": "0.955015", "b": "-0.017493", "c": "0.976006", "d": "-0.003499"}},
    2: {"grads": {"a": "0.095501", "b": "-0.042560", "c": "0.097587", "d": "-0.044064"},
        "new": {"a": "0.945464", "b": "-0.013237", "c": "0.966247", "d": "0.000908"}},
}


def test_backprop_is_the_seed_digit_for_digit_and_the_cli_text(client, capsys):
    data = client.post("/api/backprop", json={}).json()
    assert client.get("/api/backprop/seed").json()["seed"]["x"] == 2.0
    for k, it in enumerate(data["iterations"], start=1):
        html = it["html"]
        if "J" in SEED_003[k]:
            assert f"<td>J</td><td>L+R</td><td>{SEED_003[k]['J']}</td>" in html
        for name, grad in SEED_003[k]["grads"].items():
            assert f"<td>{name}</td><td>{grad}</td>" in html
        for name, new in SEED_003[k]["new"].items():
            assert f"</td><td>{new}</td></tr>" in html and f"<td>{name}</td>" in html
    assert cli_main(["explain"]) == 0
    printed = capsys.readouterr().out
    for it in data["iterations"]:
        assert it["text"] in printed  # the same table as `graphgrad explain`


def test_backprop_with_other_constants_matches_a_hand_formula(client):
    x, y, lam, a, b, c, d = 3.0, 0.5, 0.2, 0.5, 0.1, -0.3, 0.2
    data = client.post("/api/backprop", json={"x": x, "y": y, "lam": lam, "a": a, "b": b,
                                              "c": c, "d": d}).json()
    u = a * x + b
    v = c * u * u + u + d
    J = (1 / (1 + v) - y) ** 2 + lam / 2 * (a * a + c * c)
    forward = data["iterations"][0]["table"]["forward"]
    assert next(r["value"] for r in forward if r["name"] == "J") == pytest.approx(J, rel=1e-12)
    r = client.post("/api/backprop", json={"x": 1e6})
    assert "at most 1000" in error_of(r, 400)
    assert "is not a number" in error_of(client.post("/api/backprop", json={"eta": "fast"}), 400)


# ---------------------------------------------------------------------------- train page
def wait_for(client, key: str, statuses, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = client.get(f"/api/train/sessions/{key}").json()
        if snap["status"] in statuses:
            return snap
        time.sleep(0.02)
    raise AssertionError(f"session still {snap['status']} after {timeout} s")


def stream(client, key: str) -> list:
    messages = []
    with client.stream("GET", f"/api/train/sessions/{key}/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: {}":
                messages.append(json.loads(line[6:]))
    return messages


def test_defaults_and_preview(client):
    d = client.get("/api/train/defaults").json()
    assert d["tasks"]["polynomial"]["lr_decay"] == 0.999 and "sgd" in d["optimizers"]
    p = client.post("/api/train/preview", json={"task": "moons"}).json()
    assert p["view"]["kind"] == "classes" and len(p["picture"]["heat"]) == train_page.GRID ** 2
    p = client.post("/api/train/preview", json={"task": "linear"}).json()
    assert p["picture"] == {"w": -2.0, "b": 15.0}


def test_linear_fit_streams_its_history_and_recovers_3x_plus_7(client):
    r = client.post("/api/train/sessions", json={"task": "linear", "speed": 500, "epochs": 150})
    assert r.status_code == 201
    key = r.json()["session"]
    messages = stream(client, key)
    records = [rec for m in messages for rec in m["records"]]
    assert [rec["epoch"] for rec in records] == list(range(1, 151))
    assert messages[-1]["status"] == "done"
    line = next(m["picture"] for m in reversed(messages) if "picture" in m)
    assert line["w"] == pytest.approx(3.0, abs=0.05) and line["b"] == pytest.approx(7.0, abs=0.05)
    # each loss is the one of plain gradient descent from w = -2, b = 15, in float64
    x, y = (t.numpy().astype(np.float64).ravel() for t in datasets.line(seed=0).tensors)
    w, b = -2.0, 15.0
    for rec in records[:20]:
        error = w * x + b - y
        assert rec["loss"] == pytest.approx(np.mean(error**2), rel=1e-4)
        w, b = w - 0.1 * 2 * np.mean(error * x), b - 0.1 * 2 * np.mean(error)


def test_learning_rate_changes_at_the_next_step(client):
    key = client.post("/api/train/sessions", json={"task": "linear", "lr": 0.01,
                                                   "paused": True}).json()["session"]
    for _ in range(5):
        client.post(f"/api/train/sessions/{key}/control", json={"action": "step"})
    snap = wait_for_epochs(client, key, 5)
    assert snap["lr"] == 0.01
    r = client.post(f"/api/train/sessions/{key}/control", json={"lr": 0.3})
    assert r.json()["requested_lr"] == 0.3
    for _ in range(5):
        client.post(f"/api/train/sessions/{key}/control", json={"action": "step"})
    snap = wait_for_epochs(client, key, 10)
    assert snap["lr"] == 0.3  # the optimizer's param_groups now hold the new rate
    records = snap["records"]
    assert [r["lr"] for r in records] == [0.01] * 5 + [0.3] * 5
    x, y = (t.numpy().astype(np.float64).ravel() for t in datasets.line(seed=0).tensors)
    w, b = -2.0, 15.0
    for rec in records:
        error = w * x + b - y
        assert rec["loss"] == pytest.approx(np.mean(error**2), rel=1e-4)
        w, b = w - rec["lr"] * 2 * np.mean(error * x), b - rec["lr"] * 2 * np.mean(error)
    client.post(f"/api/train/sessions/{key}/control", json={"action": "stop"})
    assert wait_for(client, key, {"stopped"})["status"] == "stopped"
    r = client.post(f"/api/train/sessions/{key}/control", json={"action": "resume"})
    assert "the run is over" in error_of(r, 409)
    assert client.delete(f"/api/train/sessions/{key}").json() == {"closed": True}


def wait_for_epochs(client, key: str, count: int, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = client.get(f"/api/train/sessions/{key}").json()
        if snap["epoch"] >= count:
            return snap
        time.sleep(0.01)
    raise AssertionError(f"only {snap['epoch']} epochs after {timeout} s")


def test_pause_holds_the_run(client):
    key = client.post("/api/train/sessions", json={"task": "linear", "speed": 200,
                                                   "epochs": 5000}).json()["session"]
    wait_for_epochs(client, key, 3)
    client.post(f"/api/train/sessions/{key}/control", json={"action": "pause"})
    time.sleep(0.1)
    held = client.get(f"/api/train/sessions/{key}").json()["epoch"]
    time.sleep(0.3)
    assert client.get(f"/api/train/sessions/{key}").json()["epoch"] == held
    client.post(f"/api/train/sessions/{key}/control", json={"action": "resume"})
    wait_for_epochs(client, key, held + 3)
    client.delete(f"/api/train/sessions/{key}")


def test_divergent_polynomial_gets_fits_verdict(client):
    bad = {"task": "polynomial", "lr": 0.1, "lr_decay": 1, "max_grad": 1e10, "speed": 500}
    key = client.post("/api/train/sessions", json=bad).json()["session"]
    snap = wait_for(client, key, {"diverged"})
    from graphgrad.train import fit

    history = fit(examples.polynomial(), None, examples.polynomial_data(), lr=0.1, min_lr=0,
                  max_grad=1e10, epochs=300, batch_size=None, shuffle=False, progress=False)
    assert snap["verdict"] == history.verdict.message
    assert snap["verdict"].startswith("Training diverged at epoch 3")
    assert [r["loss"] for r in snap["records"]] == [r["train_loss"] for r in history.epochs]


def test_classification_streams_a_heat_map(client):
    key = client.post("/api/train/sessions", json={"task": "spirals", "speed": 500,
                                                   "epochs": 40}).json()["session"]
    messages = stream(client, key)
    heat = next(m["picture"] for m in reversed(messages) if "picture" in m)["heat"]
    assert len(heat) == train_page.GRID ** 2 and {h // 10 for h in heat} <= {0, 1, 2}
    records = [rec for m in messages for rec in m["records"]]
    assert [rec["epoch"] for rec in records] == list(range(1, 41))
    assert messages[-1]["status"] == "done" and 0 <= records[-1]["metric"] <= 1


def test_own_points_and_csv_upload(client):
    csv = b"x1,x2,class\n0,0,0\n0.1,0.2,0\n1,1,1\n1.2,0.9,1\n"
    pts = client.post("/api/train/points", content=csv,
                      headers={"content-type": "text/csv"}).json()["points"]
    assert pts == [[0, 0, 0], [0.1, 0.2, 0], [1, 1, 1], [1.2, 0.9, 1]]
    key = client.post("/api/train/sessions", json={"task": "points", "points": pts, "speed": 500,
                                                   "epochs": 100}).json()["session"]
    snap = wait_for(client, key, {"done"})
    assert snap["records"][-1]["metric"] == 1.0
    line = client.post("/api/train/preview", json={"task": "points",
                                                   "points": [[0, 7], [1, 10], [2, 13]]}).json()
    assert line["view"]["kind"] == "line"
    upload = lambda body: client.post("/api/train/points", content=body,  # noqa: E731
                                      headers={"content-type": "text/csv"})
    assert "line 2" in error_of(upload(b"1,2\nx,y\n"), 400)
    assert "limit" in error_of(upload(b"1,2\n" * (LIMITS.upload_bytes // 4 + 1)), 413)
    assert "class must be" in error_of(upload(b"1,2,7\n2,3,0\n"), 400)


def test_training_inputs_have_limits(client):
    post = lambda body: client.post("/api/train/sessions", json=body)  # noqa: E731
    assert "between 1 and 5000" in error_of(post({"epochs": 5001}), 400)
    assert "must be positive" in error_of(post({"lr": 0}), 400)
    assert "is not one of" in error_of(post({"task": "chess"}), 400)
    assert "is not one of" in error_of(post({"optimizer": "magic"}), 400)
    assert "at most 500" in error_of(post({"speed": 1e4}), 400)
    many = [[0.0, 0.0, k % 2] for k in range(LIMITS.points + 1)]
    assert "the limit is 500" in error_of(post({"task": "points", "points": many}), 413)
    assert "at least two classes" in error_of(post({"task": "points",
                                                    "points": [[0, 0, 1], [1, 1, 1]]}), 400)
    assert "non-empty list" in error_of(post({"task": "points"}), 400)
    assert "no training session" in error_of(client.get("/api/train/sessions/nope"), 404)


def test_training_sessions_are_limited(client, monkeypatch):
    monkeypatch.setattr(train_page.train_sessions, "limit", len(train_page.train_sessions) + 1)
    first = client.post("/api/train/sessions", json={"paused": True}).json()["session"]
    r = client.post("/api/train/sessions", json={"paused": True})
    assert "too many training sessions" in error_of(r, 429)
    client.delete(f"/api/train/sessions/{first}")


def test_lab_command_flags(capsys):
    assert cli_main(["lab", "--port", "99999"]) == 2
    assert "port number from 1 to 65535" in capsys.readouterr().err
