"""End-to-end fill-mask: texts/s through ``fastbert.pipeline`` and ``transformers.pipeline`` on the same checkpoint
(random bert-base-cased architecture, uncased 30522-token vocabulary and its tokenizer), same batch size."""

from __future__ import annotations

import statistics
from functools import partial

from .end_to_end import time_systems
from .sentences import sentences

MODEL = "bert-base-cased"
TOKENIZER_VOCAB = 30522


def fastbert_pipeline(checkpoint, settings):
    import fastbert

    return fastbert.pipeline("fill-mask", model=str(checkpoint), device=settings.device.type, dtype=settings.dtype,
                             batch_size=settings.profile.pipeline_batch)


def transformers_pipeline(checkpoint, settings):
    import transformers

    return transformers.pipeline("fill-mask", model=str(checkpoint), device=0 if settings.on_cuda else -1,
                                 dtype=settings.dtype, batch_size=settings.profile.pipeline_batch)


PIPELINES = {"fastbert": fastbert_pipeline, "transformers": transformers_pipeline}


def top1_tokens(outputs) -> list[int]:
    """Top-1 token per text: a text with one mask gives a list of candidates, best first."""
    return [candidates[0]["token"] for candidates in outputs]


def run(settings) -> dict:
    profile = settings.profile
    texts = sentences(profile.pipeline_texts)
    checkpoint, _ = settings.checkpoints.get(MODEL, vocab_size=TOKENIZER_VOCAB, with_tokenizer=True)
    words = [len(text.split()) for text in texts]
    result = dict(model=f"{MODEL} architecture, vocabulary {TOKENIZER_VOCAB} (uncased WordPiece)", texts=len(texts),
                  words_per_text=[min(words), max(words)], batch_size=profile.pipeline_batch)
    builders = {name: partial(make, checkpoint, settings) for name, make in PIPELINES.items()}
    result["systems"], outputs = time_systems(settings, builders, texts, profile.pipeline_passes)
    top1 = {name: top1_tokens(output) for name, output in outputs.items()}
    if len(top1) == 2:
        result["top1_agreement"] = statistics.fmean(a == b for a, b in zip(top1["fastbert"], top1["transformers"]))
        rates = {name: timed["texts_per_s"] for name, timed in result["systems"].items()}
        result["speedup"] = rates["fastbert"] / rates["transformers"]
    return result
