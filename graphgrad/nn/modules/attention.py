"""Attention: MultiheadAttention, with torch's parameters (in_proj_weight, in_proj_bias,
out_proj) and torch's masks."""

from __future__ import annotations

import math

import numpy as np

from ... import creation
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .linear import Linear
from .module import Module

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """torch's name for the output projection of MultiheadAttention (a plain Linear)."""


class MultiheadAttention(Module):
    """Multi-head attention, ``softmax(Q K^T / sqrt(d) + mask) V`` per head, as torch.

    ``add_bias_kv`` and ``add_zero_attn`` are refused (NotImplementedError).

    >>> import graphgrad as gg
    >>> mha = gg.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> out, weights = mha(gg.zeros(3, 5, 8), gg.zeros(3, 7, 8), gg.zeros(3, 7, 8))
    >>> out.shape, weights.shape
    (graphgrad.Size([3, 5, 8]), graphgrad.Size([3, 5, 7]))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError(
                "MultiheadAttention: add_bias_kv=True and add_zero_attn=True are not supported "
                "by graphgrad"
            )
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        kind = {"device": device, "dtype": dtype}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(creation.empty(3 * embed_dim, embed_dim, **kind))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(creation.empty(embed_dim, embed_dim, **kind))
            self.k_proj_weight = Parameter(creation.empty(embed_dim, self.kdim, **kind))
            self.v_proj_weight = Parameter(creation.empty(embed_dim, self.vdim, **kind))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(creation.empty(3 * embed_dim, **kind))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kind)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """torch's: xavier_uniform_ projections, zero biases (out_proj.weight as Linear)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def _projections(self, query, key, value):
        e = self.embed_dim
        b = self.in_proj_bias
        biases = [None] * 3 if b is None else [b[:e], b[e : 2 * e], b[2 * e :]]
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one matmul, as torch
                return _project(query, w, b).chunk(3, -1)
            weights = [w[:e], w[e : 2 * e], w[2 * e :]]
        else:
            weights = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        return [_project(x, w, bb) for x, w, bb in zip((query, key, value), weights, biases)]

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. ")
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise AssertionError(
                f"query should be unbatched 2D or batched 3D tensor but received "
                f"{query.ndim}-D query tensor (key {key.ndim}-D, value {value.ndim}-D)"
            )
        if not batched:
            query, key, value = (x.unsqueeze(1) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:  # torch keeps the identity of self-attention's one input
            same_qk, same_kv = query is key, key is value
            query = query.transpose(0, 1)
            key = query if same_qk else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        if query.shape[-1] != self.embed_dim:
            raise AssertionError(
                f"was expecting embedding dimension of {self.embed_dim}, but got "
                f"{query.shape[-1]}"
            )
        length, batch, _ = query.shape
        source = key.shape[0]
        q, k, v = self._projections(query, key, value)
        heads, d = self.num_heads, self.head_dim
        # (L, N, E) -> (N, H, L, d), torch's layout per head
        q, k, v = (x.reshape(x.shape[0], batch, heads, d).permute(1, 2, 0, 3) for x in (q, k, v))
        mask = self._merged_mask(attn_mask, key_padding_mask, batch, length, source, q.dtype)
        dropout_p = self.dropout if self.training else 0.0
        scores = (q * math.sqrt(1.0 / d)).matmul(k.transpose(-2, -1))
        if mask is not None:
            scores = scores + mask
        # torch: plain softmax when it returns the weights (a fully masked row is NaN), its
        # scaled_dot_product_attention (that row is zeros) when it does not
        weights = F._attention_weights(scores, dropout_p, safe=not need_weights)
        out = weights.matmul(v).permute(2, 0, 1, 3).reshape(length, batch, self.embed_dim)
        out = self.out_proj(out)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, (weights if batched else weights.squeeze(0))

    def _merged_mask(self, attn_mask, key_padding_mask, batch, length, source, dtype):
        """attn_mask (L, S) or (N * H, L, S) and key_padding_mask (N, S, True = ignore) as one
        additive mask broadcasting against (N, H, L, S)."""
        mask = None
        if attn_mask is not None:
            expected = [(length, source), (batch * self.num_heads, length, source)]
            if tuple(attn_mask.shape) not in expected:
                raise RuntimeError(
                    f"The shape of the {attn_mask.ndim}D attn_mask is {tuple(attn_mask.shape)}, "
                    f"but should be {expected[0] if attn_mask.ndim == 2 else expected[1]}."
                )
            mask = F._additive_mask(_keep(attn_mask), dtype)
            if mask.ndim == 3:
                mask = mask.reshape(batch, self.num_heads, length, source)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (batch, source):
                raise AssertionError(
                    f"expecting key_padding_mask shape of {(batch, source)}, but got "
                    f"{tuple(key_padding_mask.shape)}"
                )
            padding = F._additive_mask(_keep(key_padding_mask), dtype)
            padding = padding.reshape(batch, 1, 1, source)
            mask = padding if mask is None else mask + padding
        return mask


def _keep(mask: Tensor) -> Tensor:
    """MultiheadAttention's bool masks say True where a position may NOT be attended (the
    opposite of scaled_dot_product_attention's); float masks are added either way."""
    return ~mask if mask._data.dtype == np.bool_ else mask


def _project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return F.linear(x, weight, bias) if bias is not None else x.matmul(weight.t())
