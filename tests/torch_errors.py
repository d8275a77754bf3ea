"""One check the nn test files share: graphgrad raises what torch raises."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import graphgrad as gg
import graphgrad.nn.functional as F


def assert_same_error(build) -> None:
    """``build(lib, F)`` raises the same type and message in both libraries."""
    with pytest.raises(Exception) as theirs:
        build(torch, TF)
    with pytest.raises(type(theirs.value)) as ours:
        build(gg, F)
    assert str(ours.value).replace("graphgrad.Size", "torch.Size") == str(theirs.value)
