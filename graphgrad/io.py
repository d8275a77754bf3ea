"""Saving and loading tensors, NumPy arrays and Python values, in dicts, lists and tuples:
:func:`save` and :func:`load`.

Files are safetensors (https://huggingface.co/docs/safetensors), so a model saved here loads in
PyTorch without graphgrad, and loading never runs code::

    8 bytes    N, the length of the header, unsigned little-endian
    N bytes    a JSON object, padded with spaces so that the data starts at a multiple of 8:
                 {"fc.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                  ...,
                  "__metadata__": {"format": "pt", "graphgrad": "<structure, as JSON>"}}
    the data   every tensor's elements back to back, C order, little-endian; offsets count from
               the start of the data

Dtypes are spelled F16 F32 F64 I8 I16 I32 I64 U8 BOOL. Each tensor is stored under the dotted path
at which it sits in the saved object: a model's state dict ``{"fc.weight": w}`` keeps its keys
verbatim, an optimizer's ``{"state": {0: {"exp_avg": m}}}`` stores ``state.0.exp_avg`` (should two
paths give the same name, the later one gets ``#1``, ``#2``, ...). Tensors are written largest
element size first, so each starts at a multiple of its element size, as the safetensors library
writes them.

Everything else goes into ``__metadata__["graphgrad"]``, the JSON ``{"version": 1, "object": v}``
where ``v`` is one of:

    null, true, false, a number, a string    None, bool, int, float, str
    [v, ...]                                 a list
    {"tuple": [v, ...]}                      a tuple
    {"dict": [[key, v], ...]}                a dict, in order; keys are str, int or bool
    {"tensor": "<name>"}                     the tensor stored under that name
    {"ndarray": "<name>"}                    a NumPy array, stored as a tensor is
    {"float": "nan" | "inf" | "-inf"}        a float that JSON cannot spell

A safetensors file without that entry (written by another tool) loads as a dict name -> tensor.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings

import numpy as np

from ._files import atomic_write
from .creation import _check_device, from_numpy
from .tensor import Tensor

FORMAT_VERSION = 1
_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the header's length
_DTYPES = {
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_CODES = {d.str: code for code, d in _DTYPES.items()}  # '<f4' -> 'F32'
_NOT_OURS = "not a graphgrad/safetensors file"
_TORCH_SUFFIXES = (".pt", ".pth")  # names that promise torch.load, which cannot read safetensors
_warned_suffix = False  # save warns about such a name once per process


def save(obj, f) -> None:
    """Save ``obj`` (a tensor, a NumPy array, str, int, float, bool, None, or dicts, lists and
    tuples of them) to ``f``, a path or a binary file object, in the safetensors format. As
    with torch.save, a NumPy array loads as a NumPy array; a NumPy number loads as the Python
    number it equals.

    The file is safetensors, not a pickle, so ``torch.load`` cannot read it (it fails with an
    unpickling error). In PyTorch, read it with ``safetensors.torch.load_file(path)`` (``pip
    install safetensors``), e.g. ``model.load_state_dict(load_file("model.safetensors"))``; in
    graphgrad, with :func:`load`. Name it ``*.safetensors``: a path ending in ``.pt`` or
    ``.pth``, the names of torch.save's pickles, gets a warning (once per process).

    A path is written atomically: the old file stays as it was unless the new one is complete.
    ``requires_grad`` is not saved, as in torch. Anything else raises ``TypeError`` naming where
    it sits, before anything is written.

    >>> import os, tempfile
    >>> import graphgrad as gg
    >>> from graphgrad.io import load, save
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "model.safetensors")
    >>> save({"fc.weight": gg.ones(2, 3), "fc.bias": gg.zeros(2), "epoch": 3}, path)
    >>> state = load(path)
    >>> state["fc.weight"].shape, state["fc.bias"].dtype, state["epoch"]
    (graphgrad.Size([2, 3]), graphgrad.float32, 3)
    >>> save({"fn": print}, path)
    Traceback (most recent call last):
    TypeError: graphgrad.save cannot store a builtins.builtin_function_or_method at obj['fn']: \
