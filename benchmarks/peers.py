"""The systems compared, one registry: how each loads the shared checkpoint and runs a fill-mask batch.

A system's runner takes CPU tensors (ids, attention mask, mask positions) and returns the logits
fill-mask needs, on the device: fastbert's [N, V] at the [MASK] positions, or [B, S, V] for systems
that compute the MLM head everywhere. Building a runner for a batch shape is the untimed "prepare"
step: CUDA-graph capture, or a torch.compile for that one shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .budget import time_limit
from .inputs import FillMaskBatch
from .timing import graphed

COMPILE_RESERVE_S = 45.0  # a compile starts only with this much of the call's budget left, and must end 10 s early


class NotApplicable(Exception):
    """The system does not exist in this build (e.g. a fastbert without packed batches)."""


Runner = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Peer:
    description: str
    load: Callable[[Path, object], object]                     # (checkpoint, settings) -> model
    make_runner: Callable[[object, FillMaskBatch, object], Runner]  # (model, batch, settings) -> runner
    compiles: bool = False
    max_autotune: bool = False


def load_fastbert(checkpoint: Path, settings):
    from fastbert import FastBert

    return FastBert.from_pretrained(checkpoint, device=settings.device, dtype=settings.dtype)


def fastbert_runner(*, all_logits: bool = False, packed: bool | None = None):
    def make(model, batch: FillMaskBatch, settings) -> Runner:
        if packed is not None:
            if hasattr(model, "packed"):
                model.packed = packed
            elif packed:
                raise NotApplicable("this fastbert has no packed (padding-free) mode")
        warmup = getattr(model, "warmup", None)
        if warmup is not None and not all_logits:  # warmup() captures the [MASK]-rows graphs; the all-positions
            warmup(batch_sizes=(batch.size,), seq_lens=(batch.seq_len,))  # one is captured by the untimed first call

        def run(ids, mask, logits_at):
            return model(ids, attention_mask=mask, logits_at=None if all_logits else logits_at).logits
        return run
    return make


def load_fastbert_encoder(checkpoint: Path, settings):
    from fastbert import FastBert

    return FastBert.from_pretrained(checkpoint, device=settings.device, dtype=settings.dtype, head="none")


def fastbert_encoder_runner(model, batch: FillMaskBatch, settings) -> Runner:
    def run(ids, mask, logits_at):
        return model(ids, attention_mask=mask).last_hidden_state
    return run


def fastbert_device_inputs_runner(model, batch: FillMaskBatch, settings) -> Runner:
    """The batch's inputs put on the GPU once, before timing: calls start from tensors already there."""
    ids, mask, logits_at = (t.to(settings.device) for t in (batch.input_ids, batch.attention_mask, batch.logits_at))

    def run(*host_inputs):
        return model(ids, attention_mask=mask, logits_at=logits_at).logits
    return run


def load_transformers(attention: str, auto_class: str = "AutoModelForMaskedLM"):
    def load(checkpoint: Path, settings):
        import transformers

        model = getattr(transformers, auto_class).from_pretrained(checkpoint, dtype=settings.dtype,
                                                                  attn_implementation=attention)
        return model.to(settings.device).eval()
    return load


def transformers_runner(model, batch: FillMaskBatch, settings) -> Runner:
    device = settings.device

    def run(ids, mask, logits_at):
        return model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    return run


def transformers_graph_runner(model, batch: FillMaskBatch, settings) -> Runner:
    """The model captured in a CUDA graph for this batch's shape; inputs are copied into static buffers."""
    static_ids = batch.input_ids.to(settings.device)
    static_mask = batch.attention_mask.to(settings.device)

    def forward():
        # transformers turns a 2-D mask into SDPA's 4-D boolean one after asking the host whether there is any
        # padding, a sync that capture forbids in some versions; building the same 4-D mask here keeps it in the graph
        keep = static_mask.bool()[:, None, None, :].expand(-1, 1, static_mask.shape[1], -1)
        return model(input_ids=static_ids, attention_mask=keep).logits
    replay = graphed(forward, settings.device)

    def run(ids, mask, logits_at):
        static_ids.copy_(ids)
        static_mask.copy_(mask)
        return replay()
    return run


