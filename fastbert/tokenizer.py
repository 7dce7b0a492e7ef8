"""The tokenizer of the pipelines and encoders, on the ``tokenizers`` library alone (no transformers).

A checkpoint's ``tokenizer.json`` is used as it is. Without one, the same tokenizer is built the way
transformers builds it: BERT's WordPiece from ``vocab.txt``, or RoBERTa's byte-level BPE from
``vocab.json`` and ``merges.txt``. Special tokens and decoding follow transformers as well, so that
predicted tokens and sequences read exactly as they do there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tokenizers import AddedToken, Encoding, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, WordPiece

from .errors import CheckpointError, InputError
from .hub import CheckpointSource

logger = logging.getLogger(__name__)

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
BERT_SPECIAL_TOKENS = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                           mask_token="[MASK]")
ROBERTA_SPECIAL_TOKENS = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", sep_token="</s>",
                              pad_token="<pad>", cls_token="<s>", mask_token="<mask>")
# tokenizer_config.json classes of BERT and RoBERTa checkpoints that transformers loads as slow (Python) tokenizers,
# which have no offsets; every other class it builds on ``tokenizers``, from tokenizer.json or the vocabulary files
SLOW_TOKENIZER_CLASSES = ("BertTokenizerLegacy", "BertJapaneseTokenizer", "BertweetTokenizer", "PhobertTokenizer")
# tokenizer_config.json's model_max_length when a checkpoint sets none (transformers' VERY_LARGE_INTEGER)
NO_MAX_LENGTH = int(1e30)


class TextTokenizer:
    """Encodes texts and text pairs for the model and decodes tokens, as transformers' fast tokenizers do."""

    def __init__(self, backend: Tokenizer, special_tokens: dict[str, str], *, clean_up_spaces: bool = False,
                 model_max_length: int = NO_MAX_LENGTH, is_fast: bool = True):
        """``model_max_length``: the tokens transformers truncates to when asked to truncate with no length given.
        ``is_fast``: False where transformers would load a slow tokenizer, which gives no offsets."""
        self.backend = backend
        self.model_max_length = model_max_length
        self.is_fast = is_fast
        self.mask_token = special_tokens.get("mask_token")
        self.mask_token_id = backend.token_to_id(self.mask_token) if self.mask_token is not None else None
        pad_token = special_tokens.get("pad_token")
        self.pad_token_id = backend.token_to_id(pad_token) if pad_token is not None else None
        unk_token = special_tokens.get("unk_token")
        self.unk_token_id = backend.token_to_id(unk_token) if unk_token is not None else None
        # transformers skips this clean-up for BPE vocabularies, where it would eat real spaces
        self.clean_up_spaces = clean_up_spaces and not isinstance(backend.model, BPE)
        # a tokenizer.json may pin padding and truncation (MiniLM's, to 128 tokens): batches pad themselves,
        # and encode() truncates to the model's length
        backend.no_padding()
        backend.no_truncation()

    @classmethod
    def from_source(cls, source: CheckpointSource, *, roberta: bool) -> TextTokenizer:
        """The tokenizer of a checkpoint; ``roberta`` picks the default special tokens and fallback vocabulary."""
        settings = _read_json(source.get("tokenizer_config.json"))
        special = special_tokens(settings, _read_json(source.get("special_tokens_map.json")), roberta=roberta)
        tokenizer_json = source.get("tokenizer.json")
        if tokenizer_json is not None:
            backend = Tokenizer.from_file(str(tokenizer_json))
        else:
            backend = _byte_level_bpe(source, settings, special) if roberta else _wordpiece(source, settings, special)
        names = {name: token.content for name, token in special.items()}
        return cls(backend, names, clean_up_spaces=settings.get("clean_up_tokenization_spaces", False),
                   model_max_length=settings.get("model_max_length") or NO_MAX_LENGTH,
                   is_fast=settings.get("tokenizer_class", "").removesuffix("Fast") not in SLOW_TOKENIZER_CLASSES)

    @classmethod
    def from_tokenizer(cls, tokenizer, *, roberta: bool) -> TextTokenizer:
        """From a ``tokenizers.Tokenizer``, or a transformers fast tokenizer through its ``backend_tokenizer`` and
        its special tokens; ``roberta`` picks the special tokens an object does not name."""
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        if not isinstance(backend, Tokenizer):
            raise InputError("tokenizer must be a hub id or a directory with the tokenizer files, a "
                             "tokenizers.Tokenizer, or a transformers fast tokenizer (one with a backend_tokenizer); "
                             f"got a {type(tokenizer).__name__}")
        names = dict(ROBERTA_SPECIAL_TOKENS if roberta else BERT_SPECIAL_TOKENS)
        for name in SPECIAL_TOKEN_NAMES:
            value = getattr(tokenizer, name, None)
            if isinstance(value, str):
                names[name] = value
        # a copy: the pipeline sets its own padding and truncation, which must not change the caller's tokenizer
        return cls(Tokenizer.from_str(backend.to_str()), names,
                   clean_up_spaces=bool(getattr(tokenizer, "clean_up_tokenization_spaces", False)))

    def encode(self, texts: list[str], max_length: int, pairs: list[str] | None = None, *,
               stride: int = 0) -> list[Encoding]:
        """Token ids with the special tokens added, of each text or (text, pair); longer inputs are cut to
        ``max_length`` keeping the final special token, a pair's longer side first, as transformers truncates (what
        was cut lies in each encoding's ``overflowing``, in pieces that repeat the ``stride`` tokens before them)."""
        self.backend.enable_truncation(max_length, stride=stride)
        return self.backend.encode_batch(texts if pairs is None else list(zip(texts, pairs)))

    def lowercase_first(self) -> None:
        """Lowercase texts before the tokenizer's own normalization, as sentence-transformers' ``do_lower_case`` does
        (unless a Lowercase step is already there)."""
        normalizer = self.backend.normalizer
        steps = list(normalizer) if isinstance(normalizer, normalizers.Sequence) else [normalizer] if normalizer else []
        if not any(isinstance(step, normalizers.Lowercase) for step in steps):
            self.backend.normalizer = normalizers.Sequence([normalizers.Lowercase(), *steps])

    def decode(self, sequences: list[list[int]], *, skip_special_tokens: bool = False) -> list[str]:
        texts = self.backend.decode_batch(sequences, skip_special_tokens=skip_special_tokens)
        return [clean_up_tokenization(t) for t in texts] if self.clean_up_spaces else texts

    def tokens_to_string(self, tokens: list[str]) -> str:
        """Tokens joined into text by the tokenizer's decoder, as transformers' ``convert_tokens_to_string``."""
        return self.backend.decoder.decode(tokens) if self.backend.decoder is not None else " ".join(tokens)

    def target_ids(self, targets: str | list[str]) -> list[int]:
        """Token ids of ``targets``; a word outside the vocabulary stands for its first token, as in transformers."""
        vocab = self.backend.get_vocab(with_added_tokens=True)
        ids = []
        for target in [targets] if isinstance(targets, str) else targets:
            token_id = vocab.get(target)
            if token_id is None:
                pieces = self.backend.encode(target, add_special_tokens=False).ids
                if not pieces:
                    logger.warning(f"The specified target token `{target}` does not exist in the model vocabulary. "
                                   "We cannot replace it with anything meaningful, ignoring it")
                    continue
                token_id = pieces[0]
                logger.warning(f"The specified target token `{target}` does not exist in the model vocabulary. "
                               f"Replacing with `{self.backend.id_to_token(token_id)}`.")
            ids.append(token_id)
        if not ids:
            raise InputError("At least one target must be provided when passed.")
        return list(dict.fromkeys(ids))


