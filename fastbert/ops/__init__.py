"""Fused ops, one file each: the Triton kernel, its launcher, and the PyTorch reference beside it.

A backend is the set of implementations the model calls; ``"torch"`` is the references,
``"triton"`` the kernels (with cuBLAS for the GEMMs).
"""

from dataclasses import dataclass
from typing import Callable

from . import attention, attention_output, embeddings, linear, pooling, softmax


@dataclass(frozen=True)
class Backend:
    name: str
    embeddings: Callable
    linear: Callable
    attention_packed: Callable
    attention_rows: Callable
    attention_packed_rows: Callable
    attention_output: Callable
    softmax: Callable
    pool_packed: Callable
    pool_padded: Callable


BACKENDS = {
    "torch": Backend("torch", embeddings.embeddings_reference, linear.linear_reference,
                     attention.attention_packed_reference, attention.attention_rows_reference,
                     attention.attention_packed_rows_reference, attention_output.attention_output_reference,
                     softmax.softmax_reference, pooling.pool_packed_reference, pooling.pool_padded),
    "triton": Backend("triton", embeddings.embeddings, linear.linear, attention.attention_packed,
                      attention.attention_rows, attention.attention_packed_rows,
                      attention_output.attention_output, softmax.softmax, pooling.pool_packed,
                      pooling.pool_padded),
}
