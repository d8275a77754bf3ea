"""Validators of command-line values, shared by every ``graphgrad`` subcommand (the main
command, ``sweep``, ``run`` and ``lab``): each returns the value or raises argparse's
ArgumentTypeError saying what is allowed, which the command reports in one line with exit 2.
They also take a config file's values (numbers, not only text).

>>> whole("3"), positive_int(2), port("8765")
(3, 2, 8765)
>>> positive_int("0")
Traceback (most recent call last):
argparse.ArgumentTypeError: must be positive, got 0
"""

from __future__ import annotations

import argparse


def whole(value) -> int:
    if isinstance(value, (bool, float)):
        raise argparse.ArgumentTypeError(f"must be a whole number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None


def positive_int(value) -> int:
    number = whole(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {number}")
    return number


def port(value) -> int:
    number = whole(value)
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {number}")
    return number
