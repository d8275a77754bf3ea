"""graphgrad.onnx.export: models and graphs written as ONNX pass onnx's checker, and onnxruntime,
an independent runtime, computes what graphgrad computes on new random inputs (1e-5 in float32).
Also the names, the errors (unsupported ops, a missing directory, bad arguments), atomic writes
and ``import graphgrad.onnx`` without onnx installed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import graphgrad as gg
from graphgrad import nn
from graphgrad.interop import to_torch
from graphgrad.onnx import OnnxExportError, UnsupportedOperatorError, export

RNG = np.random.default_rng(0)


def session(path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # no warnings on stderr
    return onnxruntime.InferenceSession(
        os.fspath(path), options, providers=["CPUExecutionProvider"]
    )


def checked(path) -> onnx.ModelProto:
    """The model read back from the file, after onnx's own full check."""
    model = onnx.load(os.fspath(path))
    onnx.checker.check_model(model, full_check=True)
    return model


def random(shape, dtype=np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def eager(model, *arrays):
    model.eval()
    with gg.no_grad():
        out = model(*(gg.from_numpy(a) for a in arrays))
    return out.numpy()


MODELS = {
    "relu_mlp": (lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)), (5, 6)),
    "tanh_sigmoid": (
        lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8, bias=False),
                              nn.Sigmoid(), nn.Linear(8, 2)),
        (4, 6),
    ),
    "gelu_layernorm_softmax": (
        lambda: nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.LayerNorm(8),
                              nn.GELU(approximate="tanh"), nn.Linear(8, 4), nn.Softmax(dim=-1)),
        (3, 6),
    ),
    "flatten_dropout_logsoftmax": (
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 10), nn.ReLU(), nn.Dropout(0.5),
                              nn.Linear(10, 5), nn.LogSoftmax(dim=1)),
        (4, 3, 4),
    ),
    "batch_of_sequences": (  # Linear on 3-D input: MatMul + Add, not Gemm
        lambda: nn.Sequential(nn.Linear(5, 7), nn.SiLU(), nn.Linear(7, 2), nn.Softmax(dim=1)),
        (2, 3, 5),
    ),
    "other_activations": (
        lambda: nn.Sequential(nn.Linear(4, 9), nn.ReLU6(), nn.Linear(9, 9), nn.ELU(0.7),
                              nn.Linear(9, 9), nn.SELU(), nn.Linear(9, 9), nn.CELU(1.3),
                              nn.Linear(9, 9), nn.Softplus(beta=2.0, threshold=3.0),
                              nn.Linear(9, 9), nn.LeakyReLU(0.1), nn.Hardtanh(-0.3, 0.4)),
        (6, 4),
    ),
    "cnn": (
        lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Conv2d(8, 4, 3, stride=2, bias=False),
                              nn.ReLU(), nn.AvgPool2d(2, ceil_mode=True), nn.Flatten(),
                              nn.Linear(16, 3)),
        (2, 3, 16, 16),
    ),
    "conv1d_same_dilated_grouped": (
        lambda: nn.Sequential(nn.Conv1d(2, 4, 3, padding="same", dilation=2), nn.Tanh(),
                              nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True),
                              nn.Conv1d(4, 4, 2, groups=2)),
        (3, 2, 11),
    ),
    "conv_transpose_dilated_pool": (
        lambda: nn.Sequential(nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
                              nn.ReLU(), nn.MaxPool2d(3, stride=1, dilation=2)),
        (1, 3, 5, 5),
    ),
    "reflect_padding_adaptive_pool": (  # reflect padding indexes: getitem as a Gather
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
                              nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten()),
        (2, 3, 7, 7),
    ),
    "unbatched_conv": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2)), (3, 6, 6)),
    "pads_and_norms": (  # constant padding is an index_add into zeros: a ScatterElements
        lambda: nn.Sequential(nn.ReflectionPad2d((1, 2, 0, 1)), nn.ZeroPad2d(1),
                              nn.ConstantPad2d(1, 0.5), nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4),
                              nn.InstanceNorm2d(4, affine=True), nn.PixelShuffle(2)),
        (1, 2, 4, 4),
    ),
    "upsample_bilinear_then_nearest": (
        lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1),
                              nn.Upsample(scale_factor=2, mode="bilinear"),
                              nn.Upsample(size=(13, 9), mode="nearest")),
        (1, 2, 5, 4),
    ),
    "rmsnorm_glu_shrinks": (
        lambda: nn.Sequential(nn.Linear(4, 8), nn.RMSNorm(8), nn.GLU(), nn.Softshrink(0.2),
                              nn.Hardshrink(0.1), nn.Tanhshrink(), nn.Threshold(0.05, -1.0)),
        (3, 4),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MODELS))
