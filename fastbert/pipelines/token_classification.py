"""``fastbert.pipeline("token-classification")``: transformers' token-classification (NER) pipeline, answered by
fastbert.

The token-classification head runs at every token; entities are built from its softmax as transformers builds them
(``fastbert.pipelines.entities``). Texts are cut at the tokenizer's ``model_max_length``, as transformers cuts them,
and at the model's positions (with a warning) where transformers would fail; with ``stride`` a long text is read
whole, in overlapping chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..batching import TokenBatch, in_length_order
from ..errors import InputError
from ..heads.token_classification import TokenClassificationHead
from ..text_inputs import checked
from . import entities
from .base import TaskPipeline
from .encoding import encode
from .scores import softmax

SLOW_TOKENIZER_ERROR = ('Slow tokenizers cannot handle subwords. Please set the `aggregation_strategy` option to '
                        '`"simple"` or use a fast tokenizer.')


@dataclass(frozen=True)
class TokenClassificationOptions:
    aggregation_strategy: str
    ignore_labels: tuple[str, ...]
    stride: int | None


class TokenClassificationPipeline(TaskPipeline):
    """Labels the tokens, words or entities of each text, like transformers' ``TokenClassificationPipeline``."""

    task = "token-classification"
    head = TokenClassificationHead.name
    needs = "needs a checkpoint saved from a *ForTokenClassification model"
    default_model = "dbmdz/bert-large-cased-finetuned-conll03-english"  # transformers' default for the task

    def options(self, given: dict) -> TokenClassificationOptions:
        given = dict(given)
        strategy = given.pop("aggregation_strategy", None) or "none"
        if not isinstance(strategy, str) or strategy.lower() not in entities.STRATEGIES:
            raise InputError(f"aggregation_strategy={strategy!r} is not one of {', '.join(entities.STRATEGIES)}")
        strategy = strategy.lower()
        if strategy in entities.WORD_STRATEGIES and not self.tokenizer.is_fast:
            raise InputError(SLOW_TOKENIZER_ERROR)
        ignore_labels = given.pop("ignore_labels", None)
        ignore_labels = ("O",) if ignore_labels is None else tuple(ignore_labels)
        stride = given.pop("stride", None)
        if stride is not None:
            self._check_stride(stride, strategy)
        if given:
            raise InputError(f"token-classification got unexpected options {', '.join(sorted(given))}")
        return TokenClassificationOptions(strategy, ignore_labels, stride)

    def __call__(self, inputs, *, batch_size: int | None = None, progress=None, **options):
        """For a text, a list of entity dicts: per token ``{"entity", "score", "index", "word", "start", "end"}``
        with ``aggregation_strategy="none"`` (the default), else per group ``{"entity_group", "score", "word",
        "start", "end"}``; labels in ``ignore_labels`` (default ``["O"]``) left out. For a list of texts, a list of
        those. ``stride``: read a text longer than the model's length in chunks overlapping by that many tokens."""
        settings = self.call_options(options)
        texts = checked(inputs)
        stride = settings.stride
        encodings = encode(self.tokenizer, texts, self.length, stride=stride or 0, warn=stride is None)
        chunks = [[encoding, *(encoding.overflowing if stride is not None else ())] for encoding in encodings]
        flat = [chunk for text_chunks in chunks for chunk in text_chunks]
        scores = iter(in_length_order(flat, self.call_batch_size(batch_size), self._scores, progress))
        results = [self._entities(text, [next(scores) for _ in text_chunks], text_chunks, settings)
                   for text, text_chunks in zip(texts.items, chunks)]
        return results[0] if texts.single else results

    @property
    def length(self) -> int:
        """The tokens of a text or chunk: transformers truncates at the tokenizer's length; fastbert also at the
        model's positions."""
        return min(self.tokenizer.model_max_length, self.positions)

    def _check_stride(self, stride, strategy: str) -> None:
        if strategy == "none":
            raise InputError('`stride` was provided to process all the text but `aggregation_strategy="none"`, please '
                             'select another one instead.')
        if not self.tokenizer.is_fast:
            raise InputError("`stride` was provided to process all the text but you're using a slow tokenizer. "
                             "Please use a fast tokenizer.")
        room = self.length - self.tokenizer.backend.num_special_tokens_to_add(False)
        if not isinstance(stride, int) or not 0 <= stride < room:
            raise InputError(f"stride must be an integer from 0 to {room - 1}: the tokens a chunk of {self.length} "
                             f"holds besides its special tokens, less one; got {stride!r}")

    def _scores(self, encodings) -> list[np.ndarray]:
        """Per encoding, [S, L] fp32 softmax of the logits at its tokens."""
        batch = TokenBatch.padded(encodings, self.model.config.pad_token_id)
        logits = self.model(batch.input_ids, attention_mask=batch.attention_mask,
                            token_type_ids=batch.token_type_ids).logits.float().cpu().numpy()        # [B, S, L]
        return [softmax(row[:len(encoding.ids)]) for row, encoding in zip(logits, encodings)]

    def _entities(self, text: str, scores: list[np.ndarray], chunks, settings: TokenClassificationOptions) -> list:
        found = []
        for chunk, chunk_scores in zip(chunks, scores):
            tokens = entities.tokens(text, chunk, chunk_scores, self.tokenizer, settings.aggregation_strategy)
            grouped = entities.aggregate(tokens, settings.aggregation_strategy, self.model.labels, self.tokenizer)
            found += entities.without_ignored(grouped, settings.ignore_labels)
        return entities.merge_overlapping(found) if len(chunks) > 1 else found
