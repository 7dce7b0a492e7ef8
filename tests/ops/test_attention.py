import pytest
import torch

from fastbert.ops.attention import attention, attention_reference
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
