"""SentenceEncoder against sentence-transformers' SentenceTransformer on the same checkpoints: the real
all-MiniLM-L6-v2, and tiny random BERT and XLM-R checkpoints saved by sentence-transformers with every pooling mode,
Dense and Normalize; prompts, lowercasing, truncation, the file layouts it has used, and the errors bad input gets."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fastbert import InputError, SentenceEncoder, UnsupportedModelError, convert_checkpoint
from tests.conftest import DEVICE
from tests.sentence_checkpoints import rewrite_json, save_encoder, save_sentence_transformer

st = pytest.importorskip("sentence_transformers")

ATOL = 2e-5  # fp32 on both sides: the encoders differ only in the order of their sums
TEXTS = ["Paris is the capital of France.", "", "Grüße aus Köln — ÜBER ALLES!", "a",
         " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 6),
         "Hello, world", "MiniLM maps sentences to a dense vector space.", "  spaces   around  "]
POOLINGS = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ("cls", "mean", "max")]


def reference_model(path):
    """sentence-transformers on the CPU in fp32, whatever dtype the weights were saved in: transformers 5 loads them
    in that dtype (an fp16 copy of MiniLM in fp16), where fastbert's CPU default is fp32."""
    return st.SentenceTransformer(str(path), device="cpu", model_kwargs={"dtype": torch.float32})


def reference(path, texts, **kwargs):
    return reference_model(path).encode(texts, **kwargs)


def assert_matches(ours, theirs, atol=ATOL):
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=atol, rtol=0)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """A tiny random encoder per family, with its tokenizer."""
    return {family: save_encoder(tmp_path_factory.mktemp(f"{family}_encoder") / "model", family)
            for family in ("bert", "xlm-roberta")}


def sentence_model(tmp_path_factory, encoders, family, pooling, **kwargs):
    return save_sentence_transformer(tmp_path_factory.mktemp(f"{family}_st"), encoders[family], pooling, **kwargs)


@pytest.mark.parametrize("normalize", [False, True])
def test_minilm_matches_sentence_transformers(minilm_path, normalize):
    long_text = " ".join(["Sentence embeddings put similar meanings close together."] * 40)  # > 256 tokens: cut
    texts = [*TEXTS, long_text]
    encoder = SentenceEncoder.from_pretrained(minilm_path, device="cpu")
    assert encoder.max_seq_length == 256 and encoder.embedding_dimension == 384
    assert_matches(encoder.encode(texts, normalize_embeddings=normalize),
                   reference(minilm_path, texts, normalize_embeddings=normalize))


def test_minilm_answers_one_text_and_tensors_as_sentence_transformers(minilm_path):
    encoder = SentenceEncoder.from_pretrained(minilm_path, device="cpu")
    one = encoder.encode(TEXTS[0])
    assert one.shape == (384,)
    assert_matches(one, reference(minilm_path, TEXTS[0]))
    tensor = encoder.encode(TEXTS, convert_to_tensor=True, batch_size=3)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32 and tensor.shape == (len(TEXTS), 384)
    assert_matches(tensor.numpy(), reference(minilm_path, TEXTS))
    scores = encoder.similarity(tensor[:3], tensor)
    torch.testing.assert_close(scores, reference_model(minilm_path).similarity(tensor[:3], tensor), atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
@pytest.mark.parametrize("pooling", POOLINGS, ids=lambda p: "+".join(p) if isinstance(p, tuple) else p)
def test_pooling_modes_match_sentence_transformers(tmp_path_factory, encoders, family, pooling):
    path = sentence_model(tmp_path_factory, encoders, family, pooling)
    encoder = SentenceEncoder.from_pretrained(path, device="cpu")
    for normalize in (False, True):
        assert_matches(encoder.encode(TEXTS, normalize_embeddings=normalize, batch_size=3),
                       reference(path, TEXTS, normalize_embeddings=normalize))


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
def test_dense_layers_and_normalize_match_sentence_transformers(tmp_path_factory, encoders, family):
    dense = [(48, torch.nn.GELU()), (24, torch.nn.Tanh()), (16, torch.nn.Identity())]
    path = sentence_model(tmp_path_factory, encoders, family, ("mean", "cls"), dense=dense, normalize=True)
    encoder = SentenceEncoder.from_pretrained(path, device="cpu")
    assert encoder.embedding_dimension == 16
    assert all(p.dtype == torch.float32 for p in encoder.model.head.parameters())
    embeddings = encoder.encode(TEXTS)
    assert_matches(embeddings, reference(path, TEXTS))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-6)


