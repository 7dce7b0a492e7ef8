"""Fused ops, one file each: the Triton kernel, its launcher, and the PyTorch reference beside it.

A backend is the set of implementations the model calls; ``"torch"`` is the references,
``"triton"`` the kernels (GEMMs go through torch/cuBLAS on both).
"""

from dataclasses import dataclass
from typing import Callable

from .attention import attention, attention_reference
from .embeddings import embeddings, embeddings_reference
from .gelu import bias_gelu, bias_gelu_reference
from .layer_norm import layer_norm, layer_norm_reference
from .softmax import softmax, softmax_reference


@dataclass(frozen=True)
class Backend:
    name: str
    embeddings: Callable
    layer_norm: Callable
    attention: Callable
    bias_gelu: Callable
    softmax: Callable


BACKENDS = {
    "torch": Backend("torch", embeddings_reference, layer_norm_reference, attention_reference, bias_gelu_reference,
                     softmax_reference),
    "triton": Backend("triton", embeddings, layer_norm, attention, bias_gelu, softmax),
}
