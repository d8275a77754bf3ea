"""graphgrad.save / graphgrad.load: round trips, the safetensors layout read by an independent
parser written here, interop with PyTorch and the safetensors library, atomic writes, and
malformed files that must raise ValueError without running anything.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import time
import warnings

import numpy as np
import pytest
import torch

import graphgrad as gg
import graphgrad.io as graphgrad_io
from graphgrad.io import load, save

DTYPES = [gg.float16, gg.float32, gg.float64, gg.int8, gg.int16, gg.int32, gg.int64, gg.uint8]
DTYPES += [gg.bool]
SHAPES = [(), (0,), (1,), (5,), (2, 3), (0, 4), (3, 0, 2), (2, 1, 3, 2)]
# Written from the safetensors spec, independently of graphgrad/io.py.
SPEC_DTYPES = {
    "F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "<i1", "I16": "<i2", "I32": "<i4",
    "I64": "<i8", "U8": "<u1", "BOOL": "<b1",
}  # fmt: skip


def parse(raw: bytes) -> tuple:
    """A minimal safetensors reader: (header length, header, metadata, name -> array)."""
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + length :]
    arrays = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=SPEC_DTYPES[info["dtype"]])
        arrays[name] = array.reshape(info["shape"])
    return length, header, metadata, arrays


def saved_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    save(obj, buffer)
    return buffer.getvalue()


def round_trip(obj):
    return load(io.BytesIO(saved_bytes(obj)))


def make_file(header: dict, data: bytes = b"", metadata: dict | None = None) -> io.BytesIO:
    """A safetensors file with whatever header it is given, valid or not."""
    if metadata is not None:
        header = {**header, "__metadata__": metadata}
    text = json.dumps(header).encode()
    return io.BytesIO(struct.pack("<Q", len(text)) + text + data)


def sample(dtype, shape) -> gg.Tensor:
    rng = np.random.default_rng(sum(shape) + dtype.itemsize)
    values = rng.normal(size=shape) * 100
    if dtype.is_floating_point and values.size >= 3:
        values.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    return gg.from_numpy(np.asarray(values).astype(dtype.np))


def assert_same(loaded, expected) -> None:
    """Equal structure, types, dtypes and values (NaN equals NaN)."""
    if isinstance(expected, gg.Tensor):
        assert type(loaded) is gg.Tensor and loaded.dtype == expected.dtype
        assert not loaded.requires_grad
        assert np.array_equal(loaded.numpy(), expected.detach().numpy(), equal_nan=True)
        return
    assert type(loaded) is type(expected), (loaded, expected)
    if isinstance(expected, dict):
        assert list(loaded) == list(expected)
        assert [type(k) for k in loaded] == [type(k) for k in expected]
        for key in expected:
            assert_same(loaded[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(loaded) == len(expected)
        for a, b in zip(loaded, expected):
            assert_same(a, b)
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(loaded)
    else:
        assert loaded == expected
        if isinstance(expected, float):
            assert np.copysign(1.0, loaded) == np.copysign(1.0, expected)


def optimizer_state() -> dict:
    return {
        "state": {
            0: {"step": gg.tensor(3.0), "exp_avg": gg.randn(4, 3), "exp_avg_sq": gg.rand(4, 3)},
            1: {"step": gg.tensor(3.0), "exp_avg": gg.randn(3), "exp_avg_sq": gg.rand(3)},
        },
        "param_groups": [
            {
                "lr": 0.1,
                "betas": (0.9, 0.999),
                "eps": 1e-08,
                "params": [0, 1],
                "amsgrad": False,
                "foreach": None,
            }
        ],
    }


# ---------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_and_shape_round_trips(dtype) -> None:
    tensors = {f"t{i}": sample(dtype, shape) for i, shape in enumerate(SHAPES)}
    assert_same(round_trip(tensors), tensors)


def test_views_are_saved_as_their_elements() -> None:
    base = gg.arange(24, dtype=gg.float64).reshape(2, 3, 4)
    views = {
        "transposed": base.transpose(0, 2),
        "stepped": base[:, ::2, 1:],
        "flipped": base.flip(1),
        "expanded": gg.tensor([1, 2, 3], dtype=gg.int16).expand(4, 3),
        "permuted": base.permute(1, 2, 0),
    }
    loaded = round_trip(views)
    assert_same(loaded, views)
    _, header, _, arrays = parse(saved_bytes(views))
    for name, view in views.items():
        assert header[name]["shape"] == list(view.shape)
        assert np.array_equal(arrays[name], view.numpy())


def test_requires_grad_is_not_saved_and_subclasses_load_as_tensors() -> None:
    class Parameter(gg.Tensor):  # stands in for nn.Parameter: a Tensor subclass
        __slots__ = ()

    weight = Parameter(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    loss = (weight * 3).sum()
    loaded = round_trip({"w": weight, "loss": loss})
    assert type(loaded["w"]) is gg.Tensor and not loaded["w"].requires_grad
    assert loaded["loss"].grad_fn is None and loaded["loss"].item() == 12.0


def test_optimizer_state_keeps_int_keys_tuples_and_none() -> None:
    state = optimizer_state()
    loaded = round_trip(state)
    assert_same(loaded, state)
    assert loaded["param_groups"][0]["betas"] == (0.9, 0.999)
    _, header, metadata, _ = parse(saved_bytes(state))
    assert set(header) == {
        f"state.{i}.{key}" for i in (0, 1) for key in ("step", "exp_avg", "exp_avg_sq")
    }
    assert json.loads(metadata["graphgrad"])["version"] == 1


def test_scalars_strings_and_keys_round_trip() -> None:
    obj = {
        "floats": [0.1, -0.0, 1e308, 5e-324, float("nan"), float("inf"), float("-inf")],
        "ints": [0, -1, 2**63, -(2**70)],
        "unicode é ✓ 日本 🎉": 'naïve 🎉 \u0000 "quoted" \\ back',
        1: "int key",
        "1": "str key",
        "bool keys": {True: "bool", "True": "str", 2: "int"},
        "empty": [[], {}, (), ""],
        "nested": ({"deep": [(1, [2.5, {"x": None}])]},),
        "numpy numbers": [np.float32(1.5), np.int64(7), np.bool_(True)],
    }
    expected = dict(obj, **{"numpy numbers": [1.5, 7, True]})
    assert_same(round_trip(obj), expected)


@pytest.mark.parametrize(
    "obj",
    [None, 3, 2.5, "text", [gg.ones(2), 1], (gg.zeros(1),), gg.tensor(7, dtype=gg.int8)],
    ids=repr,
)
def test_any_supported_value_at_the_top(obj) -> None:
    assert_same(round_trip(obj), obj)


def test_colliding_names_get_suffixes() -> None:
    obj = {"a.b": gg.ones(1), "a": {"b": gg.zeros(1)}, "__metadata__": gg.ones(2)}
    assert_same(round_trip(obj), obj)
    _, header, _, _ = parse(saved_bytes(obj))
    assert set(header) == {"a.b", "a.b#1", "__metadata__#1"}


def test_paths_and_file_objects(tmp_path) -> None:
    state = optimizer_state()
    save(state, str(tmp_path / "as_str.safetensors"))
    save(state, tmp_path / "as_path.safetensors")
    with open(tmp_path / "as_file.safetensors", "wb") as f:
        save(state, f)
    for name in ("as_str", "as_path", "as_file"):
        assert_same(load(tmp_path / f"{name}.safetensors"), state)
        assert_same(load(str(tmp_path / f"{name}.safetensors")), state)
        with open(tmp_path / f"{name}.safetensors", "rb") as f:
            assert_same(load(f), state)


def test_one_stream_holds_several_saves() -> None:
    # load reads exactly one file's bytes, as torch.load does from a stream
    buffer = io.BytesIO()
    save({"first": gg.ones(3)}, buffer)
    save([2, gg.zeros(2, dtype=gg.int32)], buffer)
    buffer.seek(0)
    assert_same(load(buffer), {"first": gg.ones(3)})
    assert_same(load(buffer), [2, gg.zeros(2, dtype=gg.int32)])


def test_unseekable_stream_loads() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, raw: bytes) -> None:
            self.source = io.BytesIO(raw)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self.source.readinto(buffer)

    state = optimizer_state()
    assert_same(load(Pipe(saved_bytes(state))), state)


def test_loaded_tensors_are_writable_and_independent() -> None:
    loaded = round_trip({"a": gg.ones(3), "b": gg.ones(3)})
    with gg.no_grad():
        loaded["a"].add_(1.0)
    assert loaded["a"].tolist() == [2.0, 2.0, 2.0] and loaded["b"].tolist() == [1.0, 1.0, 1.0]


def test_load_accepts_torch_arguments() -> None:
    raw = saved_bytes({"w": gg.ones(2)})
    for kwargs in ({}, {"map_location": "cpu"}, {"map_location": None, "weights_only": False}):
        assert_same(load(io.BytesIO(raw), **kwargs), {"w": gg.ones(2)})
    with pytest.raises(RuntimeError, match="CPU only"):
        load(io.BytesIO(raw), map_location="cuda")


# ---------------------------------------------------------------------------------- the format
def test_layout_follows_the_safetensors_spec() -> None:
    obj = {name: sample(dtype, (3, 5)) for name, dtype in zip("abcdefghi", DTYPES)}
    obj["empty"], obj["scalar"] = gg.zeros(0, 2, dtype=gg.int32), gg.tensor(1.5, dtype=gg.float16)
    raw = saved_bytes(obj)
    length, header, metadata, arrays = parse(raw)
    text = raw[8 : 8 + length].decode()
    assert length % 8 == 0 and text.rstrip(" ").endswith("}"), "padded with spaces to 8 bytes"
    assert len(text) - len(text.rstrip(" ")) < 8
    assert metadata["format"] == "pt"
    spans = sorted(info["data_offsets"] for info in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(raw) - 8 - length
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "contiguous, no gaps"
    for name, info in header.items():
        itemsize = np.dtype(SPEC_DTYPES[info["dtype"]]).itemsize
        assert info["data_offsets"][0] % itemsize == 0, "aligned to the element size"
        assert np.array_equal(arrays[name], obj[name].numpy(), equal_nan=True)
        assert info["dtype"] == {"bool": "BOOL"}.get(obj[name].dtype.name, info["dtype"])
    assert {header[n]["dtype"] for n in "abcdefghi"} == set(SPEC_DTYPES)


def test_model_state_dict_keys_are_stored_verbatim_and_load_in_torch() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    state = {key: gg.tensor(value.numpy()) for key, value in model.state_dict().items()}
    raw = saved_bytes(state)
    _, header, _, arrays = parse(raw)
    assert list(header) == list(state)  # all float32: same element size, order kept
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    fresh.load_state_dict({key: torch.from_numpy(array.copy()) for key, array in arrays.items()})
    x = torch.randn(5, 3)
    assert torch.equal(fresh(x), model(x))


def test_the_safetensors_library_reads_graphgrad_files(tmp_path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    obj = {name: sample(dtype, (2, 3)) for name, dtype in zip("abcdefghi", DTYPES)}
    obj["zero_d"], obj["zero_size"] = gg.tensor(2.0), gg.zeros(0, 3)
    save(obj, tmp_path / "model.safetensors")
    arrays = safetensors_numpy.load_file(str(tmp_path / "model.safetensors"))
    assert set(arrays) == set(obj)
    for name, array in arrays.items():
        assert array.dtype == obj[name].numpy().dtype
        assert np.array_equal(array, obj[name].numpy(), equal_nan=True)
    safetensors_numpy.save_file({"w": np.arange(6, dtype=np.int16).reshape(2, 3)}, tmp_path / "x")
    assert_same(load(tmp_path / "x"), {"w": gg.arange(6, dtype=gg.int16).reshape(2, 3)})


def test_a_torch_name_warns_once_and_the_file_reads_with_safetensors_torch(tmp_path,
                                                                          monkeypatch) -> None:
    from safetensors.torch import load_file

    monkeypatch.setattr(graphgrad_io, "_warned_suffix", False)  # as in a fresh process
    weights = {"fc.weight": gg.arange(6.0).reshape(2, 3), "fc.bias": gg.tensor([0.5, -1.0])}
    with pytest.warns(UserWarning, match=r"safetensors\.torch\.load_file\('.*m\.pt'\)") as seen:
        save(weights, tmp_path / "m.pt")
        save(weights, tmp_path / "m.pth")
        save(weights, tmp_path / "again.pt")
    assert len(seen) == 1  # once per process
    loaded = load_file(str(tmp_path / "m.pt"))  # what the warning and the docstring advise
    torch.testing.assert_close(loaded["fc.weight"], torch.arange(6.0).reshape(2, 3))
    torch.testing.assert_close(loaded["fc.bias"], torch.tensor([0.5, -1.0]))
    with pytest.raises(pickle.UnpicklingError):  # why: torch.load expects a pickle
        torch.load(tmp_path / "m.pt")
    monkeypatch.setattr(graphgrad_io, "_warned_suffix", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a .safetensors name never warns
        save(weights, tmp_path / "m.safetensors")


def test_plain_safetensors_files_load_as_a_dict() -> None:
    data = np.arange(6, dtype="<i4").tobytes() + np.array([0.5], dtype="<f8").tobytes()
    header = {
        "ints": {"dtype": "I32", "shape": [2, 3], "data_offsets": [0, 24]},
        "double": {"dtype": "F64", "shape": [], "data_offsets": [24, 32]},
    }
    expected = {
        "ints": gg.arange(6, dtype=gg.int32).reshape(2, 3),
        "double": gg.tensor(0.5, dtype=gg.float64),
    }
    assert_same(load(make_file(header, data, metadata={"format": "np"})), expected)
    assert_same(load(make_file({}, b"")), {})


# ---------------------------------------------------------------------------------- refusing
@pytest.mark.parametrize(
    ("obj", "where", "what"),
    [
        ({"param_groups": [{"fn": len}]}, r"obj\['param_groups'\]\[0\]\['fn'\]", "builtin"),
        ({"s": {1, 2}}, r"obj\['s'\]", "builtins.set"),
        ([np.array([None, 1], dtype=object)], r"obj\[0\]", "numpy.ndarray"),
        ((1, object()), r"obj\[1\]", "builtins.object"),
        ({"m": {3: lambda: 0}}, r"obj\['m'\]\[3\]", "function"),
        ({"c": 1j}, r"obj\['c'\]", "complex"),
    ],
)
def test_unsupported_objects_are_named_by_their_path(obj, where, what) -> None:
    with pytest.raises(TypeError, match=f"{what}.* at {where}"):
        saved_bytes(obj)


@pytest.mark.parametrize("key", [(1, 2), 1.5, None, b"bytes", gg.ones(1)], ids=repr)
def test_unsupported_keys(key) -> None:
    with pytest.raises(TypeError, match=r"dict key .* in obj\['outer'\]: keys must be str, int"):
        saved_bytes({"outer": {key: 1}})


def test_a_structure_that_contains_itself() -> None:
    loop: list = [gg.ones(1)]
    loop.append({"again": loop})
    with pytest.raises(ValueError, match=r"obj\[1\]\['again'\] contains itself"):
        saved_bytes(loop)


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch) -> None:
    path = tmp_path / "model.safetensors"
    save({"w": gg.ones(3)}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"obj\['z'\]"):
        save({"a": gg.zeros(1000), "b": gg.ones(5), "z": print}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]

    def broken_fsync(fd) -> None:
        raise OSError("disk full")  # fails after the data was written to the temporary file

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save({"a": gg.zeros(1000)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == [path.name]
    assert_same(load(path), {"w": gg.ones(3)})


def test_a_saved_file_gets_the_usual_permissions(tmp_path) -> None:
    save({"w": gg.ones(1)}, tmp_path / "saved")
    (tmp_path / "opened").write_bytes(b"")
    assert os.stat(tmp_path / "saved").st_mode == os.stat(tmp_path / "opened").st_mode


class Payload:
    """Unpickling this creates a file: the stand-in for arbitrary code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_loading_a_pickle_runs_no_code(tmp_path) -> None:
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(str(proof)))).close()
    assert proof.exists(), "the payload does run when unpickled"
    marker = tmp_path / "marker"
    for protocol in (2, 4, 5):
        path = tmp_path / f"evil{protocol}.pt"
        path.write_bytes(pickle.dumps({"w": Payload(str(marker))}, protocol=protocol))
        with pytest.raises(ValueError, match="looks like a pickle .* never unpickles"):
            load(path)
    for protocol in (0, 1):  # text protocols: no magic number, refused as a bad length
        with pytest.raises(ValueError, match="not a graphgrad/safetensors file"):
            load(io.BytesIO(pickle.dumps(Payload(str(marker)), protocol=protocol)))
    torch.save({"w": torch.ones(2)}, tmp_path / "torch.pt")
    with pytest.raises(ValueError, match=r"zip archive \(torch.save\) - graphgrad never unpickles"):
        load(tmp_path / "torch.pt")
    assert not marker.exists()


