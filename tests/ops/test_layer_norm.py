import pytest
import torch

from fastbert.ops.layer_norm import layer_norm, layer_norm_reference
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, hidden", [(1, 96), (7, 384), (33, 768), (127, 1024), (512, 96), (5, 36)])
@pytest.mark.parametrize("fused", ["plain", "residual", "residual+bias"])
def test_layer_norm(dtype, rows, hidden, fused):
    x = torch.randn(rows, hidden, device=DEVICE).to(dtype) * 3 + 1
    weight = torch.randn(hidden, device=DEVICE).to(dtype)
    bias = torch.randn(hidden, device=DEVICE).to(dtype)
    extra = {}
    if fused != "plain":
        extra["residual"] = torch.randn(rows, hidden, device=DEVICE).to(dtype)
    if fused == "residual+bias":
        extra["x_bias"] = torch.randn(hidden, device=DEVICE).to(dtype)
    expected = layer_norm_reference(x.float(), weight.float(), bias.float(), 1e-12,
                                    **{k: v.float() for k, v in extra.items()})
    actual = layer_norm(x, weight, bias, 1e-12, **extra)
    assert actual.dtype == dtype and actual.shape == x.shape
    assert_matches(actual, expected, dtype)


def test_layer_norm_keeps_leading_dims():
    x = torch.randn(2, 5, 96, device=DEVICE)
    w, b = torch.randn(96, device=DEVICE), torch.randn(96, device=DEVICE)
    assert_matches(layer_norm(x, w, b, 1e-5), layer_norm_reference(x, w, b, 1e-5), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("parts", [1, 3, 12])
def test_layer_norm_of_partial_sums(dtype, parts):
    x = torch.randn(parts, 2, 5, 96, device=DEVICE)  # fp32 partial sums of x
    w, b = torch.randn(96, device=DEVICE).to(dtype), torch.randn(96, device=DEVICE).to(dtype)
    residual, x_bias = torch.randn(2, 5, 96, device=DEVICE).to(dtype), torch.randn(96, device=DEVICE).to(dtype)
    actual = layer_norm(x, w, b, 1e-12, residual=residual, x_bias=x_bias, parts=True, out_dtype=dtype)
    expected = layer_norm_reference(x, w.float(), b.float(), 1e-12, residual=residual.float(), x_bias=x_bias.float(),
                                    parts=True)
    assert actual.dtype == dtype and actual.shape == residual.shape
    assert_matches(actual, expected, dtype)
