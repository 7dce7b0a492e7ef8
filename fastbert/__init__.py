"""fastbert: BERT and RoBERTa encoders on fused Triton kernels, loaded from Hugging Face checkpoints."""

from .config import BertConfig
from .convert import convert_checkpoint
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

__version__ = "0.1.0"

__all__ = [
    "BertConfig", "CheckpointError", "DestinationError", "DeviceError", "FastBert", "FastBertError", "FastBertOutput",
    "InputError", "ModelNotFoundError", "UnsupportedModelError", "convert_checkpoint", "pipeline",
]
