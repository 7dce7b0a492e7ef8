"""When a command shows a progress bar on stderr (stdout stays for the results), and a pipeline run with one."""

from __future__ import annotations

import sys

from tqdm import tqdm


def wanted(count: int, batch_size: int) -> bool:
    """A bar for texts that fill more than one batch, where a single forward pass would only flash one; and only when
    stderr is a terminal, so that a log file or a pipe gets no bar's redraws."""
    return count > batch_size and sys.stderr.isatty()


def run(pipe, texts: list[str], **options) -> list:
    """``pipe(texts, **options)``, one result per text, with a bar when ``wanted``."""
    with tqdm(total=len(texts), unit="text", file=sys.stderr, disable=not wanted(len(texts), pipe.batch_size)) as bar:
        return pipe(texts, progress=bar.update, **options)
