"""attention_mask holds 1 for tokens and 0 for padding, and nothing else: fastbert would read 0.5 as padding, where
transformers attends wherever the mask is not 0."""

import numpy as np
import pytest
import torch

from fastbert import FastBert, InputError
from tests.conftest import DEVICE


@pytest.fixture(scope="module")
def model(bert_mlm_dir):
    return FastBert.from_pretrained(bert_mlm_dir, device="cpu")


@pytest.mark.parametrize("mask, found", [
    (torch.tensor([[1.0, 0.5, 0.0]]), "0.5"),
    (np.array([[1, 2, 0]]), "2"),
    (np.array([[1, -1, 0]], dtype=np.int32), "-1"),
    ([[1, 1, 7]], "7"),
    (np.array([[1.0, np.nan, 1.0]]), "nan"),
], ids=["float-half", "two", "minus-one", "list", "nan"])
def test_values_other_than_0_and_1_are_refused(model, mask, found):
    with pytest.raises(InputError, match=rf"attention_mask must hold only 1 \(token\) and 0 \(padding\), got {found}"):
        model(torch.tensor([[2, 5, 3]]), attention_mask=mask)


def test_a_mask_of_strings_is_refused(model):
    with pytest.raises(InputError, match="attention_mask must hold numbers"):
        model(torch.tensor([[2, 5]]), attention_mask=np.array([["1", "0"]]))


def test_every_binary_mask_type_answers_alike(model):
    ids = torch.tensor([[2, 5, 3, 7], [4, 4, 9, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    expected = model(ids, attention_mask=mask).last_hidden_state
    for same in (mask.bool(), mask.float(), mask.numpy().astype(np.uint8), mask.numpy().astype(bool), mask.tolist()):
        torch.testing.assert_close(model(ids, attention_mask=same).last_hidden_state, expected, rtol=0, atol=0)


@pytest.mark.parametrize("ids, mask, types, message", [
    ([[2, 5, 3]], [[1.0, 0.5, 0.0]], None, r"attention_mask must hold only 1 \(token\) and 0 \(padding\), got 0.5"),
    ([[2, 5, 3]], [[1, -1, 0]], None, r"attention_mask must hold only 1 \(token\) and 0 \(padding\), got -1"),
    ([[2, -5, 3]], None, None, "input_ids holds -5: negative ids are not valid"),
    ([[2, 10**6, 3]], None, None, "input_ids holds 1000000, outside the vocabulary"),
    ([[2, 5, 3]], None, [[0, 9, 0]], "token_type_ids holds 9, outside the token type table"),
], ids=["half", "minus-one", "negative-id", "id-past-vocabulary", "type-past-table"])
def test_device_inputs_are_refused_as_host_inputs_are(model, ids, mask, types, message):
    """The checks of inputs on a GPU read their values back in one transfer (one kernel; on the CPU it runs under
    the interpreter), and refuse what the host checks refuse, with the same message."""
    from fastbert.inputs import _check_device_values
    from fastbert.ops.device_inputs import input_stats

    ids = torch.tensor(ids, device=DEVICE)
    mask = torch.tensor(mask, device=DEVICE) if mask is not None else None
    types = torch.tensor(types, device=DEVICE) if types is not None else None
    with pytest.raises(InputError, match=message):
        _check_device_values(model.config, ids, mask, types, None, input_stats)
    with pytest.raises(InputError, match=message):
        model(ids.cpu(), attention_mask=None if mask is None else mask.cpu(),
              token_type_ids=None if types is None else types.cpu())
    select = torch.zeros_like(ids, dtype=torch.bool)
    select[0, 1:] = True
    if message.startswith("attention_mask"):  # the count of selected positions comes back with the checks
        ok = torch.tensor([[1, 1, 0]], device=DEVICE)
        assert _check_device_values(model.config, ids, ok, types, select, input_stats) == 2
