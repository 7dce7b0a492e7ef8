"""``fastbert.pipeline(task, ...)``, and the fill-mask pipeline: transformers' fill-mask pipeline, answered by
fastbert (the other tasks' pipelines are in ``fastbert.pipelines``).

Results have transformers' exact shape and strings. Unlike transformers, a list of texts runs in
batched forward passes (texts sorted by length, so that little is padding), the MLM head runs only
at the mask positions, and a text longer than the model's positions is truncated instead of failing
(unless that would cut away one of its masks).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .batching import TokenBatch, check_batch_size, check_count, default_batch_size, in_length_order
from .errors import CheckpointError, InputError
from .heads.masked_lm import MaskedLMHead
from .hub import CheckpointSource
from .model import FastBert
from .pipelines import PIPELINES, TaskPipeline
from .text_inputs import checked, excerpt
from .tokenizer import TextTokenizer

TASKS = ("fill-mask", *PIPELINES)
DEFAULT_MODEL = "bert-base-cased"
DEFAULT_TOP_K = 5


def pipeline(task: str, model: str | Path | FastBert | None = None, *, tokenizer=None, device=None, dtype=None,
             backend: str | None = None, revision: str | None = None, token: str | bool | None = None,
             batch_size: int | None = None, **options) -> FillMaskPipeline | TaskPipeline:
    """A pipeline for ``task`` (one of ``TASKS``). ``model``: hub id, local directory or a loaded FastBert
    (default: the task's); ``tokenizer``: where the tokenizer files are when not beside the model, or a
    ``tokenizers.Tokenizer`` or transformers fast tokenizer; ``device``, ``dtype``, ``backend``, ``revision``,
    ``token``: as in ``FastBert.from_pretrained``. ``options``: defaults for the calls of a task other than
    fill-mask (``top_k=``, ``aggregation_strategy=``...)."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; supported tasks: {', '.join(TASKS)}")
    task_pipeline = PIPELINES.get(task)
    if isinstance(model, FastBert):
        if device is not None or dtype is not None or backend is not None:
            raise InputError("device, dtype and backend apply when the pipeline loads the model; "
                             "pass them to FastBert.from_pretrained for a model you load yourself")
    else:
        model = FastBert.from_pretrained(_model_name(model, task, task_pipeline), device=device, dtype=dtype,
                                         backend=backend, revision=revision, token=token,
                                         head=task_pipeline.loads_head if task_pipeline else None)
    text_tokenizer = _tokenizer(tokenizer, model, revision=revision, token=token)
    if task_pipeline is not None:
        return task_pipeline(model, text_tokenizer, batch_size=batch_size, **options)
    if options:
        raise InputError(f"fill-mask takes its options per call; got {', '.join(sorted(options))}")
    return FillMaskPipeline(model, text_tokenizer, batch_size=batch_size)


def _model_name(model, task: str, task_pipeline) -> str | os.PathLike:
    if model is None:
        default = task_pipeline.default_model if task_pipeline else DEFAULT_MODEL
        if default is None:
            raise InputError(f"{task} has no default model; pass model=: it {task_pipeline.needs}")
        return default
    if isinstance(model, (str, os.PathLike)):
        return model
    # a transformers model names its checkpoint; fastbert loads the checkpoint, not the object
    name = getattr(model, "name_or_path", None)
    hint = f"; to load this model's checkpoint, pass model={name!r}" if isinstance(name, str) and name else ""
    raise InputError(f"model must be a hub id, a checkpoint directory or a FastBert, got a {type(model).__name__}"
                     + hint)


def _tokenizer(tokenizer, model: FastBert, *, revision, token) -> TextTokenizer:
    """The pipeline's tokenizer: from the files of ``tokenizer`` (a hub id or directory; default the model's
    checkpoint), or from a tokenizer object."""
    roberta = model.config.is_roberta
    if tokenizer is None:
        tokenizer = getattr(model, "name_or_path", None)
        if tokenizer is None:
            raise InputError("this FastBert was not loaded by from_pretrained: pass tokenizer= (a hub id or a "
                             "directory with the tokenizer files, or a tokenizer object)")
    if isinstance(tokenizer, (str, os.PathLike)):
        return TextTokenizer.from_source(CheckpointSource(tokenizer, revision=revision, token=token), roberta=roberta)
    return TextTokenizer.from_tokenizer(tokenizer, roberta=roberta)


class FillMaskPipeline:
    """Predicts the tokens behind each mask token of a text, like transformers' ``FillMaskPipeline``."""

    task = "fill-mask"

    def __init__(self, model: FastBert, tokenizer: TextTokenizer, *, batch_size: int | None = None):
        if model.head_name != MaskedLMHead.name:
            raise CheckpointError(f"model {getattr(model, 'name_or_path', '')!r} has no masked-language-model "
                                  "head; fill-mask needs a checkpoint saved from a *ForMaskedLM model")
        if tokenizer.mask_token_id is None:
            raise CheckpointError(f"the tokenizer's vocabulary has no mask token {tokenizer.mask_token!r}")
        self.model = model
        self.tokenizer = tokenizer
        default = default_batch_size(model.device)
        self.batch_size = check_batch_size(default if batch_size is None else batch_size)

    def __call__(self, inputs: str | list[str], *, top_k: int | None = None, targets: str | list[str] | None = None,
                  batch_size: int | None = None):
        """For one text: a list of ``{"score", "token", "token_str", "sequence"}`` dicts, best first, or with
        several masks a list of such lists, one per mask. For a list of texts: a list of those, in order,
        except that a list of one text answers like that text alone (as transformers does). ``top_k``: candidates
        per mask, default 5; 0 gives empty lists."""
        top_k = check_count("top_k", DEFAULT_TOP_K if top_k is None else top_k, least=0)
        texts = checked(inputs).items
        target_ids = torch.tensor(self.tokenizer.target_ids(targets)) if targets is not None else None
        encodings = self._encode(texts)
        results = in_length_order(encodings, self.batch_size if batch_size is None else batch_size,
                                  lambda batch: self._predict(batch, top_k, target_ids))
        return results[0] if len(texts) == 1 else results

    def _encode(self, texts: list[str]):
        """Encodings of ``texts``, each checked before anything runs: it has a mask token, and cutting it to the
        model's positions left every mask in (a mask cut away would have no prediction, and the nesting of the
        answer would change with the number of masks)."""
        max_length = self.model.config.max_sequence_length
        encodings = self.tokenizer.encode(texts, max_length)
        mask_id, mask = self.tokenizer.mask_token_id, self.tokenizer.mask_token
        for i, (text, encoding) in enumerate(zip(texts, encodings)):
            kept = encoding.ids.count(mask_id)
            cut = sum(piece.ids.count(mask_id) for piece in encoding.overflowing)
            if kept and not cut:
                continue
            which = "the text" if len(texts) == 1 else f"text {i} ({excerpt(text)})"
            if cut:
                raise InputError(f"{which}: {cut} of its {kept + cut} {mask} tokens lie past the first {max_length} "
                                 f"tokens, the most this model reads; move them earlier or shorten the text")
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
