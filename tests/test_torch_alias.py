"""``graphgrad run-torch script.py``: unmodified PyTorch scripts run on graphgrad and print
torch's numbers.

Each script in tests/torch_scripts/ runs twice, as subprocesses started at the same time: with
the real torch (``python script.py``) and with ``python -m graphgrad run-torch script.py``; their
printed lines must say the same words and the same numbers, to float32 (float64) rounding.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphgrad import torch_alias

SCRIPTS = Path(__file__).parent / "torch_scripts"
TIMEOUT = 120  # seconds: a safety net, the runs take a few seconds
RUN_TORCH = [sys.executable, "-m", "graphgrad", "run-torch"]
MODULE_FORM = [sys.executable, "-m", "graphgrad.torch_alias"]
REAL_TORCH = os.path.dirname(torch.__file__)
NUMBER = re.compile(r"-?\d+\.?\d*(?:e[-+]?\d+)?")
_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # torch's threads only slow it on shared cores


def _start(command: list[str], cwd) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, env=_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _run(command: list[str], cwd) -> subprocess.CompletedProcess:
    return _finish(_start(command, cwd))


def _torch_and_graphgrad(script: str, cwd, args=()) -> tuple:
    """The script's runs with the real torch and with run-torch, side by side."""
    path = str(SCRIPTS / script)
    real = _start([sys.executable, path, *args], cwd)
    ours = _start([*RUN_TORCH, path, *args], cwd)
    return _finish(real), _finish(ours)


def _words_and_numbers(text: str) -> tuple[list[str], np.ndarray]:
    lines = text.strip().splitlines()
    return ([NUMBER.sub("#", line) for line in lines],
            np.array([float(n) for line in lines for n in NUMBER.findall(line)]))


# script -> (rtol, atol) of its printed numbers: float32 training (printed to 6 decimals) or
# float64 gradients (printed to 12)
TOLERANCES = {"mlp_classifier.py": (2e-4, 2e-6), "regression_adam.py": (2e-4, 2e-6),
              "custom_function.py": (1e-9, 2e-12), "conveniences.py": (2e-4, 2e-6),
              "cnn_classifier.py": (2e-4, 2e-6), "lstm_regressor.py": (2e-4, 2e-6)}


@pytest.mark.parametrize("script", sorted(TOLERANCES))
def test_the_script_prints_torchs_numbers(script, tmp_path):
    real, ours = _torch_and_graphgrad(script, tmp_path)
    assert real.returncode == 0, real.stderr
    assert ours.returncode == 0, ours.stderr
    real_words, real_numbers = _words_and_numbers(real.stdout)
    our_words, our_numbers = _words_and_numbers(ours.stdout)
    assert our_words == real_words and len(real_words) > 1
    rtol, atol = TOLERANCES[script]
    np.testing.assert_allclose(our_numbers, real_numbers, rtol=rtol, atol=atol)


def test_a_name_graphgrad_lacks_is_named_with_exit_code_1(tmp_path):
    real, ours = _torch_and_graphgrad("missing_name.py", tmp_path)
    assert real.returncode == 0 and "spectrum" in real.stdout, real.stderr  # a torch script
    assert ours.returncode == 1 and ours.stdout == ""
    assert ours.stderr.startswith("Traceback (most recent call last):\n  File ")
    assert "missing_name.py\", line 4, in <module>" in ours.stderr  # the script's own line
    assert "runpy" not in ours.stderr
    assert ours.stderr.strip().endswith(
        "ImportError: graphgrad's torch alias has no module torch.fft yet (run-torch answers "
        "torch imports with graphgrad; see README)")


