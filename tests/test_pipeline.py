"""fastbert.pipeline("fill-mask") against transformers' fill-mask pipeline, on tiny random MLM checkpoints
with real tokenizers: MiniLM's uncased WordPiece (BERT) and a byte-level BPE trained here (RoBERTa)."""

import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

import fastbert
from fastbert import CheckpointError, FastBert, InputError, ModelNotFoundError
from tests.checkpoints import copy_checkpoint_without, save_bert_with_minilm_tokenizer, save_roberta_with_bpe_tokenizer
from tests.conftest import DEVICE

SCORE_RTOL = 1e-4  # fp32 on both sides; the logits differ only in summation order
MAX_TOKENS = 40    # the position table of both tiny checkpoints
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Checkpoint:
    path: Path
    mask: str
    targets: list[str]  # in the vocabulary, split into several tokens, and tokenizing to nothing
    fallback_path: Path  # the same checkpoint without tokenizer.json


@pytest.fixture(scope="session")
def bert_checkpoint(tmp_path_factory, minilm_path):
    path = save_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("bert_wordpiece"))
    fallback = copy_checkpoint_without(path, tmp_path_factory.mktemp("bert_vocab_txt") / "ckpt", "tokenizer.json")
    return Checkpoint(path, "[MASK]", ["capital", "##s", "Paris", "zzqx", ""], fallback)


@pytest.fixture(scope="session")
def roberta_checkpoint(tmp_path_factory):
    path = save_roberta_with_bpe_tokenizer(tmp_path_factory.mktemp("roberta_bpe"))
    fallback = copy_checkpoint_without(path, tmp_path_factory.mktemp("roberta_vocab_json") / "ckpt", "tokenizer.json")
    return Checkpoint(path, "<mask>", ["Ġthe", "ĠFrance", " capital", "Rome", ""], fallback)


@pytest.fixture(scope="session", params=["bert", "roberta"])
def checkpoint(request):
    return request.getfixturevalue(f"{request.param}_checkpoint")


@pytest.fixture(scope="session")
def ours(checkpoint):
    return fastbert.pipeline("fill-mask", model=checkpoint.path, device="cpu", batch_size=2)


@pytest.fixture(scope="session")
def theirs(checkpoint):
    transformers = pytest.importorskip("transformers")
    return transformers.pipeline("fill-mask", model=str(checkpoint.path), tokenizer=str(checkpoint.path), device="cpu")


def texts(mask: str) -> list[str]:
    """Varied lengths, punctuation and contractions, one text with two masks."""
    return [
        f"Paris is the {mask} of France.",
        f"{mask}",
        f"I can't believe it's not {mask}!",
        f"The quick brown fox jumps over the {mask} dog, and she sells sea shells by the sea shore.",
        f"Hello {mask}, hello there.",
        f"The capital of Italy is {mask}, and the capital of Spain is {mask}.",
        f"a {mask}",
    ]


def predictions(result) -> list[dict]:
    """The prediction dicts of a result, in order, whatever its nesting."""
    return [p for item in result for p in predictions(item)] if isinstance(result, list) else [result]


def without_scores(result):
    return [without_scores(item) for item in result] if isinstance(result, list) else \
        {k: v for k, v in result.items() if k != "score"}


def assert_same_predictions(ours, theirs):
    """Same nesting, tokens, token strings and sequences; scores to SCORE_RTOL."""
    assert without_scores(ours) == without_scores(theirs)
    our_scores = [p["score"] for p in predictions(ours)]
    assert all(type(s) is float for s in our_scores) and all(type(p["token"]) is int for p in predictions(ours))
    assert our_scores == pytest.approx([p["score"] for p in predictions(theirs)], rel=SCORE_RTOL)


@pytest.mark.parametrize("top_k", [5, 1, 12])
def test_one_mask_matches_transformers(checkpoint, ours, theirs, top_k):
    text = texts(checkpoint.mask)[0]
    assert len(ours(text, top_k=top_k)) == top_k
    assert_same_predictions(ours(text, top_k=top_k), theirs(text, top_k=top_k))


def test_several_masks_keep_special_tokens_in_sequences_like_transformers(checkpoint, ours, theirs):
    text = texts(checkpoint.mask)[-2]
    result = ours(text, top_k=3)
    assert len(result) == 2 and all(len(per_mask) == 3 for per_mask in result)
    assert checkpoint.mask in result[0][0]["sequence"]  # the other mask stays visible
    assert_same_predictions(result, theirs(text, top_k=3))


def test_batches_answer_each_text_in_order(checkpoint, ours, theirs):
    batch = texts(checkpoint.mask)
    assert_same_predictions(ours(batch), theirs(batch))
    assert_same_predictions(ours(batch, batch_size=3, top_k=2), theirs(batch, top_k=2))
    assert_same_predictions(ours(batch[:1]), theirs(batch[:1]))  # a one-text list answers like the text


