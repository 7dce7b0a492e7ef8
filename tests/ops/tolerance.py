"""Test tolerances derived from each dtype's machine epsilon, and the dtypes each device tests."""

import torch

from tests.conftest import HAS_CUDA

DEVICE = "cuda" if HAS_CUDA else "cpu"
# bf16 has no interpreter support; on the GPU every dtype a user can pick is tested
DTYPES = [torch.float16, torch.bfloat16, torch.float32] if HAS_CUDA else [torch.float32, torch.float16]


def tolerance(dtype: torch.dtype, ulps: float = 4.0) -> dict:
    """A few units of rounding in the output dtype; fp32 gets room for reduction-order differences."""
    eps = torch.finfo(dtype).eps
    tol = max(ulps * eps, 2e-5) if dtype == torch.float32 else ulps * eps
    return dict(atol=tol, rtol=tol)


def assert_matches(actual, expected, dtype, ulps=4.0):
    torch.testing.assert_close(actual.float(), expected.float(), **tolerance(dtype, ulps))
    assert not torch.isnan(actual).any()