def test_legacy_pooling_flags_are_read(tmp_path_factory, encoders):
    path = sentence_model(tmp_path_factory, encoders, "bert", ("cls", "max"))
    rewrite_json(path / "1_Pooling" / "config.json", pooling_mode=None, embedding_dimension=None,
                 word_embedding_dimension=36, pooling_mode_cls_token=True, pooling_mode_max_tokens=True,
                 pooling_mode_mean_tokens=False, pooling_mode_mean_sqrt_len_tokens=False)
    assert_matches(SentenceEncoder.from_pretrained(path, device="cpu").encode(TEXTS), reference(path, TEXTS))


def test_dense_weights_in_pytorch_model_bin(tmp_path_factory, encoders):
    path = sentence_model(tmp_path_factory, encoders, "bert", "mean", dense=[(20, torch.nn.ReLU())])
    weights = load_file(path / "2_Dense" / "model.safetensors")
    torch.save(weights, path / "2_Dense" / "pytorch_model.bin")
    (path / "2_Dense" / "model.safetensors").unlink()
    assert_matches(SentenceEncoder.from_pretrained(path, device="cpu").encode(TEXTS), reference(path, TEXTS))


def test_encoder_in_a_folder_of_its_own(tmp_path_factory, encoders):
    """The layout of older sentence-transformers releases: the encoder in 0_Transformer, a version file at the root."""
    path = sentence_model(tmp_path_factory, encoders, "bert", "mean", dense=[(12, torch.nn.Tanh())])
    folder = path / "0_Transformer"
    folder.mkdir()
    for item in list(path.iterdir()):
        if item.is_file() and item.name not in ("modules.json", "config_sentence_transformers.json", "README.md"):
            shutil.move(item, folder / item.name)
    modules = json.loads((path / "modules.json").read_text())
    modules[0]["path"] = "0_Transformer"
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "config.json").write_text(json.dumps({"__version__": "0.3.9"}))
    expected = reference(path, TEXTS)
    assert_matches(SentenceEncoder.from_pretrained(path, device="cpu").encode(TEXTS), expected)
    converted = convert_checkpoint(path, path.with_name("converted"), dtype="float32")
    assert_matches(SentenceEncoder.from_pretrained(converted, device="cpu").encode(TEXTS), expected)


def test_checkpoint_without_modules_json_is_mean_pooled(encoders):
    assert_matches(SentenceEncoder.from_pretrained(encoders["bert"], device="cpu").encode(TEXTS),
                   reference(encoders["bert"], TEXTS))


@pytest.mark.parametrize("family", ["bert", "xlm-roberta"])
def test_prompts_as_sentence_transformers_applies_them(tmp_path_factory, encoders, family):
    prompts = {"query": "query: ", "passage": "passage: ", "classification": "Classify this text: "}
    path = sentence_model(tmp_path_factory, encoders, family, "mean", prompts=prompts, default_prompt_name="passage")
    encoder = SentenceEncoder.from_pretrained(path, device="cpu")
    model = st.SentenceTransformer(str(path), device="cpu")
    texts = TEXTS[:4]
    for kwargs in ({}, dict(prompt_name="query"), dict(prompt_name="classification"), dict(prompt="Custom: "),
                   dict(prompt="", prompt_name="query"), dict(prompt_name="document")):
        assert_matches(encoder.encode(texts, **kwargs), model.encode(texts, **kwargs))
    with pytest.raises(InputError, match="prompt name 'nope' is not one of this model's prompts: .*'query'"):
        encoder.encode(texts, prompt_name="nope")


