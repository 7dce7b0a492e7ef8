"""``fastbert classify``: each text's labels from a sequence-classification checkpoint, as the text-classification
pipeline gives them."""

from __future__ import annotations

import argparse
import json

from ..pipeline import pipeline
from . import progress
from .options import add_common_arguments, pipeline_arguments
from .table import aligned
from .texts import read_texts


def register(commands) -> None:
    parser = commands.add_parser("classify", help="label texts with a sequence-classification model",
                                 description="Label each text with a *ForSequenceClassification checkpoint (sentiment, "
                                             "topics, NLI...), as fastbert.pipeline('text-classification') does.")
    add_common_arguments(parser, default_model=None,
                         model_help="hub id or local directory of a *ForSequenceClassification checkpoint")
    parser.add_argument("--top-k", type=top_k, default=argparse.SUPPRESS, metavar="K",
                        help="the K best labels of each text, or 'all' (default: the best label alone)")
    parser.set_defaults(run=classify)


def top_k(value: str) -> int | None:
    if value == "all":
        return None
    k = int(value)
    if k < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 or 'all', got {k}")
    return k


def classify(args: argparse.Namespace) -> None:
    texts = read_texts(args.texts, "texts to classify")
    classifier = pipeline("text-classification", **pipeline_arguments(args))
    options = {"top_k": args.top_k} if "top_k" in args else {}  # absent: the best label, as the pipeline's default
    results = progress.run(classifier, texts, **options)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    rows = [("label", "score", "text")]
    for text, result in zip(texts, results):
        labels = result if isinstance(result, list) else [result]
        rows += [(entry["label"], f"{entry['score']:.4f}", text if rank == 0 else "")
                 for rank, entry in enumerate(labels)]
    print(aligned(rows))