def test_sequential_models_match_onnxruntime(tmp_path, name):
    build, shape = MODELS[name]
    gg.manual_seed(1)
    model = build()
    model.train()  # exported in eval mode (dropout off); the modes are restored after
    path = tmp_path / f"{name}.onnx"
    export(model, gg.randn(*shape), path)
    assert all(m.training for m in model.modules())
    proto = checked(path)
    assert {i.name for i in proto.graph.initializer} >= {k for k, _ in model.named_parameters()}
    run = session(path)
    for _ in range(3):  # inputs the export never saw
        x = random(shape, np.float32) * 3
        (got,) = run.run(None, {"input": x})
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, eager(model, x), rtol=1e-5, atol=1e-5)


def test_float64_model_exports_float64(tmp_path):
    gg.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    path = tmp_path / "double.onnx"
    export(model, gg.randn(4, 3, dtype=gg.float64), path)
    proto = checked(path)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    x = random((4, 3), np.float64)
    (got,) = session(path).run(None, {"input": x})
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, eager(model, x), rtol=1e-12, atol=1e-12)


def test_batchnorm_exports_its_running_statistics(tmp_path):
    gg.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    for _ in range(3):  # running statistics away from their initial 0 and 1
        model(gg.randn(8, 4) * 2 + 1)
    path = tmp_path / "bn.onnx"
    export(model, gg.randn(5, 4), path)
    names = {i.name for i in checked(path).graph.initializer}
    assert {"1.running_mean", "1.running_var", "1.weight", "1.bias"} <= names
    x = random((5, 4))
    (got,) = session(path).run(None, {"input": x})
    np.testing.assert_allclose(got, eager(model, x), rtol=1e-5, atol=1e-5)


def test_dropout_model_in_training_mode_is_the_identity_when_exported(tmp_path):
    model = nn.Sequential(nn.Dropout(0.9))
    path = tmp_path / "dropout.onnx"
    export(model, gg.ones(2, 3), path)
    x = random((2, 3))
    np.testing.assert_array_equal(session(path).run(None, {"input": x})[0], x)
    assert [n.op_type for n in checked(path).graph.node] == ["Identity"]


def build_graph():
    """A graph built node by node using most of the supported primitives."""
    g = gg.Graph()
    x = g.input("x", shape=(4, 3))
    y = g.input("y", shape=(3, 4))
    w = g.parameter("w", RNG.standard_normal((3, 5)).astype(np.float32))
    h = g.matmul(x, w)  # (4, 5)
    h = g.op("maximum", h, g.op("neg", h)) - g.op("minimum", h, g.constant(np.float32(0.25)))
    h = g.op("exp", g.op("tanh", h)) + g.op("log", g.op("sqrt", g.op("sigmoid", h)))
    h = g.pow(h, 2.0) / (g.op("relu", h) + 1.5)
    s = g.sum(h, dim=1, keepdim=True) + g.mean(h, dim=(0, 1))  # (4, 1)
    t = g.op("permute", g.op("reshape", y, params=((2, 6),)), params=((1, 0),))  # (6, 2)
    t = g.op("transpose", g.op("softmax", t, params=(0,)), params=((1, 0),))  # (2, 6)
    u = g.op("log_softmax", g.op("reshape", t, params=((3, 4),)), params=(1,))  # (3, 4)
    v = g.op("where", g.op("gt", x, 0.0), x, g.op("mul", x, 0.5))  # (4, 3)
    g.output(h * s, name="scaled")
    g.output(g.matmul(v, u), name="mixed")
    g.output(g.sum(v), name="total")
    return g


