"""A sentence-transformers checkpoint loaded: its modules read, its encoder as a FastBert, and its tokenizer set up
as sentence-transformers sets it up (lowercasing, and the length texts are cut to)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import BertConfig
from .hub import CheckpointSource
from .model import FastBert
from .sentence_modules import EncoderSettings, FolderSource, SentenceModules, read_modules
from .tokenizer import TextTokenizer


@dataclass
class SentenceCheckpoint:
    modules: SentenceModules
    source: FolderSource  # the encoder's folder: its config.json, weights and tokenizer
    model: FastBert
    tokenizer: TextTokenizer
    max_length: int  # tokens a text, or a pair, is cut to


def load(name_or_path, *, head: str, device, dtype, backend, revision, token) -> SentenceCheckpoint:
    """The checkpoint's encoder with ``head`` (``fastbert.heads.CHOICES``), on ``device`` in ``dtype``."""
    root = CheckpointSource(name_or_path, revision=revision, token=token)
    modules = read_modules(root)
    source = FolderSource(root, modules.encoder.folder)
    model = FastBert.from_source(source, device=device, dtype=dtype, backend=backend, head=head)
    tokenizer = TextTokenizer.from_source(source, roberta=model.config.is_roberta)
    if modules.encoder.do_lower_case:
        tokenizer.lowercase_first()
    return SentenceCheckpoint(modules, source, model, tokenizer, token_limit(modules.encoder, tokenizer, model.config))


def token_limit(encoder: EncoderSettings, tokenizer: TextTokenizer, config: BertConfig) -> int:
    """sentence-transformers cuts texts to ``max_seq_length``, else to the tokenizer's ``model_max_length`` capped at
    the position table; fastbert never past the positions it has (where sentence-transformers would fail)."""
    limit = encoder.max_seq_length
    if limit is None:
        limit = min(tokenizer.model_max_length or config.max_position_embeddings, config.max_position_embeddings)
    return min(limit, config.max_sequence_length)
