"""fastbert.pipeline("token-classification") against transformers' pipeline on tiny random BERT and RoBERTa token
classifiers with BIO labels: every aggregation strategy, ignore_labels, offsets and words, stride, truncation, the
tokenizer files a checkpoint may have, and the errors."""

import json
import logging
import warnings

import pytest

import fastbert
from fastbert import InputError
from tests.checkpoints import copy_checkpoint_without
from tests.pipelines.conftest import BIO, MAX_TOKENS, TEXTS, assert_same, clear_winner, labelled, save

STRATEGIES = ["none", "simple", "first", "average", "max"]
LONG_TEXT = " ".join(TEXTS[:4]) * 3


@pytest.fixture(scope="module")
def checkpoint(family, tmp_path_factory):
    return save(tmp_path_factory, family, "ForTokenClassification", **labelled(BIO))


@pytest.fixture(scope="module")
def ours(checkpoint):
    return fastbert.pipeline("token-classification", model=checkpoint, device="cpu", batch_size=2)


def transformers_pipeline(path, **options):
    transformers = pytest.importorskip("transformers")
    # model_max_length at the tiny models' positions, so that transformers truncates and strides where fastbert does
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), model_max_length=MAX_TOKENS)
    return transformers.pipeline("token-classification", model=str(path), tokenizer=tokenizer, device="cpu",
                                 **options)


@pytest.fixture(scope="module")
def theirs(checkpoint):
    return transformers_pipeline(checkpoint)


def calls(pipe, inputs, **options):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tokenizer does not support real words")  # RoBERTa's BPE, both sides
        return pipe(inputs, **options)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ignore_labels", [None, [], ["O", "B-PER"]])
def test_every_strategy_matches_transformers(ours, theirs, strategy, ignore_labels):
    options = dict(aggregation_strategy=strategy, ignore_labels=ignore_labels)
    assert_same(calls(ours, TEXTS, **options), calls(theirs, TEXTS, **options), strategy)
    assert_same(calls(ours, TEXTS[0], **options), calls(theirs, TEXTS[0], **options), strategy)
    assert_same(calls(ours, TEXTS[:1], **options), calls(theirs, TEXTS[:1], **options), strategy)


def test_options_given_when_made_are_defaults(checkpoint):
    options = dict(aggregation_strategy="average", ignore_labels=[])
    made = fastbert.pipeline("token-classification", model=checkpoint, device="cpu", **options)
    assert_same(calls(made, TEXTS), calls(transformers_pipeline(checkpoint, **options), TEXTS))


@pytest.mark.parametrize("strategy", ["simple", "first", "max"])
def test_stride_reads_a_long_text_in_overlapping_chunks_like_transformers(ours, theirs, strategy):
    options = dict(aggregation_strategy=strategy, stride=8, ignore_labels=[])
    found = calls(ours, LONG_TEXT, **options)
    assert_same(found, calls(theirs, LONG_TEXT, **options))
    assert found[-1]["end"] > len(LONG_TEXT) - 10  # the whole text was read


def test_over_long_text_is_truncated_with_a_warning(ours, theirs, caplog):
    with caplog.at_level(logging.WARNING, logger="fastbert.pipelines"):
        found = calls(ours, [TEXTS[0], LONG_TEXT], ignore_labels=[])
    assert "text 1 (" in caplog.text and f"longer than the {MAX_TOKENS} tokens" in caplog.text
    assert_same(found, calls(theirs, [TEXTS[0], LONG_TEXT], ignore_labels=[]))  # transformers cut it too


def test_checkpoint_without_tokenizer_json_answers_alike(checkpoint, tmp_path):
    """transformers builds a fast tokenizer from vocab.txt (or vocab.json and merges.txt) too: offsets and words."""
    vocabulary_only = copy_checkpoint_without(checkpoint, tmp_path / "ckpt", "tokenizer.json")
    ours = fastbert.pipeline("token-classification", model=vocabulary_only, device="cpu")
    for strategy in STRATEGIES:
        assert_same(calls(ours, TEXTS, aggregation_strategy=strategy),
                    calls(transformers_pipeline(vocabulary_only), TEXTS, aggregation_strategy=strategy), strategy)


@pytest.fixture(scope="module")
def slow_tokenizer_checkpoint(tmp_path_factory):
    """A BERT checkpoint whose tokenizer_config.json names a tokenizer class transformers loads as a slow tokenizer,
    without offsets (tokenizer.json left out, as such checkpoints have none)."""
    path = save(tmp_path_factory, "bert", "ForTokenClassification", **labelled(BIO))
    path = copy_checkpoint_without(path, tmp_path_factory.mktemp("slow") / "ckpt", "tokenizer.json")
    settings = json.loads((path / "tokenizer_config.json").read_text())
    (path / "tokenizer_config.json").write_text(json.dumps(dict(settings, tokenizer_class="BertTokenizerLegacy")))
    return path


