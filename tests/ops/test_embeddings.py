import pytest
import torch

from fastbert.ops.embeddings import embeddings, embeddings_reference
from tests.conftest import HAS_CUDA
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches


def tables(vocab, positions, types, hidden, dtype):
    make = lambda *s: torch.randn(*s, device=DEVICE).to(dtype)  # noqa: E731
    return make(vocab, hidden), make(positions, hidden), make(types, hidden), make(hidden), make(hidden)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch, seq, hidden", [(1, 1, 96), (2, 7, 384), (3, 33, 768), (1, 127, 1024), (1, 512, 96)])
@pytest.mark.parametrize("with_types", [False, True])
def test_bert_embeddings(dtype, batch, seq, hidden, with_types):
    word, position, token_type, w, b = tables(100, 512, 2, hidden, dtype)
    ids = torch.randint(0, 100, (batch, seq), device=DEVICE)
    types = torch.randint(0, 2, (batch, seq), device=DEVICE) if with_types else None
    actual = embeddings(ids, types, word, position, token_type, w, b, 1e-12)
    expected = embeddings_reference(ids, types, *(t.float() for t in (word, position, token_type, w, b)), 1e-12)
    assert_matches(actual, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", [1, 7, 33, 511 if HAS_CUDA else 130])  # the interpreter is slow
def test_roberta_positions_skip_padding(dtype, seq):
    pad = 1
    word, position, token_type, w, b = tables(50, seq + pad + 1, 1, 96, dtype)
    ids = torch.randint(2, 50, (3, seq), device=DEVICE)
    ids[1, seq // 2:] = pad                                   # right padding
    ids[2, : seq // 3] = pad                                  # left padding
    actual = embeddings(ids, None, word, position, token_type, w, b, 1e-5, padding_idx=pad)
    expected = embeddings_reference(ids, None, *(t.float() for t in (word, position, token_type, w, b)), 1e-5,
                                    padding_idx=pad)
    assert_matches(actual, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_given_positions_override_both_rules(dtype, padding_idx):
    """A packed batch is one long row whose positions restart with each sequence."""
    word, position, token_type, w, b = tables(50, 40, 2, 96, dtype)
    ids = torch.randint(2, 50, (1, 45), device=DEVICE)
    positions = torch.cat([torch.arange(n, device=DEVICE) for n in (1, 7, 33, 4)]).to(torch.int32)[None]
    types = torch.randint(0, 2, (1, 45), device=DEVICE)
    actual = embeddings(ids, types, word, position, token_type, w, b, 1e-12, padding_idx, position_ids=positions)
    expected = embeddings_reference(ids, types, *(t.float() for t in (word, position, token_type, w, b)), 1e-12,
                                    padding_idx, position_ids=positions)
    assert_matches(actual, expected, dtype)
    alone = embeddings_reference(ids[:, 8:41], types[:, 8:41], *(t.float() for t in (word, position, token_type, w, b)),
                                 1e-12)  # the third sequence, as BERT numbers it by itself
    assert_matches(actual[:, 8:41], alone, dtype)
