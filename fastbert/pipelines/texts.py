"""What every pipeline checks of its inputs before tokenizing: a text, or a list of them, each a non-empty string.

An error names the text at fault (its index in a list) and what is wrong with it, where tokenizing would fail with a
message about the tokenizer's internals, or answer an empty text as if it had words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import InputError


@dataclass
class Texts:
    """A pipeline's inputs as a list, and whether they came as one (a single answer, not a list of them)."""
    items: list
    single: bool

    def which(self, index: int) -> str:
        """How an error names input ``index``."""
        return "the text" if self.single else f"text {index}"


def checked(inputs, check: Callable | None = None) -> Texts:
    """``inputs`` (one input, or a list or tuple of them) with ``check(item, which)`` applied to each (default
    ``check_text``); ``which`` names the item in error messages."""
    check = check or check_text
    single = not isinstance(inputs, (list, tuple))
    items = [inputs] if single else list(inputs)
    if not items:
        raise InputError("no texts: give a text or a non-empty list of texts")
    texts = Texts(items, single)
    texts.items = [check(item, texts.which(i)) for i, item in enumerate(items)]
    return texts


def check_text(value, which: str) -> str:
    """``value`` when it is a string with more than whitespace in it, else an InputError naming the problem."""
    if isinstance(value, (bytes, bytearray)):
        raise InputError(f"{which} is bytes, not a string: decode it first (for instance value.decode('utf-8'))")
    if not isinstance(value, str):
        shown = "None" if value is None else f"{type(value).__name__} {excerpt(repr(value))}"
        raise InputError(f"{which} is {shown}, not a string")
    if not value.strip():
        raise InputError(f"{which} is empty" if not value else f"{which} is only whitespace ({value!r})")
    return value


def excerpt(text: str, limit: int = 40) -> str:
    """``text`` quoted, cut to ``limit`` characters, for messages."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
