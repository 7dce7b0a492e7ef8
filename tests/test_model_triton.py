"""The model on the Triton backend: against the torch backend (interpreter on CPU), against fp32 on the GPU."""

import pytest
import torch

from fastbert import FastBert
from fastbert.ops import attention_output as attention_output_module
from fastbert.ops import linear as linear_module
from tests.checkpoints import TINY_BERT, TINY_ROBERTA, hf_model, save_hf_checkpoint
from tests.conftest import DEVICE, TUNED
from tests.test_model import assert_close_on_valid, random_batch

TRITON_VS_TORCH_ATOL = 2e-3  # fp32 on both sides; the kernels only reorder sums


@pytest.mark.parametrize("fixture, config, pad", [("bert_mlm_dir", TINY_BERT, 0), ("roberta_mlm_dir", TINY_ROBERTA, 1)])
@pytest.mark.parametrize("lengths", [[1], [7, 3], [33, 40, 9, 17]])
def test_triton_matches_torch_backend_fp32(request, fixture, config, pad, lengths):
    path = request.getfixturevalue(fixture)
    ids, mask, types = random_batch(config, lengths, pad_id=pad, with_types=config["type_vocab_size"] > 1)
    reference = FastBert.from_pretrained(path, device="cpu", backend="torch")(ids, attention_mask=mask,
                                                                              token_type_ids=types)
    model = FastBert.from_pretrained(path, device=DEVICE, dtype=torch.float32, backend="triton")
    model.use_cuda_graphs = False
    out = model(ids, attention_mask=mask, token_type_ids=types)
    assert_close_on_valid(out.logits.cpu(), reference.logits, mask, TRITON_VS_TORCH_ATOL)
    assert_close_on_valid(out.last_hidden_state.cpu(), reference.last_hidden_state, mask, TRITON_VS_TORCH_ATOL)


@pytest.mark.parametrize("lengths", [[5, 3], [40, 33, 9]])
def test_few_token_paths_match_torch_backend(tmp_path, monkeypatch, lengths):
    """An FFN wide enough for split-K FFN-down; 2 x 5 tokens also take attention with its output projection,
    3 x 40 only split-K. The model's answer is the torch backend's either way."""
    config = dict(TINY_BERT, intermediate_size=TUNED.split_k_from, num_hidden_layers=1)
    path = save_hf_checkpoint(tmp_path, "BertForMaskedLM", config)
    calls = []
    split_k, projected = linear_module.split_k_linear, attention_output_module.projected_attention
    monkeypatch.setattr(linear_module, "split_k_linear", lambda *args: calls.append("split-K") or split_k(*args))
    monkeypatch.setattr(attention_output_module, "projected_attention",
                        lambda *args: calls.append("projected attention") or projected(*args))
    ids, mask, types = random_batch(config, lengths, pad_id=0, with_types=True)
    reference = FastBert.from_pretrained(path, device="cpu", backend="torch")(ids, attention_mask=mask,
                                                                              token_type_ids=types)
    model = FastBert.from_pretrained(path, device=DEVICE, dtype=torch.float32, backend="triton")
    model.use_cuda_graphs = False
    out = model(ids, attention_mask=mask, token_type_ids=types)
    assert calls == (["projected attention"] if ids.numel() <= TUNED.projected_attention_tokens else []) + ["split-K"]
    assert_close_on_valid(out.logits.cpu(), reference.logits, mask, TRITON_VS_TORCH_ATOL)
    assert_close_on_valid(out.last_hidden_state.cpu(), reference.last_hidden_state, mask, TRITON_VS_TORCH_ATOL)


# ---- GPU: reduced precision against fp32, judged by transformers' own error in that precision ----------

REALISTIC_BERT = dict(TINY_BERT, vocab_size=2000, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                      num_hidden_layers=4, max_position_embeddings=512, type_vocab_size=2)


def max_error_on_valid(actual, expected, mask):
    return (actual.float()[mask.bool()] - expected.float()[mask.bool()]).abs().max().item()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("lengths", [[8], [128], [512], [1, 33, 511], [7] * 32])
def test_reduced_precision_error_within_3x_of_transformers(tmp_path, dtype, lengths):
    hf = hf_model("BertForMaskedLM", REALISTIC_BERT).cuda()
    hf.save_pretrained(tmp_path)
    ids, mask, types = random_batch(REALISTIC_BERT, lengths, pad_id=0, with_types=True)
    gpu = [t.cuda() for t in (ids, mask, types)]
    with torch.no_grad():
        exact = hf(input_ids=gpu[0], attention_mask=gpu[1], token_type_ids=gpu[2]).logits
        hf_low = hf.to(dtype)(input_ids=gpu[0], attention_mask=gpu[1], token_type_ids=gpu[2]).logits
    model = FastBert.from_pretrained(tmp_path, device="cuda", dtype=dtype)
    ours = model(ids, attention_mask=mask, token_type_ids=types).logits
    hf_error = max_error_on_valid(hf_low, exact, gpu[1])
    our_error = max_error_on_valid(ours, exact, gpu[1])
    print(f"{dtype} {lengths}: fastbert {our_error:.3e}, transformers {hf_error:.3e}")
    assert our_error <= 3 * hf_error


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_minilm_reduced_precision(minilm_path, dtype):
    """Within 3x transformers' own error in the dtype, against transformers in fp32 (loaded so explicitly: an fp16
    copy of MiniLM would otherwise load in fp16, and be its own exact reference). The bound never drops below one
    ulp of the dtype at the largest output: the output itself is rounded to the dtype."""
    from transformers import BertModel

    ids = torch.randint(1000, 30000, (4, 57))
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0
    mask[3, 3:] = 0
    hf = BertModel.from_pretrained(minilm_path, dtype=torch.float32).cuda().eval()
    with torch.no_grad():
        exact = hf(input_ids=ids.cuda(), attention_mask=mask.cuda()).last_hidden_state
        hf_low = hf.to(dtype)(input_ids=ids.cuda(), attention_mask=mask.cuda()).last_hidden_state
    ours = FastBert.from_pretrained(minilm_path, device="cuda", dtype=dtype)(ids, attention_mask=mask).last_hidden_state
    output_ulp = exact[mask.cuda().bool()].abs().max().item() * torch.finfo(dtype).eps
    bound = max(3 * max_error_on_valid(hf_low, exact, mask.cuda()), output_ulp)
    assert max_error_on_valid(ours, exact, mask.cuda()) <= bound
