"""graphgrad.interop's public surface: Graph.to_torch and Graph.from_torch, a graphgrad state
dict loaded by torch itself, and import graphgrad without torch (the parts are tested in
test_interop_modules.py, test_interop_to_fx.py and test_interop_from_fx.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

import graphgrad as gg


def test_a_graph_goes_to_torch_and_a_torch_model_comes_back_as_a_graph():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    model = model.double()
    x = torch.randn(5, 4, dtype=torch.float64)
    graph = gg.Graph.from_torch(model, x)
    assert [n.name for n in graph.parameters] == list(model.state_dict())
    module = graph.to_torch()
    assert isinstance(module, torch.fx.GraphModule)
    np.testing.assert_allclose(module(x).detach().numpy(), model(x).detach().numpy(),
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(graph(gg.tensor(x.numpy())).detach().numpy(),
                               model(x).detach().numpy(),
                               rtol=1e-12, atol=1e-12)  # fmt: skip


def test_torch_loads_a_graphgrad_state_dict_as_it_is():
    ours = gg.nn.Sequential(gg.nn.Linear(3, 4), gg.nn.BatchNorm1d(4), gg.nn.ReLU())
    ours.train()
    ours(gg.randn(6, 3))  # running statistics that differ from the defaults
    theirs = gg.interop.to_torch(ours)
    for p in theirs.parameters():
        torch.nn.init.zeros_(p)
    theirs.load_state_dict(ours.state_dict())  # graphgrad tensors, through __torch_function__
    for name, value in theirs.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours.state_dict()[name].numpy(), name)


def test_import_graphgrad_needs_no_torch_and_interop_imports_it_only_when_called():
    code = ("import sys, graphgrad, graphgrad.interop, graphgrad.onnx; "
            "print('torch' in sys.modules, 'onnx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    assert out.stdout.split() == ["False", "False"]
