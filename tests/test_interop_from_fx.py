"""graph_from_torch: torch models read through torch.fx into Graphs, checked against torch itself.

Each model runs in float64 in torch (forward, then autograd of the outputs' sum) and as a Graph
(graph.run with backward on the graph, seeded with ones: the same sum); outputs and every
parameter's gradient agree to 1e-12. The command runs in a real subprocess, as a user runs it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - torch's own spelling
from torch import nn

import graphgrad as gg
from graphgrad.graph import GraphError, ThreadPoolExecutor
from graphgrad.graph.render import to_svg
from graphgrad.interop.from_fx import UnmappableNodesError, graph_from_torch

TOLERANCE = dict(rtol=1e-12, atol=1e-12)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act1 = nn.Linear(6, 8), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(8, 8), nn.Tanh()
        self.fc3, self.act3 = nn.Linear(8, 3), nn.Sigmoid()

    def forward(self, x):
        return self.act3(self.fc3(self.act2(self.fc2(self.act1(self.fc1(x))))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.flat, self.drop, self.fc = nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 4 * 4, 5)

    def forward(self, image):
        return self.fc(self.drop(self.flat(self.features(image))))


class Mixed(nn.Module):
    """Torch functions, tensor methods and operators in forward, a residual, two outputs."""

    def __init__(self):
        super().__init__()
        self.proj, self.norm = nn.Linear(4, 4), nn.LayerNorm(8)
        self.w = nn.Parameter(torch.randn(8, 3))
        self.register_buffer("shift", torch.randn(3))

    def forward(self, x, y):
        h = F.relu(self.proj(x)) + x  # the residual connection
        z = self.norm(torch.cat([h, y * 2.0], dim=1))
        b = z.view(z.size(0), 2, 4).permute(0, 2, 1).reshape(z.shape[0], -1)
        s = (b * b).sum(dim=1, keepdim=True)
        m = torch.matmul(b / (1.0 + s), self.w) + self.shift
        return F.softmax(m, dim=-1), torch.log_softmax(m, dim=1) - m.mean()


class Recurrent(nn.Module):
    """A leaf module whose settings come from its base class (LSTM's are RNNBase's)."""

    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(3, 5, num_layers=2, batch_first=True), nn.Linear(5, 2)

    def forward(self, sequence):
        out, (h, c) = self.lstm(sequence)
        return self.head(out[:, -1]) + h.sum() * c.mean()


class Spectral(nn.Module):
    """Two nodes graphgrad has no counterpart for, and one that it runs."""

    def __init__(self):
        super().__init__()
        self.pool = nn.LPPool1d(2, 2)

    def forward(self, x):
        return torch.fft.fft(x).real + self.pool(x).sum() + x.relu()


def _model(cls):
    torch.manual_seed(0)
    model = cls().double().eval()
    with torch.no_grad():  # statistics and affine weights away from their identity defaults
        for sub in model.modules():
            if isinstance(sub, nn.BatchNorm2d):
                sub.running_mean.uniform_(-1.0, 1.0)
                sub.running_var.uniform_(0.5, 2.0)
            if isinstance(sub, (nn.BatchNorm2d, nn.LayerNorm)):
                sub.weight.uniform_(0.5, 1.5)
                sub.bias.uniform_(-1.0, 1.0)
    return model


CASES = {
    "mlp": (MLP, [(5, 6)]),
    "cnn": (CNN, [(3, 2, 8, 8)]),
    "mixed": (Mixed, [(5, 4), (5, 4)]),
    "lstm": (Recurrent, [(2, 4, 3)]),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    cls, shapes = CASES[request.param]
    model = _model(cls)
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(*shape, dtype=torch.float64, generator=generator) for shape in shapes]
    return model, inputs, graph_from_torch(model, *inputs)


def test_graph_has_the_models_inputs_parameters_and_outputs(case):
    model, inputs, graph = case
    arguments = list(torch.fx.symbolic_trace(model).graph.nodes)[: len(inputs)]
    assert [n.name for n in graph.inputs] == [n.target for n in arguments]
    state = model.state_dict()
    assert sorted(n.name for n in graph.parameters) == sorted(dict(model.named_parameters()))
    for node in graph.parameters:
        assert node.value is not state[node.name]
        np.testing.assert_array_equal(node.value.detach().numpy(), state[node.name].numpy())
    outputs = model(*inputs)
    assert len(graph.outputs) == (len(outputs) if isinstance(outputs, tuple) else 1)


@pytest.mark.parametrize("executor", [None, ThreadPoolExecutor(workers=2, min_cost=0)],
                         ids=["serial", "threads"])
def test_outputs_and_parameter_gradients_match_torch_autograd(case, executor):
    model, inputs, graph = case
    run = graph.run([x.numpy() for x in inputs], backward=True, executor=executor)
    model.zero_grad()
    outputs = model(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    sum(out.sum() for out in outputs).backward()
    for ours, theirs in zip(run.outputs, outputs):
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **TOLERANCE)
    torch_params = dict(model.named_parameters())
    for node in graph.parameters:
        np.testing.assert_allclose(
            run.grad(node.id), torch_params[node.name].grad.numpy(), **TOLERANCE,
            err_msg=node.name,
        )


def test_calling_the_graph_like_the_model_gives_torchs_outputs(case):
    model, inputs, graph = case
    ours = graph(*(gg.tensor(x.numpy()) for x in inputs))
    theirs = model(*inputs)
    for a, b in zip(*(o if isinstance(o, tuple) else (o,) for o in (ours, theirs))):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **TOLERANCE)


def test_explain_has_a_row_per_op_and_the_svg_is_well_formed(case, tmp_path):
    _, inputs, graph = case
    explanation = graph.explain([x.numpy() for x in inputs], lr=0.1)
    op_rows = [row for row in explanation.forward if row["kind"] == "op"]
    assert len(op_rows) == len(graph.operations)
    assert {row["name"] for row in explanation.update} == {n.name for n in graph.parameters}
    assert "Forward pass" in explanation.to_text()
    path = tmp_path / "model.svg"
    path.write_text(to_svg(graph.to_dict(values=False)), encoding="utf-8")
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert sum(1 for g in root.iter() if g.get("class") == "node") == len(graph.nodes)


def test_op_nodes_are_named_after_the_fx_nodes_that_made_them():
    graph = graph_from_torch(_model(MLP), torch.zeros(2, 6, dtype=torch.float64))
    assert [(n.name, n.op) for n in graph.operations] == [
        ("fc1", "linear"), ("act1", "relu"), ("fc2", "linear"), ("act2", "tanh"),
        ("fc3", "linear"), ("act3", "sigmoid"),
    ]


def test_example_inputs_may_be_numpy_or_graphgrad_and_tied_weights_stay_one_parameter():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    model = _model(Tied)
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    for example in (x, gg.tensor(x)):
        graph = graph_from_torch(model, example)
        assert [n.name for n in graph.parameters] == ["a.weight"]
    run = graph.run([x], backward=True)
    model(torch.from_numpy(x)).sum().backward()
    np.testing.assert_allclose(run.output.numpy(), model(torch.from_numpy(x)).detach().numpy(),
                               **TOLERANCE)
    np.testing.assert_allclose(run.grad("a.weight"), model.a.weight.grad.numpy(), **TOLERANCE)


def test_one_error_lists_every_unmappable_node():
    with pytest.raises(UnmappableNodesError) as caught:
        graph_from_torch(Spectral(), torch.zeros(2, 4))
    message = str(caught.value)
    assert message.startswith("graph_from_torch: 2 fx nodes of ")
    assert "call_function torch.fft.fft (node fft_fft): graphgrad has no" in message
    assert "call_module pool (torch.nn.LPPool1d): graphgrad.nn has no LPPool1d" in message
    assert [(op, target.split()[0]) for op, target, _ in caught.value.nodes] == [
        ("call_function", "torch.fft.fft"), ("call_module", "pool"),
    ]
    assert "Traceback" not in message and "relu" not in message


def test_bad_models_and_inputs_get_clear_errors():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(GraphError, match="symbolic_trace cannot trace .*Branchy: TraceError"):
        graph_from_torch(Branchy(), torch.zeros(2))
    with pytest.raises(GraphError, match=r"takes 1 tensor argument\(s\) \(x\), got 2"):
        graph_from_torch(MLP(), torch.zeros(2, 6), torch.zeros(2, 6))
    with pytest.raises(GraphError, match=r"inputs \(\(2, 5\) float32\) do not fit .*MLP: torch"):
        graph_from_torch(MLP(), torch.zeros(2, 5))
    with pytest.raises(GraphError, match="expected a torch.nn.Module, got graphgrad"):
        graph_from_torch(gg.nn.Linear(2, 2), torch.zeros(2, 2))
    with pytest.raises(UnmappableNodesError, match="dropout is on .*call model.eval"):
        graph_from_torch(CNN().train(), torch.zeros(3, 2, 8, 8))


MODEL_FILE = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 4)

        def forward(self, x, mask):
            return torch.log_softmax(self.fc2(torch.relu(self.fc1(x))) * mask, dim=1)


    class Spectral(nn.Module):
        def forward(self, x):
            return torch.fft.fft(x).real
''')


def _command(*args):
    return [sys.executable, "-m", "graphgrad", "graph", *args]


def test_command_reads_a_model_file_and_writes_its_svg(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_FILE, encoding="utf-8")
    svg = tmp_path / "model.svg"
    result = subprocess.run(
        _command("--torch", "model.py:Net", "--input-shape", "8,64", "--input-shape", "8,4",
                 "--svg", str(svg)),
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "inputs: x (8, 64), mask (8, 4)" in result.stdout
    assert "parameters: 4 tensors, 1,108 numbers" in result.stdout
    assert "outputs: (8, 4)" in result.stdout and f"wrote {svg}" in result.stdout
    root = ET.parse(svg).getroot()
    labels = " ".join(text.text or "" for text in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "fc1.weight" in labels and "log_softmax" in labels


def test_command_errors_are_clear_with_exit_code_2(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_FILE, encoding="utf-8")
    cases = {
        ("--torch", "missing.py:Net", "--input-shape", "8,64"): "missing.py does not exist",
        ("--torch", "model.py:Nope", "--input-shape", "8,64"):
            "model.py has no torch.nn.Module class 'Nope'; its Module classes: Net, Spectral",
        ("--torch", "model.py:Net", "--input-shape", "8,x"):
            "expected a shape of positive whole numbers such as 8,64, got '8,x'",
        ("--torch", "model.py:Spectral", "--input-shape", "2,4"):
            "call_function torch.fft.fft (node fft_fft): graphgrad has no graphgrad.fft.fft",
    }
    children = {  # all at once: each pays for Python, graphgrad and torch starting up
        args: subprocess.Popen(_command(*args), cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        for args in cases
    }
    for args, child in children.items():
        out, err = child.communicate(timeout=60)
        assert child.returncode == 2, (args, out, err)
        assert cases[args] in err and "Traceback" not in err, (args, err)
