"""A sentence-transformers checkpoint through the converter: the encoder read from the folder modules.json names,
and the files that make it a sentence-transformers model carried beside the converted weights, so that
``SentenceEncoder`` and ``CrossEncoder`` load the conversion as they load the original."""

from __future__ import annotations

import json
import posixpath
import shutil
from pathlib import Path

from .hub import CONFIG_FILE, CheckpointSource
from .sentence_modules import (DENSE_WEIGHT_FILES, ENCODER_CONFIG_FILES, MODEL_CONFIG_FILE, MODULES_FILE,
                               TRANSFORMER, FolderSource, module_class, module_folder, read_json)

# config.json keys a cross-encoder keeps its activation under (sentence-transformers' own, beside transformers')
CROSS_ENCODER_KEYS = ("sentence_transformers", "sbert_ce_default_activation_function")


def encoder_source(root: CheckpointSource) -> CheckpointSource | FolderSource:
    """Where the checkpoint's encoder is: the Transformer module's folder, else the root."""
    for entry in read_json(root.get(MODULES_FILE)) or []:
        if module_class(entry) == TRANSFORMER and module_folder(entry):
            return FolderSource(root, module_folder(entry))
    return root


def copy_sentence_files(root: CheckpointSource, encoder, dst: Path) -> None:
    """Into ``dst``, which holds the converted encoder at its root: modules.json (the encoder's path made the root),
    config_sentence_transformers.json, the encoder's settings, every other module's folder (configuration and
    weights, Dense kept as saved, in fp32), and config.json's cross-encoder activation."""
    modules = read_json(root.get(MODULES_FILE))
    for filename in (MODEL_CONFIG_FILE, *ENCODER_CONFIG_FILES):
        path = (root if filename == MODEL_CONFIG_FILE else encoder).get(filename)
        if path is not None:
            shutil.copyfile(path, dst / filename)
    for entry in modules or []:
        folder = module_folder(entry)
        if module_class(entry) == TRANSFORMER:
            entry["path"] = ""
            continue
        for filename in (CONFIG_FILE, *DENSE_WEIGHT_FILES):
            path = root.get(posixpath.join(folder, filename))
            if path is not None:
                (dst / folder).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dst / folder / filename)
    if modules is not None:
        (dst / MODULES_FILE).write_text(json.dumps(modules, indent=2) + "\n")
    original = read_json(encoder.config_path)
    kept = {key: original[key] for key in CROSS_ENCODER_KEYS if key in original}
    if kept:
        converted = dst / CONFIG_FILE
        converted.write_text(json.dumps({**read_json(converted), **kept}, indent=2) + "\n")
