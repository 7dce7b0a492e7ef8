"""What the task commands take: their texts, the model and where it runs, the batch size, and ``--json``."""

from __future__ import annotations

import argparse

DTYPE_CHOICES = ("float16", "bfloat16", "float32")
ENCODER_BATCH_SIZE = 32  # sentence-transformers' default, as SentenceEncoder.encode and CrossEncoder.predict take


def add_model_options(parser: argparse.ArgumentParser, *, model_help: str, default_model: str | None,
                      batch_size_help: str = "texts per forward pass (default 32 on CUDA, 8 on CPU)",
                      default_batch_size: int | None = None) -> None:
    """--model, --device, --dtype, --batch-size and --revision."""
    parser.add_argument("--model", default=default_model, required=default_model is None, help=model_help)
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu... (default cuda when available)")
    parser.add_argument("--dtype", default=None, choices=DTYPE_CHOICES, help="default float16 on CUDA, float32 on CPU")
    parser.add_argument("--batch-size", type=int, default=default_batch_size, help=batch_size_help)
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")


def add_common_arguments(parser: argparse.ArgumentParser, *, model_help: str, default_model: str | None) -> None:
    """A pipeline command's: its texts, the model options and --json."""
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts; read one per line from stdin when none is "
                                                                 "given")
    add_model_options(parser, model_help=model_help, default_model=default_model)
    parser.add_argument("--json", action="store_true", help="print JSON: one entry per text, as fastbert.pipeline "
                                                            "returns it")


def pipeline_arguments(args: argparse.Namespace) -> dict:
    """``fastbert.pipeline``'s keyword arguments from the common options."""
    return dict(model=args.model, device=args.device, dtype=args.dtype, revision=args.revision,
                batch_size=args.batch_size)


def load_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of an encoder's ``from_pretrained`` that the options give."""
    return dict(device=args.device, dtype=args.dtype, revision=args.revision)
