import itertools

import pytest
import torch

from fastbert.ops.attention import attention, attention_packed, attention_packed_reference, attention_reference
from tests.conftest import HAS_CUDA
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches

# the interpreter is slow: long sequences run with few heads there
HEADS_AT_LENGTH = dict.fromkeys([1, 7, 33, 127, 511, 512], 12) if HAS_CUDA else \
    {1: 4, 7: 3, 33: 3, 127: 2, 511: 1, 512: 1}


def padded_mask(batch, seq):
    """Row 0 full, row 1 with a random number of valid keys, row 2 (if any) entirely padding."""
    mask = torch.ones(batch, seq, dtype=torch.int32, device=DEVICE)
    if batch > 1:
        mask[1, torch.randint(1, seq + 1, ()).item():] = 0
    if batch > 2:
        mask[2] = 0
    return mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", [1, 7, 33, 127, 511, 512])
@pytest.mark.parametrize("head_dim", [64, 12])
def test_attention_lengths(dtype, seq, head_dim):
    heads = HEADS_AT_LENGTH[seq]
    batch = 3 if seq < 500 else 2
    qkv = torch.randn(batch, seq, 3 * heads * head_dim, device=DEVICE).to(dtype)
    mask = padded_mask(batch, seq)
    actual = attention(qkv, mask, heads)
    expected = attention_reference(qkv.float(), mask, heads)
    assert_matches(actual, expected, dtype, ulps=8)
    if batch > 2:
        assert (actual[2] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [8, 32, 80, 96, 128])
def test_attention_head_dims(dtype, head_dim):
    qkv = torch.randn(3, 19, 3 * 2 * head_dim, device=DEVICE).to(dtype)
    mask = padded_mask(3, 19)
    assert_matches(attention(qkv, mask, 2), attention_reference(qkv.float(), mask, 2), dtype, ulps=8)


def test_attention_reads_strided_qkv_without_copies():
    """A [B, S, 3H] view into a larger buffer (as a GEMM output slice would be) is read in place."""
    base = torch.randn(2, 9, 3 * 48 + 8, device=DEVICE)
    qkv = base[..., : 3 * 48]
    mask = torch.ones(2, 9, dtype=torch.bool, device=DEVICE)
    assert_matches(attention(qkv, mask, 4), attention_reference(qkv, mask, 4), torch.float32, ulps=8)


def cu_seqlens_of(lengths):
    return torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32, device=DEVICE)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lengths", [[1], [7, 0, 33], [65, 1, 64, 0], [512, 511, 3] if HAS_CUDA else [130, 2]])
@pytest.mark.parametrize("head_dim", [64, 12])
def test_packed_attention_matches_each_sequence_alone(dtype, lengths, head_dim):
    heads = 4 if HAS_CUDA else 2
    cu_seqlens = cu_seqlens_of(lengths)
    tokens = sum(lengths)
    qkv = torch.randn(tokens + 5, 3 * heads * head_dim, device=DEVICE).to(dtype)  # 5 tokens past the batch: inert
    actual = attention_packed(qkv, cu_seqlens, heads)[:tokens]
    for start, n in zip(cu_seqlens[:-1].tolist(), lengths):
        alone = qkv[start:start + n].float()[None]
        expected = attention_reference(alone, torch.ones(1, n, dtype=torch.int32, device=DEVICE), heads)[0]
        assert_matches(actual[start:start + n], expected, dtype, ulps=8)
    assert_matches(attention_packed_reference(qkv.float(), cu_seqlens, heads)[:tokens], actual, dtype, ulps=8)


def test_packed_attention_sequences_past_the_batch_do_nothing():
    """A graph's batch bucket holds empty sequences after the real ones: they change nothing."""
    qkv = torch.randn(29, 3 * 2 * 16, device=DEVICE)
    padded = cu_seqlens_of([20, 9, 0, 0, 0])
    assert torch.equal(attention_packed(qkv, padded, 2), attention_packed(qkv, cu_seqlens_of([20, 9]), 2))
