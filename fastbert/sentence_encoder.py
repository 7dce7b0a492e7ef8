"""``fastbert.SentenceEncoder``: sentence-transformers' ``SentenceTransformer.encode`` on fastbert's encoder.

The checkpoint's encoder runs without its pooler (sentence-transformers does not use it) and with a
``SentenceEmbeddingHead`` holding its Pooling, Dense and Normalize modules, so that pooling and the Dense layers (in
fp32, as saved) run inside the forward pass: inside the CUDA graph on a GPU. Texts are tokenized at once, sorted by
length into batches, and packed on a GPU (no padding is computed, and token-count buckets waste less than padded
sequence buckets would).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tokenizers import Encoding

from . import sentence_checkpoint, text_inputs
from .batching import TokenBatch, Tokens, run_by_length, show_progress
from .errors import UnsupportedModelError
from .heads import NO_HEAD, SentenceEmbeddingHead
from .model import FastBert
from .sentence_modules import SentenceModules
from .similarity import similarity_function
from .tokenizer import TextTokenizer

PROMPT_NAMES = ("query", "document")  # sentence-transformers answers to these names in any model (empty prompts)


class SentenceEncoder:
    """Embeds texts as sentence-transformers' ``SentenceTransformer`` does for the same checkpoint."""

    def __init__(self, model: FastBert, tokenizer: TextTokenizer, modules: SentenceModules, *, max_seq_length: int):
        if modules.pooling is None:
            raise UnsupportedModelError(f"{getattr(model, 'name_or_path', 'the checkpoint')!r} has no Pooling module "
                                        "in its modules.json; it is not a sentence embedding model")
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.prompts = modules.prompts.with_names(PROMPT_NAMES)
        self.include_prompt = modules.pooling.include_prompt
        self.similarity_fn_name = modules.similarity_fn_name or "cosine"
        self._similarity = similarity_function(self.similarity_fn_name)
        model.pooler = None
        model.head = embedding_head(modules, model.config.hidden_size, model.device)
        model.packed = model.device.type == "cuda"  # the CPU packs by masking a [T, T] product: slower

    @classmethod
    def from_pretrained(cls, name_or_path, *, device=None, dtype=None, backend=None, revision=None,
                        token=None) -> SentenceEncoder:
        """A sentence-transformers checkpoint (hub id or directory), or any BERT/RoBERTa checkpoint, pooled by the
        mean of its tokens as sentence-transformers pools one without ``modules.json``. Arguments as in
        ``FastBert.from_pretrained``."""
        loaded = sentence_checkpoint.load(name_or_path, head=NO_HEAD, device=device, dtype=dtype, backend=backend,
                                          revision=revision, token=token)
        return cls(loaded.model, loaded.tokenizer, loaded.modules, max_seq_length=loaded.max_length)

    @property
    def embedding_dimension(self) -> int:
        return self.model.head.dimension

    def encode(self, sentences, *, batch_size: int = 32, show_progress_bar: bool | None = None,
               normalize_embeddings: bool = False, convert_to_tensor: bool = False, prompt_name: str | None = None,
               prompt: str | None = None):
        """fp32 embeddings of ``sentences`` (a str, or a list of str): numpy [N, D], or [D] for one str; a tensor on
        the model's device with ``convert_to_tensor``. ``prompt`` (else the prompt named ``prompt_name``, else the
        checkpoint's default prompt) goes before each text. ``show_progress_bar``: None shows one when fastbert
        logs at INFO level, as sentence-transformers decides."""
        inputs = text_inputs.checked(sentences, allow_empty=True)
        prefix = self.prompts.resolve(prompt, prompt_name)
        if prefix and not self.include_prompt:
            raise UnsupportedModelError("this checkpoint's Pooling leaves the prompt's tokens out (include_prompt="
                                        "false), which fastbert does not run; encode without a prompt")
        encodings = self.tokenizer.encode([prefix + text for text in inputs.items], self.max_seq_length)
        embeddings = self.encode_tokens(encodings, batch_size=batch_size, normalize_embeddings=normalize_embeddings,
                                        show_progress_bar=show_progress_bar)
        if not convert_to_tensor:
            embeddings = embeddings.cpu().numpy()
        return embeddings[0] if inputs.single else embeddings

    def encode_tokens(self, tokens: Sequence[Encoding | Tokens], *, batch_size: int = 32,
                      normalize_embeddings: bool = False, show_progress_bar: bool | None = None) -> torch.Tensor:
        """fp32 [N, D] embeddings, on the model's device, of inputs this encoder's tokenizer has already tokenized
        (prompt and truncation included): a server's replicas run what its request side tokenized, once."""
        if not tokens:
            return torch.empty(0, self.embedding_dimension, device=self.model.device)
        embeddings = run_by_length(tokens, batch_size, self.model.config.pad_token_id, self._embed,
                                   progress=show_progress(show_progress_bar))
        return F.normalize(embeddings, p=2, dim=-1) if normalize_embeddings else embeddings

    def similarity(self, a, b) -> torch.Tensor:
        """[N, M] scores of every embedding of ``a`` against every one of ``b`` by the checkpoint's
        ``similarity_fn_name`` (cosine unless it names dot, euclidean or manhattan)."""
        return self._similarity(a, b)

    def _embed(self, batch: TokenBatch) -> torch.Tensor:
        return self.model(**batch.inputs()).sentence_embedding                                  # [b, D] fp32


def embedding_head(modules: SentenceModules, hidden_size: int, device: torch.device) -> SentenceEmbeddingHead:
    """The checkpoint's Pooling, Dense and Normalize modules as a head, its Dense weights in fp32 on ``device``."""
    with torch.device("meta"):
        head = SentenceEmbeddingHead(hidden_size, modules.pooling.modes, dense=tuple(d.spec for d in modules.dense),
                                     normalize=modules.normalize)
    state = {}
    for i, dense in enumerate(modules.dense):
        state[f"dense.{i}.weight"] = dense.weight
        if dense.bias is not None:
            state[f"dense.{i}.bias"] = dense.bias
    head.load_state_dict({name: t.to(device=device, dtype=torch.float32) for name, t in state.items()}, assign=True)
    return head.requires_grad_(False).eval()

