"""Embeddings: word + position + token-type gather, sum and LayerNorm in one pass.

Position ids follow Hugging Face: BERT counts 0..S-1; the RoBERTa family numbers the non-padding
tokens of each row from ``padding_idx + 1`` and gives padding tokens ``padding_idx`` itself. A packed
batch (``fastbert.packing``) passes its position ids instead, since its rows are not the model's rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from .common import check_device, check_shape, row_warps
from .dependent_launch import launch_options, wait_for_producer
from .layer_norm import normalize_row


@triton.jit
def _embeddings_kernel(
    ids_ptr, types_ptr, positions_ptr, word_ptr, position_ptr, type_ptr, weight_ptr, bias_ptr, out_ptr,
    seq_len, hidden, eps, padding_idx,
    HAS_TYPES: tl.constexpr, HAS_POSITIONS: tl.constexpr, ROBERTA_POSITIONS: tl.constexpr,
    BLOCK_S: tl.constexpr, BLOCK_H: tl.constexpr, DEPENDENT: tl.constexpr,
):
    token = tl.program_id(0).to(tl.int64)
    wait_for_producer(DEPENDENT)
    t = token % seq_len
    token_id = tl.load(ids_ptr + token)
    if HAS_POSITIONS:
        position = tl.load(positions_ptr + token).to(tl.int64)
    elif ROBERTA_POSITIONS:
        # position = padding_idx + (non-padding tokens up to and including this one)
        row_start = token - t
        offs = tl.arange(0, BLOCK_S)
        prefix = tl.load(ids_ptr + row_start + offs, mask=offs <= t, other=padding_idx)
        count = tl.sum((prefix != padding_idx).to(tl.int32), axis=0)
        position = tl.where(token_id != padding_idx, count + padding_idx, padding_idx).to(tl.int64)
    else:
        position = t
    cols = tl.arange(0, BLOCK_H)
    valid = cols < hidden
    x = tl.load(word_ptr + token_id * hidden + cols, mask=valid, other=0.0).to(tl.float32)
    x += tl.load(position_ptr + position * hidden + cols, mask=valid, other=0.0).to(tl.float32)
    if HAS_TYPES:
        type_id = tl.load(types_ptr + token)
        x += tl.load(type_ptr + type_id * hidden + cols, mask=valid, other=0.0).to(tl.float32)
    else:
        x += tl.load(type_ptr + cols, mask=valid, other=0.0).to(tl.float32)
    y = normalize_row(x, cols, valid, hidden, eps, weight_ptr, bias_ptr)
    tl.store(out_ptr + token * hidden + cols, y.to(out_ptr.dtype.element_ty), mask=valid)


def embeddings(input_ids, token_type_ids, word, position, token_type, weight, bias, eps, padding_idx=None,
               position_ids=None):
    """[B, S] ids -> [B, S, H] normalized embeddings. ``padding_idx`` set selects RoBERTa positions;
    ``position_ids`` [B, S], when given, overrides both rules."""
    batch, seq_len = input_ids.shape
    hidden = word.shape[1]
    check_device(input_ids, word, position, token_type, weight, bias)
    if token_type_ids is not None:
        check_shape("token_type_ids", token_type_ids, (batch, seq_len))
    if position_ids is not None:
        check_shape("position_ids", position_ids, (batch, seq_len))
    ids = input_ids.contiguous()
    types = token_type_ids.contiguous() if token_type_ids is not None else ids
    positions = position_ids.contiguous() if position_ids is not None else ids
    out = torch.empty(batch, seq_len, hidden, dtype=word.dtype, device=word.device)
    block_h = triton.next_power_of_2(hidden)
    _embeddings_kernel[(batch * seq_len,)](
        ids, types, positions, word, position, token_type, weight, bias, out,
        seq_len, hidden, eps, padding_idx if padding_idx is not None else -1,
        HAS_TYPES=token_type_ids is not None, HAS_POSITIONS=position_ids is not None,
        ROBERTA_POSITIONS=padding_idx is not None,
        BLOCK_S=triton.next_power_of_2(seq_len), BLOCK_H=block_h, num_warps=row_warps(block_h),
        **launch_options(word.device, batch * seq_len),
    )
    return out


def position_ids_reference(input_ids, padding_idx=None):
    if padding_idx is None:
        return torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    not_pad = (input_ids != padding_idx).long()
    return torch.cumsum(not_pad, dim=1) * not_pad + padding_idx


def embeddings_reference(input_ids, token_type_ids, word, position, token_type, weight, bias, eps, padding_idx=None,
                         position_ids=None):
    types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
    if position_ids is None:
        position_ids = position_ids_reference(input_ids, padding_idx)
    x = word[input_ids].float() + position[position_ids].float()
    x = x + token_type[types].float()
    return F.layer_norm(x, (word.shape[1],), weight.float(), bias.float(), eps).to(word.dtype)