def test_the_process_never_imports_the_real_torch(tmp_path):
    result = _run([*RUN_TORCH, str(SCRIPTS / "probe.py"), "0"], tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert set(seen["torch"]) >= {"torch", "torch.nn", "torch.nn.functional", "torch.optim",
                                  "torch.utils", "torch.utils.data"}
    graphgrad_folder = os.path.dirname(os.path.dirname(torch_alias.__file__))
    assert all(file.startswith(graphgrad_folder) for file in seen["torch"].values())
    assert not [f for f in seen["files"] if f.startswith(REAL_TORCH)]
    assert seen["linear"] == "graphgrad.nn.modules.linear.Linear"
    assert seen["version"] == f"{torch_alias._graphgrad_version}+graphgrad"


@pytest.mark.parametrize("form", [RUN_TORCH, MODULE_FORM], ids=["run-torch", "module"])
def test_argv_main_path_and_exit_code_are_pythons(form, tmp_path):
    script = str(SCRIPTS / "probe.py")
    result = _run([*form, script, "7", "--lr", "0.1", "a b", "--help"], tmp_path)
    assert result.returncode == 7, result.stderr
    seen = json.loads(result.stdout)
    assert seen["argv"] == [script, "7", "--lr", "0.1", "a b", "--help"]
    assert seen["name"] == "__main__"
    assert seen["path0"] == seen["here"] == str(SCRIPTS)


def test_a_relative_script_path_runs_from_its_folder(tmp_path):
    result = _run([*RUN_TORCH, "probe.py", "0"], SCRIPTS)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["argv"] == ["probe.py", "0"]


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def test_missing_names_and_modules_raise_one_clear_error(tmp_path):
    script = _write(tmp_path, "names.py", """
import torch
import torch.nn as nn
for attempt in ("torch.foo", "nn.Foo", "from torch.nn import Foo", "import torch.distributions",
                "from torch import fft", "from torch.nn.functional import gelu_new",
                "from torch import quantize_per_tensor", "import torch.nn.functional.foo"):
    try:
        exec(attempt) if " " in attempt else eval(attempt)
    except (AttributeError, ImportError) as exc:
        print(type(exc).__name__, "|", exc)
print(hasattr(torch, "foo"), hasattr(torch, "nn"), "nn" in dir(torch), "train" in dir(torch))
from torch.nn.functional import *  # noqa
from torch import *  # noqa
from torch.nn import *  # noqa
print(callable(relu), Linear is nn.Linear, tensor is torch.tensor)
""")
    result = _run([*RUN_TORCH, script], tmp_path)
    assert result.returncode == 0, result.stderr
    see = " (run-torch answers torch imports with graphgrad; see README)"
    assert result.stdout.splitlines() == [
        f"AttributeError | graphgrad does not have torch.foo yet{see}",
        f"AttributeError | graphgrad does not have torch.nn.Foo yet{see}",
        f"ImportError | graphgrad does not have torch.nn.Foo yet{see}",
        f"ImportError | graphgrad's torch alias has no module torch.distributions yet{see}",
        f"ImportError | graphgrad does not have torch.fft yet{see}",
        f"ImportError | graphgrad does not have torch.nn.functional.gelu_new yet{see}",
        f"ImportError | graphgrad does not have torch.quantize_per_tensor yet{see}",
        f"ImportError | graphgrad's torch alias has no module torch.nn.functional.foo yet{see}",
        "False True True False",  # graphgrad's own modules (graphgrad.train) are not torch's
        "True True True",
    ]


def test_every_alias_imports_as_its_graphgrad_module(tmp_path):
    script = _write(tmp_path, "aliases.py", """
import importlib, json, sys
from graphgrad.torch_alias import ALIASES, graphgrad_target
found = {}
for name, target in ALIASES.items():
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        found[name] = str(exc)
        continue
    found[name] = module.__graphgrad__ is graphgrad_target(target)
    parent, _, last = name.rpartition(".")
    if parent:
        assert getattr(sys.modules[parent], last) is module
print(json.dumps(found))
""")
    result = _run([*RUN_TORCH, script], tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found.keys() == torch_alias.ALIASES.keys()
    for name, verdict in found.items():  # a module being written may be missing, and says so
        assert verdict is True or verdict == (f"graphgrad's torch alias has no module {name} yet"
                                              " (run-torch answers torch imports with graphgrad;"
                                              " see README)"), name


def test_namespaces_import_as_modules_and_a_script_sets_graphgrads_flags(tmp_path):
    script = _write(tmp_path, "namespaces.py", """
import sys
import torch.backends.cudnn as cudnn
import torch.cuda
from torch.backends import mps
import graphgrad.backends
cudnn.benchmark = True
print(torch.backends.cudnn is cudnn is sys.modules["torch.backends.cudnn"],
      graphgrad.backends.cudnn.benchmark, torch.cuda is sys.modules["torch.cuda"],
      torch.cuda.is_available(), mps.is_available(), torch.backends.cuda.matmul.allow_tf32)
print(repr(cudnn), cudnn.__file__ == graphgrad.backends.__file__)
from torch.backends.cudnn import *  # noqa
print(sorted(n for n in dir() if n in ("benchmark", "flags", "is_available", "version")))
""")
    result = _run([*RUN_TORCH, script], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True True True False False False",
        "<module 'torch.backends.cudnn' (graphgrad's graphgrad.backends.cudnn)> True",
        "['benchmark', 'flags', 'is_available', 'version']"]


def test_patching_a_torch_name_patches_graphgrads_and_restores_it(tmp_path):
    script = _write(tmp_path, "patches.py", """
from unittest import mock
import torch
import torch.nn.functional as F
import graphgrad.nn.functional
relu = graphgrad.nn.functional.relu
with mock.patch("torch.nn.functional.relu", lambda x: "patched"):
    print(F.relu(1), graphgrad.nn.functional.relu(1), torch.nn.functional.relu is F.relu)
print(F.relu is relu is graphgrad.nn.functional.relu, "relu" in vars(F))
""")
    result = _run([*RUN_TORCH, script], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["patched patched True", "True False"]


def test_an_exception_prints_the_scripts_traceback_and_exits_1(tmp_path):
    script = _write(tmp_path, "fails.py", "import torch\n\ndef f():\n    raise OSError('x')\n"
                    "\nif __name__ == '__main__':\n    f()\n")
    result = _run([*RUN_TORCH, script], tmp_path)
    real = _run([sys.executable, script], tmp_path)
    assert result.returncode == real.returncode == 1
    assert result.stderr.replace(script, "S") == real.stderr.replace(script, "S")


def test_the_scripts_warnings_show_as_in_python(tmp_path):
    script = _write(tmp_path, "warns.py", "import warnings\nimport numpy as np\n"
                    "np.log(np.zeros(1))\nprint('between')\nwarnings.warn('careful')\n")
    result = _run([*RUN_TORCH, script], tmp_path)
    real = _run([sys.executable, script], tmp_path)
    assert (result.returncode, result.stdout) == (real.returncode, real.stdout) == (0, "between\n")
    assert result.stderr == real.stderr and "careful" in real.stderr and "log" in real.stderr


def test_sys_exit_with_a_message_is_pythons(tmp_path):
    script = _write(tmp_path, "stops.py", "import sys\nsys.exit('stopped early')\n")
    result = _run([*RUN_TORCH, script], tmp_path)
    assert (result.returncode, result.stderr) == (1, "stopped early\n")


def test_a_missing_script_exits_2(tmp_path):
    for form in (RUN_TORCH, MODULE_FORM):
        result = _run([*form, "no_such_script.py"], tmp_path)
        assert result.returncode == 2
        assert result.stderr == "graphgrad run-torch: script no_such_script.py does not exist\n"
    result = _run([*RUN_TORCH], tmp_path)
    assert result.returncode == 2 and "script" in result.stderr


def test_the_real_torch_already_imported_is_refused(tmp_path):
    command = [sys.executable, "-c", "import sys, torch\nfrom graphgrad.torch_alias import main"
               f"\nsys.exit(main([{str(SCRIPTS / 'probe.py')!r}, '0']))"]
    result = _run(command, tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("graphgrad run-torch: the real PyTorch is already imported "
                                    f"in this process (torch from {torch.__file__})")


def test_help_documents_the_command(tmp_path):
    top = _run([sys.executable, "-m", "graphgrad", "--help"], tmp_path)
    assert top.returncode == 0 and "run-torch" in top.stdout
    for form in (RUN_TORCH, MODULE_FORM):
        result = _run([*form, "--help"], tmp_path)
        assert result.returncode == 0
        text = " ".join(result.stdout.split())
        assert "Run a PyTorch script unchanged on graphgrad" in text
        assert "torch.utils.data" in text and "sys.exit(n)" in text
