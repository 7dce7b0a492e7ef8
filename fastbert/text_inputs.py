"""Texts and text pairs as the sentence encoders take them: one, or a list (any iterable), checked before anything
is tokenized so that a bad element is named instead of failing inside the tokenizer."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Texts:
    texts: list[str]
    single: bool  # the caller passed one text (or pair), not a list: answer with one result, not a list of one


@dataclass(frozen=True)
class Pairs:
    firsts: list[str]
    seconds: list[str]
    single: bool


def texts(inputs) -> Texts:
    """A str, or an iterable of str."""
    if isinstance(inputs, str):
        return Texts([inputs], single=True)
    listed = _listed(inputs, "texts")
    for i, text in enumerate(listed):
        if not isinstance(text, str):
            raise InputError(f"text {i} is a {type(text).__name__} ({_excerpt(text)}); texts must be str")
    return Texts(listed, single=False)


def pairs(inputs) -> Pairs:
    """One pair (two str in a list or tuple), or an iterable of pairs, as sentence-transformers' CrossEncoder takes
    them: a list whose first element is not itself a list or tuple is one pair."""
    listed = _listed(inputs, "pairs")
    single = bool(listed) and not isinstance(listed[0], (list, tuple))
    firsts, seconds = [], []
    for i, pair in enumerate([listed] if single else listed):
        which = "the pair" if single else f"pair {i}"
        if isinstance(pair, str) or not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InputError(f"{which} is {_excerpt(pair)}; a pair is two texts, (first, second)")
        if not all(isinstance(text, str) for text in pair):
            raise InputError(f"{which} holds {', '.join(type(t).__name__ for t in pair)}; both texts must be str")
        firsts.append(pair[0])
        seconds.append(pair[1])
    return Pairs(firsts, seconds, single)


def _listed(inputs, what: str) -> list:
    if isinstance(inputs, (str, bytes, dict)) or not hasattr(inputs, "__iter__"):
        raise InputError(f"{what} must be given as a list, got a {type(inputs).__name__} ({_excerpt(inputs)})")
    return list(inputs)


def _excerpt(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
