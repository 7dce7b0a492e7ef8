"""Checkpoint weights: read (safetensors, sharded safetensors, pytorch .bin) and remap to fastbert's layout.

fastbert's layout: Q, K and V fused into one ``qkv`` weight per layer, names that say what each
tensor does (``layers.3.ffn_up.weight``), the MLM decoder left out when tied to the word embeddings.
A fastbert checkpoint (``fastbert.safetensors``) is already in that layout and loads as it is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

from .config import BertConfig
from .errors import CheckpointError
from .hub import CheckpointSource

FASTBERT_WEIGHTS = "fastbert.safetensors"
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                   "pytorch_model.bin.index.json")

# (pattern over a Hugging Face name with its model prefix stripped, fastbert name)
_RENAMES = [
    (r"embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight", r"embeddings.\1.weight"),
    (r"embeddings\.LayerNorm\.(weight|bias)", r"embeddings.norm.\1"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)", r"layers.\1.\2.\3"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"layers.\1.attn_out.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)", r"layers.\1.attn_norm.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"layers.\1.ffn_up.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"layers.\1.ffn_down.\2"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", r"layers.\1.ffn_norm.\2"),
    (r"pooler\.dense\.(weight|bias)", r"pooler.\1"),
    (r"(?:cls\.predictions\.transform|lm_head)\.dense\.(weight|bias)", r"mlm.transform.\1"),
    (r"(?:cls\.predictions\.transform\.LayerNorm|lm_head\.layer_norm)\.(weight|bias)", r"mlm.norm.\1"),
    (r"(?:cls\.predictions|lm_head)\.decoder\.weight", r"mlm.decoder.weight"),
    (r"(?:cls\.predictions|lm_head)\.decoder\.bias", r"mlm.decoder.bias"),
    (r"(?:cls\.predictions|lm_head)\.bias", r"mlm.head_bias"),
]
_MODEL_PREFIX = re.compile(r"^(?:bert|roberta|xlm_roberta|camembert)\.")


def _hf_to_fastbert_name(name: str) -> str | None:
    name = _MODEL_PREFIX.sub("", name)
    name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    for pattern, replacement in _RENAMES:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, replacement, name)
    return None  # NSP head, position_ids buffers, task heads: not part of the encoder or MLM head


def remap_hf_state(hf_state: dict[str, torch.Tensor], config: BertConfig) -> dict[str, torch.Tensor]:
    """Hugging Face names -> fastbert names, with Q, K, V fused and a tied decoder left out."""
    state = {}
    for name, tensor in hf_state.items():
        new_name = _hf_to_fastbert_name(name)
        if new_name is not None:
            state.setdefault(new_name, tensor)
    if not state:
        raise CheckpointError("the checkpoint holds no BERT/RoBERTa encoder tensors")
    # The decoder's own bias is what transformers adds; the head-level one is its tied twin, saved alone when tied.
    head_bias = state.pop("mlm.head_bias", None)
    if head_bias is not None:
        state.setdefault("mlm.decoder.bias", head_bias)
    if config.tie_word_embeddings:
        state.pop("mlm.decoder.weight", None)  # as transformers does: the word embeddings serve
    for layer in range(config.num_hidden_layers):
        for kind in ("weight", "bias"):
            parts = [state.pop(f"layers.{layer}.{p}.{kind}", None) for p in ("query", "key", "value")]
            missing = [p for p, t in zip(("query", "key", "value"), parts) if t is None]
            if missing:
                raise CheckpointError(f"layer {layer} lacks its attention {'/'.join(missing)} {kind}")
            state[f"layers.{layer}.qkv.{kind}"] = torch.cat(parts, dim=0)
    return state


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one weight file, on the CPU."""
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file fails in many ways; all mean the same to the caller
        raise CheckpointError(f"cannot read weight file {path}: {e}") from e


def _shard_files(source: CheckpointSource, index_path: Path) -> list[Path]:
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"cannot read shard index {index_path}: {e}") from e
    return [source.get(shard, required=True) for shard in sorted(set(weight_map.values()))]


def load_state(source: CheckpointSource, config: BertConfig) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors in fastbert's layout, on the CPU, in their stored dtype."""
    fastbert_file = source.get(FASTBERT_WEIGHTS)
    if fastbert_file is not None:
        return read_tensors(fastbert_file)
    for filename in HF_WEIGHT_FILES:
        path = source.get(filename)
        if path is None:
            continue
        files = _shard_files(source, path) if filename.endswith(".index.json") else [path]
        hf_state = {}
        for f in files:
            hf_state.update(read_tensors(f))
        return remap_hf_state(hf_state, config)
    raise CheckpointError(
        f"checkpoint {source.name!r} has no weights: expected {FASTBERT_WEIGHTS} or one of {', '.join(HF_WEIGHT_FILES)}"
    )
