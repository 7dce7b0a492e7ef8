"""``fastbert ner``: the entities of each text from a token-classification checkpoint, as the token-classification
pipeline gives them."""

from __future__ import annotations

import argparse
import json

from ..pipeline import pipeline
from ..pipelines.entities import STRATEGIES
from ..pipelines.token_classification import TokenClassificationPipeline
from . import progress
from .options import add_common_arguments, pipeline_arguments
from .table import aligned
from .texts import read_texts

COLUMNS = ("entity", "score", "start", "end", "word")


def register(commands) -> None:
    parser = commands.add_parser("ner", help="find the named entities of texts with a token-classification model",
                                 description="Label the entities of each text with a *ForTokenClassification "
                                             "checkpoint, as fastbert.pipeline('token-classification') does.")
    default = TokenClassificationPipeline.default_model
    add_common_arguments(parser, default_model=default, model_help=f"hub id or local directory of a "
                                                                   f"*ForTokenClassification checkpoint (default "
                                                                   f"{default})")
    parser.add_argument("--aggregation-strategy", default="simple", choices=STRATEGIES,
                        help="none: every token; simple: adjacent tokens of one entity grouped; first, average, max: "
                             "words kept whole, labelled by their first token, mean scores or best token "
                             "(default simple)")
    parser.set_defaults(run=ner)


def ner(args: argparse.Namespace) -> None:
    texts = read_texts(args.texts, "texts to label")
    tagger = pipeline("token-classification", **pipeline_arguments(args))
    results = progress.run(tagger, texts, aggregation_strategy=args.aggregation_strategy)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print("\n\n".join(_table(text, entities) for text, entities in zip(texts, results)))


def _table(text: str, entities: list[dict]) -> str:
    """The text, then its entities one per row, or a line saying it has none."""
    if not entities:
        return f"{text}\n(no entities)"
    rows = [COLUMNS] + [(entity.get("entity_group") or entity["entity"], f"{entity['score']:.4f}", str(entity["start"]),
                         str(entity["end"]), entity["word"]) for entity in entities]
    return f"{text}\n{aligned(rows)}"
