import itertools

import pytest
import torch

import fastbert.ops.attention as attention_module
from fastbert.errors import InputError
from fastbert.ops.attention import (attention, attention_packed, attention_packed_reference, attention_packed_rows,
                                    attention_reference, attention_rows)
from tests.conftest import HAS_CUDA
from tests.ops.tolerance import DEVICE, DTYPES, assert_matches

# the interpreter is slow: long sequences run with few heads there
HEADS_AT_LENGTH = dict.fromkeys([1, 7, 33, 127, 511, 512], 12) if HAS_CUDA else \
    {1: 4, 7: 3, 33: 3, 127: 2, 511: 1, 512: 1}


def padded_mask(batch, seq):
    """Row 0 full, row 1 with a random number of valid keys, row 2 (if any) entirely padding."""
    mask = torch.ones(batch, seq, dtype=torch.int32, device=DEVICE)
    if batch > 1:
        mask[1, torch.randint(1, seq + 1, ()).item():] = 0
    if batch > 2:
        mask[2] = 0
    return mask


def masks_of_every_pattern(seq, block):
    """[5, seq] key masks that are not a run of ones then zeros, or pad inside a block of ``block`` keys."""
    masks = torch.ones(5, seq, dtype=torch.int32, device=DEVICE)
    masks[0, : seq // 3] = 0                                                  # left padding
    masks[1] = torch.randint(0, 2, (seq,), device=DEVICE)                     # holes everywhere
    masks[2, :-1] = 0                                                         # only the last key
    masks[3, block + 2: block + 7] = 0                                        # one hole inside the second block
    masks[4, seq - block // 2:] = 0                                           # right padding inside a block
    return masks


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", [1, 7, 33, 127, 511, 512])
@pytest.mark.parametrize("head_dim", [64, 12])
def test_attention_lengths(dtype, seq, head_dim):
    heads = HEADS_AT_LENGTH[seq]
    batch = 3 if seq < 500 else 2
    qkv = torch.randn(batch, seq, 3 * heads * head_dim, device=DEVICE).to(dtype)
    mask = padded_mask(batch, seq)
    actual = attention(qkv, mask, heads)
    expected = attention_reference(qkv.float(), mask, heads)
    assert_matches(actual, expected, dtype, ulps=8)
    if batch > 2:
        assert (actual[2] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_dim", [8, 32, 80, 96, 128])
def test_attention_head_dims(dtype, head_dim):
    qkv = torch.randn(3, 19, 3 * 2 * head_dim, device=DEVICE).to(dtype)
    mask = padded_mask(3, 19)
    assert_matches(attention(qkv, mask, 2), attention_reference(qkv.float(), mask, 2), dtype, ulps=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", [70, 300])
@pytest.mark.parametrize("key_span", [True, False])
@pytest.mark.parametrize("block_m, block_n", [(32, 32), (128, 64)] if HAS_CUDA else [(32, 32)])
def test_attention_masks_of_any_pattern(dtype, seq, key_span, block_m, block_n):
    """Whole blocks of valid keys run untested and keys past the last valid one are skipped; masks that are not
    a run of ones then zeros (left padding, holes, one valid key at the end) must still be honoured exactly."""
    masks = masks_of_every_pattern(seq, block_n)
    qkv = torch.randn(5, seq, 3 * 2 * 64, device=DEVICE).to(dtype)
    tile = dict(BLOCK_M=block_m, BLOCK_N=block_n, KEY_SPAN=key_span)
    assert_matches(attention(qkv, masks, 2, tile=tile), attention_reference(qkv.float(), masks, 2), dtype, ulps=8)


def test_attention_reads_strided_qkv_without_copies():
    """A [B, S, 3H] view into a larger buffer (as a GEMM output slice would be) is read in place."""
    base = torch.randn(2, 9, 3 * 48 + 8, device=DEVICE)
    qkv = base[..., : 3 * 48]
    mask = torch.ones(2, 9, dtype=torch.bool, device=DEVICE)
    assert_matches(attention(qkv, mask, 4), attention_reference(qkv, mask, 4), torch.float32, ulps=8)


def cu_seqlens_of(lengths):
    return torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32, device=DEVICE)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lengths", [[1], [7, 0, 33], [65, 1, 64, 0], [512, 511, 3] if HAS_CUDA else [130, 2]])
@pytest.mark.parametrize("head_dim", [64, 12])
def test_packed_attention_matches_each_sequence_alone(dtype, lengths, head_dim):
    heads = 4 if HAS_CUDA else 2
    cu_seqlens = cu_seqlens_of(lengths)
    tokens = sum(lengths)
    qkv = torch.randn(tokens + 5, 3 * heads * head_dim, device=DEVICE).to(dtype)  # 5 tokens past the batch: inert
    actual = attention_packed(qkv, cu_seqlens, heads)[:tokens]
    for start, n in zip(cu_seqlens[:-1].tolist(), lengths):
        alone = qkv[start:start + n].float()[None]
        expected = attention_reference(alone, torch.ones(1, n, dtype=torch.int32, device=DEVICE), heads)[0]
        assert_matches(actual[start:start + n], expected, dtype, ulps=8)
    assert_matches(attention_packed_reference(qkv.float(), cu_seqlens, heads)[:tokens], actual, dtype, ulps=8)


def test_packed_attention_sequences_past_the_batch_do_nothing():
    """A graph's batch bucket holds empty sequences after the real ones: they change nothing."""
    qkv = torch.randn(29, 3 * 2 * 16, device=DEVICE)
    padded = cu_seqlens_of([20, 9, 0, 0, 0])
    assert torch.equal(attention_packed(qkv, padded, 2), attention_packed(qkv, cu_seqlens_of([20, 9]), 2))


def some_rows(tokens, count):
    """``count`` random token rows, the first and last among them, in no particular order and with a repeat."""
    rows = torch.cat([torch.tensor([tokens - 1, 0]), torch.randint(0, tokens, (count,))])
    return rows[torch.randperm(len(rows))].to(DEVICE)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seq", [1, 7, 33, 512] if HAS_CUDA else [1, 7, 33, 130])
@pytest.mark.parametrize("head_dim", [64, 12])
def test_attention_rows_are_rows_of_attention(dtype, seq, head_dim):
    """Fully padded sequences included (zeros), and left padding, whose rows have their valid keys after."""
    heads = 4 if HAS_CUDA else 2
    qkv = torch.randn(4, seq, 3 * heads * head_dim, device=DEVICE).to(dtype)
    mask = torch.cat([padded_mask(3, seq), masks_of_every_pattern(seq, 32)[:1]])
    rows = some_rows(4 * seq, 6)
    expected = attention_reference(qkv.float(), mask, heads).reshape(4 * seq, -1)[rows]
    assert_matches(attention_rows(qkv, mask, rows, heads), expected, dtype, ulps=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lengths", [[1], [7, 0, 33], [65, 1, 64, 0, 0], [512, 511, 3] if HAS_CUDA else [130, 2]])
def test_packed_attention_rows_are_rows_of_packed_attention(dtype, lengths):
    """Empty sequences (between others, and a graph bucket's after the real ones) hold no row and shift none."""
    heads = 4 if HAS_CUDA else 2
    cu_seqlens = cu_seqlens_of(lengths)
    qkv = torch.randn(sum(lengths), 3 * heads * 64, device=DEVICE).to(dtype)
    starts = cu_seqlens[:-1][torch.tensor(lengths, device=DEVICE) > 0]  # a sequence's first row ends the one before
    rows = torch.cat([some_rows(sum(lengths), 6), starts.long()])
    expected = attention_packed_reference(qkv.float(), cu_seqlens, heads)[rows]
    assert_matches(attention_packed_rows(qkv, cu_seqlens, rows.int(), heads), expected, dtype, ulps=8)


def test_attention_rows_refuse_rows_that_are_no_index():
    qkv = torch.randn(2, 5, 3 * 32, device=DEVICE)
    mask = torch.ones(2, 5, dtype=torch.int32, device=DEVICE)
    for rows in (torch.zeros(2, 1, dtype=torch.long, device=DEVICE), torch.zeros(3, device=DEVICE)):
        with pytest.raises(InputError, match="rows must be a 1-D int32 or int64 tensor"):
            attention_rows(qkv, mask, rows, 2)
    with pytest.raises(InputError, match=r"attention_packed_rows needs \[T, 3H\] qkv"):
        attention_packed_rows(qkv, cu_seqlens_of([5, 5]), torch.zeros(1, dtype=torch.long, device=DEVICE), 2)


@pytest.mark.gpu
@pytest.mark.parametrize("packed", [False, True])
def test_tuning_leaves_the_callers_queued_work_alone(monkeypatch, packed):
    """Tuning times configs on a stream of its own. A tensor freed while the caller's stream still has to read it
    hands its memory to the attention output; the timed runs must not write there before that read."""
    qkv = torch.randn(2, 100, 3 * 4 * 64, device=DEVICE, dtype=torch.float16)
    mask = torch.ones(2, 100, dtype=torch.int32, device=DEVICE)
    cu_seqlens = cu_seqlens_of([100, 100])
    run = (lambda: attention_packed(qkv.view(200, -1), cu_seqlens, 4)) if packed else (lambda: attention(qkv, mask, 4))
    expected = run()  # compiles every config, so that the retuning below starts at once
    tuned = attention_module._tuned_packed_attention_kernel if packed else attention_module._tuned_attention_kernel
    monkeypatch.setattr(tuned, "cache", {})
    freed = torch.randn_like(expected)
    original, address = freed.clone(), freed.data_ptr()
    torch.cuda._sleep(500_000_000)  # a few hundred ms of queued work before the read
    read = freed * 1
    del freed
    actual = run()
    assert actual.data_ptr() == address, "the allocator did not hand the freed memory to the output: nothing tested"
    assert torch.equal(read, original)
    assert_matches(actual, expected, torch.float16)
