"""Convert a Hugging Face checkpoint to a fastbert checkpoint that loads with no conversion work.

The checkpoint is written into a new directory beside the destination and moved into place only when complete,
so that a failure leaves no half-written checkpoint, and the destination is checked before any work: never the
source's own directory, and a directory with files in it only when the caller allows it to be replaced.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from .config import BertConfig
from .errors import DestinationError
from .hub import TOKENIZER_FILES, CheckpointSource
from .model import FastBert, resolve_dtype
from .sentence_conversion import copy_sentence_files, encoder_source
from .weights import load_checkpoint


def convert_checkpoint(src, dst, *, dtype="float16", revision=None, token=None, overwrite=False) -> Path:
    """``src``: hub id or directory; ``dst``: directory for fastbert.safetensors, config.json, tokenizer files, and a
    sentence-transformers checkpoint's module files. A ``dst`` that holds files is replaced only with ``overwrite``,
    and never when it holds the source."""
    root = CheckpointSource(src, revision=revision, token=token)  # resolved once: weights and tokenizer files
    source = encoder_source(root)  # a sentence-transformers checkpoint may keep its encoder in a folder
    dst = Path(dst).expanduser().resolve()
    _check_destination(dst, root, overwrite=overwrite)
    config = BertConfig.from_json(source.config_path)
    checkpoint = load_checkpoint(source, config)
    model = FastBert.from_state(config, checkpoint.state, head=checkpoint.head, dtype=resolve_dtype(dtype, device=None))
    staging = _sibling(dst, "new")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        _write(model, source, staging)
        copy_sentence_files(root, source, staging)
        _move_into_place(staging, dst)
    except OSError as e:  # a full disk, no permission: the destination as it was, and the reason
        raise DestinationError(f"cannot write the checkpoint to {dst}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # nothing left once moved into place
    return dst


def _check_destination(dst: Path, source: CheckpointSource, *, overwrite: bool) -> None:
    source_dir = source.config_path.parent.resolve()
    if dst == source_dir or dst in source_dir.parents:
        raise DestinationError(f"the destination {dst} is or holds the source checkpoint {source.name!r}, which "
                               "converting must leave as it is; choose another directory")
    if dst.exists() and not dst.is_dir():
        raise DestinationError(f"the destination {dst} is a file; choose a directory")
    if dst.is_dir() and any(dst.iterdir()) and not overwrite:
        raise DestinationError(f"the destination {dst} is not empty; choose another directory, or replace it with "
                               "overwrite=True (--overwrite on the command line)")


def _write(model: FastBert, source: CheckpointSource, directory: Path) -> None:
    model.save_pretrained(directory)
    for filename in TOKENIZER_FILES:
        path = source.get(filename)
        if path is not None:
            shutil.copyfile(path, directory / filename)


def _move_into_place(new: Path, dst: Path) -> None:
    """Rename the complete directory ``new`` to ``dst``. An existing ``dst`` is renamed aside first and deleted only
    once ``new`` has taken its place; renames within one directory are atomic, so ``dst`` is never half written."""
    if not dst.exists():
        new.rename(dst)
        return
    old = _sibling(dst, "old")
    dst.rename(old)
    try:
        new.rename(dst)
    except BaseException:
        old.rename(dst)
        raise
    shutil.rmtree(old, ignore_errors=True)  # the new checkpoint is in place: a stale copy left behind fails nothing


def _sibling(path: Path, tag: str) -> Path:
    """An unused name beside ``path``, hidden, on the same file system, so that renaming to it is atomic."""
    return path.with_name(f".{path.name}.{tag}-{secrets.token_hex(6)}")
