"""Token pooling per sequence: the packed kernel against its reference, and both against sentence-transformers'
``Pooling`` on the same tokens padded."""

import pytest
import torch

from fastbert.ops.pooling import MODES, pool_packed, pool_packed_reference, pool_padded
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches

LENGTHS = [[1], [7, 0, 33], [5, 1, 17, 2]]


def packed_and_padded(lengths, hidden, dtype):
    """Random packed tokens of sequences ``lengths`` (with 3 stray tokens past the last, which must be ignored),
    and the same tokens right-padded with their mask."""
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=DEVICE)
    x = (torch.randn(int(cu_seqlens[-1]) + 3, hidden, device=DEVICE) * 2).to(dtype)
    padded = torch.zeros(len(lengths), max(lengths), hidden, device=DEVICE, dtype=dtype)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.int32, device=DEVICE)
    for row, (start, n) in enumerate(zip(cu_seqlens.tolist(), lengths)):
        padded[row, :n] = x[start:start + n]
        mask[row, :n] = 1
    return x, cu_seqlens, padded, mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("hidden", [36, 384, 300])
@pytest.mark.parametrize("mode", MODES)
def test_packed_pooling_kernel(dtype, lengths, hidden, mode):
    x, cu_seqlens, _, _ = packed_and_padded(lengths, hidden, dtype)
    actual = pool_packed(x, cu_seqlens, mode)
    assert actual.dtype == torch.float32 and actual.shape == (len(lengths), hidden)
    # fp32 accumulation of the input's values on both sides: only the order of the sums differs
    assert_matches(actual, pool_packed_reference(x.float(), cu_seqlens, mode), torch.float32, ulps=16)


@pytest.mark.parametrize("lengths", LENGTHS)
@pytest.mark.parametrize("mode", MODES)
def test_pooling_answers_as_sentence_transformers(lengths, mode):
    pooling = pytest.importorskip("sentence_transformers.sentence_transformer.modules.pooling")
    x, cu_seqlens, padded, mask = packed_and_padded(lengths, 36, torch.float32)
    features = {"token_embeddings": padded.cpu(), "attention_mask": mask.cpu()}
    expected = pooling.Pooling(36, pooling_mode=mode)(features)["sentence_embedding"]
    valid = torch.tensor(lengths) > 0  # sentence-transformers' empty rows are not sentences
    for actual in (pool_padded(padded, mask, mode), pool_packed_reference(x, cu_seqlens, mode)):
        torch.testing.assert_close(actual.cpu()[valid], expected[valid], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_padded_pooling_counts_positions_from_the_first_real_token(mode):
    pytest.importorskip("sentence_transformers", minversion="6.2")  # earlier, weights counted from position 0
    pooling = pytest.importorskip("sentence_transformers.sentence_transformer.modules.pooling")
    _, _, padded, mask = packed_and_padded([4, 9, 6], 36, torch.float32)
    padded, mask = padded.flip(1).cpu(), mask.flip(1).cpu()  # left-padded, each row's tokens reversed
    expected = pooling.Pooling(36, pooling_mode=mode)({"token_embeddings": padded, "attention_mask": mask})
    torch.testing.assert_close(pool_padded(padded, mask, mode), expected["sentence_embedding"], atol=1e-5, rtol=1e-5)
