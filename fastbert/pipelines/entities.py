"""Entities from per-token scores, built exactly as transformers' token-classification pipeline builds them: tokens
(special tokens left out) with their offsets and whether they continue a word, then, per ``aggregation_strategy``,
tokens as they are, words (first, average, max) and groups of adjacent tokens or words of one entity (B-/I- tags).
Scores are fp32 numpy as there, returned as Python floats."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding

from ..tokenizer import TextTokenizer

STRATEGIES = ("none", "simple", "first", "average", "max")
WORD_STRATEGIES = ("first", "average", "max")  # those that need to know where words start: offsets


@dataclass
class Token:
    word: str                  # the token as the vocabulary spells it; the text's own characters for an unknown one
    scores: np.ndarray         # [L] fp32 probabilities
    start: int | None          # character offsets in the text; None without offsets
    end: int | None
    index: int                 # position in the encoding, special tokens counted
    is_subword: bool


def tokens(text: str, encoding: Encoding, scores: np.ndarray, tokenizer: TextTokenizer, strategy: str) -> list[Token]:
    """The encoding's tokens but its special ones, with ``scores`` [S, L]; transformers' ``gather_pre_entities``."""
    # a vocabulary that marks word continuations (WordPiece's ##) tells subwords exactly; others are guessed from
    # the characters around the token
    word_aware = bool(getattr(tokenizer.backend.model, "continuing_subword_prefix", None))
    found = []
    for index, token_scores in enumerate(scores):
        if encoding.special_tokens_mask[index]:
            continue
        word, start, end, is_subword = encoding.tokens[index], None, None, False
        if tokenizer.is_fast:
            start, end = encoding.offsets[index]
            in_text = text[start:end]
            if word_aware:
                is_subword = len(word) != len(in_text)
            else:
                if strategy in WORD_STRATEGIES:
                    warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning)
                is_subword = start > 0 and " " not in text[start - 1:start + 1]
            if encoding.ids[index] == tokenizer.unk_token_id:
                word, is_subword = in_text, False
        found.append(Token(word, token_scores, start, end, index, is_subword))
    return found


def aggregate(found: list[Token], strategy: str, labels: list[str], tokenizer: TextTokenizer) -> list[dict]:
    """Entities of one text: a dict per token for ``none``, else per group of adjacent tokens or words."""
    if strategy in ("none", "simple"):
        entities = []
        for token in found:
            best = int(token.scores.argmax())
            entities.append({"entity": labels[best], "score": token.scores[best], "index": token.index,
                             "word": token.word, "start": token.start, "end": token.end})
    else:
        entities = [_word(group, strategy, labels, tokenizer) for group in _words(found)]
    if strategy == "none":
        return [dict(entity, score=float(entity["score"])) for entity in entities]
    return _groups(entities, tokenizer)


def without_ignored(entities: list[dict], ignore_labels) -> list[dict]:
    return [entity for entity in entities
            if entity.get("entity") not in ignore_labels and entity.get("entity_group") not in ignore_labels]


def merge_overlapping(entities: list[dict]) -> list[dict]:
    """Entities of a text read in overlapping chunks (``stride``): of those that overlap, the longest, then the
    highest scored, as transformers' ``aggregate_overlapping_entities``."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda entity: entity["start"])
    merged, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or length == previous_length and entity["score"] > previous["score"]:
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged


def _words(found: list[Token]) -> list[list[Token]]:
    words = []
    for token in found:
        if words and token.is_subword:
            words[-1].append(token)
        else:
            words.append([token])
    return words


def _word(word: list[Token], strategy: str, labels: list[str], tokenizer: TextTokenizer) -> dict:
    """One entity per word: the label of its first token, of its most confident token, or of its mean scores."""
    if strategy == "first":
        scores = word[0].scores
    elif strategy == "max":
        scores = max(word, key=lambda token: token.scores.max()).scores
    else:
        scores = np.nanmean(np.stack([token.scores for token in word]), axis=0)
    best = scores.argmax()
    return {"entity": labels[best], "score": scores[best], "word": tokenizer.tokens_to_string([t.word for t in word]),
            "start": word[0].start, "end": word[-1].end}


def _tag(label: str) -> tuple[str, str]:
    """(B or I, the entity type) of a label; one without a B-/I- prefix continues as I."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _groups(entities: list[dict], tokenizer: TextTokenizer) -> list[dict]:
    """Adjacent entities of one type grouped, a B- tag starting a new group."""
    groups = []
    for entity in entities:
        bi, tag = _tag(entity["entity"])
        if groups and bi != "B" and tag == _tag(groups[-1][-1]["entity"])[1]:
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return [{"entity_group": group[0]["entity"].split("-", 1)[-1],
             "score": float(np.mean(np.nanmean([entity["score"] for entity in group]))),
             "word": tokenizer.tokens_to_string([entity["word"] for entity in group]),
             "start": group[0]["start"], "end": group[-1]["end"]} for group in groups]
