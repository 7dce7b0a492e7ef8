"""Varied, realistic English sentences: with one [MASK] each, for the pipeline throughput benchmark, and plain
texts of given lengths, for the embedding and reranking benchmarks.

Clauses are drawn from small phrase banks and joined until a sentence reaches its drawn length
(8 to 60 words, median about 20, as in real text); one content word becomes the mask.
"""

from __future__ import annotations

import math
import random

SUBJECTS = [
    "the committee", "my grandmother", "a young engineer", "the city council", "our neighbours", "the new teacher",
    "most travellers", "the old fisherman", "a group of students", "the company", "her brother", "the local bakery",
    "several scientists", "the museum", "this small village", "the orchestra", "a tired nurse", "the football club",
]
VERBS = [
    "announced", "discovered", "painted", "repaired", "visited", "described", "ordered", "planted", "sold", "built",
    "cancelled", "explained", "recorded", "borrowed", "cleaned", "photographed", "delivered", "measured",
]
OBJECTS = [
    "a new library", "the broken window", "an unusual bird", "the morning train", "a long report", "the garden fence",
    "a plate of fresh bread", "the annual festival", "three old bicycles", "the river bridge", "a quiet apartment",
    "the winter schedule", "an ancient map", "the school roof", "a box of letters", "the main road",
]
ADVERBIALS = [
    "last week", "after the storm", "before sunrise", "in the middle of the night", "during the summer holidays",
    "without telling anyone", "for the first time in years", "on a rainy afternoon", "near the harbour",
    "despite the cold weather", "with great care", "as the crowd watched", "at the end of the meeting",
]
CONNECTORS = ["and", "but", "because", "although", "so", "while", "after", "since"]
WORD_COUNTS = (8, 60)


def _clause(rng: random.Random, *, adverbial: bool) -> list[str]:
    words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
    if adverbial:
        words.append(rng.choice(ADVERBIALS))
    return " ".join(words).split()


def _sentence(rng: random.Random, mask_token: str | None) -> str:
    shortest, longest = WORD_COUNTS
    target = min(max(rng.lognormvariate(math.log(18), 0.5), shortest), longest)  # median 18 words, a long tail
    words = _clause(rng, adverbial=True)  # 8 words at least
    while len(words) < target:
        clause = [rng.choice(CONNECTORS), *_clause(rng, adverbial=rng.random() < 0.6)]
        if len(words) + len(clause) > longest:
            break
        words += clause
    words[0] = words[0].capitalize()
    content = [i for i, w in enumerate(words) if len(w) > 3]  # mask a content word, not "the" or "a"
    masked = rng.choice(content)
    if mask_token is not None:
        words[masked] = mask_token
    return " ".join(words) + "."


def sentences(count: int, *, seed: int = 0, mask_token: str | None = "[MASK]") -> list[str]:
    """``count`` sentences, each with one content word replaced by ``mask_token`` (None: kept, the same sentences
    unmasked)."""
    rng = random.Random(seed)
    return [_sentence(rng, mask_token) for _ in range(count)]


def texts_of_lengths(lengths: list[int], *, seed: int = 0) -> list[str]:
    """A text per length in tokens, roughly: the phrase banks' words are one WordPiece token each, and a text has
    [CLS], [SEP] and its full stop besides."""
    rng = random.Random(seed)
    texts = []
    for length in lengths:
        words = _clause(rng, adverbial=True)
        while len(words) < length - 3:
            words += [rng.choice(CONNECTORS), *_clause(rng, adverbial=rng.random() < 0.6)]
        words = words[:max(length - 3, 1)]
        words[0] = words[0].capitalize()
        texts.append(" ".join(words) + ".")
    return texts
