"""What a serving process does once it has loaded, before it takes requests."""

from __future__ import annotations

import gc


def settle() -> None:
    """Takes what the process holds once loaded (modules, the model, the tokenizer; kept for its life) out of the
    cyclic garbage collector's generations: a full collection then walks only what requests allocated, and stalls
    the event loop for that alone."""
    gc.collect()
    gc.freeze()
