"""The attention sublayer after the QKV projection: LayerNorm(attention(qkv) @ W^T + b + residual).

Past ``projected_attention_tokens`` tokens (``fastbert.tuning``) it runs as the attention kernel, then the output
projection on cuBLAS with the fused bias + residual + LayerNorm kernel (``linear``). Below, a call is bound by its
chain of dependent kernels rather than by work, and the projection moves into the attention kernel: program (query
tile, sequence x head, chunk of output columns) computes its head's context and multiplies it by the head's slice
of W for its chunk; each head's partial product is stored in fp32 and the LayerNorm kernel adds them up in a fixed
order. The projection's GEMM launch is gone, and its weights are read by many programs at once. Each chunk's
program repeats its head's attention, which is why this pays at few tokens only (benchmarks/NOTES.md, "Few-token
layers").
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..errors import InputError
from ..tuning import settings
from .attention import QUERY_TILE, attention, attention_reference, check_padded, context_rows, softmax_scale_log2
from .common import block_size, check_device, check_shape, dot_precision
from .dependent_launch import launch_options, wait_for_producer
from .layer_norm import layer_norm
from .linear import linear, linear_reference


@triton.jit
def _projected_attention_kernel(
    qkv_ptr, key_mask_ptr, weight_ptr, parts_ptr,
    seq_len, num_heads, head_dim, hidden, scale_log2,
    stride_qkv_b, stride_qkv_s, stride_mask_b, stride_weight, stride_part, stride_parts_b, stride_parts_s,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, CHUNK: tl.constexpr,
    PRECISION: tl.constexpr, DEPENDENT: tl.constexpr,
):
    batch = (tl.program_id(1) // num_heads).to(tl.int64)
    head = tl.program_id(1) % num_heads
    offs_c = tl.program_id(2) * CHUNK + tl.arange(0, CHUNK)
    offs_d = tl.arange(0, BLOCK_D)
    # the weight slice, [CHUNK, head_dim]: loaded first, as it does not wait on the QKV projection's output
    weight = tl.load(weight_ptr + offs_c[:, None] * stride_weight + head * head_dim + offs_d[None, :],
                     mask=(offs_c[:, None] < hidden) & (offs_d[None, :] < head_dim), other=0.0)
    wait_for_producer(DEPENDENT)
    first_row = tl.program_id(0) * BLOCK_M
    context = context_rows(qkv_ptr + batch * stride_qkv_b + head * head_dim, key_mask_ptr + batch * stride_mask_b,
                           first_row, seq_len, head_dim, hidden, scale_log2, stride_qkv_s,
                           HAS_MASK=True, KEY_SPAN=False, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_D=BLOCK_D,
                           PRECISION=PRECISION)
    part = tl.dot(context.to(weight.dtype), tl.trans(weight), input_precision=PRECISION)
    offs_m = first_row + tl.arange(0, BLOCK_M)
    tl.store(parts_ptr + head * stride_part + batch * stride_parts_b + offs_m[:, None] * stride_parts_s
             + offs_c[None, :], part, mask=(offs_m[:, None] < seq_len) & (offs_c[None, :] < hidden))


def projected_attention(qkv, key_mask, num_heads, weight):
    """[B, S, 3H] fused projections, a [B, S] key mask and the [H, H] output-projection weight -> [heads, B, S, H]
    fp32 partial products, one per head, whose sum is attention(qkv) @ weight^T."""
    batch, seq_len, hidden, head_dim = check_padded("projected_attention", qkv, key_mask, num_heads)
    check_device(qkv, weight)
    check_shape("weight", weight, (hidden, hidden))
    if weight.stride(-1) != 1:
        raise InputError("projected_attention needs weight contiguous in its last dimension")
    parts = torch.empty(num_heads, batch, seq_len, hidden, dtype=torch.float32, device=qkv.device)
    # short sequences: more, smaller chunks keep more SMs reading weights; longer ones repeat less attention
    chunk = min(128 if seq_len <= 16 else 256, block_size(hidden))
    grid = (triton.cdiv(seq_len, QUERY_TILE), batch * num_heads, triton.cdiv(hidden, chunk))
    _projected_attention_kernel[grid](
        qkv, key_mask, weight, parts, seq_len, num_heads, head_dim, hidden, softmax_scale_log2(head_dim),
        qkv.stride(0), qkv.stride(1), key_mask.stride(0), weight.stride(0), parts.stride(0), parts.stride(1),
        parts.stride(2),
        BLOCK_M=QUERY_TILE, BLOCK_N=16 if seq_len <= 16 else 32, BLOCK_D=block_size(head_dim), CHUNK=chunk,
        PRECISION=dot_precision(qkv.dtype), num_warps=4, num_stages=2, **launch_options(qkv.device, batch * seq_len))
    return parts


def projected_attention_reference(qkv, key_mask, num_heads, weight):
    batch, seq_len, three_hidden = qkv.shape
    hidden = three_hidden // 3
    context = attention_reference(qkv.float(), key_mask, num_heads).view(batch, seq_len, num_heads, -1)
    head_weights = weight.float().view(hidden, num_heads, -1)
    return torch.einsum("bshd,nhd->hbsn", context, head_weights)


def attention_output(qkv, key_mask, num_heads, weight, bias, residual, norm):
    """LayerNorm(attention(qkv, key_mask) @ weight^T + bias + residual), ``norm`` = (weight, bias, eps)."""
    if qkv.shape[0] * qkv.shape[1] > settings(qkv.device).projected_attention_tokens:
        return linear(attention(qkv, key_mask, num_heads), weight, bias, residual=residual, norm=norm)
    parts = projected_attention(qkv, key_mask, num_heads, weight)
    return layer_norm(parts, *norm, residual=residual, x_bias=bias, parts=True, out_dtype=qkv.dtype)


def attention_output_reference(qkv, key_mask, num_heads, weight, bias, residual, norm):
    return linear_reference(attention_reference(qkv, key_mask, num_heads), weight, bias, residual=residual, norm=norm)
