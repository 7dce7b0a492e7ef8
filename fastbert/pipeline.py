"""``fastbert.pipeline("fill-mask", ...)``: transformers' fill-mask pipeline, answered by fastbert.

Results have transformers' exact shape and strings. Unlike transformers, a list of texts runs in
batched forward passes (texts sorted by length, so that little is padding), the MLM head runs only
at the mask positions, and a text longer than the model's positions is truncated instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .batching import TokenBatch, by_length
from .errors import CheckpointError, InputError
from .heads.masked_lm import MaskedLMHead
from .hub import CheckpointSource
from .model import FastBert
from .tokenizer import TextTokenizer

TASKS = ("fill-mask",)
DEFAULT_MODEL = "bert-base-cased"
GPU_BATCH_SIZE, CPU_BATCH_SIZE = 32, 8


def pipeline(task: str, model: str | Path | FastBert | None = None, *, tokenizer: str | Path | None = None,
             device=None, dtype=None, backend: str | None = None, revision: str | None = None,
             token: str | bool | None = None, batch_size: int | None = None) -> FillMaskPipeline:
    """A pipeline for ``task`` (only ``"fill-mask"``). ``model``: hub id, local directory or a loaded FastBert
    (default bert-base-cased); ``tokenizer``: where the tokenizer files are when not beside the model;
    ``device``, ``dtype``, ``backend``, ``revision``, ``token``: as in ``FastBert.from_pretrained``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; supported tasks: {', '.join(TASKS)}")
    if isinstance(model, FastBert):
        if device is not None or dtype is not None or backend is not None:
            raise ValueError("device, dtype and backend apply when the pipeline loads the model; "
                             "pass them to FastBert.from_pretrained for a model you load yourself")
    else:
        model = FastBert.from_pretrained(model or DEFAULT_MODEL, device=device, dtype=dtype, backend=backend,
                                         revision=revision, token=token)
    tokenizer = tokenizer or getattr(model, "name_or_path", None)
    if tokenizer is None:
        raise ValueError("this FastBert was not loaded by from_pretrained: pass tokenizer= (a hub id or a directory "
                         "with the tokenizer files)")
    source = CheckpointSource(tokenizer, revision=revision, token=token)
    return FillMaskPipeline(model, TextTokenizer.from_source(source, roberta=model.config.is_roberta),
                            batch_size=batch_size)


class FillMaskPipeline:
    """Predicts the tokens behind each mask token of a text, like transformers' ``FillMaskPipeline``."""

    task = "fill-mask"

    def __init__(self, model: FastBert, tokenizer: TextTokenizer, *, batch_size: int | None = None):
        if model.head_name != MaskedLMHead.name:
            raise ValueError(f"model {getattr(model, 'name_or_path', '')!r} has no masked-language-model head; "
                             "fill-mask needs a checkpoint saved from a *ForMaskedLM model")
        if tokenizer.mask_token_id is None:
            raise CheckpointError(f"the tokenizer's vocabulary has no mask token {tokenizer.mask_token!r}")
        self.model = model
        self.tokenizer = tokenizer
        default = GPU_BATCH_SIZE if model.device.type == "cuda" else CPU_BATCH_SIZE
        self.batch_size = _check_batch_size(default if batch_size is None else batch_size)

    def __call__(self, inputs: str | list[str], *, top_k: int = 5, targets: str | list[str] | None = None,
                  batch_size: int | None = None):
        """For one text: a list of ``{"score", "token", "token_str", "sequence"}`` dicts, best first, or with
        several masks a list of such lists, one per mask. For a list of texts: a list of those, in order,
        except that a list of one text answers like that text alone (as transformers does)."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        target_ids = torch.tensor(self.tokenizer.target_ids(targets)) if targets is not None else None
        encodings = self._encode(texts)
        size = _check_batch_size(self.batch_size if batch_size is None else batch_size)
        results = [None] * len(texts)
        for batch in by_length([len(e.ids) for e in encodings], size):
            for index, result in zip(batch, self._predict([encodings[i] for i in batch], top_k, target_ids)):
                results[index] = result
        return results[0] if len(texts) == 1 else results

    def _encode(self, texts: list[str]):
        """Encodings of ``texts``, each checked for a mask token before anything runs."""
        max_length = self.model.config.max_sequence_length
        encodings = self.tokenizer.encode(texts, max_length)
        mask_id, mask = self.tokenizer.mask_token_id, self.tokenizer.mask_token
        for i, (text, encoding) in enumerate(zip(texts, encodings)):
            if mask_id in encoding.ids:
                continue
            which = "the text" if len(texts) == 1 else f"text {i} ({_excerpt(text)})"
            if any(mask_id in cut.ids for cut in encoding.overflowing):
                raise InputError(f"{which} has its {mask} tokens only past the first {max_length} tokens, the most "
                                 f"this model reads; move the {mask} earlier or shorten the text")
            raise InputError(f"{which} has no mask token: write {mask} where the word to predict goes")
        return encodings

    def _predict(self, encodings, top_k: int, target_ids: torch.Tensor | None) -> list:
        """Results for one batch, in the order of ``encodings``."""
        batch = TokenBatch.padded(encodings, self.model.config.pad_token_id)
        at_masks = batch.input_ids == self.tokenizer.mask_token_id
        logits = self.model(**batch.inputs(), logits_at=at_masks).logits                      # [masks, V]
        probs = self.model.ops.softmax(logits, out_dtype=torch.float32)
        if target_ids is not None:
            probs = probs[:, target_ids.to(probs.device)]
        scores, picks = probs.topk(min(top_k, probs.shape[1]))
        if target_ids is not None:
            picks = target_ids[picks.cpu()]
        scores, picks = scores.tolist(), picks.tolist()
        results, row = [], 0
        for encoding in encodings:
            positions = [i for i, token_id in enumerate(encoding.ids) if token_id == self.tokenizer.mask_token_id]
            per_mask = [self._propositions(encoding.ids, position, scores[row + j], picks[row + j], len(positions) == 1)
                        for j, position in enumerate(positions)]
            row += len(positions)
            results.append(per_mask[0] if len(per_mask) == 1 else per_mask)
        return results

    def _propositions(self, ids: list[int], position: int, scores: list[float], picks: list[int],
                      single_mask: bool) -> list[dict]:
        """One mask's candidates. The sequence drops special tokens only when the text has a single mask:
        with several, transformers keeps them so that the other masks stay visible."""
        filled = []
        for pick in picks:
            sequence = ids.copy()
            sequence[position] = pick
            filled.append([t for t in sequence if t != self.tokenizer.pad_token_id])
        sequences = self.tokenizer.decode(filled, skip_special_tokens=single_mask)
        token_strs = self.tokenizer.decode([[pick] for pick in picks])
        return [{"score": score, "token": pick, "token_str": token_str, "sequence": sequence}
                for score, pick, token_str, sequence in zip(scores, picks, token_strs, sequences)]


def _check_batch_size(batch_size: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return batch_size


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
