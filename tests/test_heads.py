"""Task heads against transformers: sequence and token classification of BERT, RoBERTa and XLM-R, padded and packed,
the last layer at the rows a head reads, loading, the converter, and the errors a bad head choice gets."""

import json

import pytest
import torch

from fastbert import CheckpointError, FastBert, InputError, UnsupportedModelError, convert_checkpoint
from fastbert import model as model_module
from fastbert.heads import NO_HEAD
from fastbert.heads.masked_lm import padded_vocabulary
from tests.checkpoints import TINY_BERT, TINY_ROBERTA, hf_model, save_hf_checkpoint
from tests.conftest import DEVICE
from tests.test_model import assert_close_on_valid, random_batch

LOGITS_ATOL = 5e-4  # fp32 on both sides: only the order of reductions differs
SENTIMENT = {0: "negative", 1: "neutral", 2: "positive"}
BIO = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
FAMILIES = {
    "bert": (TINY_BERT, "Bert", 0),
    "roberta": (TINY_ROBERTA, "Roberta", 1),
    "xlm-roberta": (dict(TINY_ROBERTA, model_type="xlm-roberta"), "XLMRoberta", 1),
}


def labelled(config: dict, id2label: dict) -> dict:
    return dict(config, id2label=id2label, label2id={label: i for i, label in id2label.items()})


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    return request.param


@pytest.fixture(scope="module")
def classifiers(family, tmp_path_factory):
    """Per task, (checkpoint directory, its transformers architecture, its config) for this family."""
    config, prefix, _ = FAMILIES[family]
    made = {}
    for task, suffix, labels in (("sequence-classification", "ForSequenceClassification", SENTIMENT),
                                 ("token-classification", "ForTokenClassification", BIO)):
        architecture = prefix + suffix
        head_config = labelled(config, labels)
        made[task] = (save_hf_checkpoint(tmp_path_factory.mktemp(f"{family}_{task}"), architecture, head_config),
                      architecture, head_config)
    return made


def reference_logits(architecture, config, ids, mask, types):
    with torch.no_grad():
        return hf_model(architecture, config)(input_ids=ids, attention_mask=mask, token_type_ids=types).logits


@pytest.mark.parametrize("task", ["sequence-classification", "token-classification"])
@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("packed", [False, True])
def test_classifiers_match_transformers(family, classifiers, task, backend, packed):
    path, architecture, config = classifiers[task]
    _, _, pad = FAMILIES[family]
    ids, mask, types = random_batch(config, [7, 1, 33, 12], pad_id=pad, with_types=config["type_vocab_size"] > 1)
    model = FastBert.from_pretrained(path, device=DEVICE, dtype=torch.float32, backend=backend)
    model.packed = packed
    out = model(ids, attention_mask=mask, token_type_ids=types)
    expected = reference_logits(architecture, config, ids, mask, types)
    assert model.head_name == task and model.labels == list(config["id2label"].values())
    if task == "sequence-classification":
        assert out.logits.shape == (4, 3) and out.last_hidden_state is None
        torch.testing.assert_close(out.logits.cpu(), expected, atol=LOGITS_ATOL, rtol=0)
    else:
        assert out.logits.shape == (4, 33, 5) and out.last_hidden_state.shape == (4, 33, config["hidden_size"])
        assert_close_on_valid(out.logits.cpu(), expected, mask, LOGITS_ATOL)


@pytest.mark.parametrize("packed", [False, True])
def test_sequence_classifier_runs_its_last_layer_at_first_tokens_only(monkeypatch, retune, classifiers, family,
                                                                      packed):
    path, architecture, config = classifiers["sequence-classification"]
    _, _, pad = FAMILIES[family]
    ids, mask, types = random_batch(config, [9, 40, 2], pad_id=pad, with_types=config["type_vocab_size"] > 1)
    rows_seen = []
    at_rows = model_module.EncoderLayer.at_rows
    monkeypatch.setattr(model_module.EncoderLayer, "at_rows",
                        lambda self, x, rows, *args: rows_seen.append(len(rows)) or at_rows(self, x, rows, *args))
    retune(prune_from_tokens=1)
    model = FastBert.from_pretrained(path, device=DEVICE, dtype=torch.float32)
    model.packed = packed
    model.use_cuda_graphs = False  # a graph would run its bucket's 4 rows, twice (warm-up, capture)
    logits = model(ids, attention_mask=mask, token_type_ids=types).logits
    assert rows_seen == [3]
    torch.testing.assert_close(logits.cpu(), reference_logits(architecture, config, ids, mask, types),
                               atol=LOGITS_ATOL, rtol=0)


