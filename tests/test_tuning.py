"""Tuning by GPU generation: which set a device gets, how to force one, and that the answer does not depend on it."""

from dataclasses import replace

import pytest
import torch

from fastbert import FastBert, tuning
from fastbert.ops import dependent_launch
from fastbert.ops import linear as linear_module
from fastbert.tuning import HOPPER, PORTABLE
from tests.checkpoints import hf_model
from tests.conftest import DEVICE
from tests.test_model import assert_close_on_valid, random_batch
from tests.test_model_triton import REALISTIC_BERT, TRITON_VS_TORCH_ATOL

FEW_ROWS_LINEAR = linear_module.few_rows_linear


@pytest.mark.parametrize("capability, expected", [
    ((7, 5), PORTABLE), ((8, 0), PORTABLE), ((8, 9), PORTABLE), ((9, 0), HOPPER), ((10, 0), HOPPER), ((12, 0), HOPPER),
    (None, HOPPER),  # off the GPU: the interpreter covers the newest GPUs' paths
])
def test_tuning_follows_compute_capability(capability, expected):
    assert tuning.for_capability(capability) is expected


def test_dependent_launch_only_where_the_gpu_has_it():
    assert HOPPER.dependent_launch and not PORTABLE.dependent_launch
    assert not dependent_launch.supported(torch.device("cpu"))


def test_each_cuda_device_gets_the_set_of_its_capability(monkeypatch):
    monkeypatch.setattr(tuning, "_by_device", {})
    monkeypatch.setattr(tuning, "capability", lambda device: (8, 0) if device.index == 0 else (9, 0))
    assert tuning.settings(torch.device("cuda", 0)) is PORTABLE
    assert tuning.settings(torch.device("cuda", 1)) is HOPPER
    assert tuning.settings(torch.device("cuda", 0)) is PORTABLE  # kept, not recomputed


def test_a_forced_set_wins_on_every_device(monkeypatch):
    monkeypatch.setattr(tuning, "forced", PORTABLE)
    assert tuning.settings(torch.device("cpu")) is PORTABLE
    assert tuning.settings(torch.device("cuda", 0)) is PORTABLE


def test_the_environment_names_a_set():
    assert tuning.from_environment(None) is None and tuning.from_environment("") is None
    assert tuning.from_environment("portable") is PORTABLE and tuning.from_environment("hopper") is HOPPER
    with pytest.raises(ValueError, match="hopper or portable"):
        tuning.from_environment("ampere")


def outputs_under(monkeypatch, forced, path, device, dtype, ids, mask, types, at, graphs=False):
    """The model's (hidden states, logits) with ``forced`` tuning, and the row counts few_rows_linear took."""
    monkeypatch.setattr(tuning, "forced", forced)
    rows = []
    monkeypatch.setattr(linear_module, "few_rows_linear",
                        lambda x, *args, **kwargs: rows.append(len(x)) or FEW_ROWS_LINEAR(x, *args, **kwargs))
    model = FastBert.from_pretrained(path, device=device, dtype=dtype, backend="triton")
    model.use_cuda_graphs = graphs
    for _ in range(2 if graphs else 1):  # a graph's first call captures it; the second replays
        out = model(ids, attention_mask=mask, token_type_ids=types, logits_at=at)
    return out.last_hidden_state, out.logits, rows


@pytest.mark.parametrize("lengths", [[33], [7, 5]])
def test_portable_paths_give_the_hopper_answer(tmp_path, monkeypatch, lengths):
    """33 tokens take the few-row GEMM under HOPPER and cuBLAS under PORTABLE; 2 x 7 the few-row GEMM under both."""
    config = dict(REALISTIC_BERT, hidden_size=48, num_attention_heads=4, intermediate_size=96, num_hidden_layers=1,
                  vocab_size=99)
    hf_model("BertForMaskedLM", config).save_pretrained(tmp_path)
    batch = random_batch(config, lengths, pad_id=0, with_types=True)
    hidden, logits, hopper_rows = outputs_under(monkeypatch, HOPPER, tmp_path, DEVICE, torch.float32, *batch, None)
    hidden_p, logits_p, portable_rows = outputs_under(monkeypatch, PORTABLE, tmp_path, DEVICE, torch.float32, *batch,
                                                      None)
    assert max(hopper_rows) == batch[0].numel()
    assert all(rows <= PORTABLE.few_rows for rows in portable_rows)
    assert_close_on_valid(hidden_p.cpu(), hidden.cpu(), batch[1], TRITON_VS_TORCH_ATOL)
    assert_close_on_valid(logits_p.cpu(), logits.cpu(), batch[1], TRITON_VS_TORCH_ATOL)


def largest_difference(a, b) -> float:
    return (a.float() - b.float()).abs().max().item()


# every GEMM past few_rows on the tiled kernel and every kernel up to 512 tokens launched as a dependent
TILED = replace(HOPPER, tiled_rows=512, dependent_launch_tokens=512)


@pytest.mark.gpu
@pytest.mark.parametrize("lengths", [[8], [33], [64], [100], [1, 33, 200], [7] * 32, [300], [511]])
@pytest.mark.parametrize("graphs", [True, False])
@pytest.mark.parametrize("name, forced", [("portable", PORTABLE), ("tiled", TILED)])
def test_other_tunings_on_this_gpu_give_the_default_answer(tmp_path, monkeypatch, lengths, graphs, name, forced):
    """The set other GPUs get, forced here (no dependent launch, cuBLAS past its few-row bound), and the tiled
    GEMMs in dependent chains up to 512 tokens. In fp16 their outputs differ from the default set's by at most 3x
    transformers' own fp16 error. Lengths cover the few-row bounds of both sets, dependent launch up to 128 tokens,
    the last layer at the selected rows from 128 tokens, and the tiled GEMM's row tiles."""
    hf = hf_model("BertForMaskedLM", REALISTIC_BERT).cuda()
    hf.save_pretrained(tmp_path)
    batch = random_batch(REALISTIC_BERT, lengths, pad_id=0, with_types=True)
    at = torch.zeros_like(batch[1], dtype=torch.bool)
    at[:, 0] = True
    gpu = dict(zip(("input_ids", "attention_mask", "token_type_ids"), (t.cuda() for t in batch)))
    with torch.no_grad():
        exact = hf(**gpu, output_hidden_states=True)
        exact = (exact.hidden_states[-1][at.cuda()], exact.logits[at.cuda()])
        half = hf.half()(**gpu, output_hidden_states=True)
        half = (half.hidden_states[-1][at.cuda()], half.logits[at.cuda()])
    bounds = [3 * largest_difference(h, e) for h, e in zip(half, exact)]
    device = torch.device("cuda")
    default = outputs_under(monkeypatch, None, tmp_path, device, torch.float16, *batch, at, graphs)
    other = outputs_under(monkeypatch, forced, tmp_path, device, torch.float16, *batch, at, graphs)
    if forced is PORTABLE:
        assert dependent_launch.launch_options(device, 1) == {"DEPENDENT": False}
        assert all(rows <= PORTABLE.few_rows for rows in other[2])
    for output, ours, theirs, bound in zip(("hidden states", "logits"), default, other, bounds):
        difference = largest_difference(ours, theirs)
        print(f"{lengths}, graphs {graphs}, {output}: default vs {name} {difference:.3e}, bound {bound:.3e}")
        assert difference <= bound, output
