"""End-to-end task pipelines: texts/s through ``fastbert.pipeline`` and ``transformers.pipeline`` for
text-classification, token-classification and feature-extraction on the same random checkpoints (bert-base-cased
architecture, uncased 30522-token vocabulary and its tokenizer), at the same batch size. Tokenization and
post-processing are included; each pipeline's answers are checked against the other's."""

from __future__ import annotations

import statistics

import torch

from .compare import release
from .end_to_end import time_passes
from .pipeline_throughput import MODEL, TOKENIZER_VOCAB
from .results import describe
from .sentences import sentences

SENTIMENT = ("negative", "neutral", "positive")
BIO = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
FEATURE_ATOL = {"float16": 5e-2, "float32": 1e-3}  # |CLS feature difference| for the answers to count as one


def _labels(outputs) -> list:
    return [result["label"] for result in outputs]


def _entities(outputs) -> list:
    return [[(e["entity_group"], e["start"], e["end"]) for e in result] for result in outputs]


def _first_token(outputs) -> list:
    return [torch.as_tensor(result[0][0], dtype=torch.float32).cpu() for result in outputs]


# task -> (head of its checkpoint, its labels, call options, what two answers must share to agree)
TASKS = {
    "text-classification": ("sequence-classification", SENTIMENT, {}, _labels),
    "token-classification": ("token-classification", BIO, dict(aggregation_strategy="simple"), _entities),
    "feature-extraction": ("masked-lm", None, {}, _first_token),
}


def make_pipeline(system: str, task: str, checkpoint, settings, options: dict):
    batch = settings.profile.pipeline_batch
    if system == "fastbert":
        import fastbert

        return fastbert.pipeline(task, model=str(checkpoint), device=settings.device.type, dtype=settings.dtype,
                                 batch_size=batch, **options)
    import transformers

    return transformers.pipeline(task, model=str(checkpoint), device=0 if settings.on_cuda else -1,
                                 dtype=settings.dtype, batch_size=batch, **options)


def agreement(task: str, ours: list, theirs: list, dtype: str) -> float:
    """The share of texts answered alike: the same best label, the same entities, or CLS features within tolerance
    (transformers' batched features are padded to their batch's longest text, so only a row both have is compared)."""
    key = TASKS[task][3]
    if task == "feature-extraction":
        return statistics.fmean(float((a - b).abs().max()) <= FEATURE_ATOL[dtype]
                                for a, b in zip(key(ours), key(theirs)))
    return statistics.fmean(a == b for a, b in zip(key(ours), key(theirs)))


def run(settings) -> dict:
    profile = settings.profile
    texts = sentences(profile.pipeline_texts, mask_token=None)
    words = [len(text.split()) for text in texts]
    dtype = str(settings.dtype).removeprefix("torch.")
    result = dict(model=f"{MODEL} architecture, vocabulary {TOKENIZER_VOCAB} (uncased WordPiece)", texts=len(texts),
                  words_per_text=[min(words), max(words)], batch_size=profile.pipeline_batch, dtype=dtype, tasks={})
    for task, (head, labels, options, _) in TASKS.items():
        checkpoint, _ = settings.checkpoints.get(MODEL, vocab_size=TOKENIZER_VOCAB, with_tokenizer=True, head=head,
                                                 labels=labels)
        entry = dict(options=options, systems={})
        answers = {}
        for system in ("fastbert", "transformers"):
            if settings.budget.left() < 20.0:
                entry["systems"][system] = dict(status="skipped", reason=settings.budget.spent_reason)
                continue
            try:
                timed, answers[system] = time_passes(make_pipeline(system, task, checkpoint, settings, options),
                                                       texts, profile.pipeline_passes)
            except Exception as e:  # noqa: BLE001 - recorded; the other system and tasks still run
                timed = dict(status="failed", error=describe(e))
            entry["systems"][system] = timed
            release(settings.device)
        if len(answers) == 2:
            entry["agreement"] = agreement(task, answers["fastbert"], answers["transformers"], dtype)
            entry["speedup"] = entry["systems"]["fastbert"]["texts_per_s"] / entry["systems"]["transformers"][
                "texts_per_s"]
        result["tasks"][task] = entry
    return result