def test_hand_built_graph_matches_onnxruntime(tmp_path):
    g = build_graph()
    path = tmp_path / "graph.onnx"
    export(g, (gg.randn(4, 3), gg.randn(3, 4)), path)
    proto = checked(path)
    assert [i.name for i in proto.graph.input] == ["x", "y"]
    assert [o.name for o in proto.graph.output] == ["scaled", "mixed", "total"]
    assert [i.name for i in proto.graph.initializer if i.name == "w"] == ["w"]
    run = session(path)
    for _ in range(3):
        x, y = random((4, 3)), random((3, 4))
        got = run.run(None, {"x": x, "y": y})
        want = g.run({"x": gg.from_numpy(x), "y": gg.from_numpy(y)}).outputs
        assert len(got) == len(want) == 3
        for a, b in zip(got, want):
            assert a.shape == tuple(b.shape)
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-5, atol=1e-5)


def traced_function(x, y):
    """Python numbers, reductions, shapes, comparisons and joins, as traced code writes them."""
    a = (x / 8 + 1).clamp(-0.5, 0.75) ** 3
    b = gg.cat([a, y.T], dim=1).amax(dim=0, keepdim=True).expand(3, 8)
    c = gg.stack([a, a * 2], dim=0).logsumexp(dim=0).repeat(1, 2)
    d = (x > 0).float() + x.to(gg.int64) + (x != y.T).to(gg.float32)
    d = d + (x.to(gg.int64) >= 0.5).float()  # compared in float64: 0 >= 0.5 is False
    e = x.unsqueeze(0).squeeze(0).reshape(3, 2, 2).permute(2, 0, 1).flatten(1).abs().rsqrt()
    return b + c, d, e.max() + x.mean() + gg.where(x > 0.5, x, -x).sum()


def test_traced_function_matches_onnxruntime_and_eager_dtypes(tmp_path):
    x0, y0 = gg.randn(3, 4), gg.randn(4, 3)
    g = gg.trace(traced_function, x0, y0)
    path = tmp_path / "traced.onnx"
    export(g, (x0, y0), path, output_names=["joined", "counts", "scalar"])
    checked(path)
    run = session(path)
    for _ in range(3):
        x, y = random((3, 4)) * 2, random((4, 3)) * 2
        got = run.run(None, {"x": x, "y": y})
        want = traced_function(gg.from_numpy(x), gg.from_numpy(y))
        for a, b in zip(got, want):
            assert a.dtype == b.numpy().dtype == np.float32  # eager's dtypes, not float64
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-5)


def test_names_are_honoured_and_outputs_may_repeat(tmp_path):
    g = gg.Graph()
    a, b = g.input("a", shape=(2,)), g.input("b", shape=(2,))
    total = g.add(a, b)
    g.output(total)
    g.output(total)
    g.output(a)  # an input as an output: an Identity node
    path = tmp_path / "names.onnx"
    export(g, None, path, input_names=["left", "right"], output_names=["s", "s_again", "a_out"])
    proto = checked(path)
    run = session(path)
    assert [i.name for i in run.get_inputs()] == ["left", "right"]
    assert [o.name for o in run.get_outputs()] == ["s", "s_again", "a_out"]
    assert [i.name for i in proto.graph.input] == ["left", "right"]
    x, y = np.array([1.0, 2.0], np.float32), np.array([10.0, 20.0], np.float32)
    s, s_again, a_out = run.run(None, {"left": x, "right": y})
    np.testing.assert_array_equal(s, [11.0, 22.0])
    np.testing.assert_array_equal(s_again, [11.0, 22.0])
    np.testing.assert_array_equal(a_out, x)


