"""CrossEncoder against sentence-transformers' CrossEncoder on tiny random rerankers (BERT pairs with token types,
XLM-R pairs with </s></s>), saved by sentence-transformers and by transformers alone: predict and rank, activations,
truncation of long pairs, the converter, and the errors bad input gets."""

import json

import numpy as np
import pytest
import torch
from packaging.version import Version

from fastbert import CrossEncoder, InputError, UnsupportedModelError, convert_checkpoint
from tests.conftest import DEVICE
from tests.sentence_checkpoints import rewrite_json, save_cross_encoder

st = pytest.importorskip("sentence_transformers")

ATOL = 2e-5  # fp32 on both sides
# apply_softmax leaves a one-label model's scores as they are, as sentence-transformers documents; before 6.2 it
# softmaxed the single score into 1.0 all the same (softmax before the squeeze to [N])
ST_SOFTMAX_SKIPS_ONE_LABEL = Version(st.__version__).release >= (6, 2)
QUERY = "What is the capital of France?"
DOCUMENTS = ["Paris is the capital of France.", "", "Berlin ist die Hauptstadt Deutschlands.", "capital",
             " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 6),
             "France's capital, Paris, lies on the Seine.", "Paris is the capital of France."]
PAIRS = [(QUERY, d) for d in DOCUMENTS] + [(" ".join(["a long query about many things"] * 9), "short document")]


@pytest.fixture(scope="module", params=[("bert", 1), ("bert", 3), ("xlm-roberta", 1)],
                ids=lambda p: f"{p[0]}-{p[1]}-labels")
def reranker(request, tmp_path_factory):
    """A cross-encoder directory saved by sentence-transformers."""
    family, labels = request.param
    return save_cross_encoder(tmp_path_factory.mktemp(f"{family}_{labels}") / "ce", family, labels)


def reference(path, method, *args, **kwargs):
    return getattr(st.CrossEncoder(str(path), device="cpu"), method)(*args, **kwargs)


def test_predict_matches_sentence_transformers(reranker):
    ours = CrossEncoder.from_pretrained(reranker, device="cpu")
    labels = ours.num_labels
    scores = ours.predict(PAIRS, batch_size=3)
    assert scores.dtype == np.float32 and scores.shape == ((len(PAIRS),) if labels == 1 else (len(PAIRS), labels))
    np.testing.assert_allclose(scores, reference(reranker, "predict", PAIRS), atol=ATOL, rtol=0)
    identity = torch.nn.Identity()
    np.testing.assert_allclose(ours.predict(PAIRS, activation_fn=identity),
                               reference(reranker, "predict", PAIRS, activation_fn=identity), atol=ATOL, rtol=0)
    # where the installed sentence-transformers softmaxes one label anyway, its scores without softmax are the answer
    softmaxed = labels > 1 or ST_SOFTMAX_SKIPS_ONE_LABEL
    np.testing.assert_allclose(ours.predict(PAIRS, apply_softmax=True),
                               reference(reranker, "predict", PAIRS, apply_softmax=softmaxed), atol=ATOL, rtol=0)
    one = ours.predict(list(PAIRS[0]))
    np.testing.assert_allclose(one, reference(reranker, "predict", list(PAIRS[0])), atol=ATOL, rtol=0)
    tensor = ours.predict(PAIRS, convert_to_tensor=True, batch_size=3)
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_allclose(tensor.numpy(), scores, atol=0, rtol=0)


def test_rank_matches_sentence_transformers(reranker):
    ours = CrossEncoder.from_pretrained(reranker, device="cpu")
    if ours.num_labels != 1:
        with pytest.raises(UnsupportedModelError, match="rank needs a model with one label, and this one has 3"):
            ours.rank(QUERY, DOCUMENTS)
        return
    for kwargs in ({}, dict(top_k=3), dict(return_documents=True), dict(top_k=2, return_documents=True)):
        ranked, expected = ours.rank(QUERY, DOCUMENTS, **kwargs), reference(reranker, "rank", QUERY, DOCUMENTS,
                                                                             **kwargs)
        assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in expected]
        assert [r.get("text") for r in ranked] == [r.get("text") for r in expected]
        np.testing.assert_allclose([r["score"] for r in ranked], [r["score"] for r in expected], atol=ATOL, rtol=0)
    # the same document twice: equal scores keep the documents' order, as sentence-transformers' stable sort does
    ids = [r["corpus_id"] for r in ours.rank(QUERY, DOCUMENTS) if DOCUMENTS[r["corpus_id"]] == DOCUMENTS[0]]
    assert ids == [0, len(DOCUMENTS) - 1]


def test_pairs_are_tokenized_as_pairs(reranker):
    ours = CrossEncoder.from_pretrained(reranker, device="cpu")
    encoding = ours.tokenizer.encode(["first text"], ours.max_length, pairs=["second"])[0]
    if ours.model.config.is_roberta:
        assert encoding.tokens[0] == "<s>" and encoding.tokens.count("</s>") == 3  # <s> A </s></s> B </s>
    else:
        assert encoding.tokens[0] == "[CLS]" and encoding.tokens.count("[SEP]") == 2 and encoding.type_ids[-1] == 1


