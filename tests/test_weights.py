"""Reading checkpoints in every layout and naming variant, and the errors for broken ones."""

import json

import pytest
import torch
from safetensors.torch import save_file

from fastbert import BertConfig, CheckpointError, FastBert, UnsupportedModelError
from fastbert.weights import remap_hf_state
from tests.checkpoints import TINY_BERT, hf_model, save_hf_checkpoint


def hf_reference(architecture, ids, config=TINY_BERT):
    with torch.no_grad():
        return hf_model(architecture, config)(input_ids=ids).logits


def write_config(directory, **overrides):
    config = hf_model("BertForMaskedLM", TINY_BERT).config.to_dict()
    config.update(overrides)
    (directory / "config.json").write_text(json.dumps(config))


def test_legacy_names_in_pytorch_bin(tmp_path):
    """gamma/beta LayerNorm names, an explicit (tied) decoder and decoder bias, in a pickled state dict."""
    state = hf_model("BertForMaskedLM", TINY_BERT).state_dict()
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in state.items()}
    legacy["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    legacy["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    legacy["bert.embeddings.position_ids"] = torch.arange(TINY_BERT["max_position_embeddings"])[None]
    torch.save(legacy, tmp_path / "pytorch_model.bin")
    write_config(tmp_path)
    ids = torch.randint(0, TINY_BERT["vocab_size"], (2, 9))
    torch.testing.assert_close(FastBert.from_pretrained(tmp_path, device="cpu")(ids).logits,
                               hf_reference("BertForMaskedLM", ids), atol=5e-4, rtol=0)


def test_sharded_safetensors(tmp_path):
    save_hf_checkpoint(tmp_path, "BertForMaskedLM", TINY_BERT, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    ids = torch.randint(0, TINY_BERT["vocab_size"], (1, 13))
    torch.testing.assert_close(FastBert.from_pretrained(tmp_path, device="cpu")(ids).logits,
                               hf_reference("BertForMaskedLM", ids), atol=5e-4, rtol=0)


def test_untied_decoder_is_kept(tmp_path):
    config = dict(TINY_BERT, tie_word_embeddings=False)
    save_hf_checkpoint(tmp_path, "BertForMaskedLM", config)
    model = FastBert.from_pretrained(tmp_path, device="cpu")
    assert model.head.decoder.weight.data_ptr() != model.embeddings.word_embeddings.weight.data_ptr()
    ids = torch.randint(0, TINY_BERT["vocab_size"], (1, 6))
    torch.testing.assert_close(model(ids).logits, hf_reference("BertForMaskedLM", ids, config), atol=5e-4, rtol=0)


def test_qkv_is_fused_in_query_key_value_order():
    state = hf_model("BertModel", TINY_BERT).state_dict()
    fused = remap_hf_state(state, BertConfig.from_dict(dict(TINY_BERT)), "none")
    expected = torch.cat([state[f"encoder.layer.1.attention.self.{p}.weight"] for p in ("query", "key", "value")])
    assert torch.equal(fused["layers.1.qkv.weight"], expected)
    assert not any("query" in k or "LayerNorm" in k for k in fused)


def test_corrupt_weight_file_names_the_file(tmp_path):
    write_config(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        FastBert.from_pretrained(tmp_path, device="cpu")


def test_missing_weights_file(tmp_path):
    write_config(tmp_path)
    with pytest.raises(CheckpointError, match="has no weights"):
        FastBert.from_pretrained(tmp_path, device="cpu")


@pytest.mark.parametrize("architecture, removed, message", [
    ("BertForMaskedLM", "bert.encoder.layer.1.output.dense.weight", r"layers\.1\.ffn_down\.weight"),
    ("BertModel", "encoder.layer.0.attention.self.key.bias", "layer 0 lacks its attention key bias"),
])
def test_missing_tensor_is_named(tmp_path, architecture, removed, message):
    state = hf_model(architecture, TINY_BERT).state_dict()
    del state[removed]
    save_file({k: v.clone() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    write_config(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        FastBert.from_pretrained(tmp_path, device="cpu")


def test_wrong_shape_is_named(tmp_path):
    save_hf_checkpoint(tmp_path, "BertForMaskedLM", TINY_BERT)
    write_config(tmp_path, intermediate_size=64)
    with pytest.raises(CheckpointError, match="ffn_up.weight has shape"):
        FastBert.from_pretrained(tmp_path, device="cpu")


@pytest.mark.parametrize("model_type", ["gpt2", "deberta-v2", "electra"])
def test_unsupported_model_type_is_named(tmp_path, model_type):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    with pytest.raises(UnsupportedModelError, match=model_type):
        FastBert.from_pretrained(tmp_path, device="cpu")


def test_relative_positions_are_refused(tmp_path):
    write_config(tmp_path, position_embedding_type="relative_key")
    with pytest.raises(UnsupportedModelError, match="relative_key"):
        FastBert.from_pretrained(tmp_path, device="cpu")