def test_a_reranker_has_one_label(tmp_path):
    config = dict(TINY_BERT, num_labels=1)
    path = save_hf_checkpoint(tmp_path, "BertForSequenceClassification", config)
    ids, mask, types = random_batch(config, [5, 11], pad_id=0, with_types=True)
    out = FastBert.from_pretrained(path, device=DEVICE, dtype=torch.float32)(ids, attention_mask=mask,
                                                                             token_type_ids=types)
    assert out.logits.shape == (2, 1)
    expected = reference_logits("BertForSequenceClassification", config, ids, mask, types)
    torch.testing.assert_close(out.logits.cpu(), expected, atol=LOGITS_ATOL, rtol=0)


def test_config_keeps_labels_and_problem_type(tmp_path):
    config = dict(labelled(TINY_BERT, SENTIMENT), problem_type="multi_label_classification")
    path = save_hf_checkpoint(tmp_path, "BertForSequenceClassification", config)
    model = FastBert.from_pretrained(path, device="cpu")
    assert model.config.id2label == SENTIMENT and model.config.label2id == {v: k for k, v in SENTIMENT.items()}
    assert model.config.problem_type == "multi_label_classification"


def test_labels_without_id2label_are_named_as_transformers_names_them(tmp_path):
    path = save_hf_checkpoint(tmp_path, "BertForTokenClassification", dict(TINY_BERT, num_labels=4))
    raw = json.loads((path / "config.json").read_text())
    for key in ("id2label", "label2id"):
        raw.pop(key, None)
    (path / "config.json").write_text(json.dumps(raw))
    assert FastBert.from_pretrained(path, device="cpu").labels == ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]


def test_head_follows_architectures_and_can_be_overridden(classifiers):
    path, _, config = classifiers["sequence-classification"]
    assert FastBert.from_pretrained(path, device="cpu").head_name == "sequence-classification"
    encoder = FastBert.from_pretrained(path, device="cpu", head="none")
    assert encoder.head is None and encoder.head_name == NO_HEAD and encoder.labels is None
    ids, mask, _ = random_batch(config, [6], pad_id=1, with_types=False)
    assert encoder(ids, attention_mask=mask).last_hidden_state.shape == (1, 6, config["hidden_size"])


def test_a_head_the_checkpoint_lacks_is_named(bert_base_dir):
    with pytest.raises(CheckpointError, match=r"the token-classification head needs tensors the checkpoint lacks: "
                                              r"head\.out\.bias, head\.out\.weight"):
        FastBert.from_pretrained(bert_base_dir, device="cpu", head="token-classification")
    with pytest.raises(CheckpointError, match="masked-lm head needs tensors .* head.decoder.bias"):
        FastBert.from_pretrained(bert_base_dir, device="cpu", head="masked-lm")


def test_unknown_heads_are_refused(tmp_path, bert_base_dir):
    with pytest.raises(UnsupportedModelError, match="unknown head 'ner'; choose one of masked-lm, "):
        FastBert.from_pretrained(bert_base_dir, device="cpu", head="ner")
    path = save_hf_checkpoint(tmp_path, "BertForMultipleChoice", TINY_BERT)
    with pytest.raises(UnsupportedModelError, match="architecture 'BertForMultipleChoice' has a head fastbert does "
                                                    "not run"):
        FastBert.from_pretrained(path, device="cpu")
    assert FastBert.from_pretrained(path, device="cpu", head="none").head is None


def test_logits_at_needs_a_head_that_reads_selected_rows(classifiers):
    path, _, config = classifiers["token-classification"]
    ids, mask, _ = random_batch(config, [4], pad_id=1, with_types=False)
    with pytest.raises(InputError, match=r"logits_at selects where the MLM head runs.*its head: token-classification"):
        FastBert.from_pretrained(path, device="cpu")(ids, attention_mask=mask, logits_at=mask.bool())


@pytest.mark.parametrize("task", ["sequence-classification", "token-classification"])
def test_converter_writes_the_head_and_its_labels(tmp_path, classifiers, task):
    path, _, config = classifiers[task]
    converted = convert_checkpoint(path, tmp_path / "converted", dtype="float32")
    saved = json.loads((converted / "config.json").read_text())
    assert saved["architectures"][0].endswith("For" + "".join(w.title() for w in task.split("-")))
    original, reloaded = (FastBert.from_pretrained(p, device="cpu") for p in (path, converted))
    assert reloaded.head_name == task and reloaded.labels == original.labels
    ids, mask, _ = random_batch(config, [8, 3], pad_id=1, with_types=False)
    torch.testing.assert_close(reloaded(ids, attention_mask=mask).logits, original(ids, attention_mask=mask).logits,
                               atol=0, rtol=0)


