"""The ``fastbert`` command: ``fastbert fill-mask`` and ``fastbert convert``.

Failures the user can fix (a model that cannot be found, a text without a mask, a device that is not
there, a destination in use) print their message and exit with status 2, without a traceback. Output
into a pipe that closes early (``| head``) ends quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .commands import COMMANDS
from .commands.options import DTYPE_CHOICES
from .commands.texts import read_texts
from .convert import convert_checkpoint
from .errors import FastBertError
from .pipeline import DEFAULT_MODEL, pipeline

USAGE_ERROR = 2
OUTPUT_CLOSED = 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
        sys.stdout.flush()  # a reader that has gone shows here, where it can be handled, not at exit
    except BrokenPipeError:
        # the reader (`| head`) wants no more output. Python flushes stdout again at exit, which would fail the
        # same way, so stdout goes to devnull from here on
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OUTPUT_CLOSED
    except (FastBertError, ValueError) as e:
        print(f"fastbert: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    return 0


def fill_mask(args: argparse.Namespace) -> None:
    texts = read_texts(args.texts, "text to fill")
    fill = pipeline("fill-mask", model=args.model, device=args.device, dtype=args.dtype, revision=args.revision,
                    batch_size=args.batch_size)
    results = fill(texts, top_k=args.top_k)
    if len(texts) == 1:
        results = [results]  # the pipeline answers a one-text list like a single text; keep one entry per text
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print("\n\n".join(_table(text, result) for text, result in zip(texts, results)))


def convert(args: argparse.Namespace) -> None:
    dst = convert_checkpoint(args.src, args.dst, dtype=args.dtype, revision=args.revision, overwrite=args.overwrite)
    print(f"wrote {dst}")


def _table(text: str, result: list) -> str:
    """The predictions for one text: under the text, one aligned table per mask, best first."""
    per_mask = result if result and isinstance(result[0], list) else [result]  # [] with --top-k 0
    blocks = [text]
    for number, predictions in enumerate(per_mask, 1):
        rows = [("rank", "score", "token_str", "sequence")] + [
            (str(rank), f"{p['score']:.4f}", p["token_str"], p["sequence"]) for rank, p in enumerate(predictions, 1)]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3] for row in rows]
        heading = [f"mask {number} of {len(per_mask)}:"] if len(per_mask) > 1 else []
        blocks.append("\n".join(heading + lines))
    return "\n".join(blocks)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastbert", description="BERT and RoBERTa encoders on fused Triton kernels.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    fill = commands.add_parser("fill-mask", help="predict the masked words of texts",
                               description="Predict the tokens behind the mask token ([MASK] for BERT, <mask> for "
                                           "RoBERTa) of each text.")
    fill.add_argument("texts", nargs="*", metavar="TEXT", help="texts with mask tokens; read one per line from "
                                                               "stdin when none is given")
    fill.add_argument("--model", default=DEFAULT_MODEL, help=f"hub id or local checkpoint directory "
                                                             f"(default {DEFAULT_MODEL})")
    fill.add_argument("--top-k", type=int, default=5, help="predictions per mask (default 5)")
    fill.add_argument("--device", default=None, help="cuda, cuda:1, cpu... (default cuda when available)")
    fill.add_argument("--dtype", default=None, choices=DTYPE_CHOICES, help="default float16 on CUDA, float32 on CPU")
    fill.add_argument("--batch-size", type=int, default=None, help="texts per forward pass (default 32 on CUDA, "
                                                                   "8 on CPU)")
    fill.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    fill.add_argument("--json", action="store_true", help="print JSON: one entry per text, as fastbert.pipeline "
                                                          "returns it")
    fill.set_defaults(run=fill_mask)

    conv = commands.add_parser("convert", help="convert a Hugging Face checkpoint to a fastbert checkpoint",
                               description="Write fastbert.safetensors, config.json and the tokenizer files to DST.")
    conv.add_argument("src", help="hub model id or local Hugging Face checkpoint directory")
    conv.add_argument("dst", help="directory to write the fastbert checkpoint to")
    conv.add_argument("--dtype", default="float16", choices=DTYPE_CHOICES, help="default float16")
    conv.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    conv.add_argument("--overwrite", action="store_true", help="replace DST if it holds files (never the source)")
    conv.set_defaults(run=convert)
    for command in COMMANDS:
        command.register(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
