"""Convert a Hugging Face checkpoint to a fastbert checkpoint that loads with no conversion work."""

from __future__ import annotations

import shutil
from pathlib import Path

from .config import BertConfig
from .hub import TOKENIZER_FILES, CheckpointSource
from .model import FastBert, resolve_dtype
from .sentence_conversion import copy_sentence_files, encoder_source
from .weights import load_checkpoint


def convert_checkpoint(src, dst, *, dtype="float16", revision=None, token=None) -> Path:
    """``src``: hub id or directory; ``dst``: directory for fastbert.safetensors, config.json, tokenizer files."""
    root = CheckpointSource(src, revision=revision, token=token)  # resolved once: weights and tokenizer files
    source = encoder_source(root)  # a sentence-transformers checkpoint may keep its encoder in a folder
    config = BertConfig.from_json(source.config_path)
    checkpoint = load_checkpoint(source, config)
    model = FastBert.from_state(config, checkpoint.state, head=checkpoint.head, dtype=resolve_dtype(dtype, device=None))
    dst = model.save_pretrained(dst)
    for filename in TOKENIZER_FILES:
        path = source.get(filename)
        if path is not None:
            shutil.copyfile(path, dst / filename)
    copy_sentence_files(root, source, dst)
    return dst
