"""The model side of each task: a fastbert API loaded once per replica, and one call of it per batch.

A batch holds inputs of several requests. Those whose requests asked for the same options (normalized or not, raw
scores or not, top_k) go through one call of the API, which sorts them by length and runs them packed, so that each
input gets what the in-process API gives it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..batching import Tokens
from ..cross_encoder import CrossEncoder
from ..errors import UnsupportedModelError
from ..model import FastBert
from ..pipeline import pipeline
from ..sentence_encoder import SentenceEncoder
from ..sentence_modules import Prompts
from ..tokenizer import TextTokenizer


@dataclass(frozen=True)
class Item:
    """One input of a request: a text, or a pair of texts (query and document, text and text pair), and the
    options its request asked for."""
    text: str | tuple[str, str]
    options: tuple = ()
    tokens: Tokens | None = None  # the input as the model reads it, where the task reads tokens (Task.reads_tokens)

    def __reduce__(self):
        # pickled by its constructor, as Tokens is: a dataclass's default pickling (its state as a dict) costs more
        return Item, (self.text, self.options, self.tokens)


@dataclass
class TaskSpec:
    """What the request side needs of a loaded task; a model replica sends it to the ingress."""
    task: str
    model_id: str
    dtype: str
    device: str
    max_input_length: int        # longest input in tokens, special tokens included
    tokenizer: TextTokenizer     # a copy of the task's own, for token counts and /tokenize
    labels: list[str] | None = None
    prompts: Prompts | None = None  # what the encoders put before each input (or each pair's first text)
    reads_tokens: bool = False      # whether the model side runs each item's tokens (Item.tokens) as they come


class Task:
    """A task's API object and its batch call; subclasses load the API and say how to call it."""

    name: ClassVar[str]
    # The encoders run inputs as the request side tokenized them (prompt and truncation included), so that a text is
    # tokenized once; the pipelines need their texts, for words, offsets and masks.
    reads_tokens: ClassVar[bool] = False

    def __init__(self, api, model_id: str, max_input_length: int, prompts: Prompts | None = None):
        """``api``: a pipeline or sentence encoder, whose ``model`` and ``tokenizer`` the task serves."""
        self.api = api
        self.model: FastBert = api.model
        self.model_id = model_id
        self.tokenizer: TextTokenizer = api.tokenizer
        self.max_input_length = max_input_length
        self.prompts = prompts

    @classmethod
    def load(cls, model: str | Path, *, device=None, dtype=None) -> Task:
        raise NotImplementedError

    def call(self, inputs: list, *options) -> list:
        """One result per input, from one call of the API with ``options``."""
        raise NotImplementedError

    def spec(self) -> TaskSpec:
        return TaskSpec(self.name, self.model_id, str(self.model.dtype).removeprefix("torch."), str(self.model.device),
                        self.max_input_length, copy.deepcopy(self.tokenizer), self.model.labels, self.prompts,
                        self.reads_tokens)

    def run(self, items: list[Item]) -> list:
        """One batch: a result per item, in order."""
        groups: dict[tuple, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item.options, []).append(index)
        results = [None] * len(items)
        for options, indices in groups.items():
            inputs = [self._input(items[i]) for i in indices]
            for index, result in zip(indices, self.call(inputs, *options), strict=True):
                results[index] = result
        return results

    def collect(self, results: list):
        """A request's results, in order, as its answer goes back to the request side."""
        return results

    def _input(self, item: Item):
        if not self.reads_tokens:
            return item.text
        if item.tokens is None:
            raise ValueError(f"the {self.name} task runs tokenized inputs, and an item came without its tokens")
        return item.tokens


class FillMaskTask(Task):
    name = "fill-mask"

    @classmethod
    def load(cls, model, *, device=None, dtype=None):
        fill = pipeline("fill-mask", model=model, device=device, dtype=dtype)
        return cls(fill, str(model), fill.model.config.max_sequence_length)

    def call(self, texts, top_k):
        results = self.api(texts, top_k=top_k, batch_size=len(texts))
        return [results] if len(texts) == 1 else results  # the pipeline answers a list of one text like the text


class EmbedTask(Task):
    name = "embed"
    reads_tokens = True

    @classmethod
    def load(cls, model, *, device=None, dtype=None):
        encoder = SentenceEncoder.from_pretrained(model, device=device, dtype=dtype)
        return cls(encoder, str(model), encoder.max_seq_length, encoder.prompts)

    def call(self, tokens, normalize):
        embeddings = self.api.encode_tokens(tokens, batch_size=len(tokens), normalize_embeddings=normalize)
        return list(embeddings.cpu().numpy())

    def collect(self, rows):
        # one [n, D] array: it pickles as one piece where n rows would pickle one by one
        return np.stack(rows)


class RerankTask(Task):
    name = "rerank"
    reads_tokens = True

    @classmethod
    def load(cls, model, *, device=None, dtype=None):
        cross_encoder = CrossEncoder.from_pretrained(model, device=device, dtype=dtype)
        if cross_encoder.num_labels != 1:
            raise UnsupportedModelError(f"rerank needs a model with one label, and {str(model)!r} has "
                                        f"{cross_encoder.num_labels}: serve it with --task classify")
        return cls(cross_encoder, str(model), cross_encoder.max_length, cross_encoder.prompts)

    def call(self, tokens, raw_scores):
        activation = {"activation_fn": torch.nn.Identity()} if raw_scores else {}
        return self.api.predict_tokens(tokens, batch_size=len(tokens), **activation).tolist()


class ClassifyTask(Task):
    name = "classify"

    @classmethod
    def load(cls, model, *, device=None, dtype=None):
        classify = pipeline("text-classification", model=model, device=device, dtype=dtype)
        return cls(classify, str(model), classify.model.config.max_sequence_length)

    def call(self, inputs, raw_scores):
        texts = [text if isinstance(text, str) else {"text": text[0], "text_pair": text[1]} for text in inputs]
        activation = {"function_to_apply": "none"} if raw_scores else {}
        return self.api(texts, top_k=None, batch_size=len(texts), **activation)


class NerTask(Task):
    name = "ner"

    @classmethod
    def load(cls, model, *, device=None, dtype=None):
        ner = pipeline("token-classification", model=model, device=device, dtype=dtype, aggregation_strategy="simple")
        return cls(ner, str(model), ner.length)

    def call(self, texts):
        return self.api(texts, batch_size=len(texts))


TASKS = {task.name: task for task in (EmbedTask, RerankTask, ClassifyTask, FillMaskTask, NerTask)}


def load_task(task: str, model: str | Path, *, device=None, dtype=None) -> Task:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return TASKS[task].load(model, device=device, dtype=dtype)
