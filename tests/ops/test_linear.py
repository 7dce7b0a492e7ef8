import pytest
import torch

import fastbert.ops.linear as linear_op
from fastbert.ops.linear import cublas_linear, fused_linear, linear, linear_reference
from tests.conftest import HAS_CUDA
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches

# (K, N): BERT-base's four projections and odd sizes; the interpreter gets the smaller ones
SHAPES = [(768, 2304), (768, 768), (768, 3072), (3072, 768), (36, 99), (384, 1536)] if HAS_CUDA else \
    [(768, 96), (36, 99), (300, 50), (96, 400)]
EPILOGUES = {
    "plain": lambda n: {},
    "gelu": lambda n: dict(gelu=True),
    "residual+norm": lambda n: dict(residual=True, norm=True),
    "gelu+norm": lambda n: dict(gelu=True, norm=True),
}


def make_args(m, k, n, dtype, epilogue):
    x = torch.randn(m, k, device=DEVICE).to(dtype)
    weight = (torch.randn(n, k, device=DEVICE) / k ** 0.5).to(dtype)
    bias = torch.randn(n, device=DEVICE).to(dtype)
    flags = EPILOGUES[epilogue](n)
    kwargs = {}
    if flags.get("gelu"):
        kwargs["gelu"] = True
    if flags.get("residual"):
        kwargs["residual"] = torch.randn(m, n, device=DEVICE).to(dtype)
    if flags.get("norm"):
        kwargs["norm"] = (torch.randn(n, device=DEVICE).to(dtype), torch.randn(n, device=DEVICE).to(dtype), 1e-12)
    return x, weight, bias, kwargs


def upcast(kwargs):
    out = dict(kwargs)
    if "residual" in out:
        out["residual"] = out["residual"].float()
    if "norm" in out:
        w, b, eps = out["norm"]
        out["norm"] = (w.float(), b.float(), eps)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 7, 33, 128])
@pytest.mark.parametrize("k, n", SHAPES)
@pytest.mark.parametrize("epilogue", list(EPILOGUES))
def test_fused_linear(dtype, m, k, n, epilogue):
    x, weight, bias, kwargs = make_args(m, k, n, dtype, epilogue)
    expected = linear_reference(x.float(), weight.float(), bias.float(), **upcast(kwargs))
    actual = fused_linear(x, weight, bias, **kwargs)
    assert actual.dtype == dtype and actual.shape == (m, n)
    assert_matches(actual, expected, dtype, ulps=8)
    assert torch.equal(actual, fused_linear(x, weight, bias, **kwargs)), "the split-K sum must be deterministic"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [129, 511] if HAS_CUDA else [129])
@pytest.mark.parametrize("epilogue", list(EPILOGUES))
def test_cublas_path(dtype, m, epilogue):
    k, n = SHAPES[0]
    x, weight, bias, kwargs = make_args(m, k, n, dtype, epilogue)
    expected = linear_reference(x.float(), weight.float(), bias.float(), **upcast(kwargs))
    assert_matches(cublas_linear(x, weight, bias, **kwargs), expected, dtype, ulps=8)


@pytest.mark.parametrize("rows", [linear_op.FUSED_MAX_ROWS, linear_op.FUSED_MAX_ROWS + 1])
def test_linear_dispatch_keeps_leading_dims(rows):
    x, weight, bias, kwargs = make_args(rows, 96, 40, torch.float32, "residual+norm")
    kwargs["residual"] = kwargs["residual"].view(1, rows, 40)
    y = linear(x.view(1, rows, 96), weight, bias, **kwargs)
    assert y.shape == (1, rows, 40)
    assert_matches(y, linear_reference(x, weight, bias, **kwargs).view(1, rows, 40), torch.float32, ulps=8)
