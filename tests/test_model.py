"""The torch-backend model against transformers on CPU fp32."""

import numpy as np
import pytest
import torch

from fastbert import FastBert, InputError
from tests.checkpoints import TINY_BERT, TINY_ROBERTA, hf_model
from tests.conftest import DEVICE

HIDDEN_ATOL = 2e-4  # fp32 end to end: both sides accumulate differently, nothing more
LOGITS_ATOL = 5e-4


def random_batch(config, lengths, *, pad_id, with_types):
    """Ids drawn from the non-pad vocabulary, right-padded to the longest length."""
    seq = max(lengths)
    ids = torch.randint(pad_id + 1, config["vocab_size"], (len(lengths), seq))
    mask = torch.zeros(len(lengths), seq, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    ids[mask == 0] = pad_id
    types = torch.randint(0, config["type_vocab_size"], ids.shape) if with_types else None
    return ids, mask, types


def hf_outputs(architecture, config, ids, mask, types):
    model = hf_model(architecture, config)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    return out


def assert_close_on_valid(actual, expected, mask, atol):
    valid = mask.bool()
    diff = (actual[valid] - expected[valid]).abs().max().item()
    assert diff < atol, f"max abs difference {diff:.2e} on valid positions exceeds {atol:.0e}"


@pytest.mark.parametrize("lengths", [[1], [7], [33, 5, 17], [40, 1]])
def test_bert_mlm_matches_transformers(bert_mlm_dir, lengths):
    ids, mask, types = random_batch(TINY_BERT, lengths, pad_id=0, with_types=True)
    ref = hf_outputs("BertForMaskedLM", TINY_BERT, ids, mask, types)
    out = FastBert.from_pretrained(bert_mlm_dir, device="cpu")(ids, attention_mask=mask, token_type_ids=types)
    assert_close_on_valid(out.last_hidden_state, ref.hidden_states[-1], mask, HIDDEN_ATOL)
    assert_close_on_valid(out.logits, ref.logits, mask, LOGITS_ATOL)
    assert out.pooler_output is None


@pytest.mark.parametrize("lengths", [[9], [40, 3, 20]])
def test_roberta_mlm_matches_transformers_with_padding_positions(roberta_mlm_dir, lengths):
    ids, mask, _ = random_batch(TINY_ROBERTA, lengths, pad_id=1, with_types=False)
    ref = hf_outputs("RobertaForMaskedLM", TINY_ROBERTA, ids, mask, None)
    out = FastBert.from_pretrained(roberta_mlm_dir, device="cpu")(ids, attention_mask=mask)
    assert_close_on_valid(out.last_hidden_state, ref.hidden_states[-1], mask, HIDDEN_ATOL)
    assert_close_on_valid(out.logits, ref.logits, mask, LOGITS_ATOL)


def test_bert_model_has_pooler_and_no_logits(bert_base_dir):
    ids, mask, types = random_batch(TINY_BERT, [12, 30], pad_id=0, with_types=True)
    ref = hf_outputs("BertModel", TINY_BERT, ids, mask, types)
    out = FastBert.from_pretrained(bert_base_dir, device="cpu")(ids, attention_mask=mask, token_type_ids=types)
    assert out.logits is None
    assert_close_on_valid(out.last_hidden_state, ref.last_hidden_state, mask, HIDDEN_ATOL)
    assert (out.pooler_output - ref.pooler_output).abs().max() < HIDDEN_ATOL


def test_minilm_real_weights_on_real_sentences(minilm_path):
    from tokenizers import Tokenizer
    from transformers import BertModel

    tokenizer = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    sentences = ["The cat sat on the mat.", "fastbert runs BERT encoders on GPUs, and this sentence is longer.", "Hi"]
    encodings = tokenizer.encode_batch(sentences)
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.no_grad():  # fp32 as fastbert on the CPU: transformers 5 would keep an fp16 copy's weights in fp16
        ref = BertModel.from_pretrained(minilm_path, dtype=torch.float32).eval()(input_ids=ids, attention_mask=mask)
    out = FastBert.from_pretrained(minilm_path, device="cpu")(ids, attention_mask=mask)
    assert_close_on_valid(out.last_hidden_state, ref.last_hidden_state, mask, HIDDEN_ATOL)
    assert (out.pooler_output - ref.pooler_output).abs().max() < HIDDEN_ATOL


def test_sequence_alone_equals_sequence_in_padded_batch(bert_mlm_dir):
    model = FastBert.from_pretrained(bert_mlm_dir, device="cpu")
    ids, mask, types = random_batch(TINY_BERT, [11, 37, 4], pad_id=0, with_types=True)
    batched = model(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    for row, n in enumerate([11, 37, 4]):
        alone = model(ids[row:row + 1, :n], token_type_ids=types[row:row + 1, :n]).last_hidden_state[0]
        assert (alone - batched[row, :n]).abs().max() < 1e-5


def test_logits_at_selects_positions(bert_mlm_dir):
    model = FastBert.from_pretrained(bert_mlm_dir, device="cpu")
    ids, mask, _ = random_batch(TINY_BERT, [20, 13], pad_id=0, with_types=False)
    select = torch.rand(ids.shape) < 0.3
    select[0, 0] = True
    full = model(ids, attention_mask=mask).logits
    picked = model(ids, attention_mask=mask, logits_at=select).logits
    assert picked.shape == (int(select.sum()), TINY_BERT["vocab_size"])
    torch.testing.assert_close(picked, full[select], rtol=0, atol=1e-5)


def test_lists_and_numpy_arrays_answer_like_tensors(bert_mlm_dir):
    model = FastBert.from_pretrained(bert_mlm_dir, device="cpu")
    ids, mask, types = random_batch(TINY_BERT, [9, 4], pad_id=0, with_types=True)
    at = torch.zeros(ids.shape, dtype=torch.bool)
    at[0, 3] = at[1, 1] = True
    expected = model(ids, attention_mask=mask, token_type_ids=types, logits_at=at)
    for convert in (lambda t: t.tolist(), lambda t: t.numpy(), lambda t: t.numpy().astype("int32"),
                    lambda t: t.numpy().astype("uint16")):
        out = model(convert(ids), attention_mask=convert(mask), token_type_ids=convert(types),
                    logits_at=at.numpy())
        torch.testing.assert_close(out.last_hidden_state, expected.last_hidden_state, rtol=0, atol=0)
        torch.testing.assert_close(out.logits, expected.logits, rtol=0, atol=0)


@pytest.mark.parametrize("graphs", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_outputs_may_be_updated_in_place(bert_mlm_dir, graphs, packed):
    """As transformers' outputs may: tensors made in inference mode would refuse it outside that mode. On the GPU
    the graph replays (padded and packed) are covered too."""
    model = FastBert.from_pretrained(bert_mlm_dir, device=DEVICE)
    model.use_cuda_graphs = graphs and DEVICE == "cuda"
    model.packed = packed
    ids, mask, _ = random_batch(TINY_BERT, [12, 3], pad_id=0, with_types=False)
    at = torch.zeros(ids.shape, dtype=torch.bool)
    at[0, 5] = at[1, 2] = True
    for out in (model(ids, attention_mask=mask), model(ids, attention_mask=mask, logits_at=at)):
        for tensor in (out.last_hidden_state, out.logits):
            before = tensor.clone()
            tensor.mul_(2)
            torch.testing.assert_close(tensor, before * 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_ids=torch.tensor([[5, 99]])), "outside the vocabulary"),
        (dict(input_ids=torch.tensor([[5, -1]])), "negative"),
        (dict(input_ids=np.array([[5, 99]], dtype=np.int32)), "holds 99, outside the vocabulary"),
        (dict(input_ids=np.array([[-7, 98]], dtype=np.int32)), "holds -7: negative"),
        (dict(input_ids=[[5, 2**40]]), "outside the vocabulary"),
        (dict(input_ids=torch.ones(1, 41, dtype=torch.long)), "exceeds the 40 positions"),
        (dict(input_ids=torch.ones(1, 4)), "must hold integers"),
        (dict(input_ids=[[1.0, 2.0]]), "must hold integers"),
        (dict(input_ids=[[1, 2], [3]]), "not a \\[batch, sequence\\] array"),
        (dict(input_ids=torch.ones(4, dtype=torch.long)), r"\[batch, sequence\]"),
        (dict(input_ids=torch.ones(1, 0, dtype=torch.long)), "empty"),
        (dict(input_ids=torch.ones(1, 4, dtype=torch.long), token_type_ids=torch.full((1, 4), 3)), "token type"),
        (dict(input_ids=torch.ones(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 5)), "attention_mask has"),
        (dict(input_ids=torch.ones(1, 4, dtype=torch.long), logits_at=torch.ones(1, 4)), "logits_at must be a bool"),
    ],
)
def test_bad_inputs_raise_clear_errors(bert_mlm_dir, kwargs, message):
    model = FastBert.from_pretrained(bert_mlm_dir, device="cpu")
    with pytest.raises(InputError, match=message):
        model(**kwargs)


def test_roberta_length_limit_counts_the_position_offset(roberta_mlm_dir):
    model = FastBert.from_pretrained(roberta_mlm_dir, device="cpu")
    limit = TINY_ROBERTA["max_position_embeddings"] - TINY_ROBERTA["pad_token_id"] - 1
    model(torch.full((1, limit), 5))
    with pytest.raises(InputError, match=f"exceeds the {limit} positions"):
        model(torch.full((1, limit + 1), 5))
