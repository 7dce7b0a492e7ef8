"""fastbert.pipeline("feature-extraction") against transformers' pipeline: the base model's last hidden state of a
masked-LM checkpoint, as nested lists or tensors, tokenize_kwargs, and truncation."""

import logging

import pytest
import torch

import fastbert
from fastbert import FastBert
from tests.pipelines.conftest import MAX_TOKENS, TEXTS, assert_same, save


@pytest.fixture(scope="module")
def checkpoint(family, tmp_path_factory):
    return save(tmp_path_factory, family, "ForMaskedLM")


@pytest.fixture(scope="module")
def ours(checkpoint):
    return fastbert.pipeline("feature-extraction", model=checkpoint, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def theirs(checkpoint):
    transformers = pytest.importorskip("transformers")
    return transformers.pipeline("feature-extraction", model=str(checkpoint), device="cpu")


def test_nested_lists_per_text_match_transformers(ours, theirs):
    features = ours(TEXTS)
    assert [len(f) for f in features] == [1] * len(TEXTS)
    assert all(len(f[0][0]) == ours.model.config.hidden_size for f in features)
    assert_same(features, theirs(TEXTS))  # every text at its own length, though batched with longer ones
    assert_same(ours(TEXTS[0]), theirs(TEXTS[0]))
    assert_same(ours(TEXTS[:1]), theirs(TEXTS[:1]))


def test_return_tensors_gives_a_cpu_tensor_per_text(ours, theirs):
    tensor = ours(TEXTS[1], return_tensors=True)
    expected = theirs(TEXTS[1], return_tensors=True)
    assert isinstance(tensor, torch.Tensor) and tensor.device.type == "cpu" and tensor.shape == expected.shape
    torch.testing.assert_close(tensor, expected, atol=1e-4, rtol=0)
    tensors = ours(TEXTS, return_tensors=True)
    assert [t.shape for t in tensors] == [t.shape for t in theirs(TEXTS, return_tensors=True)]


def test_tokenize_kwargs_truncate_as_asked(ours, theirs, caplog):
    options = dict(tokenize_kwargs=dict(truncation=True, max_length=6))
    with caplog.at_level(logging.WARNING, logger="fastbert.pipelines"):
        assert_same(ours(TEXTS, **options), theirs(TEXTS, **options))
    assert not caplog.text  # asked for: no warning
    assert_same(ours(TEXTS, truncation=True), theirs(TEXTS, truncation=True))


def test_over_long_text_is_truncated_with_a_warning(ours, theirs, caplog):
    long_text = TEXTS[2] * 4
    with caplog.at_level(logging.WARNING, logger="fastbert.pipelines"):
        features = ours(long_text)
    assert "the text (" in caplog.text and f"longer than the {MAX_TOKENS} tokens" in caplog.text
    assert_same(features, theirs(long_text, tokenize_kwargs=dict(truncation=True, max_length=MAX_TOKENS)))


def test_bad_options_are_errors(ours):
    with pytest.raises(ValueError, match=r"truncation parameter defined twice \(given as keyword argument as well as "
                                         r"in tokenize_kwargs\)"):
        ours(TEXTS[0], truncation=True, tokenize_kwargs=dict(truncation=False))
    with pytest.raises(ValueError, match="tokenize_kwargs padding are not supported"):
        ours(TEXTS[0], tokenize_kwargs=dict(padding="max_length"))


def test_a_model_with_a_head_is_refused(checkpoint):
    model = FastBert.from_pretrained(checkpoint, device="cpu")
    with pytest.raises(ValueError, match=r"has a masked-lm head; feature-extraction reads the encoder alone: load the "
                                         r"checkpoint with FastBert.from_pretrained\(..., head='none'\)"):
        fastbert.pipeline("feature-extraction", model=model)
    encoder = FastBert.from_pretrained(checkpoint, device="cpu", head="none")
    assert fastbert.pipeline("feature-extraction", model=encoder)(TEXTS[0]) == \
        fastbert.pipeline("feature-extraction", model=checkpoint, device="cpu")(TEXTS[0])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_gpu_engine_answers_like_cpu_fp32(checkpoint, dtype):
    """The CUDA-graph engine's features against the CPU fp32 reference, within a few times the error of transformers'
    own model at that dtype on the GPU."""
    transformers = pytest.importorskip("transformers")
    reference = fastbert.pipeline("feature-extraction", model=checkpoint, device="cpu")(TEXTS, return_tensors=True)
    gpu = fastbert.pipeline("feature-extraction", model=checkpoint, device="cuda", dtype=dtype)
    gpu = gpu(TEXTS, return_tensors=True)
    peer = transformers.pipeline("feature-extraction", model=str(checkpoint), device=0, dtype=dtype)
    peer_error = max((p.float().cpu() - r).abs().max().item() for p, r in zip(peer(TEXTS, return_tensors=True),
                                                                                    reference))
    our_error = max((g.float() - r).abs().max().item() for g, r in zip(gpu, reference))
    assert all(g.dtype == dtype and g.shape == r.shape for g, r in zip(gpu, reference))
    assert our_error <= 3 * peer_error + 1e-4, (our_error, peer_error)
