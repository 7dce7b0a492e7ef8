"""Checkpoint weights: read (safetensors, sharded safetensors, pytorch .bin) and remap to fastbert's layout.

fastbert's layout: Q, K and V fused into one ``qkv`` weight per layer, names that say what each
tensor does (``layers.3.ffn_up.weight``), the task head's under ``head.`` and the pooler's under ``pooler.``, the
MLM decoder left out when tied to the word embeddings.
A fastbert checkpoint (``fastbert.safetensors``) is already in that layout and loads as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from . import heads
from .config import BertConfig
from .errors import CheckpointError
from .hub import CheckpointSource

FASTBERT_WEIGHTS = "fastbert.safetensors"
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                   "pytorch_model.bin.index.json")

# (pattern over a Hugging Face name with its model prefix stripped, fastbert name); the heads' are in fastbert.heads
ENCODER_RENAMES = (
    (r"embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight", r"embeddings.\1.weight"),
    (r"embeddings\.LayerNorm\.(weight|bias)", r"embeddings.norm.\1"),
    (r"encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)", r"layers.\1.\2.\3"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"layers.\1.attn_out.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias)", r"layers.\1.attn_norm.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"layers.\1.ffn_up.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"layers.\1.ffn_down.\2"),
    (r"encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias)", r"layers.\1.ffn_norm.\2"),
)
_MODEL_PREFIX = re.compile(r"^(?:bert|roberta|xlm_roberta|camembert)\.")
# an earlier fastbert layout named the masked-LM head "mlm"
_LEGACY_PREFIXES = (("mlm.", "head."),)


@dataclass
class Checkpoint:
    state: dict[str, torch.Tensor]  # fastbert's layout, on the CPU, in the stored dtype
    head: str                       # the head those tensors are for (fastbert.heads.CHOICES)


def stripped_name(name: str) -> str:
    """A Hugging Face tensor name without its model prefix, LayerNorm's old gamma/beta names modernized."""
    name = _MODEL_PREFIX.sub("", name)
    return name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")


def _renamed(name: str, renames) -> str | None:
    for pattern, replacement in renames:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, replacement, name)
    return None  # NSP head, position_ids buffers, other heads: not part of this model


def remap_hf_state(hf_state: dict[str, torch.Tensor], config: BertConfig, head: str) -> dict[str, torch.Tensor]:
    """Hugging Face names -> fastbert names for the encoder, its pooler and ``head``, with Q, K, V fused. The head's
    names come first: a BERT classifier's pooler is part of its head."""
    head_class = heads.HEADS.get(head)
    renames = (*(head_class.renames if head_class else ()), *heads.Pooler.renames, *ENCODER_RENAMES)
    state = {}
    for name, tensor in hf_state.items():
        new_name = _renamed(stripped_name(name), renames)
        if new_name is not None:
            state.setdefault(new_name, tensor)
    if not any(name.startswith("layers.") for name in state):
        raise CheckpointError("the checkpoint holds no BERT/RoBERTa encoder tensors")
    if head_class is not None:
        state = head_class.converted(state, config)
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


def load_checkpoint(source: CheckpointSource, config: BertConfig, head: str | None = None) -> Checkpoint:
    """The checkpoint's tensors in fastbert's layout, for ``head`` (None: the one ``heads.pick`` picks)."""
    fastbert_file = source.get(FASTBERT_WEIGHTS)
    if fastbert_file is not None:
        state = {_legacy_renamed(name): t for name, t in read_tensors(fastbert_file).items()}
        return Checkpoint(state, heads.pick(config, state, head))
    for filename in HF_WEIGHT_FILES:
        path = source.get(filename)
        if path is None:
            continue
        files = _shard_files(source, path) if filename.endswith(".index.json") else [path]
        hf_state = {}
        for f in files:
            hf_state.update(read_tensors(f))
        head = heads.pick(config, map(stripped_name, hf_state), head)
        return Checkpoint(remap_hf_state(hf_state, config, head), head)
    raise CheckpointError(
        f"checkpoint {source.name!r} has no weights: expected {FASTBERT_WEIGHTS} or one of {', '.join(HF_WEIGHT_FILES)}"
    )


def _legacy_renamed(name: str) -> str:
    for old, new in _LEGACY_PREFIXES:
        if name.startswith(old):
            return new + name[len(old):]
    return name
