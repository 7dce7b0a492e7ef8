"""Where a command's texts come from: its arguments, else standard input, one text per line."""

from __future__ import annotations

import sys

from ..errors import InputError


def read_texts(arguments: list[str], what: str) -> list[str]:
    """``arguments``, or the non-blank lines of stdin when there are none; ``what`` names them in the error."""
    texts = arguments or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise InputError(f"no {what}: give them as arguments, or one per line on stdin")
    return texts
