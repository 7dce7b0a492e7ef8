"""Padding-free batches: the valid tokens of a padded batch, concatenated row by row.

The packed encoder runs its GEMMs and LayerNorms on these T tokens only, and each token attends to
its own row's tokens (``ops.attention_packed``). Packing is host-side numpy on the caller's [B, S]
arrays, before anything reaches the device, so the number of tokens is known without a device sync
and a CUDA graph captured for a token-count bucket serves any batch of that many tokens.

Outputs come back as [B, S, ...] with zeros where ``attention_mask`` is 0 (the padded path computes
those positions, as transformers does; their values carry no meaning), or packed as [T, ...] with
the rows' token offsets when the caller asks for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .heads import Rows
from .tuning import Tuning


def token_bucket(tokens: int) -> int:
    """Multiples of 16 up to 128, then eight steps per doubling: a bucket wastes at most 1/8 of its tokens."""
    step = max(16, (1 << (max(tokens, 1).bit_length() - 1)) // 8)
    return -(-tokens // step) * step


def packing_obstacle(attention_mask: np.ndarray, logits_at: np.ndarray | None, reads_first: bool) -> str | None:
    """Why this batch cannot be packed without changing an answer, or None. ``reads_first``: a head reads each
    row's first position (a pooler, a sequence classifier), where a packed batch has the first real token."""
    if logits_at is not None and np.any(logits_at & (attention_mask == 0)):
        return "logits_at selects positions where attention_mask is 0; a packed batch does not compute those"
    if reads_first and np.any(attention_mask.any(axis=1) & (attention_mask[:, 0] == 0)):
        return "a head reads each row's first position, which attention_mask marks as padding in some row"
    return None


def pays_to_pack(attention_mask: np.ndarray, tuned: Tuning) -> bool:
    """The automatic choice: pack a large batch that is largely padding."""
    positions = attention_mask.size
    return (positions >= tuned.pack_from_positions
            and np.count_nonzero(attention_mask) <= tuned.pack_when_filled_below * positions)


@dataclass
class PackedBatch:
    shape: tuple[int, int]          # the padded batch's [B, S]
    kept: np.ndarray                # [T] flat indices into [B * S] of the tokens (attention_mask 1), row-major
    cu_seqlens: np.ndarray          # [B + 1] int32: row b's tokens are kept[cu_seqlens[b]:cu_seqlens[b + 1]]
    input_ids: np.ndarray           # [T]
    token_type_ids: np.ndarray      # [T]
    position_ids: np.ndarray        # [T] the positions each token had in its padded row
    logits_rows: np.ndarray | None  # packed indices of the tokens logits_at selects; None: no selection

    @classmethod
    def from_padded(cls, input_ids, attention_mask, token_type_ids, logits_at, padding_idx) -> PackedBatch:
        """[B, S] numpy arrays (types and logits_at may be None). ``padding_idx`` set selects RoBERTa positions."""
        batch, seq_len = input_ids.shape
        valid = attention_mask != 0
        kept = np.flatnonzero(valid)
        cu_seqlens = np.zeros(batch + 1, dtype=np.int32)
        np.cumsum(np.count_nonzero(valid, axis=1), out=cu_seqlens[1:])
        if padding_idx is None:
            positions = kept % seq_len
        else:  # HF's RoBERTa rule, on the padded row: non-pad ids count up from padding_idx + 1
            not_pad = input_ids != padding_idx
            positions = (np.cumsum(not_pad, axis=1) * not_pad + padding_idx).reshape(-1)[kept]
        types = token_type_ids.reshape(-1)[kept] if token_type_ids is not None else np.zeros(len(kept), np.int32)
        logits_rows = None
        if logits_at is not None:
            logits_rows = np.searchsorted(kept, np.flatnonzero(logits_at))
        return cls((batch, seq_len), kept, cu_seqlens, input_ids.reshape(-1)[kept], types, positions, logits_rows)

    @property
    def tokens(self) -> int:
        return len(self.kept)

    @property
    def logits_count(self) -> int | None:
        return None if self.logits_rows is None else len(self.logits_rows)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.cu_seqlens)

    def first_tokens(self) -> np.ndarray:
        """[B] each row's first token, where the pooler reads; 0 for a row without tokens (zeroed later)."""
        return np.where(self.lengths > 0, self.cu_seqlens[:-1], 0)

    def unpack(self, outputs: dict, layout: dict, inputs: dict, *, return_packed: bool) -> dict:
        """The packed forward's named device outputs (per token [>= T, ...], at the selected rows [>= N, ...], per
        sequence [>= B, ...], as ``layout`` says: ``FastBert.output_rows``) and the staged inputs it ran on
        (``fastbert.staging`` views) -> fresh outputs in the caller's layout, with ``cu_seqlens`` when
        ``return_packed``."""
        batch, seq_len = self.shape
        kept = inputs["kept"][: self.tokens]
        empty = np.flatnonzero(self.lengths == 0)

        def unpacked(name, rows):
            if layout[name] is Rows.SELECTED:
                return rows[: self.logits_count].clone()
            if layout[name] is Rows.SEQUENCES:
                rows = rows[:batch].clone()
                if len(empty):  # a row without tokens has nothing to pool
                    rows[torch.from_numpy(empty).to(rows.device)] = 0
                return rows
            return rows[: self.tokens].clone() if return_packed else scatter_rows(rows[: self.tokens], kept, batch,
                                                                                   seq_len)

        unpacked_outputs = {name: unpacked(name, rows) for name, rows in outputs.items()}
        if return_packed:
            unpacked_outputs["cu_seqlens"] = inputs["cu_seqlens"][: batch + 1].clone()
        return unpacked_outputs


def scatter_rows(rows: torch.Tensor, kept: torch.Tensor, batch: int, seq_len: int) -> torch.Tensor:
    """[T, D] rows -> [B, S, D], zeros where no row lands. ``kept``: int64 row indices into [B * S]."""
    return rows.new_zeros(batch * seq_len, rows.shape[-1]).index_copy_(0, kept, rows).view(batch, seq_len, -1)