def test_default_names_come_from_forward_and_two_outputs(tmp_path):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(3, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, features, bias):
            h = self.body(features).relu() + bias
            return self.head(h), h.sum(dim=1)

    model = TwoHeads()
    path = tmp_path / "heads.onnx"
    export(model, (gg.randn(5, 3), gg.randn(5, 4)), path)
    run = session(path)
    assert [i.name for i in run.get_inputs()] == ["features", "bias"]
    assert [o.name for o in run.get_outputs()] == ["output0", "output1"]
    assert {i.name for i in checked(path).graph.initializer} >= {"body.weight", "head.bias"}
    f, b = random((5, 3)), random((5, 4))
    got = run.run(None, {"features": f, "bias": b})
    with gg.no_grad():
        want = model(gg.from_numpy(f), gg.from_numpy(b))
    for a, w in zip(got, want):
        np.testing.assert_allclose(a, w.numpy(), rtol=1e-5, atol=1e-5)


class Cumulative(nn.Module):
    def forward(self, x):
        return x.cumsum(dim=1)


def test_unsupported_ops_are_all_named_with_their_module(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), Cumulative(), nn.ReLU(), nn.Sequential(Cumulative()))
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the old file")
    with pytest.raises(UnsupportedOperatorError) as info:
        export(model, gg.randn(2, 4), path)
    message = str(info.value)
    assert "2 operation(s) cannot be exported" in message
    assert "(cumsum) in module 1 (Cumulative)" in message
    assert "(cumsum) in module 3.0 (Cumulative)" in message
    assert "supported ops:" in message and "linear" in message
    assert path.read_bytes() == b"the old file"  # nothing written, the old file kept
    assert os.listdir(tmp_path) == ["model.onnx"]  # and no temporary file left


def test_a_cnn_in_onnxruntime_matches_torch_on_the_same_weights(tmp_path):
    build, shape = MODELS["cnn"]
    gg.manual_seed(2)
    model = build()
    for _ in range(2):  # batch statistics that are not the initial ones
        model(gg.randn(*shape) * 2 + 1)
    export(model, gg.randn(*shape), tmp_path / "cnn.onnx")
    reference = to_torch(model).eval()
    x = random(shape)
    (got,) = session(tmp_path / "cnn.onnx").run(None, {"input": x})
    with torch.no_grad():
        np.testing.assert_allclose(got, reference(torch.tensor(x)).numpy(), rtol=1e-5,
                                   atol=1e-5)


class LastStep(nn.Module):
    """A recurrent layer read at its last step and by its final hidden state."""

    def __init__(self, rnn, width):
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(width, 3)

    def forward(self, x):
        out, state = self.rnn(x)
        hidden = state[0] if isinstance(state, tuple) else state
        return self.head(out[:, -1]) + hidden.sum()


RECURRENT = {
    "lstm": (lambda: nn.LSTM(4, 5, batch_first=True), 5, (2, 7, 4)),
    "lstm_two_layers_bidirectional": (
        lambda: nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True), 10, (2, 6, 4)),
    "lstm_one_step": (lambda: nn.LSTM(4, 5, batch_first=True), 5, (2, 1, 4)),
    "gru": (lambda: nn.GRU(4, 5, batch_first=True), 5, (3, 5, 4)),
    "gru_bidirectional_no_bias": (
        lambda: nn.GRU(4, 5, bias=False, bidirectional=True, batch_first=True), 10, (3, 5, 4)),
    "rnn_relu": (lambda: nn.RNN(4, 5, nonlinearity="relu", batch_first=True), 5, (2, 4, 4)),
    "rnn_tanh_two_layers": (lambda: nn.RNN(4, 5, num_layers=2, batch_first=True), 5, (2, 4, 4)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RECURRENT))
