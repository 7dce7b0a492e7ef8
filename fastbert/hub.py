"""Where a checkpoint's files come from: a local directory, or a Hugging Face Hub repository.

Hub files go through ``huggingface_hub`` one at a time, so only what is asked for is downloaded,
and its cache, ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, revisions and tokens all apply.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .errors import CheckpointError, ModelNotFoundError

CONFIG_FILE = "config.json"
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.txt", "vocab.json", "merges.txt",
)


class CheckpointSource:
    """Resolves file names of one checkpoint to local paths, downloading hub files on demand."""

    def __init__(self, name_or_path: str | Path, *, revision: str | None = None, token: str | bool | None = None):
        self.name = str(name_or_path)
        if not self.name:  # Path("") is the current directory: an empty name would load whatever is there
            raise ModelNotFoundError("the model name is empty: pass a hub model id or a checkpoint directory "
                                     "('.' for the current one)")
        path = Path(name_or_path).expanduser()
        if path.is_file():
            raise ModelNotFoundError(f"{self.name!r} is a file; pass the checkpoint's directory or a hub model id")
        self.local_dir = path if path.is_dir() else None
        self.revision = revision
        self.token = token
        self.config_path = self.get(CONFIG_FILE, required=True)

    def get(self, filename: str, *, required: bool = False) -> Path | None:
        """Local path of ``filename``, or None when the checkpoint has no such file (unless required)."""
        path = self._local(filename) if self.local_dir is not None else self._download(filename)
        if path is None and required:
            raise CheckpointError(f"checkpoint {self.name!r} has no {filename}")
        return path

    def _local(self, filename: str) -> Path | None:
        path = self.local_dir / filename
        return path if path.is_file() else None

    def _download(self, filename: str) -> Path | None:
        try:
            return Path(hf_hub_download(self.name, filename, revision=self.revision, token=self.token))
        except HFValidationError:
            raise ModelNotFoundError(
                f"{self.name!r} is neither a local directory nor a valid Hugging Face Hub model id"
            ) from None
        except GatedRepoError:
            raise ModelNotFoundError(
                f"model {self.name!r} is gated on the Hugging Face Hub: accept its terms and log in (or pass token=)"
            ) from None
        except RepositoryNotFoundError:
            raise ModelNotFoundError(
                f"model {self.name!r} was not found: no such local directory, and no such Hugging Face Hub "
                "repository (or it is private: log in or pass token=)"
            ) from None
        except RevisionNotFoundError:
            raise ModelNotFoundError(
                f"model {self.name!r} has no revision {self.revision!r} on the Hugging Face Hub") from None
        except LocalEntryNotFoundError:
            if filename != CONFIG_FILE:
                return None  # offline: a file never cached is taken as absent; config.json decides availability
            raise ModelNotFoundError(
                f"model {self.name!r} is not a local directory and is not in the Hugging Face cache, and the hub "
                "cannot be reached (offline, or HF_HUB_OFFLINE=1). Download it where the hub is reachable (or point "
                "HF_HOME at a cache that holds it), or pass the path of a local checkpoint directory"
            ) from None
        except EntryNotFoundError:
            return None
