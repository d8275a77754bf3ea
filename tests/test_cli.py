"""The graphgrad command: the seed numbers it prints, and one clear line with exit code 2 for bad
input. Runs the real console script in a subprocess, as a user would."""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from safetensors.numpy import load_file

from graphgrad.train import load_checkpoint

COMMAND = [sys.executable, "-m", "graphgrad.cli"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The command's own entry point in an interpreter where `import matplotlib` fails, as it does
# when the plot extra is not installed.
WITHOUT_MATPLOTLIB = [sys.executable, "-c", "import sys; sys.modules['matplotlib'] = None; "
                      "from graphgrad.cli import main; sys.exit(main())"]


def graphgrad(*args: str, command=COMMAND) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)


def assert_one_clean_line(result: subprocess.CompletedProcess, message: str) -> None:
    """Bad input: exit code 2, and one line on stderr that says what was wrong."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


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
    (["graph", "2x", "--at", "x=1"], "expected an operator at column 2"),  # 2x: x is column 2
    (["graph", "foo(x)", "--at", "x=1"], "unknown function 'foo'"),
    (["graph", "x*y", "--at", "x=1"], "no value for variable 'y'"),
    (["graph", "x", "--at", "x=one"], "is not a number"),
    (["graph", "x", "--at", "x"], "expected NAME=NUMBER"),
    (["explain", "--format", "xml"], "choose from 'text', 'markdown', 'json'"),
    (["explain", "--lr", "-1"], "must be positive"),
    (["graph", "x", "--at", "x=1", "--svg", "/no/such/folder/f.svg"], "does not exist"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
    # a mistyped command or flag: a suggestion, and where to look
    (["fti", "polynomial"], "did you mean 'fit'? (see graphgrad --help)"),
    (["fit", "polynomial", "--lrr", "0.1"], "unknown flag --lrr; did you mean --lr? (see "
                                            "graphgrad fit --help)"),
    (["fit", "polyomial"], "unknown task 'polyomial'; did you mean 'polynomial'?"),
    (["fit", "linear", "--optimizer", "adm"], "did you mean 'adam'?"),
    (["--bogus"], "unknown flag --bogus"),
    (["fit", "linear", "extra"], "unexpected argument 'extra' (see graphgrad fit --help)"),
    # numbers that are not finite, and values outside what fit accepts
    (["fit", "polynomial", "--lr", "nan"], "argument --lr: must be a finite number, got nan"),
    (["fit", "polynomial", "--lr", "inf"], "argument --lr: must be a finite number, got inf"),
    (["fit", "polynomial", "--max-grad", "nan"], "--max-grad: must be a finite number, got nan"),
    (["fit", "polynomial", "--lr-decay", "2"], "--lr-decay: must be in (0, 1], got 2"),
    (["graph", "x", "--at", "x=nan"], "x: must be a finite number, got nan"),
    (["explain", "x*w", "--at", "x=2,w=3", "--inputs", "q"], "inputs 'q' not in 'x*w'; its "
                                                             "variables are x, w"),
    (["explain", "x*w", "--at", "w=3", "--inputs", "x"], "no value for input 'x'"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, message):
    assert_one_clean_line(graphgrad(*args), message)


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
    assert bad.stdout.count("Training diverged at epoch 3") == 1  # said once
    assert "learning rate" in bad.stdout.lower()


def test_fit_compile_trains_to_the_same_history_and_refuses_a_graph_task(tmp_path):
    runs = {}
    for flags in ((), ("--compile",)):
        out = tmp_path / ("compiled" if flags else "eager")
        result = graphgrad("fit", "moons", "--epochs", "3", "--out", str(out), *flags)
        assert result.returncode == 0, result.stdout + result.stderr
        history = json.loads((out / "history.json").read_text())
        runs[bool(flags)] = [epoch["train_loss"] for epoch in history["epochs"]]
    assert runs[True] == runs[False]
    assert_one_clean_line(graphgrad("fit", "polynomial", "--compile", "--out", str(tmp_path)),
                          "compile=True trains an nn.Module")


def test_fit_reads_a_toml_config_and_flags_override_it(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('lr = 0.1\nlr-decay = 1.0\nmax_grad = 1e10\nepochs = 300\n')
    diverged = graphgrad("fit", "polynomial", "--config", str(config), "--out", str(tmp_path / "a"))
    assert diverged.returncode == 1
    calmer = graphgrad("fit", "polynomial", "--config", str(config), "--lr", "0.01",
                       "--max-grad", "1000", "--lr-decay", "0.999", "--out", str(tmp_path / "b"))
    assert calmer.returncode == 0, calmer.stdout + calmer.stderr


@pytest.mark.parametrize("text,message", [
    ("lr = -0.1", "lr in {path}: must be positive, got -0.1"),
    ("lr = nan", "lr in {path}: must be a finite number, got nan"),
    ("max-grad = inf", "max-grad in {path}: must be a finite number, got inf"),
    ("epochs = 2.5", "epochs in {path}: must be a whole number, got 2.5"),
    ("optimizer = 'adma'", "optimizer in {path}: invalid choice 'adma'; did you mean 'adam'?"),
    ("lr_decy = 0.9", "unknown key 'lr_decy' in {path}; did you mean 'lr_decay'?"),
])
def test_config_values_meet_the_flags_validators(tmp_path, text, message):
    config = tmp_path / "run.toml"
    config.write_text(text + "\n")
    result = graphgrad("fit", "polynomial", "--config", str(config), "--out", str(tmp_path))
    assert_one_clean_line(result, message.format(path=config))


def test_files_and_folders_that_cannot_be_used(tmp_path):
    assert_one_clean_line(graphgrad("fit", "linear", "--config", str(tmp_path)),
                          f"config file {tmp_path} is a folder, not a TOML file")
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made inside a file, even by root
    assert_one_clean_line(graphgrad("tour", "--out", str(blocker / "tour")),
                          f"graphgrad tour: --out {blocker / 'tour'}: cannot make this folder")
    assert_one_clean_line(graphgrad("fit", "linear", "--out", str(blocker)),
                          f"graphgrad fit: --out {blocker}: exists and is not a folder")
    result = graphgrad("fit", "polynomial", "--resume", "--out", str(tmp_path / "new"))
    assert_one_clean_line(result, f"--resume: there is no checkpoint "
                                  f"{tmp_path / 'new' / 'checkpoint.safetensors'}")
    assert "--checkpoint-every N" in result.stderr and not (tmp_path / "new").exists()


def interrupt(args: list, ready) -> subprocess.CompletedProcess:
    """Run the command and send it SIGINT, as Ctrl-C in a terminal does, once ``ready()``."""
    child = subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True,  # SIGINT on, even when this test runs with it ignored
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        while not ready() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready() and child.poll() is None, "the run did not get going within 30 s"
        time.sleep(0.2)  # in the middle of training
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def test_ctrl_c_says_how_to_resume_with_flags_and_exits_130(tmp_path):
    out = tmp_path / "run"
    args = ["fit", "polynomial", "--epochs", "100000", "--checkpoint-every", "1", "--out", str(out)]
    result = interrupt(args, (out / "checkpoint.safetensors").exists)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "fit(" not in result.stdout + result.stderr
    assert f"checkpoint in {out / 'checkpoint.safetensors'}" in result.stderr
    advice = result.stderr.strip().splitlines()[-1]
    assert advice.startswith("continue with: ")
    again = shlex.split(advice.removeprefix("continue with: "))
    assert again == ["graphgrad", *args, "--resume"]  # the same flags, and --resume
    epochs = load_checkpoint(out / "checkpoint.safetensors")["epoch"]  # completed, saved
    resumed = graphgrad(*again[1:], "--epochs", str(epochs + 1))  # one epoch more, then stop
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{epochs + 1} epochs; final train loss" in resumed.stdout


def test_ctrl_c_without_checkpoints_says_which_flag_would_have_saved_one(tmp_path):
    out = tmp_path / "run"
    result = interrupt(["fit", "polynomial", "--epochs", "100000", "--out", str(out)], out.exists)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "checkpoint_dir" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(
        "nothing was saved: use --checkpoint-every N to be able to resume")
    assert not (out / "checkpoint.safetensors").exists()


def test_numpy_warnings_become_one_note_in_graphgrads_words():
    result = graphgrad("graph", "log(x)", "--at", "x=0")
    assert result.returncode == 0 and result.stderr == ""  # no RuntimeWarning, no source line
    # by hand: log(0) = -inf and d/dx log(x) = 1/x = inf at 0
    assert "note: log(x) at x=0 gives f = -inf, df/dx = inf (divide by zero)" in result.stdout


def test_an_absurd_learning_rate_is_blamed_on_the_rate(tmp_path):
    result = graphgrad("fit", "polynomial", "--lr", "1e300", "--out", str(tmp_path / "flag"))
    assert result.returncode == 1, result.stderr
    assert "is too high" in result.stdout and "check the inputs" not in result.stdout
    config = tmp_path / "run.toml"
    config.write_text("lr = 1e30\n")  # huge but finite: it runs, and diverges
    result = graphgrad("fit", "polynomial", "--config", str(config), "--out", str(tmp_path))
    assert result.returncode == 1 and result.stdout.count("Training diverged") == 1
    assert "is too high" in result.stdout and "check the inputs" not in result.stdout


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


def test_fit_linear_shows_the_recovered_line_and_says_each_note_once(tmp_path):
    result = graphgrad("fit", "linear", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    saved = load_file(str(tmp_path / "weights.safetensors"))  # the weights the run wrote
    weight, bias = saved["weight"].item(), saved["bias"].item()
    assert abs(weight - 3) < 0.1 and abs(bias - 7) < 0.1  # f(x) = 3x + 7, from w=-2, b=15
    assert f"fitted parameters: weight = {weight:.5g}, bias = {bias:.5g}" in result.stdout
    notes = [line for line in result.stdout.splitlines() if line.startswith("note:")]
    assert notes and len(notes) == len(set(notes))  # the plateau note, once
    assert "wrote history.csv, history.json, history.png, weights.safetensors" in result.stdout


def test_without_matplotlib_fit_says_so_once_and_claims_no_plot(tmp_path):
    result = graphgrad("fit", "linear", "--epochs", "3", "--out", str(tmp_path),
                       command=WITHOUT_MATPLOTLIB)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('pip install "graphgrad[plot]"') == 1
    assert f"wrote history.csv, history.json, weights.safetensors to {tmp_path}" in result.stdout
    assert not (tmp_path / "history.png").exists()


def test_explain_says_which_variables_the_step_updates_and_keeps_inputs_fixed():
    result = graphgrad("explain", "x*w + b", "--at", "x=2,w=3,b=1", "--inputs", "x",
                       "--format", "json")
    assert result.returncode == 0, result.stderr
    update = {row["name"]: row["new"] for row in json.loads(result.stdout)["update"]}
    # by hand, f = x*w + b: df/dw = x = 2 and df/db = 1; x is an input and stays 2
    assert update == pytest.approx({"w": 3 - 0.1 * 2, "b": 1 - 0.1 * 1})
    text = graphgrad("explain", "x*w + b", "--at", "x=2,w=3,b=1", "--inputs", "x").stdout
    assert "inputs (held fixed): x; parameters (updated by the step): w, b" in text
    text = graphgrad("explain", "x*w + b", "--at", "x=2,w=3,b=1").stdout
    assert "every variable is a parameter, so the update step changes x, w, b" in text


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


class Pictures(HTMLParser):
    """The pictures a page shows: <img src>, <object data> and inline <svg>."""

    def __init__(self) -> None:
        super().__init__()
        self.shown, self.inline_svgs = set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.shown.add(attrs.get("src"))
        elif tag == "object":
            self.shown.add(attrs.get("data"))
        elif tag == "svg":
            self.inline_svgs += 1


def test_quick_tour_writes_an_index_showing_every_picture(tmp_path):
    out = tmp_path / "tour"
    result = graphgrad("tour", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    index = (out / "index.html").read_text()
    for name in ("explain_003.txt", "graph_003.svg", "polynomial_good.csv",
                 "polynomial_bad.csv", "line.csv", "timeline.svg"):
        assert name in index and (out / name).is_file(), name
    pictures = {name for name in os.listdir(out) if name.endswith((".png", ".svg"))}
    assert {"graph_003.svg", "polynomial_good.png", "timeline.svg"} <= pictures
    page = Pictures()
    page.feed(index)
    assert pictures <= page.shown  # each picture in the page, not only a link to it
    assert "diverged" in result.stdout.lower()
    # a diagnosis beyond divergence: the doctor names the softmax fed to CrossEntropyLoss
    assert ("CrossEntropyLoss (F.cross_entropy) got rows of values in [0, 1] that sum to 1"
            in result.stdout)
    assert "index.html" in result.stdout
    # the classifier's number is the last epoch's metric on the validation data, so named
    assert "validation accuracy" in result.stdout and "test accuracy" not in result.stdout


def test_the_default_output_folders_are_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "graphgrad-tour/index.html",
                             "runs/linear/history.csv"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.stdout.split() == ["graphgrad-tour/index.html", "runs/linear/history.csv"]


@pytest.mark.parametrize("task", ["moons", "spirals"])
def test_classification_tasks_train_and_report_a_metric(task, tmp_path):
    result = graphgrad("fit", task, "--epochs", "30", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    final = json.loads((tmp_path / "history.json").read_text())["epochs"][-1]
    assert final["metric"] > 0.75  # well above chance (1/2, 1/3) on the held-out fifth
    # the metric is called by its name in the summary and the table
    assert f"val accuracy {final['metric']:.4g}" in result.stdout
    with open(tmp_path / "history.csv", newline="") as table:
        assert "accuracy" in next(csv.reader(table))
    assert "fitted parameters" not in result.stdout  # hundreds of numbers: not printed
