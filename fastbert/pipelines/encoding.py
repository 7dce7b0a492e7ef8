"""Texts (and text pairs) to encodings cut to what the model reads. Where transformers would fail on a text longer
than the model's positions, it is truncated with a warning naming it, as fill-mask truncates."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tokenizers import Encoding

from ..errors import InputError
from ..text_inputs import Texts, excerpt
from ..tokenizer import TextTokenizer

logger = logging.getLogger(__name__)

TRUNCATION_CHOICES = (None, False, True, "longest_first", "do_not_truncate")


def encode(tokenizer: TextTokenizer, texts: Texts, max_length: int, *, stride: int = 0,
           warn: bool = True) -> list[Encoding]:
    """An encoding per item of ``texts``: a text, or a ``(text, pair)`` tuple whose pair may be None. What is cut past
    ``max_length`` tokens lies in each encoding's ``overflowing`` (in pieces overlapping by ``stride`` tokens);
    ``warn``: log each truncated text (off where the caller asked for truncation)."""
    items = [item if isinstance(item, tuple) else (item, None) for item in texts.items]
    encodings = [None] * len(items)
    for paired in (False, True):  # the tokenizer takes a batch of texts or a batch of pairs
        rows = [i for i, (_, pair) in enumerate(items) if (pair is not None) == paired]
        if rows:
            pairs = [items[i][1] for i in rows] if paired else None
            for i, encoding in zip(rows, tokenizer.encode([items[i][0] for i in rows], max_length, pairs,
                                                           stride=stride)):
                encodings[i] = encoding
    if warn:
        for i, encoding in enumerate(encodings):
            if encoding.overflowing:
                logger.warning(f"{texts.which(i)} ({excerpt(items[i][0])}) is longer than the {max_length} tokens the "
                               f"model reads: truncated to them")
    return encodings


@dataclass(frozen=True)
class Truncation:
    """A caller's ``truncation`` and ``max_length``, as transformers' tokenizers take them: truncation asked for cuts
    at ``max_length``, else at the tokenizer's ``model_max_length``; a ``max_length`` alone asks for it too."""
    truncation: bool | str | None = None
    max_length: int | None = None

    def __post_init__(self):
        if self.truncation not in TRUNCATION_CHOICES:
            raise InputError(f"truncation={self.truncation!r} is not supported; choose one of "
                             f"{', '.join(map(repr, TRUNCATION_CHOICES))}")
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 1):
            raise InputError(f"max_length must be a positive integer, got {self.max_length!r}")

    @property
    def asked(self) -> bool:
        return self.truncation in (True, "longest_first") or (self.truncation is None and self.max_length is not None)

    def length(self, tokenizer: TextTokenizer, positions: int) -> int:
        """Where to cut: what was asked, within the model's ``positions``."""
        if not self.asked:
            return positions
        return min(positions, self.max_length or tokenizer.model_max_length)