def test_lowercasing_and_max_seq_length_from_sentence_bert_config(tmp_path_factory, encoders):
    path = sentence_model(tmp_path_factory, encoders, "xlm-roberta", "mean")
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 9, "do_lower_case": True}))
    encoder = SentenceEncoder.from_pretrained(path, device="cpu")
    assert encoder.max_seq_length == 9
    texts = ["PARIS Is The Capital", "paris is the capital", "The Quick Brown Fox Jumps Over The Lazy Dog Again"]
    embeddings = encoder.encode(texts)
    np.testing.assert_array_equal(embeddings[0], embeddings[1])
    assert_matches(embeddings, reference(path, texts))


@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_follows_the_checkpoint(tmp_path_factory, encoders, name):
    path = sentence_model(tmp_path_factory, encoders, "bert", "mean", similarity_fn_name=name)
    encoder = SentenceEncoder.from_pretrained(path, device="cpu")
    assert encoder.similarity_fn_name == name
    a, b = encoder.encode(TEXTS[:3]), encoder.encode(TEXTS)
    expected = st.SentenceTransformer(str(path), device="cpu").similarity(a, b)
    torch.testing.assert_close(encoder.similarity(a, b), expected, atol=ATOL, rtol=1e-6)
    assert encoder.similarity(a[0], b).shape == (1, len(TEXTS))


def test_results_do_not_depend_on_batching(encoders):
    encoder = SentenceEncoder.from_pretrained(encoders["bert"], device="cpu")
    assert_matches(encoder.encode(TEXTS, batch_size=1), encoder.encode(TEXTS, batch_size=100))


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("packed", [False, True])
def test_backends_padded_and_packed(tmp_path_factory, encoders, backend, packed):
    """Triton on the test device (the interpreter on the CPU), in fp32: its fp32 dot products are IEEE, and torch
    leaves TF32 off for fp32 matmuls by default, so only the order of sums differs from the reference."""
    path = sentence_model(tmp_path_factory, encoders, "bert", ("mean", "cls", "lasttoken", "max"),
                          dense=[(10, torch.nn.Tanh())], normalize=True)
    device = DEVICE if backend == "triton" else "cpu"
    encoder = SentenceEncoder.from_pretrained(path, device=device, dtype=torch.float32, backend=backend)
    encoder.model.packed = packed
    assert_matches(encoder.encode(TEXTS, batch_size=4), reference(path, TEXTS))
    out = encoder.model(torch.tensor([[101, 2000, 102]]))
    assert out.sentence_embedding.shape == (1, 10) and out.last_hidden_state is None  # the embedding alone comes out


def test_conversion_reloads_with_its_modules(tmp_path_factory, encoders):
    path = sentence_model(tmp_path_factory, encoders, "bert", ("cls", "mean"), dense=[(20, torch.nn.SiLU())],
                          normalize=True, prompts={"query": "q: "}, default_prompt_name="query",
                          similarity_fn_name="dot")
    converted = convert_checkpoint(path, path.with_name(path.name + "-converted"), dtype="float32")
    original, reloaded = (SentenceEncoder.from_pretrained(p, device="cpu") for p in (path, converted))
    assert reloaded.similarity_fn_name == "dot" and reloaded.prompts == original.prompts
    np.testing.assert_array_equal(reloaded.encode(TEXTS), original.encode(TEXTS))
    half = SentenceEncoder.from_pretrained(convert_checkpoint(path, converted.with_name("fp16")), device="cpu")
    assert half.model.head.dense[0].weight.dtype == torch.float32  # Dense weights are kept as saved


