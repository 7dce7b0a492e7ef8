"""What the sentence-encoder commands share: the options that load a model, and when to show a progress bar."""

from __future__ import annotations

import argparse
import sys

DTYPE_CHOICES = ("float16", "bfloat16", "float32")
DEFAULT_BATCH_SIZE = 32


def add_model_options(parser: argparse.ArgumentParser, default_model: str) -> None:
    parser.add_argument("--model", default=default_model, help=f"hub id or local checkpoint directory "
                                                               f"(default {default_model})")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu... (default cuda when available)")
    parser.add_argument("--dtype", default=None, choices=DTYPE_CHOICES, help="default float16 on CUDA, float32 on CPU")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"texts per forward pass (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")


def load_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of an encoder's ``from_pretrained`` that the options give."""
    return dict(device=args.device, dtype=args.dtype, revision=args.revision)


def progress_bar(count: int, batch_size: int) -> bool:
    """A progress bar on stderr for inputs of more than one batch, when stderr is a terminal (not a log file)."""
    return count > batch_size and sys.stderr.isatty()
