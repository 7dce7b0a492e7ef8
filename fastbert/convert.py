"""Convert a Hugging Face checkpoint to a fastbert checkpoint that loads with no conversion work."""

from __future__ import annotations

import shutil
from pathlib import Path

from .hub import TOKENIZER_FILES, CheckpointSource
from .model import FastBert, resolve_dtype


def convert_checkpoint(src, dst, *, dtype="float16", revision=None, token=None) -> Path:
    """``src``: hub id or directory; ``dst``: directory for fastbert.safetensors, config.json, tokenizer files."""
    dtype = resolve_dtype(dtype, device=None)
    model = FastBert.from_pretrained(src, device="cpu", dtype=dtype, backend="torch", revision=revision, token=token)
    dst = model.save_pretrained(dst)
    source = CheckpointSource(src, revision=revision, token=token)
    for filename in TOKENIZER_FILES:
        path = source.get(filename)
        if path is not None:
            shutil.copyfile(path, dst / filename)
    return dst