def test_transformers_checkpoint_with_activation_in_config_json(reranker):
    """A reranker saved by transformers alone (no sentence-transformers files), naming its activation in
    config.json as sentence-transformers writes it there."""
    plain = reranker.with_name(reranker.name + "-hf")
    if CrossEncoder.from_pretrained(plain, device="cpu").num_labels != 1:
        return
    np.testing.assert_allclose(CrossEncoder.from_pretrained(plain, device="cpu").predict(PAIRS),
                               reference(plain, "predict", PAIRS), atol=ATOL, rtol=0)
    rewrite_json(plain / "config.json", sentence_transformers={"activation_fn": "torch.nn.modules.linear.Identity"})
    ours = CrossEncoder.from_pretrained(plain, device="cpu")
    assert isinstance(ours.activation_fn, torch.nn.Identity)
    np.testing.assert_allclose(ours.predict(PAIRS), reference(plain, "predict", PAIRS), atol=ATOL, rtol=0)
    converted = convert_checkpoint(plain, plain.with_name("converted"), dtype="float32")
    assert json.loads((converted / "config.json").read_text())["sentence_transformers"]["activation_fn"].endswith(
        "Identity")
    np.testing.assert_array_equal(CrossEncoder.from_pretrained(converted, device="cpu").predict(PAIRS),
                                  ours.predict(PAIRS))


def test_conversion_of_a_sentence_transformers_reranker(reranker, tmp_path):
    original = CrossEncoder.from_pretrained(reranker, device="cpu")
    converted = CrossEncoder.from_pretrained(convert_checkpoint(reranker, tmp_path / "c", dtype="float32"),
                                             device="cpu")
    assert converted.max_length == original.max_length
    np.testing.assert_array_equal(converted.predict(PAIRS), original.predict(PAIRS))


def test_triton_backend_padded_and_packed(reranker):
    """On the test device (the interpreter on the CPU), in fp32: Triton's fp32 dot products are IEEE, and torch
    leaves TF32 off for fp32 matmuls by default, so only the order of sums differs from the reference."""
    expected = reference(reranker, "predict", PAIRS)
    ours = CrossEncoder.from_pretrained(reranker, device=DEVICE, dtype=torch.float32, backend="triton")
    for packed in (False, True):
        ours.model.packed = packed
        np.testing.assert_allclose(ours.predict(PAIRS, batch_size=4), expected, atol=ATOL, rtol=0)


def test_empty_input_gives_an_empty_result(reranker):
    ours = CrossEncoder.from_pretrained(reranker, device="cpu")
    assert ours.predict([]).shape == ((0,) if ours.num_labels == 1 else (0, ours.num_labels))
    if ours.num_labels == 1:
        assert ours.rank(QUERY, []) == []


@pytest.mark.parametrize("bad, message", [
    ([("only one",)], r"pair 0 is \('only one',\); a pair is two texts"),
    ([("a", "b", "c")], "pair 0 is .*; a pair is two texts"),
    ([("a", "b"), "not a pair"], "pair 1 is 'not a pair'; a pair is two texts"),
    (["a", "b", "c"], r"the pair is \['a', 'b', 'c'\]; a pair is two texts"),
    ([("a", 2)], "pair 0's second text is int 2, not a string"),
    ("a text", "pairs must be given as a list, got str 'a text'"),
])
def test_pairs_that_are_not_pairs_are_refused(reranker, bad, message):
    with pytest.raises(InputError, match=message):
        CrossEncoder.from_pretrained(reranker, device="cpu").predict(bad)


def test_bad_rank_arguments_are_refused(tmp_path):
    ours = CrossEncoder.from_pretrained(save_cross_encoder(tmp_path / "ce", "bert", 1), device="cpu")
    with pytest.raises(InputError, match="documents must be a list of texts, got str 'one document'"):
        ours.rank(QUERY, "one document")
    with pytest.raises(InputError, match="text 1 is int 1, not a string"):
        ours.rank(QUERY, ["a", 1])
    with pytest.raises(InputError, match=r"the query is list \['.*'\], not a string"):
        ours.rank([QUERY], ["a"])
    with pytest.raises(InputError, match="top_k must be at least 1"):
        ours.rank(QUERY, ["a"], top_k=0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_the_gpu(tmp_path, dtype):
    """fp16/bf16 logits on the GPU against fp32 on the CPU, within three times the error transformers makes in the
    same dtype on the same pairs (both round every layer's outputs to the dtype; fastbert keeps softmax and LayerNorm
    statistics in fp32), plus one unit in the last place of the largest logit."""
    path = save_cross_encoder(tmp_path / "ce", "bert", 1)
    identity = torch.nn.Identity()
    pairs = PAIRS * 5
    exact = CrossEncoder.from_pretrained(path, device="cpu").predict(pairs, activation_fn=identity)
    ours = CrossEncoder.from_pretrained(path, device="cuda", dtype=dtype)
    assert ours.model.packed
    theirs = st.CrossEncoder(str(path), device="cuda", model_kwargs={"dtype": dtype}).predict(
        pairs, activation_fn=identity)
    bound = 3 * np.abs(theirs - exact).max() + torch.finfo(dtype).eps * np.abs(exact).max()
    for _ in range(2):  # captured, then replayed
        assert np.abs(ours.predict(pairs, activation_fn=identity, batch_size=8) - exact).max() <= bound
