import pytest
import torch

from fastbert.ops.gelu import bias_gelu, bias_gelu_reference
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 3072), (7, 50), (33, 1536), (2, 511, 96)])
def test_bias_gelu(dtype, shape):
    x = (torch.randn(shape, device=DEVICE) * 3).to(dtype)
    bias = torch.randn(shape[-1], device=DEVICE).to(dtype)
    actual = bias_gelu(x, bias)
    assert actual.dtype == dtype and actual.shape == x.shape
    assert_matches(actual, bias_gelu_reference(x.float(), bias.float()), dtype)