def load_transformers_encoder(checkpoint: Path, settings):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(checkpoint, dtype=settings.dtype, attn_implementation="sdpa",
                                      add_pooling_layer=False)
    return model.to(settings.device).eval()


def compiled_runner(mode: str, output: str = "logits"):
    def make(model, batch: FillMaskBatch, settings) -> Runner:
        # One fixed-shape compile per point, as the protocol's shapes are fixed: a fresh start per shape keeps
        # compile time per shape honest and needs no dynamic shapes or recompile limits.
        torch._dynamo.reset()
        # on the CPU (structure only), dynamo without inductor: no C++ toolchain, seconds instead of minutes
        options = dict(mode=mode) if settings.on_cuda else dict(backend="eager")
        compiled = torch.compile(model, dynamic=False, **options)
        device = settings.device

        def run(ids, mask, logits_at):
            torch.compiler.cudagraph_mark_step_begin()  # each call is a new step: no output outlives the next replay
            return getattr(compiled(input_ids=ids.to(device), attention_mask=mask.to(device)), output)
        with time_limit(settings.budget.left() - 10.0):
            run(batch.input_ids, batch.attention_mask, batch.logits_at)
        return run
    return make


PEERS: dict[str, Peer] = {
    "fastbert": Peer("fastbert: MLM head only at the [MASK] position", load_fastbert, fastbert_runner()),
    "fastbert-all-logits": Peer("fastbert: MLM head at every position, [B, S, V] as transformers computes it",
                                load_fastbert, fastbert_runner(all_logits=True)),
    "fastbert-padded": Peer("fastbert on the batch padded to its longest text (packed=False where the switch exists)",
                            load_fastbert, fastbert_runner(packed=False)),
    "fastbert-packed": Peer("fastbert on the tokens only, no padding (packed=True)", load_fastbert,
                            fastbert_runner(packed=True)),
    "fastbert-encoder": Peer("fastbert with no head (head='none'): last_hidden_state of every token",
                             load_fastbert_encoder, fastbert_encoder_runner),
    "fastbert-device-inputs": Peer("fastbert: MLM head only at the [MASK] position, inputs already on the GPU",
                                   load_fastbert, fastbert_device_inputs_runner),
    "hf-eager": Peer("transformers, attn_implementation='eager'", load_transformers("eager"), transformers_runner),
    "hf-sdpa": Peer("transformers, attn_implementation='sdpa'", load_transformers("sdpa"), transformers_runner),
    "hf-sdpa-cudagraph": Peer("transformers SDPA captured in a CUDA graph per shape (static inputs, copy in, replay)",
                              load_transformers("sdpa"), transformers_graph_runner),
    "compile-reduce-overhead": Peer("torch.compile(transformers SDPA, mode='reduce-overhead'), one compile per shape",
                                    load_transformers("sdpa"), compiled_runner("reduce-overhead"), compiles=True),
    "compile-max-autotune": Peer("torch.compile(transformers SDPA, mode='max-autotune'), one compile per shape",
                                 load_transformers("sdpa"), compiled_runner("max-autotune"), compiles=True,
                                 max_autotune=True),
    "compile-encoder": Peer("torch.compile(transformers BertModel SDPA, mode='reduce-overhead'): last_hidden_state",
                            load_transformers_encoder, compiled_runner("reduce-overhead", "last_hidden_state"),
                            compiles=True),
}

STANDARD_SYSTEMS = ("fastbert", "fastbert-all-logits", "hf-eager", "hf-sdpa", "hf-sdpa-cudagraph",
                    "compile-reduce-overhead", "compile-max-autotune")
MIXED_SYSTEMS = ("fastbert-padded", "fastbert-packed", "hf-eager", "hf-sdpa", "hf-sdpa-cudagraph",
                 "compile-reduce-overhead", "compile-max-autotune")
