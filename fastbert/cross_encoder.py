"""``fastbert.CrossEncoder``: sentence-transformers' ``CrossEncoder.predict`` and ``rank`` on fastbert's encoder.

A cross-encoder (reranker) is a sequence classifier that reads two texts at once: each pair is tokenized as a text
pair (token types for BERT, ``</s></s>`` between them for RoBERTa, as the tokenizer's post-processor has it) and its
logits pass through the checkpoint's activation, sigmoid for one label by default.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable, Sequence

import torch
from tokenizers import Encoding

from . import sentence_checkpoint, text_inputs
from .batching import TokenBatch, Tokens, run_by_length, show_progress
from .errors import CheckpointError, InputError, UnsupportedModelError
from .heads import SequenceClassificationHead
from .model import FastBert
from .sentence_modules import Prompts
from .tokenizer import TextTokenizer

logger = logging.getLogger(__name__)

# where config.json keeps a cross-encoder's activation (the second key: sentence-transformers before 4.0)
CONFIG_ACTIVATION_KEYS = (("sentence_transformers", "activation_fn"), ("sbert_ce_default_activation_function",))


class CrossEncoder:
    """Scores text pairs as sentence-transformers' ``CrossEncoder`` does for the same checkpoint."""

    def __init__(self, model: FastBert, tokenizer: TextTokenizer, *, max_length: int, prompts: Prompts,
                 activation_fn: Callable | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.prompts = prompts
        if activation_fn is None:  # sentence-transformers' default
            activation_fn = torch.nn.Sigmoid() if self.num_labels == 1 else torch.nn.Identity()
        self.activation_fn = activation_fn
        model.packed = model.device.type == "cuda"  # the CPU packs by masking a [T, T] product: slower

    @classmethod
    def from_pretrained(cls, name_or_path, *, device=None, dtype=None, backend=None, revision=None,
                        token=None) -> CrossEncoder:
        """A sequence-classification checkpoint (hub id or directory), as saved by sentence-transformers or
        transformers. Arguments as in ``FastBert.from_pretrained``."""
        loaded = sentence_checkpoint.load(name_or_path, head=SequenceClassificationHead.name, device=device,
                                          dtype=dtype, backend=backend, revision=revision, token=token)
        path = loaded.modules.activation_fn or _config_activation(loaded.source.config_path)
        return cls(loaded.model, loaded.tokenizer, max_length=loaded.max_length, prompts=loaded.modules.prompts,
                   activation_fn=activation(path) if path else None)

    @property
    def num_labels(self) -> int:
        return len(self.model.labels)

    def predict(self, pairs, *, batch_size: int = 32, activation_fn: Callable | None = None,
                apply_softmax: bool = False, show_progress_bar: bool | None = None, convert_to_tensor: bool = False,
                prompt_name: str | None = None, prompt: str | None = None):
        """Scores of ``pairs`` (a list of (first, second) texts, or one pair): fp32 numpy [N] for a one-label model,
        [N, L] otherwise ([] or [L] for one pair); a tensor on the model's device with ``convert_to_tensor``.
        ``activation_fn`` replaces the checkpoint's activation; ``apply_softmax`` then normalizes several labels.
        ``prompt`` (else the one named ``prompt_name``, else the default) goes before each first text."""
        inputs = text_inputs.pairs(pairs)
        prefix = self.prompts.resolve(prompt, prompt_name)
        encodings = self.tokenizer.encode([prefix + first for first, _ in inputs.items], self.max_length,
                                          pairs=[second for _, second in inputs.items])
        scores = self.predict_tokens(encodings, batch_size=batch_size, activation_fn=activation_fn,
                                     show_progress_bar=show_progress_bar)
        if apply_softmax and self.num_labels > 1:
            scores = torch.softmax(scores, dim=1)
        if not convert_to_tensor:
            scores = scores.cpu().numpy()
        return scores[0] if inputs.single else scores

    def predict_tokens(self, tokens: Sequence[Encoding | Tokens], *, batch_size: int = 32,
                       activation_fn: Callable | None = None, show_progress_bar: bool | None = None) -> torch.Tensor:
        """Scores, on the model's device ([N] for one label, else [N, L]), of pairs this cross-encoder's tokenizer
        has already tokenized (prompt and truncation included): a server's replicas run what its request side
        tokenized, once. ``activation_fn`` as in ``predict``."""
        if tokens:
            logits = run_by_length(tokens, batch_size, self.model.config.pad_token_id, self._logits,
                                   progress=show_progress(show_progress_bar))
        else:
            logits = torch.empty(0, self.num_labels, device=self.model.device)
        scores = (self.activation_fn if activation_fn is None else activation_fn)(logits)
        return scores.squeeze(-1) if self.num_labels == 1 else scores

    def rank(self, query: str, documents, *, top_k: int | None = None, return_documents: bool = False,
             batch_size: int = 32, show_progress_bar: bool | None = None, activation_fn: Callable | None = None,
             prompt_name: str | None = None, prompt: str | None = None) -> list[dict]:
        """``documents`` by their score against ``query``, best first (ties in the documents' order): a list of
        ``{"corpus_id", "score"}`` (with ``"text"`` when ``return_documents``), the ``top_k`` best or all."""
        if self.num_labels != 1:
            raise UnsupportedModelError(f"rank needs a model with one label, and this one has {self.num_labels}; "
                                        "score the pairs with predict")
        if top_k is not None and top_k < 1:
            raise InputError(f"top_k must be at least 1, got {top_k}")
        text_inputs.check_string(query, "the query")
        if not text_inputs.is_list(documents):
            raise InputError(f"documents must be a list of texts, got {text_inputs.described(documents)}")
        documents = text_inputs.checked(documents, allow_empty=True).items
        scores = self.predict([(query, document) for document in documents], batch_size=batch_size,
                              activation_fn=activation_fn, show_progress_bar=show_progress_bar,
                              prompt_name=prompt_name, prompt=prompt).tolist()
        ranked = sorted(range(len(documents)), key=lambda i: scores[i], reverse=True)[:top_k]
        return [dict(corpus_id=i, score=scores[i], **({"text": documents[i]} if return_documents else {}))
                for i in ranked]

    def _logits(self, batch: TokenBatch) -> torch.Tensor:
        return self.model(**batch.inputs()).logits.float()                                       # [b, L]


def activation(path: str) -> Callable | None:
    """The activation a checkpoint names by its torch class path, as sentence-transformers resolves it: a torch
    module class, instantiated; another path is not trusted (None: the default, with a warning)."""
    if not path.startswith("torch."):
        logger.warning(f"the activation {path!r} is not a torch class and is not trusted: using the default")
        return None
    module_name, _, class_name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        found = None
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise CheckpointError(f"the checkpoint's activation {path!r} is not a torch module class")
    return found()


def _config_activation(config_path) -> str | None:
    """The activation config.json names, where sentence-transformers looks for it when its own file has none."""
    config = json.loads(config_path.read_text())
    for keys in CONFIG_ACTIVATION_KEYS:
        value = config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value:
            return value
    return None
