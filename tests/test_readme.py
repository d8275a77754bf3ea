"""The README's Python examples run when pasted, and print what their comments say they print.

Every ```python block is run in a fresh interpreter (a block whose first line is not an
``import`` statement continues the one before it, as a reader would run it). A
``print(...)  # text`` line whose comment holds a digit or a boolean states its output: the
printed line must match the comment, where ``...`` stands for any characters.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.M | re.S)
_STATED = re.compile(r"^print\((?P<args>.*)\)\s+# (?P<said>.*(?:\d|True|False).*)$")
_CHECK = '''
import re as _re
def _readme_says(said, *values):
    line = " ".join(str(v) for v in values)
    pattern = ".*?".join(_re.escape(part) for part in said.split("..."))
    assert _re.fullmatch(pattern, line), f"README says {said!r}, the code printed {line!r}"
    print(line)
'''


def _scripts() -> list[str]:
    scripts: list[str] = []
    for match in _BLOCK.finditer(README.read_text()):
        code = textwrap.dedent(match.group(2))
        first = next(line for line in code.splitlines() if line and not line.startswith("#"))
        if first.startswith("import ") or not scripts:
            scripts.append(code)
        else:
            scripts[-1] += "\n" + code
    return scripts


def _checked(script: str) -> str:
    lines = []
    for line in script.splitlines():
        stated = _STATED.match(line)
        if stated:
            line = f"_readme_says({stated['said'].rstrip()!r}, {stated['args']})"
        lines.append(line)
    return _CHECK + "\n".join(lines)


SCRIPTS = _scripts()


def test_the_readme_has_examples():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("index", range(len(SCRIPTS)), ids=lambda i: f"block{i}")
def test_readme_example_runs_and_prints_what_it_says(index, tmp_path):
    script = tmp_path / "example.py"  # a file, as a reader would paste it (workers re-import it)
    script.write_text(_checked(SCRIPTS[index]))
    command = [sys.executable, script.name]
    if "init_process_group()" in SCRIPTS[index]:  # a distributed script: run as the README says
        command = [sys.executable, "-m", "graphgrad", "run", "--nproc-per-node", "2", script.name]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{SCRIPTS[index]}\n--- stderr ---\n{done.stderr[-3000:]}"


_IMPORT_ROW = re.compile(r"^\| `(?P<torch>[^`]+)` \| `(?P<graphgrad>[^`]+)` \|$", re.M)


def _run_accuracy(script: str, cwd: Path) -> float:
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return float(re.search(r"accuracy (\S+)", done.stdout).group(1))


def test_the_import_table_turns_the_readme_script_into_a_pytorch_script(tmp_path):
    # The table's PyTorch column is what the graphgrad column replaces; applied backwards to the
    # README's complete script it must give a script that real torch runs to the same skill.
    rows = {m["graphgrad"]: m["torch"] for m in _IMPORT_ROW.finditer(README.read_text())}
    script = next(s for s in SCRIPTS if "from graphgrad.utils.data import" in s)
    lines = script.splitlines()
    imports = [line for line in lines if line.startswith(("import ", "from "))]
    assert imports and all(line in rows for line in imports), "an import is missing from the table"
    every_row = subprocess.run([sys.executable, "-c", "\n".join(rows)], capture_output=True,
                               text=True, timeout=60)
    assert every_row.returncode == 0, every_row.stderr[-2000:]  # each graphgrad line imports
    torch_script = "\n".join(rows.get(line, line) for line in lines)
    assert "graphgrad" not in torch_script
    assert _run_accuracy(torch_script, tmp_path) >= 0.95
    assert _run_accuracy(script, tmp_path) >= 0.95
