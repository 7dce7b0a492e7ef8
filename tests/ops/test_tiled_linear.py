import pytest
import torch

from fastbert import FastBert
from fastbert.errors import InputError
from fastbert.ops import linear as module
from fastbert.ops.linear import linear, linear_reference
from fastbert.ops.tiled_linear import Tiles, tiled_linear, tiled_split_k_linear
from tests.checkpoints import hf_model
from tests.conftest import DEVICE, HAS_CUDA, TUNED
from tests.ops.test_linear import EPILOGUES, make_args, upcast
from tests.ops.tolerance import DTYPES, assert_matches
from tests.test_model import assert_close_on_valid, random_batch
from tests.test_model_triton import REALISTIC_BERT, TRITON_VS_TORCH_ATOL

# (rows, K, N): batch 1 at 65-512 tokens through BERT-base's four projections, and sizes no tile divides
SHAPES = [(rows, k, n) for rows in (65, 130, 511, 512) for k, n in ((768, 2304), (768, 768), (768, 3072), (3072, 768))
          ] + [(1, 36, 99), (97, 100, 130)] if HAS_CUDA else [(1, 36, 99), (97, 100, 130), (130, 64, 64)]
# every tile shape the GPU may pick, and one smaller than a row's K block
TILES = [None, Tiles(128, 64, 64, 4, 3), Tiles(64, 128, 64, 4, 4), Tiles(128, 128, 64, 8, 3)] if HAS_CUDA else \
    [None, Tiles(32, 32, 16, 4, 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, k, n", SHAPES)
@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("tile", TILES)
def test_tiled_linear_matches_the_reference(dtype, rows, k, n, gelu, tile):
    """fp32 accumulation rounded once to the dtype: a few units of rounding (K up to 3072 adds reduction-order
    differences, within 8 ulps); the GELU is the exact form on both sides."""
    x, weight, bias, _ = make_args(rows, k, n, dtype, "plain")
    actual = tiled_linear(x, weight, bias, gelu=gelu, tile=tile)
    assert actual.dtype == dtype and actual.shape == (rows, n)
    assert_matches(actual, linear_reference(x.float(), weight.float(), bias.float(), gelu=gelu), dtype, ulps=8)
    assert_matches(tiled_linear(x, weight, gelu=gelu, tile=tile),
                   linear_reference(x.float(), weight.float(), gelu=gelu), dtype, ulps=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, k, n", [(65, 3072, 768), (512, 3072, 768), (130, 100, 70)] if HAS_CUDA else
                         [(1, 100, 70), (65, 300, 33)])
@pytest.mark.parametrize("splits", [1, 2, 3, 5])
@pytest.mark.parametrize("tile", TILES)
def test_tiled_split_k_partials_sum_to_the_product(dtype, rows, k, n, splits, tile):
    """Slices of K that do not divide it and more slices asked for than K has blocks (fewer are made): the fp32
    partials add up to the product within the dtype's rounding of the inputs' sums."""
    x, weight, _, _ = make_args(rows, k, n, dtype, "plain")
    parts = tiled_split_k_linear(x, weight, splits, tile=tile)
    assert parts.dtype == torch.float32 and parts.shape[1:] == (rows, n) and 1 <= len(parts) <= splits
    assert_matches(parts.sum(0), linear_reference(x.float(), weight.float()).float(), dtype, ulps=8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_deep_tiled_gemm_into_a_layer_norm_splits_k(monkeypatch, retune, dtype):
    """Between few_rows and tiled_rows, from two tiled_k_slice inputs, a GEMM followed by the LayerNorm sums the
    tiled kernel's partials in the LayerNorm kernel; a shallower one, or one with GELU, does not split."""
    retune(few_rows=4, tiled_rows=40, split_k_rows=0, tiled_k_slice=32)
    calls = []
    monkeypatch.setattr(module, "tiled_split_k_linear",
                        lambda x, w, splits: calls.append((len(x), splits)) or tiled_split_k_linear(x, w, splits))
    for k, epilogue in ((100, "residual+norm"), (63, "residual+norm"), (100, "gelu+norm"), (100, "residual")):
        x, weight, bias, kwargs = make_args(33, k, 70, dtype, epilogue)
        expected = linear_reference(x.float(), weight.float(), bias.float(), **upcast(kwargs))
        assert_matches(linear(x, weight, bias, **kwargs), expected, dtype, ulps=8)
    assert calls == [(33, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_linear_takes_the_tiled_kernel_between_its_bounds(monkeypatch, retune, dtype, epilogue):
    """Past few_rows and up to tiled_rows every epilogue runs on the tiled GEMM; the rest stay on their paths."""
    retune(few_rows=4, tiled_rows=40, split_k_rows=0)
    calls = []
    monkeypatch.setattr(module, "tiled_linear", lambda x, *a, **kw: calls.append(len(x)) or tiled_linear(x, *a, **kw))
    for rows in (4, 5, 40, 41):
        x, weight, bias, kwargs = make_args(rows, 100, 70, dtype, epilogue)
        expected = linear_reference(x.float(), weight.float(), bias.float(), **upcast(kwargs))
        assert_matches(linear(x, weight, bias, **kwargs), expected, dtype, ulps=8)
    assert calls == [5, 40]


@pytest.mark.parametrize("lengths", [[70], [40, 30]])
@pytest.mark.parametrize("k_slice", [TUNED.tiled_k_slice, 32])
def test_the_model_with_tiled_gemms_gives_the_default_answer(tmp_path, monkeypatch, retune, lengths, k_slice):
    """With every GEMM past few_rows on the tiled kernel, the hidden states and logits are the default paths'
    within the Triton-against-torch tolerance (fp32); 70 tokens pass few_rows, 2 x 40 padded too. Slices of 32
    inputs split FFN-down's 96 into three partials that its LayerNorm adds up."""
    config = dict(REALISTIC_BERT, hidden_size=48, num_attention_heads=4, intermediate_size=96, num_hidden_layers=1,
                  vocab_size=99)
    hf_model("BertForMaskedLM", config).save_pretrained(tmp_path)
    ids, mask, types = random_batch(config, lengths, pad_id=0, with_types=True)

    def outputs():
        model = FastBert.from_pretrained(tmp_path, device=DEVICE, dtype=torch.float32, backend="triton")
        out = model(ids, attention_mask=mask, token_type_ids=types)
        return out.last_hidden_state, out.logits

    default = outputs()
    retune(tiled_rows=4096, dependent_launch_tokens=4096, tiled_k_slice=k_slice)
    calls = []
    monkeypatch.setattr(module, "tiled_linear", lambda x, *a, **kw: calls.append(len(x)) or tiled_linear(x, *a, **kw))
    tiled = outputs()
    assert calls and all(rows > TUNED.few_rows for rows in calls)
    for ours, theirs in zip(tiled, default):
        assert_close_on_valid(ours.cpu(), theirs.cpu(), mask, TRITON_VS_TORCH_ATOL)


def test_the_tiled_gemm_refuses_inputs_strided_in_k():
    x, weight, bias, _ = make_args(70, 2 * 40, 33, torch.float32, "plain")
    with pytest.raises(InputError, match="contiguous in their last dimension"):
        tiled_linear(x[:, ::2], weight[:, :40].contiguous(), bias)
    with pytest.raises(InputError, match="contiguous in their last dimension"):
        tiled_split_k_linear(x[:, :40].contiguous(), weight[:, ::2], 2)