def test_targets_match_transformers(checkpoint, ours, theirs, caplog):
    batch = texts(checkpoint.mask)
    with caplog.at_level(logging.WARNING, logger="fastbert.tokenizer"):
        assert_same_predictions(ours(batch, targets=checkpoint.targets), theirs(batch, targets=checkpoint.targets))
    assert "does not exist in the model vocabulary. Replacing with" in caplog.text
    assert "ignoring it" in caplog.text
    assert_same_predictions(ours(batch[0], targets=checkpoint.targets[0], top_k=3),
                            theirs(batch[0], targets=checkpoint.targets[0], top_k=3))


def test_fallback_tokenizer_files_answer_like_tokenizer_json(checkpoint, ours):
    fallback = fastbert.pipeline("fill-mask", model=checkpoint.fallback_path, device="cpu", batch_size=ours.batch_size)
    batch = texts(checkpoint.mask)
    assert fallback(batch) == ours(batch)
    assert fallback(batch, targets=checkpoint.targets) == ours(batch, targets=checkpoint.targets)


def test_loaded_model_with_tokenizer_argument(checkpoint, ours):
    model = FastBert.from_state(ours.model.config, ours.model.state_dict())  # not from_pretrained: no name
    with pytest.raises(ValueError, match="tokenizer="):
        fastbert.pipeline("fill-mask", model=model)
    fill = fastbert.pipeline("fill-mask", model=model, tokenizer=checkpoint.path, batch_size=ours.batch_size)
    assert fill(texts(checkpoint.mask)) == ours(texts(checkpoint.mask))


def test_triton_softmax_matches_transformers(roberta_checkpoint):
    """Triton on the test device (the interpreter on the CPU), in fp32 as transformers on the CPU."""
    transformers = pytest.importorskip("transformers")
    path, batch = roberta_checkpoint.path, texts(roberta_checkpoint.mask)[:3]
    fill = fastbert.pipeline("fill-mask", model=path, device=DEVICE, dtype=torch.float32, backend="triton")
    assert_same_predictions(fill(batch), transformers.pipeline("fill-mask", model=str(path), device="cpu")(batch))


def test_over_long_text_is_truncated_keeping_the_final_special_token(checkpoint, ours, theirs):
    long_text = texts(checkpoint.mask)[0] + " The quick brown fox jumps over the lazy dog." * 10
    truncated = ours(long_text)
    # transformers fails on it unless told to truncate
    assert_same_predictions(truncated, theirs(long_text, tokenizer_kwargs=dict(truncation=True, max_length=MAX_TOKENS)))
    assert_same_predictions(ours([long_text, "x " + long_text])[0], truncated)


def test_text_without_mask_is_an_error_naming_the_mask_token(checkpoint, ours):
    with pytest.raises(InputError, match=re.escape(f"has no mask token: write {checkpoint.mask}")):
        ours("Paris is the capital of France.")
    with pytest.raises(InputError, match="text 1 \\('no mask here'\\)"):
        ours([f"a {checkpoint.mask}", "no mask here"])


def test_a_mask_cut_by_truncation_is_an_error_naming_the_text_and_the_masks_lost(checkpoint, ours):
    """Refused rather than answered without it: the answer keeps one entry per mask of the text, always."""
    mask, filler = checkpoint.mask, " The quick brown fox jumps over the lazy dog." * 10
    with pytest.raises(InputError, match=f"^the text: 1 of its 1 {re.escape(mask)} tokens lie past the first "
                                         f"{MAX_TOKENS} tokens"):
        ours(filler + mask)
    with pytest.raises(InputError, match=f"^the text: 1 of its 2 {re.escape(mask)} tokens lie past"):
        ours(mask + filler + mask)
    with pytest.raises(InputError, match=f"^text 1 \\('{re.escape(mask)} The quick.*: 2 of its 3 "):
        ours([f"a {mask}", mask + filler + mask + mask])


def test_truncation_keeps_the_nesting_when_every_mask_is_kept(checkpoint, ours):
    mask, filler = checkpoint.mask, " The quick brown fox jumps over the lazy dog." * 10
    result = ours([f"{mask} and {mask}.{filler}", f"a {mask}"], top_k=2)
    assert [len(r) for r in result[0]] == [2, 2] and all(isinstance(p, dict) for p in result[1])


@pytest.mark.parametrize("inputs", [None, 42, b"a [MASK]", ["a [MASK]", None], [["a [MASK]"]]], ids=repr)
def test_inputs_that_are_not_texts_are_input_errors(ours, inputs):
    with pytest.raises(InputError, match="is (None|int 42|list .*), not a string|is bytes, not a string"):
        ours(inputs)


