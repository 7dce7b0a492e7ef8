"""Packed (padding-free) batches: host-side packing, and the packed forward pass against the padded one."""

import numpy as np
import pytest
import torch

from fastbert import FastBert, InputError
from fastbert.ops.embeddings import position_ids_reference
from fastbert.packing import PackedBatch, pays_to_pack, token_bucket
from tests.checkpoints import TINY_BERT, TINY_ROBERTA
from tests.conftest import DEVICE, TUNED
from tests.test_model import random_batch

ATOL = 2e-4  # fp32: the two paths differ only in the order of reductions


def load(path, backend="torch"):
    """fp32 on the test device (on a GPU: the Triton kernels, graphs on, for either backend)."""
    return FastBert.from_pretrained(path, device=DEVICE, dtype=torch.float32, backend=backend)


def run(model, *args, **kwargs):
    """The model's outputs, moved to the CPU."""
    out = model(*args, **kwargs)
    for field in ("last_hidden_state", "logits", "pooler_output", "cu_seqlens"):
        value = getattr(out, field)
        setattr(out, field, value.cpu() if value is not None else None)
    return out


def left_padded(ids, mask, pad_id):
    """The same rows with their padding moved to the front."""
    ids, mask = ids.clone(), mask.clone()
    for row in range(len(ids)):
        n = int(mask[row].sum())
        ids[row] = torch.roll(ids[row], ids.shape[1] - n)
        mask[row] = torch.roll(mask[row], ids.shape[1] - n)
    ids[mask == 0] = pad_id
    return ids, mask


@pytest.mark.parametrize("padding_idx", [None, 1])
def test_packed_batch_keeps_valid_tokens_with_their_padded_positions(padding_idx):
    ids, mask, types = random_batch(TINY_ROBERTA, [5, 1, 9, 0], pad_id=1, with_types=True)
    ids, mask = left_padded(ids, mask, pad_id=1)
    at = torch.zeros_like(mask, dtype=torch.bool)
    at[0, -2], at[2, -9] = True, True
    batch = PackedBatch.from_padded(ids.numpy(), mask.numpy(), types.numpy(), at.numpy(), padding_idx)
    valid = mask.bool()
    assert batch.tokens == 15 and batch.cu_seqlens.tolist() == [0, 5, 6, 15, 15]
    assert np.array_equal(batch.input_ids, ids[valid].numpy())
    assert np.array_equal(batch.token_type_ids, types[valid].numpy())
    assert np.array_equal(batch.position_ids, position_ids_reference(ids, padding_idx)[valid].numpy())
    assert np.array_equal(batch.kept[batch.logits_rows], np.flatnonzero(at.numpy()))
    assert batch.first_tokens().tolist() == [0, 5, 6, 0]


def test_token_buckets_waste_at_most_an_eighth():
    buckets = [token_bucket(n) for n in range(1, 40000)]
    assert all(b >= n and (b - n) <= max(15, b / 8) for n, b in enumerate(buckets, start=1))
    assert len(set(buckets)) < 120  # few distinct graphs over the whole range


def test_auto_mode_packs_large_batches_that_are_largely_padding():
    def mask(batch, seq_len, fill):
        m = np.zeros((batch, seq_len), dtype=np.int32)
        m.reshape(-1)[: round(fill * m.size)] = 1
        return m
    fill = TUNED.pack_when_filled_below
    assert pays_to_pack(mask(32, 128, 0.5), TUNED) and pays_to_pack(mask(4, 512, fill - 0.01), TUNED)
    assert not pays_to_pack(mask(32, 128, fill + 0.01), TUNED)
    assert not pays_to_pack(mask(4, 128, 0.2), TUNED)  # too small: packing costs more host time than the padding
    assert pays_to_pack(mask(1, TUNED.pack_from_positions, 0.1), TUNED)  # one long row, mostly padding


@pytest.fixture(params=["torch", "triton"])
def backend(request):
    return request.param


@pytest.mark.parametrize("lengths", [[1, 7], [33, 1, 5, 20], [3, 0, 9]])
@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_packed_equals_padded(bert_mlm_dir, roberta_mlm_dir, backend, arch, lengths):
    path, config, pad_id = (bert_mlm_dir, TINY_BERT, 0) if arch == "bert" else (roberta_mlm_dir, TINY_ROBERTA, 1)
    model = load(path, backend)
    ids, mask, types = random_batch(config, lengths, pad_id=pad_id, with_types=arch == "bert")
    model.packed = False
    padded = run(model, ids, attention_mask=mask, token_type_ids=types)
    model.packed = True
    packed = run(model, ids, attention_mask=mask, token_type_ids=types)
    valid = mask.bool()
    torch.testing.assert_close(packed.last_hidden_state[valid], padded.last_hidden_state[valid], atol=ATOL, rtol=0)
    torch.testing.assert_close(packed.logits[valid], padded.logits[valid], atol=ATOL, rtol=0)
    assert (packed.last_hidden_state[~valid] == 0).all() and (packed.logits[~valid] == 0).all()