def test_recurrent_layers_in_onnxruntime_match_torch(tmp_path, name):
    build, width, shape = RECURRENT[name]
    gg.manual_seed(3)
    model = LastStep(build(), width)
    export(model, gg.randn(*shape), tmp_path / "rnn.onnx")
    assert {n.op_type for n in checked(tmp_path / "rnn.onnx").graph.node} & {"LSTM", "GRU", "RNN"}
    reference = nn.Sequential(model.rnn)  # the layer converts; the head is worked here
    twin = to_torch(reference)[0].eval()
    weight, bias = (torch.tensor(p.detach().numpy()) for p in (model.head.weight, model.head.bias))
    x = random(shape)
    (got,) = session(tmp_path / "rnn.onnx").run(None, {"x": x})
    with torch.no_grad():
        out, state = twin(torch.tensor(x))
        hidden = state[0] if isinstance(state, tuple) else state
        expected = out[:, -1] @ weight.T + bias + hidden.sum()
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)


def test_an_lstm_with_given_states_exports_its_states(tmp_path):
    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 5)

        def forward(self, x, h, c):
            out, (h_n, c_n) = self.lstm(x, (h, c))
            return out, h_n, c_n

    model = WithState()
    inputs = (gg.randn(3, 2, 4), gg.randn(1, 2, 5), gg.randn(1, 2, 5))
    export(model, inputs, tmp_path / "lstm.onnx")
    got = session(tmp_path / "lstm.onnx").run(None, {n: t.numpy() for n, t in
                                                      zip(["x", "h", "c"], inputs)})
    with gg.no_grad():
        for ours, theirs in zip(got, model(*inputs)):
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_indexing_is_exported_with_numpy_semantics(tmp_path):
    def pick(x):
        return x[1:, 1::2, None, [0, 2, 2]] * 2 + x[..., 1].sum() + x[-1, :, 3].sum()

    x = gg.randn(3, 5, 4)
    export(gg.trace(pick, x), x, tmp_path / "pick.onnx")
    fresh = random((3, 5, 4))
    (got,) = session(tmp_path / "pick.onnx").run(None, {"x": fresh})
    np.testing.assert_allclose(got, pick(torch.tensor(fresh)).numpy(), rtol=1e-6, atol=1e-6)


def test_max_pool_indices_are_refused_by_name(tmp_path):
    with pytest.raises(UnsupportedOperatorError, match=r"\(max_pool_indices\) in module 0 "
                       r"\(MaxPool2d\): max-pooling indices \(return_indices=True\)"):
        export(nn.Sequential(nn.MaxPool2d(2, return_indices=True)), gg.randn(1, 2, 4, 4),
               tmp_path / "pool.onnx")


def test_unsupported_op_in_a_graph_is_named():
    g = gg.Graph()
    x = g.input("x", shape=(3,))
    g.output(g.op("argsort", g.op("exp", x), params=(0, False), name="order"))
    with pytest.raises(UnsupportedOperatorError, match=r"node #2 'order' \(argsort\): no ONNX"):
        export(g, None, "unused.onnx")


def test_missing_directory_is_a_clear_error(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "m.onnx"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(nn.Sequential(nn.ReLU()), gg.randn(2), missing)
    assert not (tmp_path / "no").exists()


def test_bad_arguments():
    model = nn.Sequential(nn.ReLU())
    with pytest.raises(OnnxExportError, match="2 input_names given for 1 inputs"):
        export(model, gg.randn(2), "m.onnx", input_names=["a", "b"])
    with pytest.raises(OnnxExportError, match="distinct"):
        export(build_graph(), (gg.randn(4, 3), gg.randn(3, 4)), "m.onnx", input_names=["a", "a"])
    with pytest.raises(OnnxExportError, match="opset_version 9"):
        export(model, gg.randn(2), "m.onnx", opset_version=9)
    with pytest.raises(TypeError, match="expected a graphgrad.nn.Module or a graphgrad.Graph"):
        export(lambda x: x, gg.randn(2), "m.onnx")
    with pytest.raises(TypeError, match="example input 0 must be a tensor"):
        export(model, [[1.0, 2.0]], "m.onnx")
    g = gg.Graph()
    g.output(g.input("x") * 2)
    with pytest.raises(OnnxExportError, match="declare no shape; pass example_inputs"):
        export(g, None, "m.onnx")


@pytest.mark.parametrize("opset", [13, 17])
def test_older_opsets_run_in_onnxruntime(tmp_path, opset):
    gg.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveMaxPool2d((2, 3)), nn.Flatten(),
                          nn.Linear(12, 6), nn.LayerNorm(6), nn.Tanh(), nn.Linear(6, 2))
    path = tmp_path / f"opset{opset}.onnx"
    export(model, gg.randn(3, 1, 7, 8), path, opset_version=opset)
    assert checked(path).opset_import[0].version == opset
    x = random((3, 1, 7, 8))
    (got,) = session(path).run(None, {"input": x})
    np.testing.assert_allclose(got, eager(model, x), rtol=1e-5, atol=1e-5)