VALID = saved_bytes({"w": gg.arange(6, dtype=gg.float32), "b": gg.ones(2, dtype=gg.int64)})


@pytest.mark.parametrize("cut", [0, 5, 8, 20, len(VALID) - 1, len(VALID) - 30])
def test_truncated_files(cut) -> None:
    with pytest.raises(ValueError, match="truncated|header of .* bytes|not valid JSON"):
        load(io.BytesIO(VALID[:cut]))


def test_truncated_data_names_the_tensor() -> None:
    with pytest.raises(ValueError, match=r"tensor 'w' ends at byte 40 .* holds 39 .*truncated"):
        load(io.BytesIO(VALID[:-1]))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (struct.pack("<Q", 2**40) + b"{}", "header of 1099511627776 bytes"),
        (struct.pack("<Q", 6) + b"{}", "header of 6 bytes, but the file has 2"),
        (struct.pack("<Q", 4) + b"nope", "header is not valid JSON"),
        (struct.pack("<Q", 2) + b"\xff\xfe", "header is not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", "JSON but not an object"),
        (b"\x93NUMPY\x01\x00" + b"{}" * 40, "header of"),
    ],
)
def test_bad_headers(raw, message) -> None:
    with pytest.raises(ValueError, match=message):
        load(io.BytesIO(raw))


