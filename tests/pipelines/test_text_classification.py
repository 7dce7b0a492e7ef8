"""fastbert.pipeline("text-classification") against transformers' pipeline on tiny random BERT and RoBERTa
classifiers: every function_to_apply and top_k, texts and text pairs, each nesting, and the errors."""

import logging

import pytest

import fastbert
from fastbert import InputError
from tests.pipelines.conftest import MAX_TOKENS, SENTIMENT, TEXTS, assert_same, clear_winner, labelled, save

HEADS = {
    "labels": labelled(SENTIMENT),                                                    # softmax by default
    "one-label": dict(num_labels=1),                                                  # sigmoid
    "multi-label": dict(labelled(SENTIMENT), problem_type="multi_label_classification"),  # sigmoid
    "regression": dict(num_labels=1, problem_type="regression"),                      # none
}
PAIRS = [{"text": "Paris is the capital of France.", "text_pair": "Rome is the capital of Italy."},
         {"text": "Hello world"}, {"text": "a", "text_pair": None}]
INPUTS = {"text": TEXTS[0], "texts": TEXTS, "one-text list": TEXTS[:1], "pair": PAIRS[0], "pairs": PAIRS,
          "texts and pairs": [TEXTS[1], PAIRS[0]]}
OPTIONS = [{}, dict(top_k=1), dict(top_k=2), dict(top_k=None), dict(top_k=9), dict(function_to_apply="sigmoid"),
           dict(function_to_apply="SOFTMAX", top_k=None), dict(function_to_apply="none", top_k=2)]


@pytest.fixture(scope="module", params=list(HEADS))
def checkpoint(request, family, tmp_path_factory):
    return save(tmp_path_factory, family, "ForSequenceClassification", **HEADS[request.param])


@pytest.fixture(scope="module")
def ours(checkpoint):
    return fastbert.pipeline("text-classification", model=checkpoint, device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def theirs(checkpoint):
    transformers = pytest.importorskip("transformers")
    return transformers.pipeline("text-classification", model=str(checkpoint), device="cpu")


@pytest.mark.parametrize("inputs", list(INPUTS))
def test_every_option_matches_transformers(ours, theirs, inputs):
    for options in OPTIONS:
        assert_same(ours(INPUTS[inputs], **options), theirs(INPUTS[inputs], **options), f"{inputs} {options}")


@pytest.mark.parametrize("options", [dict(top_k=2), dict(top_k=None), dict(function_to_apply="sigmoid")])
def test_options_given_when_made_are_defaults_as_in_transformers(checkpoint, options):
    transformers = pytest.importorskip("transformers")
    ours = fastbert.pipeline("text-classification", model=checkpoint, device="cpu", **options)
    theirs = transformers.pipeline("text-classification", model=str(checkpoint), device="cpu", **options)
    for inputs in (TEXTS[0], TEXTS, PAIRS[0]):
        assert_same(ours(inputs), theirs(inputs), str(options))
        assert_same(ours(inputs, top_k=1), theirs(inputs, top_k=1), str(options))


def test_over_long_text_is_truncated_with_a_warning(ours, theirs, caplog):
    long_text = TEXTS[2] * 5
    with caplog.at_level(logging.WARNING, logger="fastbert.pipelines"):
        result = ours(long_text, top_k=None)
    assert f"the text ({long_text[:40]!r}" in caplog.text.replace("...'", "'") and "truncated" in caplog.text
    # transformers fails on it unless told to truncate
    assert_same(result, theirs(long_text, top_k=None, truncation=True, max_length=MAX_TOKENS))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastbert.pipelines"):
        asked = ours([TEXTS[0], long_text], truncation=True, max_length=12)
    assert not caplog.text  # truncation asked for: no warning
    assert_same(asked, theirs([TEXTS[0], long_text], truncation=True, max_length=12))


@pytest.mark.parametrize("bad, message", [
    (dict(function_to_apply="tanh"), "function_to_apply='tanh' is not one of sigmoid, softmax, none"),
    (dict(top_k=0), "top_k must be a positive integer"),
    (dict(truncation="only_second"), "truncation='only_second' is not supported"),
])
def test_bad_options_are_errors(ours, bad, message):
    with pytest.raises(ValueError, match=message):
        ours(TEXTS[0], **bad)


def test_bad_pairs_are_errors(ours):
    with pytest.raises(InputError, match=r"text 1 is a dict with keys \['pair', 'text'\]"):
        ours([PAIRS[0], {"text": "a", "pair": "b"}])
    with pytest.raises(InputError, match="text 0 is a list: to send a text pair, send a dictionary"):
        ours([["a", "b"]])
    with pytest.raises(InputError, match="the text's text_pair is empty"):
        ours({"text": "a", "text_pair": ""})


def test_a_checkpoint_without_the_head_is_refused(tmp_path_factory, family):
    masked_lm = save(tmp_path_factory, family, "ForMaskedLM")
    with pytest.raises(ValueError, match=r"has a masked-lm head; text-classification needs a checkpoint saved from a "
                                         r"\*ForSequenceClassification model"):
        fastbert.pipeline("text-classification", model=masked_lm, device="cpu")
    with pytest.raises(ValueError, match="text-classification has no default model; pass model="):
        fastbert.pipeline("text-classification")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, score_atol", [("float32", 1e-4), ("float16", 5e-3)])
def test_gpu_engine_answers_like_cpu_fp32(checkpoint, dtype, score_atol):
    """The CUDA-graph engine against the CPU reference: every label's score, and the same best label wherever the
    reference's is not a near tie at the precision used."""
    inputs = [*TEXTS, *PAIRS]
    cpu = fastbert.pipeline("text-classification", model=checkpoint, device="cpu")(inputs, top_k=None)
    gpu = fastbert.pipeline("text-classification", model=checkpoint, device="cuda", dtype=dtype)(inputs, top_k=None)
    for want, got in zip(cpu, gpu):
        by_label = {entry["label"]: entry["score"] for entry in got}
        assert all(abs(by_label[entry["label"]] - entry["score"]) < score_atol for entry in want)
        if len(want) == 1 or clear_winner([entry["score"] for entry in want], 2 * score_atol):
            assert got[0]["label"] == want[0]["label"]