def test_import_without_onnx_and_the_error_export_gives():
    # onnx and onnxruntime made unimportable in a fresh interpreter
    code = (
        "import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
        "import graphgrad, graphgrad.onnx\n"
        "try:\n"
        "    graphgrad.onnx.export(graphgrad.nn.ReLU(), graphgrad.ones(2), 'x.onnx')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install graphgrad[onnx]" in done.stdout


def test_torch_onnx_export_options_are_taken_or_refused_by_name(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    export(model, (gg.randn(4, 3),), tmp_path / "m.onnx", verbose=False, dynamo=True,
           do_constant_folding=True, export_params=True, dynamic_axes=None, opset_version=None)
    assert checked(tmp_path / "m.onnx").opset_import[0].version == 18
    with pytest.raises(OnnxExportError, match=r"dynamic_axes=\{'input': \{0: 'batch'\}\} is "
                       r"not supported \(shapes are static"):
        export(model, gg.randn(4, 3), tmp_path / "d.onnx", dynamic_axes={"input": {0: "batch"}})
    with pytest.raises(TypeError, match="unexpected keyword argument 'batch_size'"):
        export(model, gg.randn(4, 3), tmp_path / "e.onnx", batch_size=4)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


SCRIPT = """
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(36, 2))
model.eval()
x = torch.randn(2, 1, 8, 8)
torch.onnx.export(model, (x,), "model.onnx", input_names=["image"], output_names=["logits"],
                  opset_version=17, dynamo=False, do_constant_folding=True)
with torch.no_grad():
    np.save("x.npy", x.numpy())
    np.save("expected.npy", model(x).numpy())
"""


def test_a_pytorch_script_exports_through_torch_onnx(tmp_path):
    (tmp_path / "export.py").write_text(SCRIPT)
    run = subprocess.run([sys.executable, "-m", "graphgrad", "run-torch", "export.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert checked(tmp_path / "model.onnx").opset_import[0].version == 17
    (got,) = session(tmp_path / "model.onnx").run(None, {"image": np.load(tmp_path / "x.npy")})
    np.testing.assert_allclose(got, np.load(tmp_path / "expected.npy"), rtol=1e-5, atol=1e-6)


def test_argmax_and_boolean_reductions_follow_torch_with_nan_and_ties(tmp_path):
    def pick(x):
        index = x.argmax(1, keepdim=True)
        return (x.argmax(), x.argmax(0), index, x.take_along_dim(index, 1), (x > 0).all(1),
                (x > 0).any())

    x = gg.randn(2, 4)
    export(gg.trace(pick, x), x, tmp_path / "pick.onnx")
    fresh = np.array([[1.0, np.nan, 3.0, np.nan], [0.0, 5.0, 5.0, 1.0]], np.float32)
    got = session(tmp_path / "pick.onnx").run(None, {"x": fresh})
    for ours, theirs in zip(got, pick(torch.tensor(fresh))):
        np.testing.assert_array_equal(ours, theirs.numpy())
