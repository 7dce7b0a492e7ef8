"""Checkpoints of the task pipelines' tests: tiny random BERT and RoBERTa models with each head, over real tokenizers
(MiniLM's uncased WordPiece, a byte-level BPE trained here), and a comparison of results that allows for scores."""

import pytest

from tests.checkpoints import save_bert_with_minilm_tokenizer, save_roberta_with_bpe_tokenizer

SCORE_ATOL = 1e-4  # fp32 on both sides; the logits differ only in summation order
MAX_TOKENS = 40    # the position table of both tiny checkpoints
SENTIMENT = {0: "negative", 1: "neutral", 2: "positive"}
BIO = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC", 5: "B-ORG", 6: "I-ORG"}
SAVERS = {"bert": (save_bert_with_minilm_tokenizer, "Bert"), "roberta": (save_roberta_with_bpe_tokenizer, "Roberta")}
TEXTS = [
    "Paris is the capital of France.",
    "I can't believe it's not butter!",
    "The quick brown fox jumps over the lazy dog, and she sells sea shells by the sea shore in Madrid.",
    "Hello world, hello there.",
    "a",
    "Zürich's café: xqzwv!",
]


def labelled(id2label: dict) -> dict:
    return dict(id2label=id2label, label2id={label: i for i, label in id2label.items()})


def save(tmp_path_factory, family: str, suffix: str, **config):
    """A tiny ``family`` checkpoint with the head of ``*{suffix}`` and its tokenizer files."""
    saver, prefix = SAVERS[family]
    return saver(tmp_path_factory.mktemp(f"{family}_{suffix}"), prefix + suffix, **config)


@pytest.fixture(scope="session", params=list(SAVERS))
def family(request):
    return request.param


def assert_same(ours, theirs, path="result"):
    """Same nesting, keys, labels, words and offsets; scores (and features) within SCORE_ATOL."""
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours!r} != {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), f"{path}: {ours!r} != {theirs!r}"
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{path}[{key!r}]")
    elif isinstance(theirs, str) or theirs is None or isinstance(theirs, int) and not isinstance(theirs, bool):
        assert ours == theirs and type(ours) is type(theirs), f"{path}: {ours!r} != {theirs!r}"
    else:  # a score: a Python float here, a float or numpy float32 there
        assert type(ours) is float and abs(ours - float(theirs)) <= SCORE_ATOL, f"{path}: {ours!r} != {theirs!r}"


def clear_winner(scores, margin: float) -> bool:
    """Whether the best of ``scores`` leads the next by more than ``margin``: its label cannot flip under an error of
    half that."""
    best, second = sorted(scores, reverse=True)[:2]
    return best - second > margin
