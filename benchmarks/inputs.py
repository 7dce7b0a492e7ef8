"""Fill-mask inputs as a tokenizer hands them over: CPU int64 ids and attention mask, one [MASK] per sequence."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from fastbert import BertConfig

FIRST_WORD_ID = 1000  # below: BERT's [unused] and special tokens


@dataclass(frozen=True)
class FillMaskBatch:
    input_ids: torch.Tensor        # [B, S] int64, rows padded with the pad id to the longest
    attention_mask: torch.Tensor   # [B, S] int64, 1 for tokens
    logits_at: torch.Tensor        # [B, S] bool, the [MASK] of each row
    lengths: tuple[int, ...]

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def seq_len(self) -> int:
        return self.input_ids.shape[1]


def special_ids(config: BertConfig) -> dict[str, int]:
    if config.is_roberta:  # <s>, </s>, <mask> is the last id of RoBERTa's vocabulary
        return dict(cls=0, sep=2, mask=config.vocab_size - 1, pad=config.pad_token_id)
    return dict(cls=101, sep=102, mask=103, pad=config.pad_token_id)


def fill_mask_batch(config: BertConfig, lengths: list[int], seed: int) -> FillMaskBatch:
    """Random words between [CLS] and [SEP], one [MASK] at a random word position of each row."""
    ids = special_ids(config)
    generator = torch.Generator().manual_seed(seed)
    seq_len = max(lengths)
    input_ids = torch.full((len(lengths), seq_len), ids["pad"], dtype=torch.int64)
    attention_mask = torch.zeros_like(input_ids)
    logits_at = torch.zeros_like(input_ids, dtype=torch.bool)
    for row, length in enumerate(lengths):
        if length < 3:
            raise ValueError(f"a fill-mask sequence needs [CLS], a [MASK] and [SEP]: length {length} is too short")
        input_ids[row, :length] = torch.randint(FIRST_WORD_ID, config.vocab_size - 1, (length,), generator=generator)
        input_ids[row, 0], input_ids[row, length - 1] = ids["cls"], ids["sep"]
        position = int(torch.randint(1, length - 1, (1,), generator=generator))
        input_ids[row, position] = ids["mask"]
        logits_at[row, position] = True
        attention_mask[row, :length] = 1
    return FillMaskBatch(input_ids, attention_mask, logits_at, tuple(lengths))


def mixed_lengths(count: int, shortest: int, longest: int, seed: int) -> list[int]:
    """Lengths spread log-uniformly over [shortest, longest], both ends included, as real traffic is mostly short."""
    rng = random.Random(seed)
    inner = [round(math.exp(rng.uniform(math.log(shortest), math.log(longest)))) for _ in range(count - 2)]
    return [shortest, *inner, longest]
