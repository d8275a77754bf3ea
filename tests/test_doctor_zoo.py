"""``graphgrad doctor --json`` on every script of tests/doctor_zoo/: a planted fault is named
(its expected kind, and no other alarm), a healthy script gets no diagnosis. The confusion
table (planted cause against diagnoses) is printed with ``pytest -s``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest
import tomllib

ZOO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "doctor_zoo")
SCRIPTS = sorted(f for f in os.listdir(ZOO) if f.endswith(".py"))
with open(os.path.join(ZOO, "CASES.toml"), "rb") as _file:
    CASES = tomllib.load(_file)  # script -> {"expect": kind or "" for healthy, "evidence", ...}


def test_every_script_has_a_case_and_every_case_a_script():
    assert sorted(CASES) == SCRIPTS


def expected_kind(script: str) -> str:
    return CASES[script]["expect"]


def diagnose(script: str) -> list[str]:
    run = subprocess.run([sys.executable, "-m", "graphgrad", "doctor", "--json", script],
                         cwd=ZOO, capture_output=True, text=True, timeout=240)
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert last.startswith("["), f"{script}: no JSON line\n{run.stdout}\n{run.stderr}"
    return [d["kind"] for d in json.loads(last)]


@cache
def all_diagnoses() -> dict[str, list[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(SCRIPTS, pool.map(diagnose, SCRIPTS)))


def test_confusion_table():
    rows = [f"{'script':<38} {'planted':<35} diagnosed"]
    for script, kinds in all_diagnoses().items():
        planted = expected_kind(script) or "(healthy)"
        rows.append(f"{script:<38} {planted:<35} {', '.join(kinds) or '-'}")
    print("\n" + "\n".join(rows))


@pytest.mark.parametrize("script", SCRIPTS)
def test_zoo_script(script):
    kinds = all_diagnoses()[script]
    expected = expected_kind(script)
    assert kinds == ([expected] if expected else []), (script, expected, kinds)


def test_the_oscillating_run_with_a_decaying_lr_is_no_alarm():
    run = subprocess.run([sys.executable, "-m", "graphgrad", "doctor", "--json",
                          "oscillation.py", "--decay"], cwd=ZOO, capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
