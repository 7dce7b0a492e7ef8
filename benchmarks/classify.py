"""Sequence classification: bert-base architecture with three labels and random weights, batch 1 over the protocol's
lengths (P50/P90) and batch 32 at 128 and 512 tokens, fastbert against transformers SDPA, eager and captured in a
CUDA graph. Each call takes CPU ids and mask and returns the [B, 3] logits on the device; the logits are checked
against fastbert's."""

from __future__ import annotations

from .compare import Point, compare
from .inputs import fill_mask_batch
from .peers import Peer, Runner, load_fastbert, load_transformers, transformers_graph_runner, transformers_runner

MODEL = "bert-base-cased"
LABELS = ("negative", "neutral", "positive")
SEED = 0
CLASSIFIER = "AutoModelForSequenceClassification"


def fastbert_runner(model, batch, settings) -> Runner:
    def run(ids, mask, logits_at):
        return model(ids, attention_mask=mask).logits

    run(batch.input_ids, batch.attention_mask, None)  # captures this shape's graph: part of preparing, not timed
    return run


PEERS = {
    "fastbert": Peer("fastbert: sequence-classification head, the last layer at the first token only from 128 "
                     "tokens", load_fastbert, fastbert_runner),
    "hf-sdpa": Peer("transformers *ForSequenceClassification, attn_implementation='sdpa'",
                    load_transformers("sdpa", CLASSIFIER), transformers_runner),
    "hf-sdpa-cudagraph": Peer("transformers SDPA captured in a CUDA graph per shape (static inputs, copy in, replay)",
                              load_transformers("sdpa", CLASSIFIER), transformers_graph_runner),
}
SYSTEMS = tuple(PEERS)


def run(settings) -> dict:
    profile = settings.profile
    checkpoint, config = settings.checkpoints.get(MODEL, head="sequence-classification", labels=LABELS)
    # fill-mask inputs serve: random words between [CLS] and [SEP] (a [MASK] among them is one more token id)
    batch1 = [Point(fill_mask_batch(config, [seq], seed=seq), max_autotune=False) for seq in profile.classify_seqs]
    batched = [Point(fill_mask_batch(config, [seq] * profile.classify_batch, seed=SEED), max_autotune=False)
               for seq in profile.classify_batch_seqs]
    return dict(model=f"{MODEL} architecture, {len(LABELS)} labels, random weights",
                dtype=str(settings.dtype).removeprefix("torch."), warmup=profile.warmup, iters=profile.iters,
                batch1=compare(settings, checkpoint, SYSTEMS, batch1, reference="fastbert", peers=PEERS),
                batched=compare(settings, checkpoint, SYSTEMS, batched, reference="fastbert", peers=PEERS))
