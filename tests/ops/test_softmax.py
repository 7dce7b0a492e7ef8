import pytest
import torch

from fastbert.ops.softmax import softmax, softmax_reference
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, cols", [(1, 1), (7, 33), (3, 511), (2, 512), (4, 28996), (1, 5000)])
@pytest.mark.parametrize("masked", [False, True])
def test_softmax(dtype, rows, cols, masked):
    x = (torch.randn(rows, cols, device=DEVICE) * 4).to(dtype)
    mask = torch.rand(rows, cols, device=DEVICE) < 0.7 if masked else None
    if masked:
        mask[0] = False  # a fully masked row gives zeros
    actual = softmax(x, mask, out_dtype=torch.float32)
    expected = softmax_reference(x.float(), mask)
    assert_matches(actual, expected, torch.float32, ulps=64)
    if masked:
        assert (actual[0] == 0).all() and (actual[~mask] == 0).all()
    else:
        torch.testing.assert_close(actual.sum(-1), torch.ones(rows, device=DEVICE))


def test_softmax_keeps_input_dtype():
    x = torch.randn(3, 40, device=DEVICE).half()
    assert softmax(x).dtype == torch.float16