def test_left_padding_and_logits_at(bert_mlm_dir, backend):
    model = load(bert_mlm_dir, backend)
    ids, mask, _ = random_batch(TINY_BERT, [6, 17, 2], pad_id=0, with_types=False)
    ids, mask = left_padded(ids, mask, pad_id=0)
    at = torch.zeros_like(mask, dtype=torch.bool)
    at[0, -1], at[1, 3], at[2, -2] = True, True, True
    model.packed = False
    padded = run(model, ids, attention_mask=mask, logits_at=at)
    model.packed = True
    packed = run(model, ids, attention_mask=mask, logits_at=at)
    assert packed.logits.shape == (3, TINY_BERT["vocab_size"])
    torch.testing.assert_close(packed.logits, padded.logits, atol=ATOL, rtol=0)


def test_return_packed_gives_token_rows_and_offsets(bert_mlm_dir):
    model = load(bert_mlm_dir)
    ids, mask, _ = random_batch(TINY_BERT, [4, 9, 1], pad_id=0, with_types=False)
    out = run(model, ids, attention_mask=mask, return_packed=True)
    padded = run(model, ids, attention_mask=mask)
    assert out.cu_seqlens.tolist() == [0, 4, 13, 14]
    assert out.last_hidden_state.shape == (14, TINY_BERT["hidden_size"])
    assert out.logits.shape == (14, TINY_BERT["vocab_size"])
    torch.testing.assert_close(out.last_hidden_state, padded.last_hidden_state[mask.bool()], atol=ATOL, rtol=0)


def test_pooler_reads_each_rows_first_token_and_empty_rows_give_zeros(bert_base_dir, backend):
    model = load(bert_base_dir, backend)
    ids, mask, types = random_batch(TINY_BERT, [12, 0, 30], pad_id=0, with_types=True)
    model.packed = False
    padded = run(model, ids, attention_mask=mask, token_type_ids=types)
    model.packed = True
    packed = run(model, ids, attention_mask=mask, token_type_ids=types)
    assert packed.logits is None
    torch.testing.assert_close(packed.pooler_output[[0, 2]], padded.pooler_output[[0, 2]], atol=ATOL, rtol=0)
    assert (packed.pooler_output[1] == 0).all()


def test_forced_packing_refuses_batches_it_would_answer_differently(bert_mlm_dir, bert_base_dir):
    ids, mask, _ = random_batch(TINY_BERT, [5, 3], pad_id=0, with_types=False)
    at = torch.zeros_like(mask, dtype=torch.bool)
    at[1, 4] = True  # padding
    model = load(bert_mlm_dir)
    model.packed = True
    with pytest.raises(InputError, match="logits_at selects positions where attention_mask is 0"):
        model(ids, attention_mask=mask, logits_at=at)
    model.packed = None  # auto mode runs it padded instead
    assert run(model, ids, attention_mask=mask, logits_at=at).logits.shape == (1, TINY_BERT["vocab_size"])
    pooled = load(bert_base_dir)
    _, left_mask = left_padded(ids, mask, pad_id=0)
    with pytest.raises(InputError, match="a head reads each row's first position"):
        pooled(ids, attention_mask=left_mask, return_packed=True)


def test_auto_mode_chooses_by_padding(bert_mlm_dir, retune):
    retune(pack_from_positions=64)  # the tiny model's batches are small
    model = load(bert_mlm_dir)
    assert model.packed is None
    ids, mask, _ = random_batch(TINY_BERT, [2, 40, 3], pad_id=0, with_types=False)
    out = run(model, ids, attention_mask=mask)
    assert (out.last_hidden_state[~mask.bool()] == 0).all()  # packed: padding positions are zeros
    ids, mask, _ = random_batch(TINY_BERT, [40, 39], pad_id=0, with_types=False)
    out = run(model, ids, attention_mask=mask)
    assert (out.last_hidden_state[0, 39] != 0).any()  # padded, as transformers computes it
