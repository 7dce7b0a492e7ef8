"""A pipeline run over a command's texts, with a progress bar on stderr when there are many."""

from __future__ import annotations

import sys

from tqdm import tqdm

PROGRESS_FROM_TEXTS = 256  # fewer run in moments on a GPU: a bar would only flicker


def run(pipe, texts: list[str], **options) -> list:
    """``pipe(texts, **options)``, one result per text; stdout stays for the results."""
    with tqdm(total=len(texts), unit="text", file=sys.stderr, disable=len(texts) < PROGRESS_FROM_TEXTS) as bar:
        return pipe(texts, progress=bar.update, **options)


def wanted(count: int, batch_size: int) -> bool:
    """A progress bar on stderr for inputs of more than one batch, when stderr is a terminal (not a log file)."""
    return count > batch_size and sys.stderr.isatty()
