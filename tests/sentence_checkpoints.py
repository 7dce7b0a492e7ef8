"""Builders for sentence-transformers checkpoints, saved by sentence-transformers itself: tiny random BERT and XLM-R
encoders with real tokenizers, topped with Pooling / Dense / Normalize, and cross-encoders (rerankers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from tests.checkpoints import TINY_BERT, TINY_ROBERTA, hf_model, minilm_dir, save_roberta_with_bpe_tokenizer

MINILM_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
BPE_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                       "special_tokens_map.json")
# larger random weights than transformers' 0.02: scores and embeddings that differ from text to text
SPREAD = dict(initializer_range=0.2)


def save_encoder(directory: Path, family: str, architecture: str = "Model", **config) -> Path:
    """A tiny random ``{Bert,XLMRoberta}{architecture}`` with a real tokenizer: MiniLM's uncased WordPiece for
    "bert", a byte-level BPE (case-sensitive) for "xlm-roberta"; ``config``: more config.json fields."""
    directory = Path(directory)
    if family == "bert":
        hf_model(f"Bert{architecture}", dict(TINY_BERT, vocab_size=30522, **SPREAD, **config)).save_pretrained(
            directory)
        for filename in MINILM_TOKENIZER_FILES:
            shutil.copyfile(minilm_dir() / filename, directory / filename)
        return directory
    bpe = save_roberta_with_bpe_tokenizer(directory.with_name(directory.name + "-bpe"))
    vocab_size = len(json.loads((bpe / "vocab.json").read_text()))
    hf_model(f"XLMRoberta{architecture}", dict(TINY_ROBERTA, model_type="xlm-roberta", vocab_size=vocab_size,
                                               **SPREAD, **config)).save_pretrained(directory)
    for filename in BPE_TOKENIZER_FILES:
        shutil.copyfile(bpe / filename, directory / filename)
    # its 42 positions start after the pad id: without a limit, transformers would cut texts at 42 tokens and fail
    rewrite_json(directory / "tokenizer_config.json", model_max_length=TINY_ROBERTA["max_position_embeddings"] - 2)
    return directory


def save_sentence_transformer(directory: Path, encoder: Path, pooling_mode, *, dense=(), normalize: bool = False,
                              **model_kwargs) -> Path:
    """``encoder`` + Pooling(``pooling_mode``) + a Dense per (out_features, activation module) in ``dense`` (+
    Normalize), saved by ``SentenceTransformer.save``; ``model_kwargs``: prompts, default_prompt_name,
    similarity_fn_name."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    torch.manual_seed(0)
    transformer = Transformer(str(encoder))
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling_mode)]
    for out_features, activation in dense:
        in_features = modules[-1].get_embedding_dimension()
        modules.append(Dense(in_features, out_features, activation_function=activation))
        with torch.no_grad():
            modules[-1].linear.weight.normal_(0, in_features ** -0.5)
            modules[-1].linear.bias.normal_(0, 0.5)
    if normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu", **model_kwargs).save(str(directory))
    return Path(directory)


def save_cross_encoder(directory: Path, family: str, num_labels: int) -> Path:
    """A tiny random ``*ForSequenceClassification`` with ``num_labels``, saved by ``CrossEncoder.save``."""
    from sentence_transformers import CrossEncoder

    encoder = save_encoder(Path(directory).with_name(Path(directory).name + "-hf"), family,
                           "ForSequenceClassification", num_labels=num_labels)
    CrossEncoder(str(encoder), device="cpu").save(str(directory))
    return Path(directory)


def rewrite_json(path: Path, **changes) -> None:
    """The JSON file at ``path`` with keys changed (a value of None removes the key)."""
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}, indent=2))
