"""``fastbert rerank QUERY``: documents ordered by a cross-encoder's score against a query, as
``CrossEncoder.rank`` orders them."""

from __future__ import annotations

import argparse
import json

from ..cross_encoder import CrossEncoder
from . import progress
from .options import ENCODER_BATCH_SIZE as BATCH_SIZE
from .options import add_model_options, load_options
from .texts import read_texts

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"


def register(commands) -> None:
    parser = commands.add_parser("rerank", help="order documents by relevance to a query",
                                 description="Score each document against QUERY with a cross-encoder (reranker) and "
                                             "print them best first, as CrossEncoder.rank does.")
    parser.add_argument("query", metavar="QUERY", help="the query")
    parser.add_argument("documents", nargs="*", metavar="DOCUMENT", help="documents to rank; read one per line from "
                                                                         "stdin when none is given")
    add_model_options(parser, model_help=f"hub id or local checkpoint directory (default {DEFAULT_MODEL})",
                      default_model=DEFAULT_MODEL, batch_size_help=f"texts per forward pass (default {BATCH_SIZE})",
                      default_batch_size=BATCH_SIZE)
    parser.add_argument("--top-k", type=int, default=None, help="print the best K documents only (default all)")
    parser.add_argument("--json", action="store_true", help="print JSON: CrossEncoder.rank's list of {corpus_id, "
                                                            "score, text}, best first")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    documents = read_texts(args.documents, "documents to rerank")
    reranker = CrossEncoder.from_pretrained(args.model, **load_options(args))
    ranked = reranker.rank(args.query, documents, top_k=args.top_k, return_documents=True,
                           batch_size=args.batch_size,
                           show_progress_bar=progress.wanted(len(documents), args.batch_size))
    if args.json:
        print(json.dumps(ranked, ensure_ascii=False, indent=2))
        return
    rows = [("rank", "score", "index")] + [(str(rank), f"{r['score']:.4f}", str(r["corpus_id"]))
                                             for rank, r in enumerate(ranked, 1)]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    texts = ["text"] + [r["text"] for r in ranked]
    print("\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + text
                    for row, text in zip(rows, texts)))
