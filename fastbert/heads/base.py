"""What every head shares: the token rows it reads, the layout of its outputs, and the last layer as it sees it.

A head declares which rows of the last layer it reads. The engine runs the last layer only at those rows when no
head reads every token (a layer's other rows feed nothing but their own outputs), and carries each head's named
outputs to the caller by their layout, without knowing what they are.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import BertConfig


class Rows(enum.Enum):
    """Which token rows a head reads, and so which rows its outputs have."""
    TOKENS = "tokens"        # every token: [B, S, ...] padded, [T, ...] packed
    SELECTED = "selected"    # the rows ``logits_at`` selects, [N, ...]; every token when there is no selection
    FIRST = "first"          # each sequence's first token, [B, ...]
    LAST = "last"            # each sequence's last real token, [B, ...]
    SEQUENCES = "sequences"  # an output per sequence, [B, ...], computed from any of the above


@dataclass
class LastLayer:
    """The last encoder layer's output as the heads read it."""
    tokens: torch.Tensor | None             # [B, S, H] or packed [T, H]; None when the layer ran at some rows only
    rows: dict[Rows, torch.Tensor]          # [N, H] at SELECTED, [B, H] at FIRST and LAST: the rows heads asked for
    key_mask: torch.Tensor | None = None    # [B, S] int32, 1 for real tokens (padded batches)
    cu_seqlens: torch.Tensor | None = None  # [B + 1] int32 token offsets of each sequence (packed batches)

    def at(self, rows: Rows) -> torch.Tensor:
        if rows is Rows.TOKENS or (rows is Rows.SELECTED and Rows.SELECTED not in self.rows):
            return self.tokens
        return self.rows[rows]


class Head(nn.Module):
    """A task head: parameters built on the meta device and filled from a checkpoint, like the encoder's.

    ``reads``: the rows it reads. ``outputs``: its output names, each with the rows it has (SEQUENCES for one per
    sequence). ``forward(last, ops)`` returns a dict of those outputs."""
    name: str                  # the registry's name, as ``head=`` takes it
    architecture: str | None   # the suffix of a transformers class with this head (BertForMaskedLM), if any
    renames: tuple = ()        # (pattern over a checkpoint name without its model prefix, fastbert name)
    reads: frozenset[Rows]
    outputs: dict[str, Rows]
    returns_hidden_state = True  # False: calls return the head's outputs without the last layer's hidden states

    @classmethod
    def from_checkpoint(cls, config: BertConfig, state: dict[str, torch.Tensor]) -> Head:
        """The head, on the meta device, sized for ``state``'s tensors."""
        return cls(config)

    def widths(self) -> dict[str, int]:
        """Each output's last dimension."""
        raise NotImplementedError

    @staticmethod
    def converted(state: dict[str, torch.Tensor], config: BertConfig) -> dict[str, torch.Tensor]:
        """A renamed checkpoint's tensors made ready for this head (see the masked-LM head's tied decoder)."""
        return state

    @staticmethod
    def tied(tensors: dict[str, torch.Tensor], config: BertConfig) -> dict[str, torch.Tensor]:
        """Tensors the checkpoint leaves out because they alias others, filled in."""
        return tensors
