"""The graphgrad command: the seed numbers it prints, and one clear line with exit code 2 for bad
input. Runs the real console script in a subprocess, as a user would."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest


def graphgrad(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphgrad.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_explain_prints_both_seed_003_iterations_digit_for_digit():
    result = graphgrad("explain")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("iteration 2")
    for number in ("0.834694", "0.034985", "0.449854", "0.174927", "0.239942", "0.955015",
                   "-0.017493", "0.976006", "-0.003499"):
        assert number in first, number
    for number in ("0.093678", "-0.044064", "0.095501", "-0.042560", "0.097587", "0.945464",
                   "-0.013237", "0.966247", "0.000908"):
        assert number in second, number


def test_explain_json_has_the_update():
    result = graphgrad("explain", "x*w + b", "--at", "x=2,w=3,b=1", "--format", "json")
    assert result.returncode == 0, result.stderr
    update = {row["name"]: row["new"] for row in json.loads(result.stdout)["update"]}
    assert update == pytest.approx({"x": 2 - 0.1 * 3, "w": 3 - 0.1 * 2, "b": 1 - 0.1 * 1})


def test_graph_prints_value_and_partials_of_seed_004(tmp_path):
    svg, dot = tmp_path / "f.svg", tmp_path / "f.dot"
    result = graphgrad("graph", "tanh(log(1 + z*2*x/sin(y)))", "--at", "x=1,y=2,z=3",
                       "--svg", str(svg), "--dot", str(dot))
    assert result.returncode == 0, result.stderr
    s, f = math.sin(2.0), math.tanh(math.log(1 + 6 / math.sin(2.0)))
    outer = (1 - f * f) / (1 + 6 / s)  # by hand: d tanh(log(q)) = (1 - f^2) / q * dq
    expected = {"x": outer * 6 / s, "y": outer * -6 * math.cos(2.0) / s**2, "z": outer * 2 / s}
    lines = dict(line.strip().split(" = ") for line in result.stdout.splitlines() if "df/d" in line)
    for name, value in expected.items():
        assert float(lines[f"df/d{name}"]) == pytest.approx(value, rel=1e-9)
    assert f"{f:.10g}" in result.stdout
    ET.parse(svg)  # well-formed XML
    assert dot.read_text().startswith("digraph")


@pytest.mark.parametrize("args,message", [
    (["graph", "tanh(log(1 + x)", "--at", "x=1"], "expected ')' at column"),
    (["graph", "2x", "--at", "x=1"], "column 1"),
    (["graph", "foo(x)", "--at", "x=1"], "unknown function 'foo'"),
    (["graph", "x*y", "--at", "x=1"], "no value for variable 'y'"),
    (["graph", "x", "--at", "x=one"], "is not a number"),
    (["graph", "x", "--at", "x"], "expected NAME=NUMBER"),
    (["explain", "--format", "xml"], "choose from 'text', 'markdown', 'json'"),
    (["explain", "--lr", "-1"], "must be positive"),
    (["graph", "x", "--at", "x=1", "--svg", "/no/such/folder/f.svg"], "does not exist"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, message):
    result = graphgrad(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [[], ["explain"], ["graph"]])
def test_help_and_version(command):
    result = graphgrad(*command, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout
    assert graphgrad("--version").stdout.startswith("graphgrad ")


# ---------------------------------------------------------------------- training commands


def test_fit_polynomial_good_settings_converge_and_bad_ones_exit_with_a_verdict(tmp_path):
    good = graphgrad("fit", "polynomial", "--out", str(tmp_path / "good"))
    assert good.returncode == 0, good.stderr
    for name in ("history.csv", "history.json", "weights.safetensors"):
        assert (tmp_path / "good" / name).is_file(), name
    bad = graphgrad("fit", "polynomial", "--lr", "0.1", "--lr-decay", "1", "--max-grad", "1e10",
                    "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1
    assert "diverged" in bad.stdout.lower()
    assert "learning rate" in bad.stdout.lower()


def test_fit_reads_a_toml_config_and_flags_override_it(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('lr = 0.1\nlr-decay = 1.0\nmax_grad = 1e10\nepochs = 300\n')
    diverged = graphgrad("fit", "polynomial", "--config", str(config), "--out", str(tmp_path / "a"))
    assert diverged.returncode == 1
    calmer = graphgrad("fit", "polynomial", "--config", str(config), "--lr", "0.01",
                       "--max-grad", "1000", "--lr-decay", "0.999", "--out", str(tmp_path / "b"))
    assert calmer.returncode == 0, calmer.stdout + calmer.stderr


def test_fit_a_task_file(tmp_path):
    task = tmp_path / "task.py"
    task.write_text(
        "import graphgrad as gg\n"
        "model = gg.nn.Linear(1, 1)\n"
        "loss_fn = gg.nn.MSELoss()\n"
        "x = gg.linspace(-1, 1, 20).reshape(-1, 1)\n"
        "train_data = (x, 2 * x + 1)\n"
        "config = {'optimizer': 'sgd', 'lr': 0.5, 'epochs': 50, 'batch_size': None}\n")
    result = graphgrad("fit", str(task), "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "run" / "weights.safetensors").is_file()


@pytest.mark.parametrize("args,message", [
    (["fit", "nope"], "unknown task 'nope'"),
    (["fit", "missing.py"], "does not exist"),
    (["fit", "linear", "--optimizer", "lbfgs"], "choose from 'sgd'"),
    (["fit", "linear", "--epochs", "0"], "must be positive"),
    (["fit", "linear", "--config", "no_such.toml"], "does not exist"),
    (["lr-find", "nope"], "unknown task"),
])
def test_training_commands_reject_bad_input_in_one_line(args, message):
    result = graphgrad(*args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_broken_and_unknown_config_keys(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = = 1")
    result = graphgrad("fit", "linear", "--config", str(broken))
    assert result.returncode == 2 and "not valid TOML" in result.stderr
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("learning_rate = 0.1")
    result = graphgrad("fit", "linear", "--config", str(unknown))
    assert result.returncode == 2 and "unknown key 'learning_rate'" in result.stderr


def test_lr_find_suggests_a_rate(tmp_path):
    result = graphgrad("lr-find", "linear", "--steps", "60", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "suggested learning rate" in result.stdout


def test_quick_tour_writes_an_index_linking_every_file(tmp_path):
    out = tmp_path / "tour"
    result = graphgrad("tour", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    index = (out / "index.html").read_text()
    for name in ("explain_003.txt", "graph_003.svg", "polynomial_good.csv",
                 "polynomial_bad.csv", "line.csv", "timeline.svg"):
        assert name in index and (out / name).is_file(), name
    assert "diverged" in result.stdout.lower()
    assert "index.html" in result.stdout


@pytest.mark.parametrize("task", ["moons", "spirals"])
def test_classification_tasks_train_and_report_a_metric(task, tmp_path):
    result = graphgrad("fit", task, "--epochs", "30", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    final = json.loads((tmp_path / "history.json").read_text())["epochs"][-1]
    assert final["metric"] > 0.75  # well above chance (1/2, 1/3) on the held-out fifth
