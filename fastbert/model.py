"""The BERT / RoBERTa encoder on fastbert's fused layout, and the engine that runs it with its heads.

Every step is an op of the chosen backend (``fastbert.ops``): the PyTorch references, or the Triton
kernels with cuBLAS GEMMs. A linear op carries what follows it in BERT (bias, GELU, residual,
LayerNorm) so that it can be fused: on the GPU each line below is one or two launches. Task heads
(``fastbert.heads``) declare the token rows they read: where none reads every token, the last layer runs at
those rows alone, and each head's named outputs reach the caller by the rows they have.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

from . import heads, tuning
from .config import BertConfig
from .devices import resolve_device
from .errors import CheckpointError, InputError
from .graphs import GraphRunner
from .heads import Head, LastLayer, Rows
from .hub import CheckpointSource
from .inputs import as_array, check_inputs
from .layers import LayerNorm, Linear, Table, norm_args
from .ops import BACKENDS
from .ops.common import interpreting
from .packing import PackedBatch, packing_obstacle, pays_to_pack
from .staging import PACKED, PADDED, buffer_size, rows_key, stage_packed, views
from .weights import FASTBERT_WEIGHTS, load_checkpoint

DTYPES = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}


class FastBertOutput(dict):
    """A forward pass's named outputs, as keys or attributes; one the model does not produce reads None.

    ``last_hidden_state``: [B, S, H]; [N, H] at the N positions of ``logits_at``; None when the head reads one row
    per sequence only (sequence classification), since the last layer then runs at those rows alone, and with a
    head whose output replaces it (sentence embeddings). ``logits``: the
    head's (masked LM [B, S, V], or [N, V] with ``logits_at``; sequence classification [B, L]; token classification
    [B, S, L]). ``pooler_output``: [B, H] where the checkpoint has a pooler. ``sentence_embedding``: [B, D] with a
    sentence-embedding head. With ``return_packed``, per-token outputs are [T, ...] for the T real tokens and
    ``cu_seqlens`` [B + 1] holds each row's token offsets."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name, value):
        self[name] = value


@dataclass
class TokenLayout:
    """Where each sequence's tokens lie among a call's token rows: [B, S] under a key mask, or packed."""
    key_mask: torch.Tensor | None = None      # padded: [B, S] int32, 1 for real tokens
    cu_seqlens: torch.Tensor | None = None    # packed: [B + 1] int32 token offsets
    first_tokens: torch.Tensor | None = None  # packed: [B] each sequence's first token (0 for an empty one)

    def rows(self, kind: Rows) -> torch.Tensor:
        """Flat token-row indices of each sequence's FIRST or LAST token, [B]."""
        if self.cu_seqlens is not None:
            return self.first_tokens if kind is Rows.FIRST else (self.cu_seqlens[1:] - 1).clamp(min=0)
        batch, seq_len = self.key_mask.shape
        starts = torch.arange(0, batch * seq_len, seq_len, device=self.key_mask.device)
        if kind is Rows.FIRST:
            return starts  # position 0, as transformers' poolers read it
        return starts + seq_len - 1 - self.key_mask.flip(1).argmax(dim=1)  # the last real token


class Embeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = Table(config.vocab_size, config.hidden_size)
        self.position_embeddings = Table(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = Table(config.type_vocab_size, config.hidden_size)
        self.norm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.padding_idx = config.pad_token_id if config.is_roberta else None

    def forward(self, input_ids, token_type_ids, ops, position_ids=None):       # [B, S] -> [B, S, H]
        return ops.embeddings(input_ids, token_type_ids, self.word_embeddings.weight, self.position_embeddings.weight,
                              self.token_type_embeddings.weight, self.norm.weight, self.norm.bias, self.norm.eps,
                              self.padding_idx, position_ids)


class EncoderLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        hidden, intermediate, eps = config.hidden_size, config.intermediate_size, config.layer_norm_eps
        self.num_heads = config.num_attention_heads
        self.qkv = Linear(hidden, 3 * hidden)
        self.attn_out = Linear(hidden, hidden)
        self.attn_norm = LayerNorm(hidden, eps)
        self.ffn_up = Linear(hidden, intermediate)
        self.ffn_down = Linear(intermediate, hidden)
        self.ffn_norm = LayerNorm(hidden, eps)

    def forward(self, x, attend, ops):  # x: [B, S, H], or [T, H] packed; attend: see FastBert.encode
        qkv = ops.linear(x, self.qkv.weight, self.qkv.bias)                        # [B, S, 3H]
        x = attend(qkv, self.num_heads, self.attn_out.weight, self.attn_out.bias, x, norm_args(self.attn_norm))
        return self.feed_forward(x, ops)

    def at_rows(self, x, rows, attend_rows, ops):
        """The layer's output at token rows ``rows`` only ([N, H]): keys and values from every token, queries and
        the rest of the layer at those rows. ``attend_rows(qkv, rows, heads)`` -> their [N, H] context."""
        qkv = ops.linear(x, self.qkv.weight, self.qkv.bias)
        context = attend_rows(qkv, rows, self.num_heads)
        residual = x.reshape(-1, x.shape[-1]).index_select(0, rows)
        x = ops.linear(context, self.attn_out.weight, self.attn_out.bias, residual=residual,
                       norm=norm_args(self.attn_norm))
        return self.feed_forward(x, ops)

    def feed_forward(self, x, ops):
        hidden = ops.linear(x, self.ffn_up.weight, self.ffn_up.bias, gelu=True)   # [..., I]
        return ops.linear(hidden, self.ffn_down.weight, self.ffn_down.bias, residual=x, norm=norm_args(self.ffn_norm))




class FastBert(nn.Module):
    def __init__(self, config: BertConfig, *, head: Head | None = None, pooler: bool = False,
                 backend: str = "torch"):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = heads.Pooler(config) if pooler else None
        self.head = head
        self.backend = backend
        self.use_cuda_graphs = False  # from_pretrained turns it on for CUDA models
        self.packed = None            # None: pack padded batches where it pays; True / False: always / never
        self._graph_runner = None

    @property
    def backend(self) -> str:
        return self.ops.name

    @backend.setter
    def backend(self, name: str) -> None:
        if name not in BACKENDS:
            raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
        self.ops = BACKENDS[name]

    @property
    def device(self) -> torch.device:
        return self.embeddings.word_embeddings.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embeddings.word_embeddings.weight.dtype

    @property
    def head_name(self) -> str:
        return self.head.name if self.head is not None else heads.NO_HEAD

    @property
    def labels(self) -> list[str] | None:
        """The names of a classification head's outputs, in order; None for other heads."""
        out = getattr(self.head, "out", None)
        return self.config.labels(out.weight.shape[0]) if out is not None else None

    def attached_heads(self) -> list[Head]:
        """The pooler, where the checkpoint has one, then the task head."""
        return [h for h in (self.pooler, self.head) if h is not None]

    def hidden_rows(self) -> Rows | None:
        """The rows ``last_hidden_state`` holds: those the head reads among every token and the selected ones; None
        when it reads one row per sequence only, or its output replaces the hidden states."""
        if self.head is not None and not self.head.returns_hidden_state:
            return None
        reads = self.head.reads if self.head is not None else {Rows.TOKENS}
        return next((rows for rows in (Rows.SELECTED, Rows.TOKENS) if rows in reads), None)

    def output_rows(self, *, selected: bool) -> dict[str, Rows]:
        """Each output's rows (Rows.TOKENS, SELECTED or SEQUENCES) on a call with or without ``logits_at``."""
        def resolved(rows):
            return Rows.TOKENS if rows is Rows.SELECTED and not selected else rows

        hidden = self.hidden_rows()
        layout = {"last_hidden_state": resolved(hidden)} if hidden is not None else {}
        for head in self.attached_heads():
            layout.update({name: resolved(rows) for name, rows in head.outputs.items()})
        return layout

    def output_bytes(self, batch: int, tokens: int, selected: int | None) -> int:
        """Bytes of the outputs of a call on ``batch`` sequences of ``tokens`` tokens in all (padding included where
        they are padded), ``selected`` of them chosen by ``logits_at`` (None: no ``logits_at``)."""
        rows = {Rows.TOKENS: tokens, Rows.SELECTED: selected or 0, Rows.SEQUENCES: batch}
        widths = {"last_hidden_state": self.config.hidden_size}
        for head in self.attached_heads():
            widths.update(head.widths())
        layout = self.output_rows(selected=selected is not None)
        return sum(rows[kind] * widths[name] for name, kind in layout.items()) * self.dtype.itemsize

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, logits_at=None,
                return_packed=False) -> FastBertOutput:
        """``attention_mask``: 1 for tokens, 0 for padding. ``logits_at``: a [B, S] bool mask; when given,
        ``logits`` and ``last_hidden_state`` are [N, ...] for its N true positions, in row-major order, and the MLM
        head and the last layer run only there (and at the rows other heads read).
        ``return_packed``: run packed and return [T, ...] outputs for the T tokens, with ``cu_seqlens``."""
        graphs = self.use_cuda_graphs and self.device.type == "cuda"
        # device inputs' checks replay a graph of their own: a launch from Python costs more host time
        checked = check_inputs(self.config, input_ids, attention_mask, token_type_ids, logits_at,
                               device_stats=self.graph_runner.input_stats if graphs else None)
        input_ids, attention_mask = checked.input_ids, checked.attention_mask
        token_type_ids, logits_at = checked.token_type_ids, checked.logits_at
        if logits_at is not None and not any(Rows.SELECTED in head.reads for head in self.attached_heads()):
            raise InputError(f"logits_at selects where the MLM head runs, and this model has no MLM head (its head: "
                             f"{self.head_name})")
        positions = math.prod(input_ids.shape)
        graphed = graphs and self.graph_runner.takes(len(input_ids), positions, checked.selected)
        # auto mode looks at the mask only for batches large enough to pack: batch 1 pays nothing for it
        may_pack = return_packed or self.packed is True or (
            self.packed is None and attention_mask is not None
            and positions >= tuning.settings(self.device).pack_from_positions)
        if may_pack:  # packing is host work: device inputs come back for it
            ids, mask, types, at = (as_array(t) if t is not None else None
                                    for t in (input_ids, attention_mask, token_type_ids, logits_at))
            mask = mask if mask is not None else np.ones(ids.shape, dtype=np.int32)
            if self._packs(mask, at, forced=return_packed or self.packed is True):
                return self._forward_packed(ids, mask, types, at, graphs=graphs, return_packed=return_packed)
        if graphed:  # a replay needs no autograd state, and entering a no-grad mode costs every call host time
            return FastBertOutput(self.graph_runner(checked))
        return FastBertOutput(self._forward_eager(input_ids, attention_mask, token_type_ids, logits_at))

    # no_grad rather than inference_mode: outputs stay ordinary tensors, which callers may update in place (as those
    # of a graph replay, cloned outside any such mode)
    @torch.no_grad()
    def _forward_eager(self, input_ids, attention_mask, token_type_ids, logits_at):
        """Checked inputs, numpy arrays or tensors, to the device and through ``run``."""
        device = self.device

        def to_device(values, dtype=None):
            return torch.as_tensor(values).to(device=device, dtype=dtype, non_blocking=True)

        if attention_mask is None:
            key_mask = torch.ones(tuple(input_ids.shape), dtype=torch.int32, device=device)
        else:
            key_mask = to_device(attention_mask, torch.int32)
        if logits_at is None:
            logits_index = None
        elif isinstance(logits_at, np.ndarray):
            logits_index = to_device(np.flatnonzero(logits_at))
        else:
            logits_index = to_device(logits_at.flatten().nonzero().squeeze(1))
        types = to_device(token_type_ids) if token_type_ids is not None else None
        return self.run(to_device(input_ids), key_mask, types, logits_index)

    def _packs(self, attention_mask: np.ndarray, logits_at, *, forced: bool) -> bool:
        reads_first = any(Rows.FIRST in head.reads for head in self.attached_heads())
        obstacle = packing_obstacle(attention_mask, logits_at, reads_first=reads_first)
        if forced and obstacle:
            raise InputError(f"this batch cannot run packed: {obstacle}")
        return forced or (obstacle is None and pays_to_pack(attention_mask, tuning.settings(self.device)))

    def _forward_packed(self, input_ids, attention_mask, token_type_ids, logits_at, *, graphs, return_packed):
        batch = PackedBatch.from_padded(input_ids, attention_mask, token_type_ids, logits_at,
                                        self.embeddings.padding_idx)
        if graphs and self.graph_runner.fits(batch):
            return FastBertOutput(self.graph_runner.packed(batch, return_packed=return_packed))
        return self._run_packed_eagerly(batch, return_packed)

    @torch.no_grad()
    def _run_packed_eagerly(self, batch: PackedBatch, return_packed: bool) -> FastBertOutput:
        key = (PACKED, batch.shape[0], batch.tokens, rows_key(batch.logits_count))
        host = np.empty(buffer_size(key), dtype=np.int32)
        stage_packed(views(host, key), batch, self.config.pad_token_id)
        inputs = views(torch.from_numpy(host).to(self.device), key)
        layout = self.output_rows(selected=batch.logits_rows is not None)
        return FastBertOutput(batch.unpack(self.run_inputs(inputs, key), layout, inputs, return_packed=return_packed))

    def run(self, input_ids, key_mask, token_type_ids, logits_index) -> dict[str, torch.Tensor]:
        """The forward pass on validated [B, S] device tensors: the named outputs of ``encode_and_heads``."""
        ops = self.ops
        x = self.embeddings(input_ids, token_type_ids, ops)                     # [B, S, H]
        return self.encode_and_heads(
            x, lambda qkv, heads, *output: ops.attention_output(qkv, key_mask, heads, *output),
            lambda qkv, rows, heads: ops.attention_rows(qkv, key_mask, rows, heads), TokenLayout(key_mask=key_mask),
            logits_index)

    def run_packed(self, input_ids, token_type_ids, position_ids, cu_seqlens, first_tokens,
                   logits_index) -> dict[str, torch.Tensor]:
        """The forward pass on a packed batch's [T] device tensors (``fastbert.packing``): per-token outputs are
        [T, ...], or [N, ...] at ``logits_index``; per-sequence ones [B, ...]."""
        ops = self.ops
        x = self.embeddings(input_ids[None], token_type_ids[None], ops, position_ids[None])[0]         # [T, H]
        return self.encode_and_heads(
            x, lambda qkv, heads, weight, bias, residual, norm: ops.linear(
                ops.attention_packed(qkv, cu_seqlens, heads), weight, bias, residual=residual, norm=norm),
            lambda qkv, rows, heads: ops.attention_packed_rows(qkv, cu_seqlens, rows, heads),
            TokenLayout(cu_seqlens=cu_seqlens, first_tokens=first_tokens), logits_index)

    def run_inputs(self, inputs: dict, key: tuple) -> dict[str, torch.Tensor]:
        """The forward pass on the named views of a staged input buffer (``fastbert.staging``)."""
        logits_index = inputs["rows"] if key[3] > 0 else None
        if key[0] == PADDED:
            return self.run(inputs["ids"], inputs["mask"], inputs["types"], logits_index)
        return self.run_packed(inputs["ids"], inputs["types"], inputs["positions"], inputs["cu_seqlens"],
                               inputs["first"], logits_index)

    def encode(self, x, attend, layers=None):
        """The encoder ``layers`` (default: all) on embeddings ``x``. ``attend(qkv, heads, weight, bias, residual,
        norm)`` is each layer's attention sublayer after its QKV projection: LayerNorm(attention @ weight^T + bias
        + residual)."""
        for layer in self.layers if layers is None else layers:
            x = layer(x, attend, self.ops)
        return x

    def encode_and_heads(self, x, attend, attend_rows, layout: TokenLayout, logits_index) -> dict[str, torch.Tensor]:
        """The named outputs from embeddings ``x`` ([B, S, H] padded or [T, H] packed, as ``layout`` says), with the
        heads' rows, ``logits_index`` (flat token rows) among them, in the last layer. From the tuning's
        ``prune_from_tokens``, when no head reads every token, the last layer runs at those rows alone: a layer's other
        rows feed nothing but their own outputs."""
        reads = {Rows.TOKENS if rows is Rows.SELECTED and logits_index is None else rows
                 for rows in [self.hidden_rows(), *(r for head in self.attached_heads() for r in head.reads)] if rows}
        prune = Rows.TOKENS not in reads and x.numel() // x.shape[-1] >= tuning.settings(x.device).prune_from_tokens
        x = self.encode(x, attend, self.layers[:-1] if prune else None)
        index = {rows: logits_index if rows is Rows.SELECTED else layout.rows(rows)
                 for rows in reads if rows is not Rows.TOKENS}
        if prune:
            out = self.layers[-1].at_rows(x, torch.cat(list(index.values())), attend_rows, self.ops)
            tokens, at_rows = None, dict(zip(index, out.split([len(i) for i in index.values()])))
        else:
            flat = x.reshape(-1, x.shape[-1])
            tokens, at_rows = x, {rows: flat.index_select(0, i) for rows, i in index.items()}
        last = LastLayer(tokens, at_rows, layout.key_mask, layout.cu_seqlens)
        hidden = self.hidden_rows()
        outputs = {"last_hidden_state": last.at(hidden)} if hidden is not None else {}
        for head in self.attached_heads():
            outputs.update(head(last, self.ops))
        return outputs

    # ---- CUDA graphs ------------------------------------------------------------------------------------------

    @property
    def graph_runner(self) -> GraphRunner:
        if self._graph_runner is None:
            self._graph_runner = GraphRunner(self)
        return self._graph_runner

    @torch.inference_mode()
    def warmup(self, batch_sizes=(1,), seq_lens=None, masks_per_sequence: int = 1) -> None:
        """Capture the CUDA graphs of these batch sizes x sequence lengths (default: every sequence bucket)
        ahead of the first call; fill-mask calls with ``masks_per_sequence`` masks then replay them."""
        if not (self.use_cuda_graphs and self.device.type == "cuda"):
            return
        runner = self.graph_runner
        keys = {runner.key(b, s, b * masks_per_sequence) for b in batch_sizes if b <= runner.max_batch
                for s in (seq_lens or runner.seq_buckets)}
        runner.warmup(sorted(keys))

    def graph_memory_bytes(self) -> int:
        """GPU memory held by the captured graphs' shared pool."""
        return self._graph_runner.memory_bytes() if self._graph_runner is not None else 0

    def reset_graphs(self) -> None:
        """Drop every captured graph (after changing the model's weights, device or dtype)."""
        self._graph_runner = None

    # ---- loading and saving -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path, *, device=None, dtype=None, backend=None, revision=None, token=None,
                        head=None):
        """Load a Hugging Face BERT/RoBERTa checkpoint or a fastbert checkpoint (hub id or local directory), with the
        head its config.json names, or ``head`` (``fastbert.heads.CHOICES``)."""
        device = resolve_device(device)  # before anything is read: a device that is not there fails at once
        return cls.from_source(CheckpointSource(name_or_path, revision=revision, token=token), device=device,
                               dtype=dtype, backend=backend, head=head)

    @classmethod
    def from_source(cls, source, *, device=None, dtype=None, backend=None, head=None):
        """``from_pretrained`` on a resolved ``CheckpointSource``, or anything with its ``name``, ``config_path`` and
        ``get`` (a sentence-transformers checkpoint's encoder folder)."""
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device)
        backend = backend or ("triton" if device.type == "cuda" else "torch")
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "triton" and device.type != "cuda" and not interpreting():
            raise InputError("backend='triton' on the CPU runs only under Triton's interpreter: set TRITON_INTERPRET=1 "
                             "before importing fastbert, or use backend='torch'")
        config = BertConfig.from_json(source.config_path)
        checkpoint = load_checkpoint(source, config, head)
        model = cls.from_state(config, checkpoint.state, head=checkpoint.head, device=device, dtype=dtype,
                               backend=backend)
        model.name_or_path = source.name
        model.use_cuda_graphs = device.type == "cuda"
        return model

    @classmethod
    def from_state(cls, config, state, *, head=None, device="cpu", dtype=torch.float32, backend="torch"):
        """Build a model from tensors already in fastbert's layout (see ``fastbert.weights``); ``head`` as in
        ``from_pretrained``."""
        head = heads.pick(config, state, head)
        head_class = heads.HEADS.get(head)
        with torch.device("meta"):
            model = cls(config, head=head_class.from_checkpoint(config, state) if head_class else None,
                        pooler="pooler.weight" in state, backend=backend)
        tensors = {name: t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)
                   for name, t in state.items()}
        if head_class is not None:
            tensors = head_class.tied(tensors, config)
        expected = model.state_dict()
        missing = sorted(k for k in expected if tensors.get(k) is None)
        if missing:
            shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            if all(k.startswith("head.") for k in missing):
                raise CheckpointError(
                    f"the {head} head needs tensors the checkpoint lacks: {shown}; it was saved without that head "
                    f"(pass head= one it has, or 'none' for the encoder alone)")
            raise CheckpointError(f"the checkpoint lacks {len(missing)} tensors the model needs: {shown}")
        for name, want in expected.items():
            if tensors[name].shape != want.shape:
                raise CheckpointError(
                    f"tensor {name} has shape {tuple(tensors[name].shape)}; the config implies {tuple(want.shape)}")
        model.load_state_dict({k: tensors[k] for k in expected}, assign=True)
        return model.requires_grad_(False).eval()

    def save_pretrained(self, directory) -> Path:
        """Write a fastbert checkpoint: ``fastbert.safetensors`` in the fused layout, and ``config.json`` naming its
        head as transformers names it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state, stored = {}, set()
        for name, tensor in self.state_dict().items():
            if tensor.data_ptr() not in stored:  # a tied tensor: safetensors holds no aliases; loading ties it again
                stored.add(tensor.data_ptr())
                state[name] = tensor.contiguous()
        save_file(state, str(directory / FASTBERT_WEIGHTS), metadata={"format": "pt", "layout": "fastbert"})
        config = replace(self.config, architectures=(heads.architecture_name(self.config, self.head_name),))
        (directory / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        return directory


def resolve_dtype(dtype, device: torch.device | None) -> torch.dtype:
    """A dtype from a torch.dtype or its name; None means float16 on CUDA, float32 elsewhere."""
    if dtype is None:
        return torch.float16 if device is not None and device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype {dtype!r}; choose float16, bfloat16 or float32")
        dtype = DTYPES[dtype]
    if dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise InputError(f"dtype {dtype} is not supported; choose float16, bfloat16 or float32")
    return dtype
