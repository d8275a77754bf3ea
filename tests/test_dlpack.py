"""Arrays without copies: DLPack both ways between graphgrad, torch and NumPy, and from_numpy /
.numpy() / np.asarray sharing memory, each checked against what torch does with the same data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphgrad as gg

DTYPES = [
    (gg.float32, torch.float32, np.float32),
    (gg.float64, torch.float64, np.float64),
    (gg.int64, torch.int64, np.int64),
    (gg.int32, torch.int32, np.int32),
    (gg.uint8, torch.uint8, np.uint8),
    (gg.bool, torch.bool, np.bool_),
]


def address(t) -> int:
    """The address of the first element, through each library's own accessor."""
    if isinstance(t, torch.Tensor):
        return t.data_ptr()
    return (t.detach().numpy() if isinstance(t, gg.Tensor) else t).ctypes.data


def test_torch_reads_a_graphgrad_tensor_without_a_copy():
    t = gg.arange(6, dtype=gg.float32).reshape(2, 3)
    seen = torch.from_dlpack(t)
    assert seen.shape == (2, 3) and seen.dtype == torch.float32
    assert address(seen) == address(t)
    seen[0, 1] = 100.0  # a write on the torch side...
    assert t.tolist() == [[0.0, 100.0, 2.0], [3.0, 4.0, 5.0]]  # ...is graphgrad's too
    t.mul_(2)  # and the other way round
    assert seen.tolist() == [[0.0, 200.0, 4.0], [6.0, 8.0, 10.0]]


def test_graphgrad_reads_a_torch_tensor_without_a_copy():
    source = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    t = gg.from_dlpack(source)
    assert isinstance(t, gg.Tensor) and t.shape == (3, 2) and t.dtype == gg.float32
    assert not t.requires_grad and t.grad_fn is None
    assert address(t) == address(source)
    source[2, 0] = -1.0
    assert t.tolist() == [[0.0, 1.0], [2.0, 3.0], [-1.0, 5.0]]
    t.add_(1)
    assert source.tolist() == [[1.0, 2.0], [3.0, 4.0], [0.0, 6.0]]


def test_numpy_and_graphgrad_share_through_dlpack():
    t = gg.tensor([1.0, 2.0, 3.0])
    a = np.from_dlpack(t)
    assert np.shares_memory(a, t.numpy())
    a[2] = 30.0
    assert t.tolist() == [1.0, 2.0, 30.0]
    b = np.arange(4)
    u = gg.from_dlpack(b)
    assert np.shares_memory(b, u.numpy()) and u.dtype == gg.int64
    b[0] = 9
    assert u.tolist() == [9, 1, 2, 3]
    v = gg.from_dlpack(u)  # graphgrad from graphgrad: a new tensor over the same memory
    assert v is not u and np.shares_memory(v.numpy(), b)


def test_dlpack_device_is_torchs_cpu():
    assert gg.zeros(2).__dlpack_device__() == torch.zeros(2).__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("gg_dtype, torch_dtype, np_dtype", DTYPES, ids=lambda d: str(d))
def test_dtypes_are_kept_both_ways(gg_dtype, torch_dtype, np_dtype):
    values = np.array([[0, 1, 1], [1, 0, 1]]).astype(np_dtype)
    t = gg.tensor(values)
    to_torch = torch.from_dlpack(t)
    assert to_torch.dtype == torch_dtype
    assert np.array_equal(to_torch.numpy(), values)
    back = gg.from_dlpack(torch.tensor(values))
    assert back.dtype == gg_dtype and np.array_equal(back.numpy(), values)
    through_numpy = np.from_dlpack(t)
    assert through_numpy.dtype == np_dtype and np.shares_memory(through_numpy, t.numpy())


def test_transposed_and_strided_tensors_keep_their_strides():
    t = gg.arange(12, dtype=gg.float32).reshape(3, 4).T  # a view: strides (4, 16) bytes
    seen = torch.from_dlpack(t)
    reference = torch.arange(12, dtype=torch.float32).reshape(3, 4).T
    assert seen.stride() == reference.stride() == (1, 4)
    assert torch.equal(seen, reference) and address(seen) == address(t)
    seen[3, 0] = -5.0
    assert t.tolist()[3][0] == -5.0

    source = torch.arange(20).reshape(4, 5)[:, ::2].T  # non-contiguous, with a step
    u = gg.from_dlpack(source)
    assert u.tolist() == source.tolist()
    assert u.numpy().strides == tuple(s * 8 for s in source.stride())
    source[1, 2] = 77
    assert u.tolist()[1][2] == 77

    expanded = gg.tensor([1.0, 2.0, 3.0]).expand(2, 3)  # stride 0, as torch's expand
    assert torch.from_dlpack(expanded).stride() == torch.ones(3).expand(2, 3).stride() == (0, 1)


def test_a_tensor_that_requires_grad_is_refused_as_torch_refuses_it():
    ours, theirs = gg.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    for consume in (torch.from_dlpack, np.from_dlpack):
        with pytest.raises(BufferError) as torch_error:
            consume(theirs)
        with pytest.raises(BufferError) as our_error:
            consume(ours)
        assert str(our_error.value) == str(torch_error.value)
    with pytest.raises(BufferError, match="require gradient"):
        gg.from_dlpack(ours)
    with pytest.raises(BufferError, match="require gradient"):
        gg.from_dlpack(theirs)
    with pytest.raises(RuntimeError) as torch_error:
        theirs.numpy()
    with pytest.raises(RuntimeError) as our_error:
        ours.numpy()
    assert str(our_error.value) == str(torch_error.value)
    # detach() is the way out in both: the same memory, no gradient
    assert address(torch.from_dlpack(ours.detach())) == address(ours)
    assert address(torch.from_dlpack(theirs.detach())) == address(theirs)


def test_from_numpy_and_numpy_share_memory_as_torch_does():
    for lib in (torch, gg):
        a = np.zeros(3, np.float32)
        t = lib.from_numpy(a)
        a[0] = 1.0  # the array's writes show in the tensor
        assert t.tolist() == [1.0, 0.0, 0.0], lib.__name__
        t.add_(2)  # the tensor's in-place writes show in the array
        assert a.tolist() == [3.0, 2.0, 2.0], lib.__name__
        assert np.shares_memory(t.numpy(), a), lib.__name__
        assert np.shares_memory(np.asarray(t), a), lib.__name__  # no copy when none is needed
        b = t.numpy()
        b[2] = 7.0
        assert t.tolist() == [3.0, 2.0, 7.0], lib.__name__
        assert not np.shares_memory((t + 0).numpy(), a), lib.__name__  # a result is new memory


def test_copy_and_device_arguments_follow_torch():
    source = np.arange(3.0)
    for lib in (torch, gg):
        copied = lib.from_dlpack(source, copy=True)
        assert not np.shares_memory(np.asarray(copied), source)
        shared = lib.from_dlpack(source, device="cpu")
        assert np.shares_memory(np.asarray(shared), source)
    with pytest.raises(RuntimeError, match="CPU only"):
        gg.from_dlpack(source, device="cuda")


def test_objects_without_dlpack_are_a_clear_type_error():
    with pytest.raises(TypeError, match="from_dlpack expects an object with __dlpack__.*list"):
        gg.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError, match="graphgrad does not support the NumPy dtype complex64"):
        gg.from_dlpack(torch.ones(2, dtype=torch.complex64))