def test_empty_list_gives_an_empty_result(encoders):
    encoder = SentenceEncoder.from_pretrained(encoders["bert"], device="cpu")
    assert encoder.encode([]).shape == (0, 36) and encoder.encode([], convert_to_tensor=True).shape == (0, 36)


@pytest.mark.parametrize("bad, message", [
    ([TEXTS[0], 3], "text 1 is int 3, not a string"),
    ([None], "text 0 is None, not a string"),
    ([b"bytes"], "text 0 is bytes, not a string: decode it first"),
    (42, "the text is int 42, not a string"),
    ({"text": "a"}, r"the text is dict \{'text': 'a'\}, not a string"),
])
def test_non_string_texts_are_refused(encoders, bad, message):
    with pytest.raises(InputError, match=message):
        SentenceEncoder.from_pretrained(encoders["bert"], device="cpu").encode(bad)


def test_unknown_module_is_named(tmp_path_factory, encoders):
    path = sentence_model(tmp_path_factory, encoders, "bert", "mean")
    modules = json.loads((path / "modules.json").read_text())
    modules.insert(1, {"idx": 1, "name": "1", "path": "1_LSTM", "type": "sentence_transformers.models.LSTM"})
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModelError, match=r"module '1' of modules.json is a sentence_transformers.models.LSTM"
                                                    r", which fastbert does not run"):
        SentenceEncoder.from_pretrained(path, device="cpu")


def test_modules_out_of_order_are_refused(tmp_path_factory, encoders):
    path = sentence_model(tmp_path_factory, encoders, "bert", "mean", dense=[(8, torch.nn.Tanh())], normalize=True)
    modules = json.loads((path / "modules.json").read_text())
    modules[2], modules[3] = modules[3], modules[2]
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModelError, match="lists Transformer, Pooling, Normalize, Dense"):
        SentenceEncoder.from_pretrained(path, device="cpu")


def test_a_prompt_left_out_of_pooling_is_refused(tmp_path_factory, encoders):
    path = sentence_model(tmp_path_factory, encoders, "bert", "mean", prompts={"query": "q: "})
    rewrite_json(path / "1_Pooling" / "config.json", include_prompt=False)
    encoder = SentenceEncoder.from_pretrained(path, device="cpu")
    assert_matches(encoder.encode(TEXTS), reference(path, TEXTS))  # no prompt: nothing is left out
    with pytest.raises(UnsupportedModelError, match="include_prompt=false"):
        encoder.encode(TEXTS, prompt_name="query")


def test_progress_bar_on_request(encoders, capsys):
    encoder = SentenceEncoder.from_pretrained(encoders["bert"], device="cpu")
    encoder.encode(TEXTS, batch_size=2)
    assert capsys.readouterr().err == ""
    encoder.encode(TEXTS, batch_size=2, show_progress_bar=True)
    assert f"{len(TEXTS)}/{len(TEXTS)}" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_minilm_on_the_gpu_matches_fp32(tmp_path, minilm_path, dtype):
    """The real MiniLM converted to the dtype, on the GPU (packed batches replayed from CUDA graphs), against fp32
    on the CPU: cosine >= 0.9999 for every text."""
    texts = [*TEXTS, " ".join(["Sentence embeddings put similar meanings close together."] * 40)] * 9
    expected = SentenceEncoder.from_pretrained(minilm_path, device="cpu").encode(texts)
    converted = convert_checkpoint(minilm_path, tmp_path / "converted", dtype=dtype)
    encoder = SentenceEncoder.from_pretrained(converted, device="cuda", dtype=dtype)
    assert encoder.model.packed and encoder.model.use_cuda_graphs
    for _ in range(2):  # the first call captures the graphs, the second replays them
        actual = encoder.encode(texts, batch_size=8)
        cosine = (actual * expected).sum(axis=1) / np.linalg.norm(actual, axis=1) / np.linalg.norm(expected, axis=1)
        assert cosine.min() >= 0.9999, cosine.min()
    assert encoder.model.graph_memory_bytes() > 0
