"""``fastbert.pipeline("feature-extraction")``: transformers' feature-extraction pipeline, answered by fastbert.

It returns the encoder's last hidden state, as transformers' does through the base model (``AutoModel``), so a
checkpoint is loaded without its head: per text ``[1, S, H]`` as nested lists, or a CPU tensor with
``return_tensors=True``. Unlike transformers at a batch size above one, a text's features hold its own tokens only,
never the padding of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..batching import TokenBatch, in_length_order
from ..errors import InputError
from ..heads import NO_HEAD
from ..text_inputs import checked
from .base import TaskPipeline
from .encoding import Truncation, encode

TOKENIZE_KWARGS = ("truncation", "max_length")


@dataclass(frozen=True)
class FeatureOptions:
    return_tensors: bool
    truncation: Truncation


class FeatureExtractionPipeline(TaskPipeline):
    """Each text's last hidden state, like transformers' ``FeatureExtractionPipeline``."""

    task = "feature-extraction"
    head = NO_HEAD
    loads_head = NO_HEAD
    needs = "reads the encoder alone: load the checkpoint with FastBert.from_pretrained(..., head='none')"
    default_model = "bert-base-cased"

    def options(self, given: dict) -> FeatureOptions:
        given = dict(given)
        tokenize_kwargs = dict(given.pop("tokenize_kwargs", None) or {})
        if "truncation" in given:
            if "truncation" in tokenize_kwargs:
                raise InputError("truncation parameter defined twice (given as keyword argument as well as in "
                                 "tokenize_kwargs)")
            tokenize_kwargs["truncation"] = given.pop("truncation")
        unknown = sorted(set(tokenize_kwargs) - set(TOKENIZE_KWARGS))
        if unknown:
            raise InputError(f"tokenize_kwargs {', '.join(unknown)} are not supported; fastbert takes "
                             f"{', '.join(TOKENIZE_KWARGS)}")
        return_tensors = bool(given.pop("return_tensors", False))
        if given:
            raise InputError(f"feature-extraction got unexpected options {', '.join(sorted(given))}")
        return FeatureOptions(return_tensors, Truncation(**tokenize_kwargs))

    def __call__(self, inputs, *, batch_size: int | None = None, progress=None, **options):
        """For a text, its ``[1, S, H]`` features (nested lists, or a tensor with ``return_tensors=True``); for a list
        of texts, a list of those. Options: ``return_tensors``, ``truncation``, ``tokenize_kwargs`` (``truncation``,
        ``max_length``)."""
        settings = self.call_options(options)
        texts = checked(inputs)
        encodings = encode(self.tokenizer, texts, settings.truncation.length(self.tokenizer, self.positions),
                           warn=not settings.truncation.asked)
        features = in_length_order(encodings, self.call_batch_size(batch_size), self._features, progress)
        if not settings.return_tensors:
            features = [f.tolist() for f in features]
        return features[0] if texts.single else features

    def _features(self, encodings) -> list[torch.Tensor]:
        batch = TokenBatch.padded(encodings, self.model.config.pad_token_id)
        hidden = self.model(batch.input_ids, attention_mask=batch.attention_mask,
                            token_type_ids=batch.token_type_ids).last_hidden_state.cpu()            # [B, S, H]
        return [hidden[row, None, :len(encoding.ids)].clone() for row, encoding in enumerate(encodings)]
