"""What every task command takes: its texts, the model and where it runs, the batch size, and ``--json``."""

from __future__ import annotations

import argparse

DTYPE_CHOICES = ("float16", "bfloat16", "float32")


def add_common_arguments(parser: argparse.ArgumentParser, *, model_help: str, default_model: str | None) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts; read one per line from stdin when none is "
                                                                 "given")
    parser.add_argument("--model", default=default_model, required=default_model is None, help=model_help)
    parser.add_argument("--device", default=None, help="cuda, cuda:1, cpu... (default cuda when available)")
    parser.add_argument("--dtype", default=None, choices=DTYPE_CHOICES, help="default float16 on CUDA, float32 on CPU")
    parser.add_argument("--batch-size", type=int, default=None, help="texts per forward pass (default 32 on CUDA, "
                                                                     "8 on CPU)")
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    parser.add_argument("--json", action="store_true", help="print JSON: one entry per text, as fastbert.pipeline "
                                                            "returns it")


def pipeline_arguments(args: argparse.Namespace) -> dict:
    """``fastbert.pipeline``'s keyword arguments from the common options."""
    return dict(model=args.model, device=args.device, dtype=args.dtype, revision=args.revision,
                batch_size=args.batch_size)