def entry(dtype="F32", shape=(2,), offsets=(0, 8)) -> dict:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"w": entry(offsets=(8, 16))}, "ends at byte 16 of the data, but the file holds 8"),
        ({"w": entry(), "v": entry(offsets=(4, 12))}, "'w' and 'v' overlap"),
        ({"w": entry(), "v": entry(offsets=(0, 8))}, "overlap"),
        ({"w": entry(offsets=(0, 4))}, "needs 8 bytes, but its data_offsets .* span 4"),
        ({"w": entry(offsets=(8, 0))}, "span -8"),
        ({"w": entry(dtype="BF16", shape=(4,))}, "dtype 'BF16', which graphgrad does not"),
        ({"w": entry(dtype="U16", shape=(4,))}, "dtype 'U16'"),
        ({"w": entry(shape=(-2,))}, "non-negative integers"),
        ({"w": entry(shape=(2.0,))}, "non-negative integers"),
        ({"w": entry(offsets=(0, 8, 9))}, "non-negative integers"),
        ({"w": entry(offsets=(0, True))}, "non-negative integers"),
        ({"w": [1, 2]}, "header entry of 'w' is not an object"),
        ({"w": entry(dtype="BOOL", shape=(8,))}, "bytes other than 0 and 1"),
    ],
)
def test_bad_entries(header, message) -> None:
    with pytest.raises(ValueError, match=message):
        load(make_file(header, bytes(range(7, 15))))


