"""Model configuration: a dataclass read from a Hugging Face ``config.json``, plus presets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import CheckpointError, UnsupportedModelError

ROBERTA_FAMILY = ("roberta", "xlm-roberta", "camembert")
SUPPORTED_MODEL_TYPES = ("bert", *ROBERTA_FAMILY)
SUPPORTED_ACTIVATIONS = ("gelu",)


@dataclass(frozen=True)
class BertConfig:
    model_type: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    hidden_act: str = "gelu"
    tie_word_embeddings: bool = True
    # what a head needs from config.json: the transformers class it was saved from, and a classifier's labels
    architectures: tuple[str, ...] | None = None
    id2label: dict[int, str] | None = field(default=None, hash=False)
    label2id: dict[str, int] | None = field(default=None, hash=False)
    problem_type: str | None = None  # "regression", "single_label_classification", "multi_label_classification"

    def __post_init__(self):
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise UnsupportedModelError(
                f"model_type {self.model_type!r} is not supported; fastbert runs {', '.join(SUPPORTED_MODEL_TYPES)}"
            )
        if self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise UnsupportedModelError(
                f"hidden_act {self.hidden_act!r} is not supported; fastbert runs exact (erf) 'gelu'")
        if self.hidden_size % self.num_attention_heads:
            raise CheckpointError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )

    def labels(self, count: int) -> list[str]:
        """The names of a classifier's ``count`` outputs: ``id2label``'s, else LABEL_0.. as transformers names them."""
        if self.id2label is None:
            return [f"LABEL_{i}" for i in range(count)]
        return [self.id2label[i] for i in range(count)]

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def is_roberta(self) -> bool:
        return self.model_type in ROBERTA_FAMILY

    @property
    def max_sequence_length(self) -> int:
        """Longest input the position table covers (RoBERTa positions start after ``pad_token_id``)."""
        if self.is_roberta:
            return self.max_position_embeddings - self.pad_token_id - 1
        return self.max_position_embeddings

    @classmethod
    def from_dict(cls, hf: dict) -> "BertConfig":
        model_type = hf.get("model_type")
        if model_type is None:
            raise CheckpointError("config.json has no 'model_type'")
        position_type = hf.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise UnsupportedModelError(
                f"position_embedding_type {position_type!r} is not supported; fastbert runs 'absolute' positions"
            )
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in hf.items() if k in known and v is not None}
        if "architectures" in values:
            values["architectures"] = tuple(values["architectures"])
        if "id2label" in values:  # JSON object keys are strings
            values["id2label"] = {int(i): label for i, label in values["id2label"].items()}
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> "BertConfig":
        try:
            hf = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CheckpointError(f"cannot read model config {path}: {e}") from e
        return cls.from_dict(hf)

    @classmethod
    def preset(cls, name: str) -> "BertConfig":
        """The architecture of a well-known checkpoint, without touching the hub."""
        try:
            return cls(**PRESETS[name.split("/")[-1]])
        except KeyError:
            raise UnsupportedModelError(f"no preset named {name!r}; presets: {', '.join(sorted(PRESETS))}") from None

    def to_dict(self) -> dict:
        """config.json's fields, those not set left out (as transformers leaves out a plain encoder's labels)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v is not None}


_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
_ROBERTA = dict(model_type="roberta", vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                layer_norm_eps=1e-5, pad_token_id=1)

PRESETS: dict[str, dict] = {
    "bert-base-uncased": dict(_BASE, vocab_size=30522),
    "bert-base-cased": dict(_BASE, vocab_size=28996),
    "bert-large-uncased": dict(_LARGE, vocab_size=30522),
    "bert-large-cased": dict(_LARGE, vocab_size=28996),
    "roberta-base": dict(_BASE, **_ROBERTA),
    "roberta-large": dict(_LARGE, **_ROBERTA),
}