it stores tensors and NumPy arrays, and dicts, lists and tuples of them, with str, int, float, \
bool and None
    >>> folder.cleanup()
    """
    arrays: dict = {}
    structure = _encode(obj, (), arrays, set())
    # Largest element size first: every tensor then starts aligned to its element size.
    ordered = sorted(arrays.items(), key=lambda item: -item[1].itemsize)
    header = _header(ordered, structure)
    if isinstance(f, (str, os.PathLike)):
        _warn_about_torch_suffix(os.fspath(f))
        _write_atomically(os.fspath(f), header, ordered)
    else:
        _write(f, header, ordered)


def load(f, map_location=None, weights_only: bool = True):
    """Load what :func:`save` wrote to ``f`` (a path or a binary file object), with plain
    tensors in place of the saved ones.

    Only JSON is parsed and bytes copied, never unpickled, so ``weights_only`` is accepted for
    torch's sake and has nothing to switch off; ``map_location`` may be None or ``'cpu'``. A file
    that is not safetensors, or is damaged, raises ``ValueError``.

    >>> import io
    >>> import graphgrad as gg
    >>> from graphgrad.io import load, save
    >>> buffer = io.BytesIO()
    >>> save({"state": {0: {"step": gg.tensor(2.0)}}, "betas": (0.9, 0.999)}, buffer)
    >>> _ = buffer.seek(0)
    >>> load(buffer, map_location="cpu")
    {'state': {0: {'step': tensor(2.)}}, 'betas': (0.9, 0.999)}
    >>> load(io.BytesIO(b"\\x80\\x04\\x95 pickled"))
    Traceback (most recent call last):
    ValueError: not a graphgrad/safetensors file: looks like a pickle (pickle.dump, or torch.save \
with the legacy format) - graphgrad never unpickles
    """
    _check_device(map_location)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as file:
            return _read(file)
    return _read(f)


# ---------------------------------------------------------------------------------- saving
def _warn_about_torch_suffix(path: str) -> None:
    global _warned_suffix
    if _warned_suffix or not path.lower().endswith(_TORCH_SUFFIXES):
        return
    _warned_suffix = True
    warnings.warn(f"graphgrad.save writes safetensors, not a torch pickle: torch.load({path!r}) "
                  f"will fail; read it with safetensors.torch.load_file({path!r}) or "
                  "graphgrad.load, or name it .safetensors", UserWarning, stacklevel=3)


def _encode(obj, where: tuple, arrays: dict, open_ids: set):
    """``obj`` as the structure JSON; its tensors go into ``arrays`` by name."""
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        obj = obj.item()  # a NumPy number comes back as the Python number it equals
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"float": repr(float(obj))}
    if isinstance(obj, Tensor):
        return {"tensor": _add_array(obj.detach().numpy(), where, arrays)}
    if type(obj) in (np.ndarray, np.memmap):  # not subclasses: a masked array would lose its mask
        if obj.dtype.newbyteorder("<").str not in _CODES:
            raise TypeError(
                f"graphgrad.save cannot store a numpy.ndarray of dtype {obj.dtype} at "
                f"{_path(where)}: arrays of dtypes {', '.join(_dtype_names())} are stored"
            )
        return {"ndarray": _add_array(obj, where, arrays)}
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in open_ids:  # else a RecursionError far from the cause
            raise ValueError(f"graphgrad.save: {_path(where)} contains itself")
        open_ids.add(id(obj))
        encoded = _encode_container(obj, where, arrays, open_ids)
        open_ids.discard(id(obj))
        return encoded
    raise TypeError(
        f"graphgrad.save cannot store a {_type_name(obj)} at {_path(where)}: it stores tensors "
        f"and NumPy arrays, and dicts, lists and tuples of them, with str, int, float, bool and "
        f"None"
    )


def _dtype_names() -> list:
    return [str(np.dtype(d.str.lstrip("<"))) if d.kind != "b" else "bool" for d in _DTYPES.values()]


def _encode_container(obj, where: tuple, arrays: dict, open_ids: set):
    if isinstance(obj, dict):
        pairs = []
        for key, value in obj.items():
            _check_key(key, where)
            pairs.append([key, _encode(value, (*where, key), arrays, open_ids)])
        return {"dict": pairs}
    items = [_encode(value, (*where, i), arrays, open_ids) for i, value in enumerate(obj)]
    return {"tuple": items} if isinstance(obj, tuple) else items


def _check_key(key, where: tuple) -> None:
    # JSON keeps str, int and bool apart, so these come back with their types; others would not.
    if not isinstance(key, (str, int)):
        raise TypeError(
            f"graphgrad.save cannot store the dict key {key!r} ({_type_name(key)}) in "
            f"{_path(where)}: keys must be str, int or bool"
        )


def _add_array(data: np.ndarray, where: tuple, arrays: dict) -> str:
    name = ".".join(map(str, where)) or "tensor"
    unique, n = name, 0
    while unique in arrays or unique == "__metadata__":
        n += 1
        unique = f"{name}#{n}"
    # A view (transposed, sliced, flipped) is written as its elements in C order.
    arrays[unique] = np.asarray(data, dtype=data.dtype.newbyteorder("<"), order="C")
    return unique


def _path(where: tuple) -> str:
    return "obj" + "".join(f"[{key!r}]" for key in where)


def _type_name(obj) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def _header(ordered: list, structure) -> bytes:
    header, offset = {}, 0
    for name, array in ordered:
        end = offset + array.nbytes
        header[name] = {
            "dtype": _CODES[array.dtype.str],
            "shape": list(array.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    document = {"version": FORMAT_VERSION, "object": structure}
    # "format": "pt" is what safetensors.torch writes; some loaders (transformers) check it.
    header["__metadata__"] = {"format": "pt", "graphgrad": json.dumps(document, allow_nan=False)}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text


def _write(out, header: bytes, ordered: list) -> None:
    out.write(header)
    for _, array in ordered:
        out.write(array.reshape(-1).view(np.uint8))


def _write_atomically(path: str, header: bytes, ordered: list) -> None:
    """A crash or an error leaves either the old file or the complete new one."""
    with atomic_write(path) as out:
        _write(out, header, ordered)


# ---------------------------------------------------------------------------------- loading
def _read(f):
    if not _seekable(f):
        f = io.BytesIO(f.read())  # the size must be known before trusting the header's offsets
    header, data_size = _read_header(f)
    metadata = _check_metadata(header.pop("__metadata__", {}))
    entries = {name: _check_entry(name, info) for name, info in header.items()}
    end = _check_offsets(entries, data_size)
    data = _read_exactly(f, end)
    tensors = {name: from_numpy(_array(data, *entry)) for name, entry in entries.items()}
    if "graphgrad" not in metadata:
        return tensors
    return _decode_document(metadata["graphgrad"], tensors)


def _seekable(f) -> bool:
    return getattr(f, "seekable", lambda: False)()


def _read_header(f) -> tuple:
    here = f.tell()
    size = f.seek(0, os.SEEK_END) - here
    f.seek(here)
    prefix = f.read(8)
    if len(prefix) < 8:
        raise ValueError(f"{_NOT_OURS}: truncated, {size} bytes is too short for a header")
    length = int.from_bytes(prefix, "little")
    if length > min(_MAX_HEADER, size - 8):
        _refuse_pickles(prefix)
        raise ValueError(
            f"{_NOT_OURS}: its first 8 bytes give a header of {length} bytes, but the file has "
            f"{size - 8} bytes after them (and headers stop at {_MAX_HEADER})"
        )
    try:
        header = json.loads(f.read(length).decode("utf-8"), object_pairs_hook=_unique_keys)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and duplicate names
        _refuse_pickles(prefix)
        raise ValueError(f"{_NOT_OURS}: the header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{_NOT_OURS}: the header is JSON but not an object")
    return header, size - 8 - length


def _refuse_pickles(prefix: bytes) -> None:
    """Say so when a file that failed to parse is a pickle. Only then: the length of a valid
    header can start with the same two bytes (640 is 80 02 00 ...)."""
    if prefix.startswith(b"PK\x03\x04"):
        kind = "a zip archive (torch.save)"
    elif prefix[0] == 0x80 and 2 <= prefix[1] <= 5:  # PROTO opcode, protocols 2 to 5
        kind = "a pickle (pickle.dump, or torch.save with the legacy format)"
    else:
        return
    raise ValueError(f"{_NOT_OURS}: looks like {kind} - graphgrad never unpickles")


def _unique_keys(pairs: list) -> dict:
    # json would keep the last of two equal names; a header that names a tensor twice is damaged.
    result = dict(pairs)
    if len(result) != len(pairs):
        names = [key for key, _ in pairs]
        raise ValueError(f"duplicate key {next(k for k in names if names.count(k) > 1)!r}")
    return result


def _check_metadata(metadata) -> dict:
    if not isinstance(metadata, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        raise ValueError(f"{_NOT_OURS}: __metadata__ must map strings to strings")
    return metadata


def _check_entry(name: str, info) -> tuple:
    """(dtype, shape, begin, end) of the tensor ``name``, once they are consistent."""
    if not isinstance(info, dict):
        raise ValueError(f"{_NOT_OURS}: the header entry of {name!r} is not an object")
    code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if code not in _DTYPES:
        raise ValueError(
            f"tensor {name!r} has dtype {code!r}, which graphgrad does not support "
            f"(it reads {' '.join(_DTYPES)})"
        )
    if not _counts(shape) or not (_counts(offsets) and len(offsets) == 2):
        raise ValueError(
            f"{_NOT_OURS}: tensor {name!r} needs a shape and two data_offsets made of "
            f"non-negative integers, not {shape!r} and {offsets!r}"
        )
    dtype, (begin, end) = _DTYPES[code], offsets
    if end - begin != math.prod(shape) * dtype.itemsize:
        raise ValueError(
            f"{_NOT_OURS}: tensor {name!r} of dtype {code} and shape {shape} needs "
            f"{math.prod(shape) * dtype.itemsize} bytes, but its data_offsets {offsets} "
            f"span {end - begin}"
        )
    return dtype, tuple(shape), begin, end


def _counts(values) -> bool:
    return isinstance(values, list) and all(type(v) is int and v >= 0 for v in values)


def _check_offsets(entries: dict, data_size: int) -> int:
    """The end of the data, once no two tensors share bytes and all lie inside the file."""
    end, previous = 0, None
    for name, (_, _, begin, stop) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin < end:
            raise ValueError(f"{_NOT_OURS}: the data of tensors {previous!r} and {name!r} overlap")
        end, previous = stop, name
    if end > data_size:
        raise ValueError(
            f"{_NOT_OURS}: tensor {previous!r} ends at byte {end} of the data, but the file "
            f"holds {data_size} bytes of data (truncated?)"
        )
    return end


def _read_exactly(f, size: int) -> np.ndarray:
    # Into a NumPy buffer: aligned, writable, and the tensors are views of it with no copy.
    data = np.empty(size, np.uint8)
    view, done = memoryview(data), 0
    while done < size:
        count = f.readinto(view[done:])
        if not count:
            raise ValueError(f"{_NOT_OURS}: truncated, the data stops after {done} bytes")
        done += count
    return data


def _array(data: np.ndarray, dtype: np.dtype, shape: tuple, begin: int, end: int) -> np.ndarray:
    raw = data[begin:end]
    if dtype.kind == "b" and raw.max(initial=0) > 1:  # NumPy would show such bytes as True
        raise ValueError(f"{_NOT_OURS}: a BOOL tensor holds bytes other than 0 and 1")
    return raw.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def _decode_document(text: str, tensors: dict):
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"graphgrad metadata is not valid JSON: {exc}") from None
    version = document.get("version") if isinstance(document, dict) else None
    if version != FORMAT_VERSION or "object" not in document:
        raise ValueError(
            f"graphgrad metadata of format version {version!r}: this graphgrad reads version "
            f"{FORMAT_VERSION} (a newer file needs a newer graphgrad)"
        )
    return _decode(document["object"], tensors)


def _decode(value, tensors: dict):
    if isinstance(value, list):
        return [_decode(item, tensors) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, body),) = value.items()
        if tag == "tensor" and isinstance(body, str) and body in tensors:
            return tensors[body]
        if tag == "ndarray" and isinstance(body, str) and body in tensors:
            return tensors[body].numpy()
        if tag == "float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "tuple" and isinstance(body, list):
            return tuple(_decode(item, tensors) for item in body)
        if tag == "dict" and isinstance(body, list) and all(map(_is_pair, body)):
            return {key: _decode(item, tensors) for key, item in body}
    raise ValueError(f"graphgrad metadata holds {str(value)[:80]}, which is no saved value")


def _is_pair(pair) -> bool:
    return isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
