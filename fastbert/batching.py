"""Many tokenized texts through a model: batches of texts of similar lengths, so that little is padding, padded on
the host, and the results put back in the caller's order."""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from tokenizers import Encoding
from tqdm import tqdm

from .errors import InputError

GPU_BATCH_SIZE, CPU_BATCH_SIZE = 32, 8


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


class Tokens(NamedTuple):
    """An input as tokenized for the model (special tokens added, cut to its length): all that ``TokenBatch`` reads
    of a tokenizer's Encoding, and small enough to send between processes."""
    ids: list[int]
    type_ids: list[int]

    def __reduce__(self):
        # pickled by its constructor: a named tuple's default goes through a Python __getnewargs__ call, which a
        # server pays for each input it sends to a model replica
        return Tokens, (self.ids, self.type_ids)


@dataclass
class TokenBatch:
    """Right-padded [B, S] int64 arrays, as FastBert takes them (host numpy: checked and staged without copies)."""
    input_ids: np.ndarray
    attention_mask: np.ndarray  # 1 for tokens, 0 for padding
    token_type_ids: np.ndarray

    @classmethod
    def padded(cls, encodings: Sequence[Encoding | Tokens], pad_id: int) -> TokenBatch:
        lengths = [len(e.ids) for e in encodings]
        shape = (len(encodings), max(lengths))
        input_ids = np.full(shape, pad_id, dtype=np.int64)
        attention_mask = np.zeros(shape, dtype=np.int64)
        token_type_ids = np.zeros(shape, dtype=np.int64)
        for row, (e, n) in enumerate(zip(encodings, lengths)):
            input_ids[row, :n] = e.ids
            attention_mask[row, :n] = 1
            token_type_ids[row, :n] = e.type_ids
        return cls(input_ids, attention_mask, token_type_ids)

    def inputs(self) -> dict[str, np.ndarray]:
        """The keyword arguments of ``FastBert.__call__``."""
        return dict(input_ids=self.input_ids, attention_mask=self.attention_mask, token_type_ids=self.token_type_ids)


def by_length(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """The indices of each batch: longest first, so that batches pad little and the largest comes first (a
    progress bar's estimate errs long, and the memory a run needs is taken at its start)."""
    check_batch_size(batch_size)
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def run_by_length(encodings: Sequence[Encoding | Tokens], batch_size: int, pad_id: int,
                  forward: Callable[[TokenBatch], torch.Tensor], *, progress: bool = False) -> torch.Tensor:
    """``forward`` on padded batches of ``encodings`` (see ``by_length``), its [b, ...] rows concatenated in the
    order of ``encodings``, on forward's device. ``progress``: a progress bar on stderr, counting texts."""
    batches = by_length([len(e.ids) for e in encodings], batch_size)
    outputs = []
    with tqdm(total=len(encodings), unit="text", disable=not progress) as bar:
        for indices in batches:
            outputs.append(forward(TokenBatch.padded([encodings[i] for i in indices], pad_id)))
            bar.update(len(indices))
    rows = torch.cat(outputs)
    order = torch.from_numpy(np.concatenate(batches)).to(rows.device)
    return torch.empty_like(rows).index_copy_(0, order, rows)


def in_length_order(encodings: Sequence[Encoding], batch_size: int, predict: Callable[[list[Encoding]], list],
                    progress: Callable[[int], object] | None = None) -> list:
    """``predict`` over batches of ``encodings`` (see ``by_length``); its results (one per encoding, in the order
    given to it) come back in the order of ``encodings``. ``progress(n)`` after each batch of n."""
    results = [None] * len(encodings)
    for indices in by_length([len(e.ids) for e in encodings], batch_size):
        for index, result in zip(indices, predict([encodings[i] for i in indices])):
            results[index] = result
        if progress is not None:
            progress(len(indices))
    return results


def show_progress(requested: bool | None) -> bool:
    """sentence-transformers' rule where the caller does not say: a progress bar when fastbert logs at INFO."""
    return requested if requested is not None else logging.getLogger("fastbert").isEnabledFor(logging.INFO)