def test_an_encoder_only_conversion_reloads_without_a_head(tmp_path, bert_base_dir):
    converted = convert_checkpoint(bert_base_dir, tmp_path / "converted", dtype="float32")
    assert json.loads((converted / "config.json").read_text())["architectures"] == ["BertModel"]
    model = FastBert.from_pretrained(converted, device="cpu")
    assert model.head is None and model.pooler is not None


# ---- GPU: each head in fp16 and bf16, replayed from graphs and packed, judged by transformers' own error ----------

REALISTIC = {"bert": dict(TINY_BERT, vocab_size=2000, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                          num_hidden_layers=4, max_position_embeddings=512, type_vocab_size=2),
             "roberta": dict(TINY_ROBERTA, vocab_size=2000, hidden_size=768, num_attention_heads=12,
                             intermediate_size=3072, num_hidden_layers=4, max_position_embeddings=514)}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("suffix, labels", [("ForSequenceClassification", SENTIMENT), ("ForTokenClassification", BIO)])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("lengths", [[8], [1, 33, 511], [7] * 32, [128] * 5])
def test_heads_in_reduced_precision_within_3x_of_transformers(tmp_path, dtype, family, suffix, labels, packed,
                                                              lengths):
    """The error against fp32 transformers, at most three times what transformers itself makes in that dtype: each
    dtype's rounding bounds both, and the kernels must not add more than a small multiple of it."""
    config = labelled(REALISTIC[family], labels)
    architecture = FAMILIES[family][1] + suffix
    pad = FAMILIES[family][2]
    hf = hf_model(architecture, config).cuda()
    hf.save_pretrained(tmp_path)
    ids, mask, types = random_batch(config, lengths, pad_id=pad, with_types=config["type_vocab_size"] > 1)
    gpu = {"input_ids": ids.cuda(), "attention_mask": mask.cuda(),
           "token_type_ids": types.cuda() if types is not None else None}
    with torch.no_grad():
        exact = hf(**gpu).logits.float()
        hf_low = hf.to(dtype)(**gpu).logits.float()
    model = FastBert.from_pretrained(tmp_path, device="cuda", dtype=dtype)
    model.packed = packed
    ours = [model(ids, attention_mask=mask, token_type_ids=types).logits.float() for _ in range(2)]  # two replays
    assert torch.equal(ours[0], ours[1])
    valid = mask.cuda().bool() if suffix == "ForTokenClassification" else slice(None)
    hf_error = (hf_low[valid] - exact[valid]).abs().max().item()
    our_error = (ours[1][valid] - exact[valid]).abs().max().item()
    # with a few logits per sequence, transformers' own error can land far under its rounding by chance: four units
    # of the dtype's rounding at the logits' magnitude are always allowed
    rounding = 4 * torch.finfo(dtype).eps * max(1.0, exact[valid].abs().max().item())
    print(f"{architecture} {dtype} {lengths} packed={packed}: fastbert {our_error:.3e}, transformers {hf_error:.3e}")
    assert our_error <= max(3 * hf_error, rounding)


def test_output_bytes_count_every_output_a_call_returns(tmp_path, bert_mlm_dir, bert_base_dir):
    """What the graph runner weighs a call by: every output's rows as the call returns them, times its width as the
    graph holds it (the MLM decoder's padded vocabulary)."""
    ids, mask, types = random_batch(TINY_BERT, [7, 1, 33], pad_id=0, with_types=True)
    at = mask.bool() & (torch.rand(ids.shape) < 0.3)
    calls = [(save_hf_checkpoint(tmp_path / suffix, "Bert" + suffix, labelled(TINY_BERT, labels)), None)
             for suffix, labels in (("ForSequenceClassification", SENTIMENT), ("ForTokenClassification", BIO))]
    calls += [(bert_mlm_dir, None), (bert_mlm_dir, at), (bert_base_dir, None)]
    for path, logits_at in calls:
        model = FastBert.from_pretrained(path, device="cpu")
        outputs = model(ids, attention_mask=mask, token_type_ids=types, logits_at=logits_at)
        widths = {"last_hidden_state": model.config.hidden_size}
        for head in model.attached_heads():
            widths.update(head.widths())
        expected = 0
        for name, t in outputs.items():
            assert widths[name] == (padded_vocabulary(t.shape[-1]) if name == "logits" and model.head_name ==
                                    "masked-lm" else t.shape[-1])
            expected += t[..., 0].numel() * widths[name] * t.element_size()
        selected = int(logits_at.sum()) if logits_at is not None else None
        assert model.output_bytes(len(ids), ids.numel(), selected) == expected
