"""``fastbert embed``: sentence embeddings of texts, as ``SentenceEncoder.encode`` gives them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..sentence_encoder import SentenceEncoder
from . import progress
from .options import ENCODER_BATCH_SIZE as BATCH_SIZE
from .options import add_model_options, load_options
from .texts import read_texts

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
OUTPUT_SUFFIXES = (".npy", ".jsonl")


def register(commands) -> None:
    parser = commands.add_parser("embed", help="sentence embeddings of texts",
                                 description="Embed each text with a sentence-transformers model, as "
                                             "SentenceTransformer.encode does. Prints one line per text (its numbers "
                                             "separated by spaces), a JSON list with --json, or writes --output.")
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to embed; read one per line from stdin when "
                                                                 "none is given")
    add_model_options(parser, model_help=f"hub id or local checkpoint directory (default {DEFAULT_MODEL})",
                      default_model=DEFAULT_MODEL, batch_size_help=f"texts per forward pass (default {BATCH_SIZE})",
                      default_batch_size=BATCH_SIZE)
    parser.add_argument("--normalize", action="store_true", help="scale each embedding to length 1")
    parser.add_argument("--prompt-name", default=None, help="put the model's prompt of this name before each text")
    parser.add_argument("--json", action="store_true", help="print a JSON list of embeddings, one per text")
    parser.add_argument("--output", type=Path, default=None,
                        help="write the embeddings to this file instead: .npy (a float32 [texts, dimension] array) "
                             "or .jsonl (one {\"text\", \"embedding\"} object per line)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    if args.output is not None and args.output.suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"--output {args.output} has an unknown format: name a {' or '.join(OUTPUT_SUFFIXES)} file")
    texts = read_texts(args.texts, "texts to embed")
    encoder = SentenceEncoder.from_pretrained(args.model, **load_options(args))
    embeddings = encoder.encode(texts, batch_size=args.batch_size, normalize_embeddings=args.normalize,
                                prompt_name=args.prompt_name,
                                show_progress_bar=progress.wanted(len(texts), args.batch_size))
    if args.output is not None:
        write(args.output, texts, embeddings)
        print(f"wrote {args.output} ({len(texts)} x {embeddings.shape[1]})")
    elif args.json:
        print(json.dumps(embeddings.tolist()))
    else:
        print("\n".join(" ".join(f"{value:.8g}" for value in row) for row in embeddings))


def write(path: Path, texts: list[str], embeddings: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, embeddings)
        return
    with path.open("w", encoding="utf-8") as out:
        for text, embedding in zip(texts, embeddings.tolist()):
            out.write(json.dumps({"text": text, "embedding": embedding}, ensure_ascii=False) + "\n")
