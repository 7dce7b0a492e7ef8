import pytest
import torch

from fastbert.errors import InputError
from fastbert.ops import linear as module
from fastbert.ops.linear import WIDE_OUTPUT, few_rows_linear, linear, linear_reference, split_k_linear
from tests.conftest import HAS_CUDA, TUNED
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches

# (K, N): BERT-base's four projections and odd sizes; the interpreter gets the smaller ones
SHAPES = [(768, 2304), (768, 768), (768, 3072), (3072, 768), (36, 99), (384, 1536)] if HAS_CUDA else \
    [(768, 96), (36, 99), (300, 50)]
EPILOGUES = ["plain", "gelu", "residual+norm", "gelu+norm", "residual"]
FEW_ROWS, SPLIT_K_ROWS, SPLIT_K_FROM = TUNED.few_rows, TUNED.split_k_rows, TUNED.split_k_from


def make_args(rows, k, n, dtype, epilogue):
    x = torch.randn(rows, k, device=DEVICE).to(dtype)
    weight = (torch.randn(n, k, device=DEVICE) / k ** 0.5).to(dtype)
    bias = torch.randn(n, device=DEVICE).to(dtype)
    kwargs = {}
    if "gelu" in epilogue:
        kwargs["gelu"] = True
    if "residual" in epilogue:
        kwargs["residual"] = torch.randn(rows, n, device=DEVICE).to(dtype)
    if "norm" in epilogue:
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
@pytest.mark.parametrize("rows", [1, 7, 33, 512])
@pytest.mark.parametrize("k, n", SHAPES)
@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_linear(dtype, rows, k, n, epilogue):
    """GEMM output rounded to the dtype, then the epilogue: a few units of rounding; GELU's tanh form
    (fp16/bf16 on the GPU) adds at most 5e-4, under one fp16 unit at these magnitudes."""
    x, weight, bias, kwargs = make_args(rows, k, n, dtype, epilogue)
    expected = linear_reference(x.float(), weight.float(), bias.float(), **upcast(kwargs))
    actual = linear(x, weight, bias, **kwargs)
    assert actual.dtype == dtype and actual.shape == (rows, n)
    assert_matches(actual, expected, dtype, ulps=8)


def test_linear_keeps_leading_dims():
    x, weight, bias, kwargs = make_args(12, 96, 40, torch.float32, "residual+norm")
    kwargs["residual"] = kwargs["residual"].view(3, 4, 40)
    y = linear(x.view(3, 4, 96), weight, bias, **kwargs)
    assert y.shape == (3, 4, 40)
    assert_matches(y, linear_reference(x.view(3, 4, 96), weight, bias, **kwargs), torch.float32, ulps=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 7, FEW_ROWS, FEW_ROWS + 1])
@pytest.mark.parametrize("k, n", [(768, 28996), (100, WIDE_OUTPUT + 37)] if HAS_CUDA else [(100, WIDE_OUTPUT + 37)])
def test_few_rows_into_a_wide_output(dtype, rows, k, n):
    """The MLM decoder at fill-mask's [MASK] rows: few_rows_linear up to FEW_ROWS rows, cuBLAS past them; a
    K that is not a multiple of the kernel's block, and an N that is not one of its column tile."""
    x, weight, bias, _ = make_args(rows, k, n, dtype, "plain")
    expected = linear_reference(x.float(), weight.float(), bias.float())
    assert_matches(linear(x, weight, bias), expected, dtype, ulps=8)
    if rows <= FEW_ROWS:
        assert_matches(few_rows_linear(x, weight, bias), expected, dtype, ulps=8)
        assert_matches(few_rows_linear(x, weight), linear_reference(x.float(), weight.float()), dtype, ulps=8)


def test_few_rows_of_a_strided_input_take_the_cublas_path():
    """A view whose features are not contiguous is not refused: it runs where any layout is taken."""
    x, weight, bias, _ = make_args(3, 2 * 40, WIDE_OUTPUT, torch.float32, "plain")
    strided, weight = x[:, ::2], weight[:, :40].contiguous()
    assert_matches(linear(strided, weight, bias), linear_reference(strided, weight, bias), torch.float32, ulps=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 7, 33, FEW_ROWS, FEW_ROWS + 1])
@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_few_rows_into_narrow_outputs(monkeypatch, dtype, rows, epilogue):
    """QKV, FFN-up, the out-projection and the MLM transform at batch 1: few_rows_linear up to FEW_ROWS rows (both
    of its tiles), with the bias and the exact GELU fused and the LayerNorm after it, cuBLAS past them; a K and an
    N that are not multiples of the kernel's tiles."""
    calls = []
    monkeypatch.setattr(module, "few_rows_linear", lambda *args, **kwargs: calls.append(args) or few_rows_linear(
        *args, **kwargs))
    x, weight, bias, kwargs = make_args(rows, 300, 70, dtype, epilogue)
    expected = linear_reference(x.float(), weight.float(), bias.float(), **upcast(kwargs))
    assert_matches(linear(x, weight, bias, **kwargs), expected, dtype, ulps=8)
    assert len(calls) == (rows <= FEW_ROWS)
    if rows <= FEW_ROWS:
        gelu = kwargs.get("gelu", False)
        without_bias = linear_reference(x.float(), weight.float(), gelu=gelu)
        assert_matches(few_rows_linear(x, weight, gelu=gelu), without_bias, dtype, ulps=8)


@pytest.mark.parametrize("n", [WIDE_OUTPUT, 64])
def test_few_rows_linear_refuses_more_rows(n):
    x, weight, bias, _ = make_args(FEW_ROWS + 1, 32, n, torch.float32, "plain")
    with pytest.raises(InputError, match="at most"):
        few_rows_linear(x, weight, bias)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 7, 33, SPLIT_K_ROWS])
@pytest.mark.parametrize("k, n, splits", [(3072, 768, 8), (300, 50, 3), (129, 70, 4), (64, 33, 8)])
def test_split_k_partials_sum_to_the_product(dtype, rows, k, n, splits):
    """Slices of K that do not divide it, and more slices asked for than K has blocks (fewer are made)."""
    x, weight, _, _ = make_args(rows, k, n, dtype, "plain")
    parts = split_k_linear(x, weight, splits)
    assert parts.dtype == torch.float32 and parts.shape[1:] == (rows, n) and len(parts) <= splits
    assert_matches(parts.sum(0), linear_reference(x.float(), weight.float()).float(), dtype, ulps=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, SPLIT_K_ROWS, SPLIT_K_ROWS + 1])
def test_few_rows_into_a_layer_norm_take_split_k(monkeypatch, dtype, rows):
    """Up to SPLIT_K_ROWS rows from SPLIT_K_FROM inputs, a GEMM followed by the LayerNorm sums split-K partials in
    the LayerNorm kernel; the answer is the same either way."""
    calls = []
    monkeypatch.setattr(module, "split_k_linear", lambda *a: calls.append(a) or split_k_linear(*a))
    x, weight, bias, kwargs = make_args(rows, SPLIT_K_FROM, 96, dtype, "residual+norm")
    actual = linear(x, weight, bias, **kwargs)
    assert actual.dtype == dtype
    assert_matches(actual, linear_reference(x.float(), weight.float(), bias.float(), **upcast(kwargs)), dtype, ulps=8)
    assert len(calls) == (rows <= SPLIT_K_ROWS)


def test_split_k_linear_refuses_more_rows():
    x, weight, _, _ = make_args(SPLIT_K_ROWS + 1, 32, 64, torch.float32, "plain")
    with pytest.raises(InputError, match="at most"):
        split_k_linear(x, weight)
