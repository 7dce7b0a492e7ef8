"""Staging a padded call's inputs into a bucket's buffer: what lands where, and nothing left from the call before."""

import numpy as np
import pytest
import torch

from fastbert.ops import device_inputs
from fastbert.staging import PADDED, buffer_size, stage_padded, views
from tests.conftest import DEVICE

PAD = 0


def staged(buffer, key, ids, mask, types, rows):
    host = views(buffer, key)
    stage_padded(host, ids, mask, types, rows, PAD)
    return host


@pytest.mark.parametrize("shape, bucket", [((2, 8), (2, 8)), ((2, 5), (4, 8)), ((1, 7), (1, 8))])
def test_a_call_lands_in_its_bucket(shape, bucket):
    rng = np.random.default_rng(sum(shape + bucket))
    batch, seq_len = shape
    key = (PADDED, *bucket, 4)
    buffer = np.full(buffer_size(key), -1, dtype=np.int32)  # as if an earlier call had left values everywhere
    ids = rng.integers(1, 100, size=shape)
    mask = (rng.random(shape) < 0.8).astype(np.int64)
    types = rng.integers(0, 2, size=shape)
    rows = np.unique(np.r_[rng.choice(batch * seq_len, 2, replace=False), batch * seq_len - 1])  # the last row's too
    host = staged(buffer, key, ids, mask, types, rows)

    expected_ids = np.full(bucket, PAD)
    expected_ids[:batch, :seq_len] = ids
    expected_mask = np.zeros(bucket)
    expected_mask[:batch, :seq_len] = mask
    expected_types = np.zeros(bucket)
    expected_types[:batch, :seq_len] = types
    np.testing.assert_array_equal(host["ids"], expected_ids)
    np.testing.assert_array_equal(host["mask"], expected_mask)
    np.testing.assert_array_equal(host["types"], expected_types)
    # each selected [B, S] position names the same token in the bucket's [batch_b, seq_b] layout
    np.testing.assert_array_equal(host["ids"].reshape(-1)[host["rows"][: len(rows)]], ids.reshape(-1)[rows])
    assert (host["rows"][len(rows):] == 0).all()


def test_missing_mask_and_types_mean_every_token_and_type_zero():
    key = (PADDED, 2, 8, 1)
    buffer = np.full(buffer_size(key), 7, dtype=np.int32)
    ids = np.arange(1, 13).reshape(2, 6)
    host = staged(buffer, key, ids, None, None, np.array([11]))
    assert host["mask"][:, :6].all() and not host["mask"][:, 6:].any()
    assert not host["types"].any()
    assert host["ids"].reshape(-1)[host["rows"][0]] == 12


def test_device_tensors_are_staged_as_numpy_arrays_are():
    """The graph runner stages device inputs with a kernel (``fastbert.ops.device_inputs``, under the interpreter
    on the CPU) into the same buffer layout as numpy inputs, rows from the ``logits_at`` mask included."""
    rng = np.random.default_rng(0)
    key = (PADDED, 4, 16, 4)
    ids, mask, types = rng.integers(1, 100, size=(3, 11)), rng.integers(0, 2, size=(3, 11)), rng.integers(0, 2, (3, 11))
    at = np.zeros((3, 11), dtype=bool)
    at.reshape(-1)[[0, 12, 32]] = True
    host = staged(np.full(buffer_size(key), -1, dtype=np.int32), key, ids, mask, types, np.flatnonzero(at))
    device = views(torch.full((buffer_size(key),), -1, dtype=torch.int32, device=DEVICE), key)
    device_inputs.stage_padded(device, *(torch.from_numpy(a).to(DEVICE) for a in (ids, mask, types, at)), PAD)
    for name in host:
        np.testing.assert_array_equal(device[name].cpu().numpy(), host[name])
