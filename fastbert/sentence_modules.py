"""What a sentence-transformers checkpoint says beyond its encoder: the modules of ``modules.json`` and their files.

sentence-transformers lists a model's modules in ``modules.json``: the encoder (``Transformer``, at the checkpoint's
root or in a folder of its own, with ``sentence_bert_config.json`` beside it), then ``Pooling``, ``Dense`` and
``Normalize``, each in its folder. ``config_sentence_transformers.json`` holds the prompts, the similarity function
and, for a cross-encoder, the activation. A checkpoint without ``modules.json`` is an encoder alone, which
sentence-transformers pools by the mean of its tokens.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import CheckpointError, InputError, UnsupportedModelError
from .heads.sentence_embedding import DenseSpec
from .hub import CONFIG_FILE, CheckpointSource
from .weights import read_tensors

logger = logging.getLogger(__name__)

MODULES_FILE = "modules.json"
MODEL_CONFIG_FILE = "config_sentence_transformers.json"
# what sentence-transformers names the encoder's settings, newest first (older releases, one per model family)
ENCODER_CONFIG_FILES = ("sentence_bert_config.json", "sentence_roberta_config.json",
                        "sentence_xlm-roberta_config.json", "sentence_camembert_config.json")
DENSE_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# the module classes fastbert runs, by class name: sentence-transformers has saved each under several module paths
# (sentence_transformers.models.Pooling, sentence_transformers.sentence_transformer.modules.pooling.Pooling, ...)
TRANSFORMER, POOLING, DENSE, NORMALIZE = "Transformer", "Pooling", "Dense", "Normalize"
# Pooling's older configs: one flag per mode, concatenated in this order
LEGACY_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                        "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                        "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
MODULE_ORDER = rf"{TRANSFORMER}( {POOLING}( {DENSE})*( {NORMALIZE})?)?"  # over modules.json's class names
SENTENCE_EMBEDDING = "sentence_embedding"


class FolderSource:
    """The files of one folder of a checkpoint, resolved as its root resolves them (a local directory or a hub
    repository, with its revision and token); what ``FastBert.from_source`` and ``TextTokenizer.from_source`` read."""

    def __init__(self, root: CheckpointSource, folder: str):
        self.root, self.folder = root, folder
        self.name = posixpath.join(root.name, folder) if folder else root.name
        self.config_path = self.get(CONFIG_FILE, required=True)

    def get(self, filename: str, *, required: bool = False) -> Path | None:
        return self.root.get(posixpath.join(self.folder, filename) if self.folder else filename, required=required)


@dataclass(frozen=True)
class Prompts:
    """Texts put before each input, by name, and the one used when a call names none (sentence-transformers')."""
    texts: dict[str, str]
    default_name: str | None = None

    def __post_init__(self):
        if self.default_name is not None and self.default_name not in self.texts:
            raise CheckpointError(f"the default prompt name {self.default_name!r} is not among the prompts "
                                  f"{sorted(self.texts)}")

    def with_names(self, names: tuple[str, ...]) -> Prompts:
        """These prompts, and an empty one for each of ``names`` they lack (names every model answers to)."""
        return Prompts({**dict.fromkeys(names, ""), **self.texts}, self.default_name)

    def resolve(self, prompt: str | None = None, prompt_name: str | None = None) -> str:
        """``prompt``, else the prompt named ``prompt_name``, else the default one, else none ("")."""
        if prompt is not None:
            if prompt_name is not None:
                logger.warning("both prompt and prompt_name were given: using prompt, as sentence-transformers does")
            return prompt
        if prompt_name is not None:
            if prompt_name not in self.texts:
                raise InputError(f"prompt name {prompt_name!r} is not one of this model's prompts: "
                                 f"{', '.join(map(repr, self.texts)) or 'it has none'}")
            return self.texts[prompt_name]
        return self.texts[self.default_name] if self.default_name is not None else ""


@dataclass(frozen=True)
class EncoderSettings:
    folder: str                     # where the encoder's config.json, weights and tokenizer are ("": the root)
    max_seq_length: int | None      # tokens a text is cut to; None: the tokenizer's model_max_length
    do_lower_case: bool             # lowercase texts before the tokenizer, whatever it does itself


@dataclass(frozen=True)
class Pooling:
    modes: tuple[str, ...]          # concatenated in this order
    include_prompt: bool = True     # False: a prompt's tokens are left out of the pooling


@dataclass(frozen=True)
class Dense:
    spec: DenseSpec
    weight: torch.Tensor            # [out, in], as stored (fp32 as saved)
    bias: torch.Tensor | None


@dataclass(frozen=True)
class SentenceModules:
    encoder: EncoderSettings
    pooling: Pooling | None                 # None: no Pooling module (a cross-encoder)
    dense: tuple[Dense, ...] = ()
    normalize: bool = False
    prompts: Prompts = field(default_factory=lambda: Prompts({}))
    similarity_fn_name: str | None = None
    activation_fn: str | None = None        # a cross-encoder's, as a torch class path


def read_modules(root: CheckpointSource) -> SentenceModules:
    """The modules of the checkpoint at ``root``; mean pooling of the encoder at the root without ``modules.json``."""
    settings = read_json(root.get(MODEL_CONFIG_FILE)) or {}
    prompts = {name: text or "" for name, text in (settings.get("prompts") or {}).items()}
    general = dict(prompts=Prompts(prompts, settings.get("default_prompt_name")),
                   similarity_fn_name=settings.get("similarity_fn_name"), activation_fn=settings.get("activation_fn"))
    listed = read_json(root.get(MODULES_FILE))
    if listed is None:
        return SentenceModules(_encoder_settings(root, ""), Pooling(("mean",)), **general)
    modules = [(_supported_class(entry), module_folder(entry)) for entry in listed]
    kinds = [kind for kind, _ in modules]
    if not re.fullmatch(MODULE_ORDER, " ".join(kinds)):
        raise UnsupportedModelError(f"{MODULES_FILE} of {root.name!r} lists {', '.join(kinds) or 'no modules'}; "
                                    "fastbert runs a Transformer, then Pooling, any Dense modules and Normalize")
    folders = {kind: folder for kind, folder in modules if kind != DENSE}
    return SentenceModules(
        _encoder_settings(root, folders[TRANSFORMER]),
        _pooling(root, folders[POOLING]) if POOLING in folders else None,
        dense=tuple(_dense(root, folder) for kind, folder in modules if kind == DENSE),
        normalize=NORMALIZE in folders, **general)


def module_class(entry: dict) -> str:
    """The class name a modules.json entry gives, without its module path."""
    return entry.get("type", "").rsplit(".", 1)[-1]


def _supported_class(entry: dict) -> str:
    """The class a modules.json entry names, among those fastbert runs, or an error naming it."""
    class_path, name = entry.get("type", ""), module_class(entry)
    if class_path.startswith("sentence_transformers.") and name in (TRANSFORMER, POOLING, DENSE, NORMALIZE):
        return name
    module = entry.get("name", entry.get("idx", "?"))
    raise UnsupportedModelError(f"module {module!r} of {MODULES_FILE} is a {class_path or 'module without a type'}, "
                                "which fastbert does not run; it runs sentence-transformers' Transformer, Pooling, "
                                "Dense and Normalize")


def module_folder(entry: dict) -> str:
    """A modules.json entry's folder ("" for the root), never outside the checkpoint."""
    folder = posixpath.normpath(entry.get("path", "")).removeprefix("./")
    folder = "" if folder == "." else folder
    if folder.startswith(("/", "..")):
        raise CheckpointError(f"{MODULES_FILE} places a module at {entry.get('path')!r}, outside the checkpoint")
    return folder


def _encoder_settings(root: CheckpointSource, folder: str) -> EncoderSettings:
    settings = {}
    for filename in ENCODER_CONFIG_FILES:
        settings = read_json(root.get(posixpath.join(folder, filename))) or {}
        if settings:
            break
    task = settings.get("transformer_task", "feature-extraction")
    if task not in ("feature-extraction", "sequence-classification"):
        raise UnsupportedModelError(f"the encoder of {root.name!r} runs the {task!r} task; fastbert's sentence "
                                    "encoders run feature-extraction and sequence-classification")
    return EncoderSettings(folder, settings.get("max_seq_length"), bool(settings.get("do_lower_case", False)))


def _pooling(root: CheckpointSource, folder: str) -> Pooling:
    """A Pooling module's modes, from its ``pooling_mode`` or its older per-mode flags."""
    config = read_json(root.get(posixpath.join(folder, CONFIG_FILE), required=True))
    modes = config.get("pooling_mode")
    if modes is None:  # sentence-transformers' rule for the flags: all off means mean
        modes = [mode for flag, mode in LEGACY_POOLING_FLAGS.items() if config.get(flag)] or ["mean"]
    return Pooling((modes,) if isinstance(modes, str) else tuple(modes), bool(config.get("include_prompt", True)))


def _dense(root: CheckpointSource, folder: str) -> Dense:
    config = read_json(root.get(posixpath.join(folder, CONFIG_FILE), required=True))
    where = f"the Dense module in {folder!r}"
    if config.get("use_residual") or any(config.get(key, SENTENCE_EMBEDDING) != SENTENCE_EMBEDDING
                                         for key in ("module_input_name", "module_output_name")):
        raise UnsupportedModelError(f"{where} has a residual connection or reads or writes something other than "
                                    "the sentence embedding; fastbert runs Dense on the sentence embedding alone")
    spec = DenseSpec(config["in_features"], config["out_features"], bias=config.get("bias", True),
                     **{"activation": config["activation_function"]} if config.get("activation_function") else {})
    path = next((p for p in (root.get(posixpath.join(folder, name)) for name in DENSE_WEIGHT_FILES) if p), None)
    if path is None:
        raise CheckpointError(f"{where} has no weights: expected {' or '.join(DENSE_WEIGHT_FILES)}")
    tensors = read_tensors(path)
    weight, bias = tensors.get("linear.weight"), tensors.get("linear.bias")
    if weight is None or tuple(weight.shape) != (spec.out_features, spec.in_features) or (
            spec.bias and (bias is None or tuple(bias.shape) != (spec.out_features,))):
        shapes = {name: tuple(t.shape) for name, t in tensors.items()}
        raise CheckpointError(f"{where} should hold linear.weight [{spec.out_features}, {spec.in_features}]"
                              f"{' and linear.bias' if spec.bias else ''}; {path.name} holds {shapes}")
    return Dense(spec, weight, bias if spec.bias else None)


def read_json(path: Path | None):
    """The JSON file at ``path``; None for no file."""
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read sentence-transformers file {path}: {e}") from e
