"""Dependent launch: when kernels launch as dependents, the weight prefetch's alignment rule, and that the model's
answer does not depend on either."""

import pytest
import torch

from fastbert import FastBert
from fastbert.ops import dependent_launch as module
from fastbert.ops.dependent_launch import all_triton, launch_options, prefetchable
from tests.checkpoints import hf_model
from tests.conftest import TUNED
from tests.test_model import random_batch
from tests.test_model_triton import REALISTIC_BERT


def test_prefetch_needs_chunks_on_16_byte_boundaries():
    weight = torch.zeros(64, 768, dtype=torch.float16)
    assert prefetchable(weight, 768) and prefetchable(weight, 512)
    assert not prefetchable(weight[:, 1:], 512)                        # rows start 2 bytes past a boundary
    assert not prefetchable(weight, 4)                                 # 8-byte chunks
    assert not prefetchable(torch.zeros(4, 36, dtype=torch.float16), 32)  # 72-byte rows


def test_no_dependent_launch_off_the_gpu():
    assert launch_options(torch.device("cpu"), 1) == {"DEPENDENT": False}


def test_a_layer_is_all_triton_up_to_the_larger_of_its_triton_gemms_bounds(retune):
    retune(few_rows=64, tiled_rows=0)
    assert all_triton(torch.device("cpu"), 64) and not all_triton(torch.device("cpu"), 65)
    retune(few_rows=64, tiled_rows=512)
    assert all_triton(torch.device("cpu"), 512) and not all_triton(torch.device("cpu"), 513)


@pytest.mark.gpu
def test_dependent_launch_for_few_tokens_on_hopper(monkeypatch, retune):
    device = torch.device("cuda")
    hopper = torch.cuda.get_device_capability()[0] >= 9
    most = TUNED.dependent_launch_tokens
    assert launch_options(device, most) == (
        {"DEPENDENT": True, "launch_pdl": True} if hopper and TUNED.dependent_launch else {"DEPENDENT": False})
    assert launch_options(device, most + 1) == {"DEPENDENT": False}
    monkeypatch.setattr(module, "ENABLED", False)
    assert launch_options(device, 1) == {"DEPENDENT": False}
    monkeypatch.setattr(module, "ENABLED", True)
    retune(dependent_launch=False)
    assert launch_options(device, 1) == {"DEPENDENT": False}


@pytest.mark.gpu
@pytest.mark.parametrize("lengths, tiled", [([8], False), ([3, 9], False), ([33], False), ([64], False),
                                             ([100], False), ([7] * 32, False), ([100], True), ([300], True),
                                             ([511], True)])
@pytest.mark.parametrize("graphs", [True, False])
def test_model_gives_the_same_bits_with_and_without_dependent_launch(tmp_path, monkeypatch, retune, lengths, tiled,
                                                                     graphs):
    """Dependent launch changes when kernels start, never what they compute, so outputs are bit-identical; a kernel
    that touched an activation before its wait would read or overwrite memory still in use. Lengths cover every
    few-row tile, the prefetch (up to 64 tokens), dependent launch without it (up to 128) and none (32 x 8); with
    ``tiled``, layers of tiled GEMMs and attention launched as dependents up to 512 tokens."""
    if tiled:
        retune(tiled_rows=512, dependent_launch_tokens=512)
    hf_model("BertForMaskedLM", REALISTIC_BERT).save_pretrained(tmp_path)
    ids, mask, types = random_batch(REALISTIC_BERT, lengths, pad_id=0, with_types=True)
    at = torch.zeros_like(mask, dtype=torch.bool)
    at[:, 0] = True
    outputs = []
    for enabled in (True, False):
        monkeypatch.setattr(module, "ENABLED", enabled)
        model = FastBert.from_pretrained(tmp_path, device="cuda", dtype=torch.float16)
        model.use_cuda_graphs = graphs
        for _ in range(2):  # a graph's first call captures it; the second replays
            out = model(ids, attention_mask=mask, token_type_ids=types, logits_at=at)
        outputs.append((out.last_hidden_state, out.logits))
    assert all(torch.equal(a, b) for a, b in zip(*outputs))
