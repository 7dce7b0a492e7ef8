import pytest

from fastbert import BertConfig, CheckpointError, UnsupportedModelError
from fastbert.config import PRESETS


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlm-roberta", "camembert"])
def test_reads_supported_model_types(model_type):
    config = BertConfig.from_dict({"model_type": model_type, "hidden_size": 96, "num_attention_heads": 3,
                                   "pad_token_id": 1, "max_position_embeddings": 514, "unknown_key": 7})
    assert config.head_dim == 32
    assert config.is_roberta == (model_type != "bert")
    assert config.max_sequence_length == (512 if config.is_roberta else 514)


def test_unsupported_type_and_activation():
    with pytest.raises(UnsupportedModelError, match="'t5'"):
        BertConfig.from_dict({"model_type": "t5"})
    with pytest.raises(UnsupportedModelError, match="gelu_new"):
        BertConfig.from_dict({"model_type": "bert", "hidden_act": "gelu_new"})
    with pytest.raises(CheckpointError, match="model_type"):
        BertConfig.from_dict({"hidden_size": 8})
    with pytest.raises(CheckpointError, match="not divisible"):
        BertConfig.from_dict({"model_type": "bert", "hidden_size": 100, "num_attention_heads": 3})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name):
    config = BertConfig.preset(name)
    assert config.hidden_size in (768, 1024)
    assert BertConfig.preset(f"FacebookAI/{name}") == config


def test_unknown_preset():
    with pytest.raises(UnsupportedModelError, match="no preset named 'bert-huge'"):
        BertConfig.preset("bert-huge")
