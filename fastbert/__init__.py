"""fastbert: BERT and RoBERTa encoders on fused Triton kernels, loaded from Hugging Face checkpoints."""

from .config import BertConfig
from .convert import convert_checkpoint
from .cross_encoder import CrossEncoder
from .errors import (
    CheckpointError,
    DestinationError,
    DeviceError,
    FastBertError,
    InputError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from .model import FastBert, FastBertOutput
from .pipeline import pipeline
from .sentence_encoder import SentenceEncoder

__version__ = "0.1.0"

__all__ = [
    "BertConfig", "CheckpointError", "CrossEncoder", "DestinationError", "DeviceError", "FastBert", "FastBertError",
    "FastBertOutput", "InputError", "ModelNotFoundError", "SentenceEncoder", "UnsupportedModelError",
    "convert_checkpoint", "pipeline",
]
