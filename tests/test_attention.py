"""F.scaled_dot_product_attention, nn.MultiheadAttention and the transformer encoder against
torch (the oracle): torch's weights copied in, eval mode, forward and every gradient."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import graphgrad as gg

DTYPES = [(gg.float32, torch.float32, np.float32, 2e-5), (gg.float64, torch.float64, np.float64,
                                                         1e-12)]  # fmt: skip
IDS = ["float32", "float64"]


def _as(lib, value):
    return lib.tensor(value) if isinstance(value, np.ndarray) else value


def _weights_like(out) -> np.ndarray:
    return np.linspace(-1.0, 1.0, out.numel()).reshape(tuple(out.shape))


def _sdpa(lib, arrays, kwargs):
    tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = lib.nn.functional.scaled_dot_product_attention(
        *tensors, **{k: _as(lib, v) for k, v in kwargs.items()}
    )
    (out * lib.tensor(_weights_like(out).astype(arrays[0].dtype))).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def _sdpa_cases(np_dtype):
    rng = np.random.default_rng(0)
    keep = rng.random((5, 6)) > 0.4
    keep[:, 0] = True
    return [
        {},
        {"is_causal": True},
        {"attn_mask": keep},
        {"attn_mask": rng.random((2, 1, 5, 6)) > 0.3},  # broadcast over heads
        {"attn_mask": rng.standard_normal((5, 6)).astype(np_dtype)},
        {"scale": 0.3},
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("shapes", [((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 7)),
                                    ((5, 4), (6, 4), (6, 3))])  # fmt: skip
def test_sdpa_matches_torch(dtype, case, shapes):
    kwargs = _sdpa_cases(dtype[2])[case]
    if len(shapes[0]) == 2 and case == 3:
        kwargs = {"attn_mask": kwargs["attn_mask"][0, 0]}  # unbatched: a 2-D mask
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(dtype[2]) for s in shapes]
    for a, b in zip(_sdpa(gg, arrays, kwargs), _sdpa(torch, arrays, kwargs), strict=True):
        np.testing.assert_allclose(a, b, rtol=dtype[3], atol=dtype[3])


@pytest.mark.parametrize("shapes", [((2, 0, 4), (2, 3, 4), (2, 3, 5)),
                                    ((2, 3, 4), (2, 0, 4), (2, 0, 5))])  # fmt: skip
def test_sdpa_empty_queries_or_keys_match_torch(shapes):
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s) for s in shapes]
    for a, b in zip(_sdpa(gg, arrays, {}), _sdpa(torch, arrays, {}), strict=True):
        np.testing.assert_array_equal(a, b)


def test_sdpa_fully_masked_row_gives_zeros_and_zero_gradients_as_torch():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s) for s in [(1, 3, 4), (1, 5, 4), (1, 5, 2)]]
    keep = np.ones((3, 5), bool)
    keep[1] = False
    ours, theirs = _sdpa(gg, arrays, {"attn_mask": keep}), _sdpa(torch, arrays, {"attn_mask": keep})
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert not np.isnan(ours[0]).any() and (ours[0][0, 1] == 0).all()


def test_sdpa_dropout_keeps_the_mean_and_zeroes_some_weights():
    gg.manual_seed(0)
    q = k = gg.zeros(1, 64, 8)
    v = gg.ones(1, 64, 1)
    out = gg.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    values = out.numpy().ravel()  # uniform weights 1/64: each row is kept/64 * 2
    assert abs(values.mean() - 1.0) < 0.1 and values.std() > 0.05


def _sdpa_error(lib, kwargs, shapes=((2, 3, 4), (2, 5, 4), (2, 5, 6))):
    tensors = [lib.zeros(*s) for s in shapes]
    try:
        lib.nn.functional.scaled_dot_product_attention(*tensors, **kwargs)
    except Exception as exc:  # noqa: BLE001
        return type(exc), str(exc)
    return None


def test_sdpa_errors():
    assert _sdpa_error(gg, {"attn_mask": gg.ones(3, 5, dtype=gg.bool), "is_causal": True}) == (
        _sdpa_error(torch, {"attn_mask": torch.ones(3, 5, dtype=torch.bool), "is_causal": True})
    )
    ours = _sdpa_error(gg, {"attn_mask": gg.ones(3, 5, dtype=gg.int64)})
    theirs = _sdpa_error(torch, {"attn_mask": torch.ones(3, 5, dtype=torch.int64)})
    assert ours[0] is theirs[0] is RuntimeError
    assert ours[1].startswith("Expected attn_mask dtype to be bool or float")
    kind, message = _sdpa_error(gg, {}, ((2, 3, 4), (2, 5, 3), (2, 5, 6)))
    assert kind is RuntimeError and "(2, 5, 3)" in message
    with pytest.raises(NotImplementedError, match="enable_gqa"):
        gg.nn.functional.scaled_dot_product_attention(
            gg.zeros(1, 4, 2, 3), gg.zeros(1, 2, 2, 3), gg.zeros(1, 2, 2, 3), enable_gqa=True
        )


# ---------------------------------------------------------------------- MultiheadAttention


def _copy_from_torch(ours, theirs) -> None:
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert repr(result) == "<All keys matched successfully>"


def _pair(make, dtype):
    torch.manual_seed(0)
    theirs = make(torch).to(dtype[1]).eval()
    ours = make(gg).to(dtype[0]).eval()
    _copy_from_torch(ours, theirs)
    return ours, theirs


def _run(lib, module, arrays, kwargs, self_attention=False):
    tensors = [lib.tensor(a, requires_grad=True) for a in arrays]
    args = tensors * 3 if self_attention else tensors
    result = module(*args, **{k: _as(lib, v) for k, v in kwargs.items()})
    outs = [r for r in (result if isinstance(result, tuple) else (result,)) if r is not None]
    loss = sum((o * lib.tensor(_weights_like(o).astype(arrays[0].dtype))).sum() for o in outs)
    loss.backward()
    return ([o.detach().numpy() for o in outs] + [t.grad.numpy() for t in tensors]
            + [p.grad.numpy() for p in module.parameters()])  # fmt: skip


def _compare(ours, theirs, arrays, kwargs, tol, self_attention=False):
    mine = _run(gg, ours, arrays, kwargs, self_attention)
    ref = _run(torch, theirs, arrays, kwargs, self_attention)
    assert len(mine) == len(ref)
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _mha_kwargs(batch_first):
    rng = np.random.default_rng(3)
    padding = rng.random((3, 7)) > 0.7
    padding[:, 0] = False  # no fully masked row: torch's weights would be NaN there
    masked = rng.random((5, 7)) < 0.3  # True: may not attend, as torch's bool masks here
    masked[:, 0] = False  # key 0 is never padded either
    return [
        {},
        {"need_weights": False},
        {"average_attn_weights": False},
        {"key_padding_mask": padding, "attn_mask": masked},
        {"key_padding_mask": padding, "need_weights": False},
        {"attn_mask": rng.standard_normal((3 * 2, 5, 7))},
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("config", [{}, {"bias": False}, {"kdim": 3, "vdim": 5}])
def test_multihead_attention_matches_torch(dtype, batch_first, case, config):
    ours, theirs = _pair(lambda lib: lib.nn.MultiheadAttention(
        8, 2, dropout=0.3, batch_first=batch_first, **config), dtype)  # fmt: skip
    kwargs = dict(_mha_kwargs(batch_first)[case])
    if "attn_mask" in kwargs and kwargs["attn_mask"].dtype == np.float64:
        kwargs["attn_mask"] = kwargs["attn_mask"].astype(dtype[2])
    rng = np.random.default_rng(4)

    def seq(n, e):
        return rng.standard_normal((3, n, e) if batch_first else (n, 3, e)).astype(dtype[2])

    arrays = [seq(5, 8), seq(7, config.get("kdim", 8)), seq(7, config.get("vdim", 8))]
    _compare(ours, theirs, arrays, kwargs, dtype[3])


@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_self_attention_and_unbatched_input_match_torch(batch_first):
    dtype = DTYPES[1]
    ours, theirs = _pair(lambda lib: lib.nn.MultiheadAttention(6, 3, batch_first=batch_first),
                         dtype)  # fmt: skip
    rng = np.random.default_rng(5)
    _compare(ours, theirs, [rng.standard_normal((2, 4, 6))], {}, dtype[3], self_attention=True)
    unbatched = [rng.standard_normal((4, 6)), rng.standard_normal((5, 6)),
                 rng.standard_normal((5, 6))]  # fmt: skip
    _compare(ours, theirs, unbatched, {"key_padding_mask": np.array([0, 0, 1, 0, 1], bool)},
             dtype[3])  # fmt: skip


def test_multihead_attention_parameters_repr_and_init_as_torch():
    for kwargs in [{}, {"kdim": 3, "vdim": 5}, {"bias": False}]:
        ours, theirs = gg.nn.MultiheadAttention(8, 2, **kwargs), torch.nn.MultiheadAttention(
            8, 2, **kwargs)  # fmt: skip
        assert repr(ours) == repr(theirs)
        assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [
            (n, tuple(p.shape)) for n, p in theirs.named_parameters()
        ]
    ours = gg.nn.MultiheadAttention(64, 4)
    bound = np.sqrt(6 / (64 + 3 * 64))  # xavier_uniform_ over (3E, E)
    w = ours.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert (ours.in_proj_bias.detach().numpy() == 0).all()
    assert (ours.out_proj.bias.detach().numpy() == 0).all()


def test_multihead_attention_refusals_and_errors():
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        gg.nn.MultiheadAttention(6, 4)
    with pytest.raises(NotImplementedError, match="add_bias_kv"):
        gg.nn.MultiheadAttention(6, 2, add_bias_kv=True)
    mha = gg.nn.MultiheadAttention(4, 2)
    x = gg.zeros(3, 2, 4)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(RuntimeError, match="attn_mask is \\(2, 2\\), but should be \\(3, 3\\)"):
        mha(x, x, x, attn_mask=gg.zeros(2, 2))
    with pytest.raises(AssertionError, match="expecting key_padding_mask shape of \\(2, 3\\)"):
        mha(x, x, x, key_padding_mask=gg.zeros(3, 2, dtype=gg.bool))


def test_multihead_attention_dropout_in_training_only():
    gg.manual_seed(0)
    mha = gg.nn.MultiheadAttention(8, 2, dropout=0.5)
    x = gg.randn(6, 4, 8)
    _, w_train = mha(x, x, x, average_attn_weights=False)
    mha.eval()
    _, w_eval = mha(x, x, x, average_attn_weights=False)
    assert tuple(w_train.shape) == (4, 2, 6, 6)
    zeros = (w_train.detach().numpy() == 0).mean()
    assert 0.35 < zeros < 0.65  # about p of the weights dropped, the rest scaled by 2
    np.testing.assert_allclose(w_eval.detach().numpy().sum(-1), 1.0, rtol=1e-6)


# ---------------------------------------------------------------------- transformer encoder


ENCODER_CONFIGS = [
    {},
    {"norm_first": True, "activation": "gelu"},
    {"activation": "silu", "bias": False},
    {"batch_first": True, "layer_norm_eps": 1e-3},
]


def _layer(lib, config, **more):
    config = dict(config)
    if config.get("activation") == "silu":
        config["activation"] = lib.nn.functional.silu  # a callable
    return lib.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, **config, **more)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("config", ENCODER_CONFIGS, ids=lambda c: "-".join(c) or "default")
@pytest.mark.parametrize("masks", [False, True])
def test_encoder_layer_matches_torch(dtype, config, masks):
    ours, theirs = _pair(lambda lib: _layer(lib, config), dtype)
    rng = np.random.default_rng(6)
    first = config.get("batch_first", False)
    x = rng.standard_normal((3, 5, 8) if first else (5, 3, 8)).astype(dtype[2])
    kwargs = {}
    if masks:
        padding = rng.random((3, 5)) > 0.6
        padding[:, 0] = False
        causal = np.triu(np.ones((5, 5), bool), 1)  # True: may not attend
        kwargs = {"src_key_padding_mask": padding, "src_mask": causal}
    _compare(ours, theirs, [x], kwargs, dtype[3] * 5)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_encoder_stack_with_norm_matches_torch(dtype):
    def make(lib):
        return lib.nn.TransformerEncoder(_layer(lib, {"batch_first": True}), num_layers=3,
                                         norm=lib.nn.LayerNorm(8), enable_nested_tensor=False)

    ours, theirs = _pair(make, dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 8)).astype(dtype[2])
    mask = np.triu(np.full((6, 6), -np.inf, dtype[2]), 1)  # causal, as torch's generator gives
    _compare(ours, theirs, [x], {}, dtype[3] * 5)
    _compare(ours, theirs, [x], {"mask": mask, "is_causal": True}, dtype[3] * 5)


def test_encoder_deep_copies_its_layer_and_accepts_torch_arguments():
    layer = gg.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    encoder = gg.nn.TransformerEncoder(layer, 2, enable_nested_tensor=True, mask_check=False)
    weights = [m.linear1.weight for m in encoder.layers]
    assert weights[0] is not weights[1] and weights[0] is not layer.linear1.weight
    np.testing.assert_array_equal(weights[0].detach().numpy(),
                                  layer.linear1.weight.detach().numpy())
    assert repr(encoder) == repr(torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16), 2,
        enable_nested_tensor=False))  # fmt: skip
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        gg.nn.TransformerEncoderLayer(8, 2, activation="tanh")
    copy.deepcopy(encoder)


def test_encoder_layer_training_dropout_changes_output_not_shape():
    gg.manual_seed(0)
    layer = gg.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.5)
    x = gg.randn(7, 3, 16)
    a, b = layer(x), layer(x)
    assert tuple(a.shape) == (7, 3, 16)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())
    # LayerNorm after the residual: every position still has mean 0 and variance 1 in training
    out = a.detach().numpy()
    np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.var(-1), 1.0, rtol=1e-3)


def test_compiled_encoder_training_step_gives_the_eager_bits_and_follows_new_masks():
    """The masks are inputs of the compiled step: a replay must use each call's mask (the
    fully masked rows of scaled_dot_product_attention included), not the recorded one."""
    def train(compiled: bool):
        gg.manual_seed(0)
        layer = gg.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1,
                                              batch_first=True)  # fmt: skip
        opt = gg.optim.SGD(layer.parameters(), lr=0.1)

        def step(x, padding):
            opt.zero_grad()
            loss = layer(x, src_key_padding_mask=padding).square().mean()
            loss.backward()
            opt.step()
            return loss

        run = gg.compile(step, fullgraph=True) if compiled else step
        rng = np.random.default_rng(9)
        losses = []
        for k in range(4):
            padding = rng.random((3, 5)) > 0.5
            padding[k % 3] = True  # one sequence all padding: zero rows, not NaN
            x = gg.tensor(rng.standard_normal((3, 5, 8)), dtype=gg.float32)
            losses.append(run(x, gg.tensor(padding)).detach().numpy().copy())
        return losses, [p.detach().numpy().copy() for p in layer.parameters()]

    eager, compiled = train(False), train(True)
    assert all(np.isfinite(loss) for loss in eager[0])
    for a, b in zip(compiled[0] + compiled[1], eager[0] + eager[1], strict=True):
        np.testing.assert_array_equal(a, b)
