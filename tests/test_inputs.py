"""attention_mask holds 1 for tokens and 0 for padding, and nothing else: fastbert would read 0.5 as padding, where
transformers attends wherever the mask is not 0."""

import numpy as np
import pytest
import torch

from fastbert import FastBert, InputError


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
