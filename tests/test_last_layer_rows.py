"""With ``logits_at``, outputs at the selected rows only, and the last layer run there alone on large enough calls."""

import pytest
import torch

from fastbert import InputError
from fastbert import model as model_module
from tests.checkpoints import TINY_BERT, save_hf_checkpoint
from tests.test_model import random_batch
from tests.test_packing import ATOL, load, run


@pytest.fixture(scope="module")
def pretraining_dir(tmp_path_factory):
    """An MLM head and a pooler: the last layer must also run at each sequence's first token."""
    return save_hf_checkpoint(tmp_path_factory.mktemp("bert_pretraining"), "BertForPreTraining", TINY_BERT)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("checkpoint", ["bert_mlm_dir", "pretraining_dir"])
@pytest.mark.parametrize("prune_from", [1, 10**9])
def test_selected_rows_get_the_outputs_of_the_whole_model(request, monkeypatch, retune, backend, packed, checkpoint,
                                                          prune_from):
    model = load(request.getfixturevalue(checkpoint), backend)
    model.packed = packed
    ids, mask, types = random_batch(TINY_BERT, [9, 1, 14, 6], pad_id=0, with_types=True)
    at = (torch.rand(ids.shape) < 0.2) & mask.bool()
    at[1, 0] = at[2, 13] = at[3, 0] = True
    full = run(model, ids, attention_mask=mask, token_type_ids=types)

    last_layer_at_rows = []
    at_rows = model_module.EncoderLayer.at_rows
    monkeypatch.setattr(model_module.EncoderLayer, "at_rows",
                        lambda *args: last_layer_at_rows.append(1) or at_rows(*args))
    retune(prune_from_tokens=prune_from)
    selected = run(model, ids, attention_mask=mask, token_type_ids=types, logits_at=at)

    assert bool(last_layer_at_rows) == (prune_from == 1)
    assert selected.last_hidden_state.shape == (int(at.sum()), TINY_BERT["hidden_size"])
    torch.testing.assert_close(selected.last_hidden_state, full.last_hidden_state[at], atol=ATOL, rtol=0)
    torch.testing.assert_close(selected.logits, full.logits[at], atol=ATOL, rtol=0)
    if model.pooler is not None:
        torch.testing.assert_close(selected.pooler_output, full.pooler_output, atol=ATOL, rtol=0)


def test_logits_at_needs_an_mlm_head(bert_base_dir):
    model = load(bert_base_dir)
    ids, mask, _ = random_batch(TINY_BERT, [3], pad_id=0, with_types=False)
    with pytest.raises(InputError, match="logits_at selects where the MLM head runs"):
        model(ids, attention_mask=mask, logits_at=torch.ones(ids.shape, dtype=torch.bool))
