"""Texts and text pairs as fastbert's pipelines and sentence encoders take them: one, or a list of them (any iterable
but a str, bytes or dict), checked before anything is tokenized.

An error names the input at fault (its index in a list) and what is wrong with it, where tokenizing would fail with a
message about the tokenizer's internals, or answer an empty text as if it had words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import InputError


@dataclass
class Texts:
    """Inputs as a list, and whether they came as one (a single answer, not a list of them). An item is a text, or a
    ``(text, pair)`` tuple."""
    items: list
    single: bool
    noun: str = "text"  # what an error calls an item

    def which(self, index: int) -> str:
        """How an error names input ``index``."""
        return f"the {self.noun}" if self.single else f"{self.noun} {index}"


def is_list(inputs) -> bool:
    """Whether ``inputs`` is several inputs rather than one: an iterable other than a string, bytes or a dict (which
    is one text-classification input)."""
    return not isinstance(inputs, (str, bytes, bytearray, dict)) and hasattr(inputs, "__iter__")


def checked(inputs, check: Callable | None = None, *, allow_empty: bool = False) -> Texts:
    """``inputs`` (one input, or a list of them) with ``check(item, which)`` applied to each, ``which`` naming the
    item in error messages. ``allow_empty``: an empty list and empty texts are answered, as sentence-transformers
    answers them, where a pipeline refuses them; ``check`` defaults to ``check_string`` with it, else
    ``check_text``."""
    check = check or (check_string if allow_empty else check_text)
    single = not is_list(inputs)
    texts = Texts([inputs] if single else list(inputs), single)
    if not texts.items and not allow_empty:
        raise InputError("no texts: give a text or a non-empty list of texts")
    return _each(texts, check)


def pairs(inputs) -> Texts:
    """One pair (two texts in a list or tuple), or a list of pairs, as sentence-transformers' CrossEncoder takes
    them: a list whose first element is not itself a list or tuple is one pair. Items are ``(first, second)``."""
    if not is_list(inputs):
        raise InputError(f"pairs must be given as a list, got {described(inputs)}")
    listed = list(inputs)
    single = bool(listed) and not isinstance(listed[0], (list, tuple))
    return _each(Texts([listed] if single else listed, single, noun="pair"), check_pair)


def check_pair(value, which: str) -> tuple[str, str]:
    """``value`` as a ``(first, second)`` tuple of strings, else an InputError naming the problem."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InputError(f"{which} is {excerpt(value)}; a pair is two texts, (first, second)")
    return check_string(value[0], f"{which}'s first text"), check_string(value[1], f"{which}'s second text")


def check_text(value, which: str) -> str:
    """``value`` when it is a string with more than whitespace in it, else an InputError naming the problem."""
    check_string(value, which)
    if not value.strip():
        raise InputError(f"{which} is empty" if not value else f"{which} is only whitespace ({value!r})")
    return value


def check_string(value, which: str) -> str:
    """``value`` when it is a string, else an InputError naming what it is."""
    if isinstance(value, (bytes, bytearray)):
        raise InputError(f"{which} is bytes, not a string: decode it first (for instance value.decode('utf-8'))")
    if not isinstance(value, str):
        raise InputError(f"{which} is {described(value)}, not a string")
    return value


def described(value) -> str:
    """What ``value`` is, for messages: its type and an excerpt."""
    return "None" if value is None else f"{type(value).__name__} {excerpt(value)}"


def excerpt(value, limit: int = 40) -> str:
    """``value``'s repr for messages, cut to about ``limit`` characters (a string is cut inside its quotes)."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "...")
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _each(texts: Texts, check: Callable) -> Texts:
    texts.items = [check(item, texts.which(i)) for i, item in enumerate(texts.items)]
    return texts
