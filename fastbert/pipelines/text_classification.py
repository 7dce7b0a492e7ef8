"""``fastbert.pipeline("text-classification")``: transformers' text-classification pipeline, answered by fastbert.

Scores come from the sequence-classification head's logits as transformers computes them (fp32 numpy), with its
default function (none for regression, sigmoid for multi-label or one label, else softmax) and its result shapes:
without ``top_k`` the best label alone, as ``{"label", "score"}`` (a lone string's answer wrapped in a list); with an
int the k best, with None every label, best first, as a list of those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..batching import TokenBatch, in_length_order
from ..errors import InputError
from ..heads.sequence_classification import SequenceClassificationHead
from ..text_inputs import check_text, checked
from .base import TaskPipeline
from .encoding import Truncation, encode
from .scores import sigmoid, softmax

FUNCTIONS = ("sigmoid", "softmax", "none")
PAIR_KEYS = ("text", "text_pair")


@dataclass(frozen=True)
class ClassificationOptions:
    function_to_apply: str | None  # None: the model's default
    top_k: int | None              # None: every label
    best_only: bool                # top_k not given: the best label as one dict, as transformers' legacy answer
    truncation: Truncation


class TextClassificationPipeline(TaskPipeline):
    """Labels each text or ``{"text", "text_pair"}`` pair, like transformers' ``TextClassificationPipeline``."""

    task = "text-classification"
    head = SequenceClassificationHead.name
    needs = "needs a checkpoint saved from a *ForSequenceClassification model"

    def options(self, given: dict) -> ClassificationOptions:
        given = dict(given)
        function = given.pop("function_to_apply", None)
        if function is not None:
            if not isinstance(function, str) or function.lower() not in FUNCTIONS:
                raise InputError(f"function_to_apply={function!r} is not one of {', '.join(FUNCTIONS)}")
            function = function.lower()
        best_only = "top_k" not in given
        top_k = given.pop("top_k", 1)
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a positive integer, or None for every label; got {top_k!r}")
        truncation = Truncation(given.pop("truncation", None), given.pop("max_length", None))
        if given:
            raise InputError(f"text-classification got unexpected options {', '.join(sorted(given))}")
        return ClassificationOptions(function, top_k, best_only, truncation)

    def __call__(self, inputs, *, batch_size: int | None = None, progress=None, **options):
        """``inputs``: a text, a ``{"text", "text_pair"}`` dict, or a list of those. Options: ``top_k``,
        ``function_to_apply``, ``truncation``, ``max_length`` (see the module's docstring)."""
        settings = self.call_options(options)
        texts = checked(inputs, text_and_pair)
        encodings = encode(self.tokenizer, texts, settings.truncation.length(self.tokenizer, self.positions),
                           warn=not settings.truncation.asked)
        logits = in_length_order(encodings, self.call_batch_size(batch_size), self._logits, progress)
        function = settings.function_to_apply or self.default_function()
        results = [self._labelled(SCORES[function](row), settings) for row in logits]
        if not texts.single:
            return results
        # transformers wraps a lone string's answer when the call gives no top_k, even one the pipeline was made with
        return [results[0]] if isinstance(inputs, str) and "top_k" not in options else results[0]

    def default_function(self) -> str:
        problem = self.model.config.problem_type
        if problem == "regression":
            return "none"
        if problem == "multi_label_classification" or len(self.model.labels) == 1:
            return "sigmoid"
        return "softmax"

    def _logits(self, encodings) -> list[np.ndarray]:
        batch = TokenBatch.padded(encodings, self.model.config.pad_token_id)
        logits = self.model(batch.input_ids, attention_mask=batch.attention_mask,
                            token_type_ids=batch.token_type_ids).logits                              # [B, L]
        return list(logits.float().cpu().numpy())

    def _labelled(self, scores: np.ndarray, settings: ClassificationOptions):
        labels = self.model.labels
        if settings.best_only and settings.top_k == 1:
            return {"label": labels[int(scores.argmax())], "score": scores.max().item()}
        ranked = sorted(({"label": label, "score": score.item()} for label, score in zip(labels, scores)),
                        key=lambda entry: entry["score"], reverse=True)
        return ranked if settings.top_k is None else ranked[:settings.top_k]


SCORES = {"sigmoid": sigmoid, "softmax": softmax, "none": lambda logits: logits}


def text_and_pair(item, which: str) -> tuple[str, str | None]:
    """A text, or a ``{"text", "text_pair"}`` dict, as ``(text, pair or None)``, each checked."""
    if isinstance(item, dict):
        if "text" not in item or set(item) - set(PAIR_KEYS):
            raise InputError(f"{which} is a dict with keys {sorted(item)}; a text pair is written "
                             '{"text": "My text", "text_pair": "My pair"}')
        pair = item.get("text_pair")
        return check_text(item["text"], f"{which}'s text"), (
            None if pair is None else check_text(pair, f"{which}'s text_pair"))
    if isinstance(item, (list, tuple)):
        raise InputError(f"{which} is a {type(item).__name__}: to send a text pair, send a dictionary "
                         '{"text": "My text", "text_pair": "My pair"}')
    return check_text(item, which), None