def special_tokens(settings: dict, special_tokens_map: dict, *, roberta: bool) -> dict[str, AddedToken]:
    """The named special tokens, with their stripping flags, resolved the way transformers resolves them:
    ``added_tokens_decoder`` in tokenizer_config.json when it has one, else special_tokens_map.json over it."""
    saved = settings.get("added_tokens_decoder")
    named = dict(settings) if saved is not None else {**settings, **special_tokens_map}
    flags = {spec["content"]: spec for spec in (saved or {}).values()}
    defaults = ROBERTA_SPECIAL_TOKENS if roberta else BERT_SPECIAL_TOKENS
    tokens = {}
    for name in SPECIAL_TOKEN_NAMES:
        value = named.get(name) or defaults.get(name)
        if value is None:
            continue
        spec = value if isinstance(value, dict) else flags.get(value, {"content": value})
        tokens[name] = AddedToken(spec["content"], single_word=spec.get("single_word", False),
                                  lstrip=spec.get("lstrip", False), rstrip=spec.get("rstrip", False),
                                  normalized=spec.get("normalized", False), special=True)
    return tokens


def clean_up_tokenization(text: str) -> str:
    """transformers' ``clean_up_tokenization_spaces``: no space before punctuation and English contractions."""
    for spaced, joined in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                           (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(spaced, joined)
    return text


def _wordpiece(source: CheckpointSource, settings: dict, special: dict[str, AddedToken]) -> Tokenizer:
    """BERT's tokenizer from vocab.txt, as transformers' BertTokenizer builds it."""
    vocab = WordPiece.read_file(str(_required(source, "vocab.txt")))
    backend = Tokenizer(WordPiece(vocab, unk_token=special["unk_token"].content, max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
        strip_accents=settings.get("strip_accents"), lowercase=settings.get("do_lower_case", True))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.add_special_tokens(list(special.values()))
    cls, sep = special["cls_token"].content, special["sep_token"].content
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))])
    return backend


def _byte_level_bpe(source: CheckpointSource, settings: dict, special: dict[str, AddedToken]) -> Tokenizer:
    """RoBERTa's tokenizer from vocab.json and merges.txt, as transformers' RobertaTokenizer builds it."""
    vocab, merges = BPE.read_file(str(_required(source, "vocab.json")), str(_required(source, "merges.txt")))
    backend = Tokenizer(BPE(vocab, merges, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    add_prefix_space = settings.get("add_prefix_space", False)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(special.values()))
    cls, sep = special["cls_token"].content, special["sep_token"].content
    backend.post_processor = processors.RobertaProcessing(
        (sep, backend.token_to_id(sep)), (cls, backend.token_to_id(cls)),
        trim_offsets=settings.get("trim_offsets", True), add_prefix_space=add_prefix_space)
    return backend


def _required(source: CheckpointSource, filename: str) -> Path:
    path = source.get(filename)
    if path is None:
        raise CheckpointError(
            f"checkpoint {source.name!r} has no tokenizer: it needs tokenizer.json, or vocab.txt (BERT), or vocab.json "
            "and merges.txt (RoBERTa); pass tokenizer= a hub id or directory that has them")
    return path


def _read_json(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read tokenizer file {path}: {e}") from e
