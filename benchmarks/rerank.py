"""Reranking end to end: one query against many documents through ``CrossEncoder.rank`` and sentence-transformers'
``CrossEncoder.rank``, documents/s at one batch size, and how closely their scores agree.

The reranker is a bert-base-uncased architecture with one label and random weights (the hub is out of reach); its
scores carry no meaning, so agreement is the largest score difference, not the order of near-equal scores.
"""

from __future__ import annotations

import statistics
from functools import partial

import torch

from .end_to_end import speedups, time_systems
from .inputs import mixed_lengths
from .sentences import texts_of_lengths

MODEL = "bert-base-uncased"
SEED = 0
QUERY_TOKENS = 12
DESCRIPTIONS = {
    "fastbert": "fastbert.CrossEncoder.rank (packed batches sorted by length, CUDA graphs, last layer at the first "
                "token only)",
    "sentence-transformers": "sentence_transformers.CrossEncoder.rank, model loaded in the run's dtype",
}


def run(settings) -> dict:
    profile = settings.profile
    path, _ = settings.checkpoints.get(MODEL, with_tokenizer=True, head="sequence-classification", labels=("score",))
    lengths = mixed_lengths(profile.rerank_documents, *profile.rerank_lengths, seed=SEED)
    documents = texts_of_lengths(lengths, seed=SEED)
    query = texts_of_lengths([QUERY_TOKENS], seed=SEED + 1)[0]
    builders = {"fastbert": partial(fastbert_reranker, path, query, settings),
                "sentence-transformers": partial(sentence_transformers_reranker, path, query, settings)}
    with torch.no_grad():
        systems, ranked = time_systems(settings, builders, documents, profile.encoder_passes)
    scores = {name: {r["corpus_id"]: r["score"] for r in results} for name, results in ranked.items()}
    agreement = {name: dict(max_abs_score_diff=max(abs(s[i] - scores["fastbert"][i]) for i in s))
                 for name, s in scores.items() if name != "fastbert" and "fastbert" in scores}
    return dict(model=f"{MODEL} architecture, one label, random weights", documents=len(documents),
                query_tokens=QUERY_TOKENS, tokens_per_document=[min(lengths), statistics.median(lengths),
                                                                max(lengths)],
                batch_size=profile.encoder_batch, dtype=str(settings.dtype).removeprefix("torch."),
                descriptions=DESCRIPTIONS, systems=systems, agreement=agreement, speedup=speedups(systems))


def fastbert_reranker(path, query: str, settings):
    from fastbert import CrossEncoder

    model = CrossEncoder.from_pretrained(path, device=settings.device, dtype=settings.dtype)
    return partial(model.rank, query, batch_size=settings.profile.encoder_batch)


def sentence_transformers_reranker(path, query: str, settings):
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(path), device=settings.device.type, model_kwargs={"dtype": settings.dtype})
    return partial(model.rank, query, batch_size=settings.profile.encoder_batch)
