"""sentence-transformers' similarity functions, by the names its checkpoints save (``similarity_fn_name``): every
row of ``a`` against every row of ``b``, [N, M] fp32; distances are negated so that higher is more similar."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UnsupportedModelError


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a, p=2, dim=-1) @ F.normalize(b, p=2, dim=-1).T


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b.T


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return -torch.cdist(a, b, p=2.0)


def manhattan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return -torch.cdist(a, b, p=1.0)


SIMILARITIES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cosine": cosine, "dot": dot, "euclidean": euclidean, "manhattan": manhattan}
DEFAULT = "cosine"


def similarity_function(name: str | None) -> Callable:
    """The function of that name (None: cosine, sentence-transformers' default), taking embeddings as tensors, numpy
    arrays or lists of either, one embedding [D] or several [N, D]."""
    if name is None:
        name = DEFAULT
    if name not in SIMILARITIES:
        raise UnsupportedModelError(f"similarity function {name!r} is not one fastbert knows; it knows "
                                    f"{', '.join(SIMILARITIES)}")
    function = SIMILARITIES[name]

    def score(a, b) -> torch.Tensor:
        return function(_as_batch(a), _as_batch(b))
    return score


def _as_batch(embeddings) -> torch.Tensor:
    """[N, D] fp32 (at least: fp16 scores would round nearby ones into ties)."""
    if isinstance(embeddings, list) and embeddings and isinstance(embeddings[0], torch.Tensor):
        embeddings = torch.stack(embeddings)
    tensor = embeddings if isinstance(embeddings, torch.Tensor) else torch.as_tensor(np.asarray(embeddings))
    if not tensor.is_floating_point() or torch.finfo(tensor.dtype).bits < 32:
        tensor = tensor.float()
    return tensor[None] if tensor.dim() == 1 else tensor