@pytest.mark.parametrize("strategy", ["first", "average", "max"])
def test_word_strategies_need_offsets_as_in_transformers(slow_tokenizer_checkpoint, strategy):
    theirs = transformers_pipeline(slow_tokenizer_checkpoint)
    assert not theirs.tokenizer.is_fast
    with pytest.raises(ValueError) as expected:
        theirs("Hello there", aggregation_strategy=strategy)
    ours = fastbert.pipeline("token-classification", model=slow_tokenizer_checkpoint, device="cpu")
    with pytest.raises(ValueError) as raised:
        ours("Hello there", aggregation_strategy=strategy)
    assert str(raised.value) == str(expected.value)
    with pytest.raises(ValueError, match="Slow tokenizers cannot handle subwords"):
        fastbert.pipeline("token-classification", model=slow_tokenizer_checkpoint, aggregation_strategy=strategy)


def test_without_offsets_entities_have_no_start_or_end_as_in_transformers(slow_tokenizer_checkpoint):
    ours = fastbert.pipeline("token-classification", model=slow_tokenizer_checkpoint, device="cpu")
    ascii_texts = TEXTS[:5]  # the slow tokenizer's accent handling is its own
    for strategy in ("none", "simple"):
        found = ours(ascii_texts, aggregation_strategy=strategy, ignore_labels=[])
        assert all(e["start"] is None and e["end"] is None for entities in found for e in entities)
        assert_same(found, transformers_pipeline(slow_tokenizer_checkpoint)(ascii_texts, aggregation_strategy=strategy,
                                                                            ignore_labels=[]))


@pytest.mark.parametrize("bad, error, message", [
    (dict(aggregation_strategy="longest"), InputError, "aggregation_strategy='longest' is not one of none, simple"),
    (dict(aggregation_strategy="none", stride=4), InputError, "`stride` was provided to process all the text"),
    (dict(aggregation_strategy="simple", stride=MAX_TOKENS), InputError, "stride must be an integer from 0 to 37"),
    (dict(threshold=0.5), InputError, "token-classification got unexpected options threshold"),
])
def test_bad_options_are_errors(ours, bad, error, message):
    with pytest.raises(error, match=message):
        ours(TEXTS[0], **bad)


def test_a_checkpoint_without_the_head_is_refused(tmp_path_factory):
    masked_lm = save(tmp_path_factory, "bert", "ForMaskedLM")
    with pytest.raises(ValueError, match=r"has a masked-lm head; token-classification needs a checkpoint saved from a "
                                         r"\*ForTokenClassification model"):
        fastbert.pipeline("token-classification", model=masked_lm, device="cpu")


def test_empty_texts_are_errors(ours):
    with pytest.raises(InputError, match="text 2 is empty"):
        ours(["a", "b", ""])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, score_atol", [("float32", 1e-4), ("float16", 5e-3)])
def test_gpu_engine_answers_like_cpu_fp32(checkpoint, dtype, score_atol):
    """The CUDA-graph engine against the CPU reference, token by token: the same tokens, words and offsets, scores
    within tolerance, and the same label wherever the reference's is not a near tie; grouped entities the same when
    no token of the text is a near tie."""
    cpu = fastbert.pipeline("token-classification", model=checkpoint, device="cpu")
    gpu = fastbert.pipeline("token-classification", model=checkpoint, device="cuda", dtype=dtype)
    for text in TEXTS:
        want, got = calls(cpu, text, ignore_labels=[]), calls(gpu, text, ignore_labels=[])
        assert [(e["index"], e["word"], e["start"], e["end"]) for e in got] == \
            [(e["index"], e["word"], e["start"], e["end"]) for e in want]
        assert all(abs(a["score"] - b["score"]) < score_atol for a, b in zip(want, got))
        reference = cpu.model(**_inputs(cpu, text)).logits[0].softmax(-1)[1:-1]  # [tokens, labels], no specials
        clear = [clear_winner(row.tolist(), 2 * score_atol) for row in reference]
        assert all(a["entity"] == b["entity"] for a, b, c in zip(want, got, clear) if c)
        if all(clear):
            for strategy in ("simple", "first"):
                assert_same(calls(gpu, text, aggregation_strategy=strategy),
                            calls(cpu, text, aggregation_strategy=strategy))


def _inputs(pipe, text):
    encoding = pipe.tokenizer.encode([text], MAX_TOKENS)[0]
    return dict(input_ids=[encoding.ids], token_type_ids=[encoding.type_ids])