@pytest.mark.parametrize("top_k", [None, 0])
def test_top_k_none_and_zero_answer_like_transformers(checkpoint, ours, theirs, top_k):
    """None: the default, 5; 0: an empty list per mask, nested as usual."""
    batch = texts(checkpoint.mask)
    assert_same_predictions(ours(batch, top_k=top_k), theirs(batch, top_k=top_k))
    assert_same_predictions(ours(batch[-2], top_k=top_k), theirs(batch[-2], top_k=top_k))
    if top_k == 0:
        assert ours(batch[:2], top_k=0) == [[], []] and ours(batch[-2], top_k=0) == [[], []]


def test_bad_arguments_are_package_errors(checkpoint, ours, bert_base_dir, bert_checkpoint):
    with pytest.raises(InputError, match="unknown task 'summarization'; supported tasks: fill-mask, "):
        fastbert.pipeline("summarization", model=checkpoint.path)
    for top_k, message in ((-1, "must be at least 0, got -1"), (2.0, "must be an integer, got 2.0"),
                           ("3", "must be an integer")):
        with pytest.raises(InputError, match=f"top_k {message}"):
            ours(f"a {checkpoint.mask}", top_k=top_k)
    with pytest.raises(InputError, match="batch_size must be at least 1"):
        ours(f"a {checkpoint.mask}", batch_size=0)
    with pytest.raises(InputError, match="At least one target"):
        ours(f"a {checkpoint.mask}", targets=[""])
    with pytest.raises(CheckpointError, match="has no masked-language-model head"):
        fastbert.pipeline("fill-mask", model=bert_base_dir, tokenizer=bert_checkpoint.path, device="cpu")


@pytest.mark.parametrize("argument", ["model", "tokenizer"])
def test_an_empty_name_is_an_error(bert_checkpoint, argument):
    """Not the current directory, and not the default model."""
    names = {"model": bert_checkpoint.path, "tokenizer": None, argument: ""}
    with pytest.raises(ModelNotFoundError, match="name is empty"):
        fastbert.pipeline("fill-mask", device="cpu", **names)


def test_tokenizer_objects_answer_like_the_tokenizer_files(checkpoint, ours, theirs):
    """A ``tokenizers.Tokenizer``, or a transformers fast tokenizer (its backend, its special tokens); the caller's
    tokenizer keeps its own truncation and padding."""
    own = Tokenizer.from_file(str(checkpoint.path / "tokenizer.json"))
    settings = own.truncation, own.padding
    batch = texts(checkpoint.mask)
    for tokenizer in (own, theirs.tokenizer):
        fill = fastbert.pipeline("fill-mask", model=checkpoint.path, tokenizer=tokenizer, device="cpu",
                                 batch_size=ours.batch_size)
        assert fill(batch, top_k=3) == ours(batch, top_k=3)
    assert (own.truncation, own.padding) == settings


def test_objects_fastbert_cannot_take_name_what_it_expects(checkpoint, theirs):
    with pytest.raises(InputError, match=f"got a {type(theirs.model).__name__}; to load this model's checkpoint, "
                                         f"pass model='{re.escape(str(checkpoint.path))}'"):
        fastbert.pipeline("fill-mask", model=theirs.model)
    with pytest.raises(InputError, match="a tokenizers.Tokenizer, or a transformers fast tokenizer .*got a dict"):
        fastbert.pipeline("fill-mask", model=checkpoint.path, tokenizer={}, device="cpu")


def test_runs_without_importing_transformers(bert_checkpoint):
    code = ("import sys, fastbert; fastbert.pipeline('fill-mask', model=sys.argv[1], device='cpu')(sys.argv[2]); "
            "assert 'transformers' not in sys.modules, 'transformers was imported'")
    run = subprocess.run([sys.executable, "-c", code, str(bert_checkpoint.path), texts(bert_checkpoint.mask)[0]],
                         capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, score_atol", [("float32", 1e-4), ("float16", 5e-3)])
def test_gpu_engine_answers_like_cpu_fp32(roberta_checkpoint, dtype, score_atol):
    """The CUDA-graph engine against the CPU reference: the same candidates wherever the reference's
    ranking is not a near tie at the precision used."""
    batch = texts(roberta_checkpoint.mask)
    cpu = fastbert.pipeline("fill-mask", model=roberta_checkpoint.path, device="cpu")(batch, top_k=5)
    gpu = fastbert.pipeline("fill-mask", model=roberta_checkpoint.path, device="cuda", dtype=dtype)(batch, top_k=5)
    for want, got in zip(predictions(cpu), predictions(gpu)):
        assert abs(want["score"] - got["score"]) < score_atol
    per_mask = lambda results: [m for r in results for m in (r if isinstance(r[0], list) else [r])]  # noqa: E731
    for want_list, got_list in zip(per_mask(cpu), per_mask(gpu)):
        scores = [p["score"] for p in want_list]
        clear = all(a - b > 2 * score_atol for a, b in zip(scores, scores[1:]))
        if clear:
            assert [p["token"] for p in got_list] == [p["token"] for p in want_list]
            assert [p["sequence"] for p in got_list] == [p["sequence"] for p in want_list]
