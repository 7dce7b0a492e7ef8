import pytest
import torch

from fastbert.errors import InputError
from fastbert.ops import attention_output as module
from fastbert.ops.attention_output import (
    attention_output, attention_output_reference, projected_attention, projected_attention_reference,
)
from tests.conftest import TUNED
from tests.ops.test_attention import masks_of_every_pattern, padded_mask
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches


def sublayer_args(batch, seq, heads, head_dim, dtype):
    hidden = heads * head_dim
    qkv = torch.randn(batch, seq, 3 * hidden, device=DEVICE).to(dtype)
    weight = (torch.randn(hidden, hidden, device=DEVICE) / hidden ** 0.5).to(dtype)
    bias = torch.randn(hidden, device=DEVICE).to(dtype)
    residual = torch.randn(batch, seq, hidden, device=DEVICE).to(dtype)
    norm = (torch.randn(hidden, device=DEVICE).to(dtype), torch.randn(hidden, device=DEVICE).to(dtype), 1e-12)
    return qkv, weight, bias, residual, norm


def upcast(*tensors):
    return [t.float() for t in tensors]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, seq", [(1, 1), (1, 7), (3, 19), (2, 33)])
@pytest.mark.parametrize("head_dim", [64, 12])
def test_projected_attention_sums_to_the_projected_context(dtype, batch, seq, head_dim):
    heads = 3
    qkv, weight, *_ = sublayer_args(batch, seq, heads, head_dim, dtype)
    mask = padded_mask(batch, seq)
    parts = projected_attention(qkv, mask, heads, weight)
    assert parts.shape == (heads, batch, seq, heads * head_dim) and parts.dtype == torch.float32
    assert_matches(parts, projected_attention_reference(*upcast(qkv), mask, heads, weight.float()), dtype, ulps=8)
    if batch > 2:
        assert (parts[:, 2] == 0).all()  # a row with no valid key has a zero context


@pytest.mark.parametrize("dtype", DTYPES)
def test_projected_attention_honours_any_mask(dtype):
    qkv, weight, *_ = sublayer_args(5, 40, 2, 32, dtype)
    mask = masks_of_every_pattern(40, 32)  # 32 keys per block at this length
    expected = projected_attention_reference(*upcast(qkv), mask, 2, weight.float())
    assert_matches(projected_attention(qkv, mask, 2, weight), expected, dtype, ulps=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, seq", [(1, 8), (2, 33)])
@pytest.mark.parametrize("fused", [True, False])
def test_attention_output_on_both_paths(retune, dtype, batch, seq, fused):
    retune(projected_attention_tokens=10 ** 9 if fused else 0)
    qkv, weight, bias, residual, norm = sublayer_args(batch, seq, 4, 16, dtype)
    mask = padded_mask(batch, seq)
    actual = attention_output(qkv, mask, 4, weight, bias, residual, norm)
    qkv32, weight32, bias32, residual32 = upcast(qkv, weight, bias, residual)
    expected = attention_output_reference(qkv32, mask, 4, weight32, bias32, residual32,
                                          (norm[0].float(), norm[1].float(), norm[2]))
    assert actual.dtype == dtype and actual.shape == residual.shape
    assert_matches(actual, expected, dtype, ulps=8)


def test_attention_output_projects_inside_attention_up_to_few_tokens(monkeypatch):
    calls = []
    monkeypatch.setattr(module, "projected_attention", lambda *args: calls.append(args) or projected_attention(*args))
    few = TUNED.projected_attention_tokens
    args = sublayer_args(1, few, 2, 16, torch.float32)
    attention_output(args[0], torch.ones(1, few, dtype=torch.int32, device=DEVICE), 2, *args[1:])
    assert len(calls) == 1
    args = sublayer_args(1, few + 1, 2, 16, torch.float32)
    attention_output(args[0], torch.ones(1, few + 1, dtype=torch.int32, device=DEVICE), 2, *args[1:])
    assert len(calls) == 1


def test_projected_attention_refuses_strided_inputs():
    qkv, weight, *_ = sublayer_args(1, 5, 2, 16, torch.float32)
    mask = torch.ones(1, 5, dtype=torch.int32, device=DEVICE)
    with pytest.raises(InputError, match="contiguous"):
        projected_attention(qkv, mask, 2, weight.t())
