"""The device-input check and staging kernels against their torch references: odd shapes, strided inputs, every
optional input absent or present, and bad values the checks must report."""

import pytest
import torch

from fastbert.ops.device_inputs import input_stats, input_stats_reference, stage_padded, stage_padded_reference
from tests.conftest import DEVICE

SHAPES = [(1, 1), (1, 7), (3, 33), (2, 511)]


def inputs(batch, seq, *, vocab=1000, mask_dtype=torch.int64):
    ids = torch.randint(0, vocab, (batch, seq), device=DEVICE)
    mask = (torch.rand(batch, seq, device=DEVICE) > 0.3).to(mask_dtype)
    types = torch.randint(0, 2, (batch, seq), device=DEVICE)
    at = torch.rand(batch, seq, device=DEVICE) > 0.8
    return ids, mask, types, at


@pytest.mark.parametrize("batch,seq", SHAPES)
@pytest.mark.parametrize("mask_dtype", [torch.int64, torch.int32, torch.bool, torch.float32])
def test_stats_match_the_reference(batch, seq, mask_dtype):
    ids, mask, types, at = inputs(batch, seq, mask_dtype=mask_dtype)
    assert input_stats(ids, mask, types, at) == input_stats_reference(ids, mask, types, at)
    assert input_stats(ids) == input_stats_reference(ids)


def test_stats_report_bad_values():
    ids, mask, types, at = inputs(2, 9)
    ids[1, 3], types[0, 2] = -4, 7
    mask = mask.float()
    mask[1, 5] = 0.5
    stats = input_stats(ids, mask, types, at)
    assert (stats.min_id, stats.min_type, stats.max_type, stats.bad_mask_value) == (-4, 0, 7, 0.5)
    mask[0, 0] = -2.0  # with several offending values, one of them
    assert input_stats(ids, mask, types, at).bad_mask_value in (0.5, -2.0)
    assert input_stats(ids, mask, types, at) == input_stats_reference(ids, mask, types, at)


def test_strided_inputs():
    ids, mask, types, at = (t.t() for t in inputs(9, 4))  # [4, 9] views with swapped strides
    assert input_stats(ids, mask, types, at) == input_stats_reference(ids, mask, types, at)


@pytest.mark.parametrize("batch,seq,batch_b,seq_b", [(1, 1, 1, 8), (1, 7, 1, 8), (3, 33, 4, 64), (2, 64, 2, 64),
                                                     (3, 700, 4, 768)])
@pytest.mark.parametrize("with_mask,with_types,with_rows", [(True, True, True), (False, False, False),
                                                            (True, False, True)])
def test_staging_matches_the_reference(batch, seq, batch_b, seq_b, with_mask, with_types, with_rows):
    """The rows: each selected [B, S] position's flat index in the bucket's [batch_b, seq_b] layout, in row-major
    order, then zeros; 700 x 3 positions take the kernel's rows loop over more than one block."""
    ids, mask, types, at = inputs(batch, seq, mask_dtype=torch.bool)
    mask, types, at = (mask if with_mask else None), (types if with_types else None), (at if with_rows else None)
    selected = int(at.sum()) if at is not None else 0

    def buffers():
        return {name: torch.full((batch_b, seq_b), -1, dtype=torch.int32, device=DEVICE)
                for name in ("ids", "mask", "types")} | {"rows": torch.full((selected + 3,), -1, dtype=torch.int32,
                                                                             device=DEVICE)}
    ours, expected = buffers(), buffers()
    stage_padded(ours, ids, mask, types, at, pad_id=3)
    stage_padded_reference(expected, ids, mask, types, pad_id=3)
    for name in ("ids", "mask", "types"):
        torch.testing.assert_close(ours[name], expected[name], rtol=0, atol=0)
    if at is None:
        return
    positions = at.flatten().nonzero().squeeze(1)
    want = positions // seq * seq_b + positions % seq
    assert ours["rows"][:selected].tolist() == want.tolist()
    assert (ours["rows"][selected:] == 0).all()