def test_duplicate_names() -> None:
    text = b'{"w":' + json.dumps(entry()).encode() + b',"w":' + json.dumps(entry()).encode() + b"}"
    with pytest.raises(ValueError, match="duplicate key 'w'"):
        load(io.BytesIO(struct.pack("<Q", len(text)) + text + bytes(8)))


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"graphgrad": 3}, "must map strings to strings"),
        ({"graphgrad": "{not json"}, "graphgrad metadata is not valid JSON"),
        ({"graphgrad": '{"version": 2, "object": null}'}, "version 2: this graphgrad reads"),
        ({"graphgrad": '{"object": null}'}, "version None"),
        ({"graphgrad": '{"version": 1, "object": {"tensor": "missing"}}'}, "no saved value"),
        ({"graphgrad": '{"version": 1, "object": {"dict": [[[1], 2]]}}'}, "no saved value"),
        ({"graphgrad": '{"version": 1, "object": {"float": "1e5"}}'}, "no saved value"),
        ({"graphgrad": '{"version": 1, "object": {"a": 1, "b": 2}}'}, "no saved value"),
    ],
)
def test_bad_metadata(metadata, message) -> None:
    with pytest.raises(ValueError, match=message):
        load(make_file({}, b"", metadata=metadata))


# ---------------------------------------------------------------------------------- speed
def test_saving_10_mb_takes_well_under_a_second(tmp_path) -> None:
    state = {f"layer{i}.weight": gg.randn(50, 500) for i in range(100)}  # 10 MB of float32
    start = time.perf_counter()
    save(state, tmp_path / "big.safetensors")
    elapsed = time.perf_counter() - start
    assert os.path.getsize(tmp_path / "big.safetensors") > 10_000_000
    assert elapsed < 1.0, f"{elapsed:.3f} s"
    assert_same(load(tmp_path / "big.safetensors"), state)
