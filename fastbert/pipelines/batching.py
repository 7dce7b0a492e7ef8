"""Forward passes over many texts: batches of texts sorted by length, so that little of a batch is padding, and
results handed back in the caller's order."""

from __future__ import annotations

import operator
from typing import Callable, NamedTuple

import torch
from tokenizers import Encoding

from ..errors import InputError

GPU_BATCH_SIZE, CPU_BATCH_SIZE = 32, 8


class PaddedBatch(NamedTuple):
    """Right-padded [B, S] CPU tensors of a batch of encodings."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor


def default_batch_size(device: torch.device) -> int:
    return GPU_BATCH_SIZE if device.type == "cuda" else CPU_BATCH_SIZE


def check_count(name: str, value, *, least: int) -> int:
    """``value`` as an int of at least ``least``; anything else (a float, a string, too small) an InputError."""
    try:
        count = operator.index(value)  # ints of any kind (numpy's too), not floats
    except TypeError:
        raise InputError(f"{name} must be an integer, got {value!r}") from None
    if count < least:
        raise InputError(f"{name} must be at least {least}, got {count}")
    return count


def check_batch_size(batch_size) -> int:
    return check_count("batch_size", batch_size, least=1)


def padded(encodings: list[Encoding], pad_id: int) -> PaddedBatch:
    length = max(len(e.ids) for e in encodings)
    input_ids = torch.full((len(encodings), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    token_type_ids = torch.zeros_like(input_ids)
    for row, e in enumerate(encodings):
        n = len(e.ids)
        input_ids[row, :n] = torch.tensor(e.ids)
        attention_mask[row, :n] = 1
        token_type_ids[row, :n] = torch.tensor(e.type_ids)
    return PaddedBatch(input_ids, attention_mask, token_type_ids)


def in_length_order(encodings: list[Encoding], batch_size: int, predict: Callable[[list[Encoding]], list],
                    progress: Callable[[int], object] | None = None) -> list:
    """``predict`` over batches of at most ``batch_size`` encodings, shortest first; its results (one per encoding,
    in the order given to it) come back in the order of ``encodings``. ``progress(n)`` after each batch of n."""
    by_length = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    results = [None] * len(encodings)
    for start in range(0, len(by_length), check_batch_size(batch_size)):
        batch = by_length[start:start + batch_size]
        for index, result in zip(batch, predict([encodings[i] for i in batch])):
            results[index] = result
        if progress is not None:
            progress(len(batch))
    return results
