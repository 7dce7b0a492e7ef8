"""The BERT / RoBERTa encoder and its MLM head on fastbert's fused layout.

Every step is an op of the chosen backend (``fastbert.ops``): the PyTorch references, or the Triton
kernels with cuBLAS GEMMs. A linear op carries what follows it in BERT (bias, GELU, residual,
LayerNorm) so that it can be fused: on the GPU each line below is one or two launches.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from . import tuning
from .config import BertConfig
from .errors import CheckpointError, InputError
from .graphs import GraphRunner
from .hub import CheckpointSource
from .inputs import as_array, check_inputs
from .ops import BACKENDS
from .ops.common import interpreting
from .packing import PackedBatch, packing_obstacle, pays_to_pack
from .staging import PACKED, PADDED, buffer_size, rows_key, stage_packed, views
from .weights import FASTBERT_WEIGHTS, load_state

DTYPES = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}


@dataclass
class FastBertOutput:
    last_hidden_state: torch.Tensor             # [B, S, H]; [N, H] for the N positions of logits_at
    logits: torch.Tensor | None = None          # [B, S, V]; [N, V] for the N positions of logits_at; None: no MLM head
    pooler_output: torch.Tensor | None = None   # [B, H] where the checkpoint has a pooler
    cu_seqlens: torch.Tensor | None = None      # [B + 1] int32 token offsets of each row when return_packed


class Linear(nn.Module):
    """Parameters only: every tensor comes from a checkpoint, so nothing is initialized (and building
    the model on the meta device costs nothing)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))


class Table(nn.Module):
    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, dim))


class LayerNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))
        self.bias = nn.Parameter(torch.empty(dim))
        self.eps = eps


def norm_args(norm: LayerNorm) -> tuple:
    return norm.weight, norm.bias, norm.eps


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


class MLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = Linear(config.hidden_size, config.hidden_size)
        self.norm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.decoder = Linear(config.hidden_size, config.vocab_size)

    def forward(self, x, ops):                                                   # [..., H] -> [..., V]
        h = ops.linear(x, self.transform.weight, self.transform.bias, gelu=True, norm=norm_args(self.norm))
        return ops.linear(h, self.decoder.weight, self.decoder.bias)


class FastBert(nn.Module):
    def __init__(self, config: BertConfig, *, mlm_head: bool = True, pooler: bool = False, backend: str = "torch"):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = Linear(config.hidden_size, config.hidden_size) if pooler else None
        self.mlm = MLMHead(config) if mlm_head else None
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
            raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
        self.ops = BACKENDS[name]

    @property
    def device(self) -> torch.device:
        return self.embeddings.word_embeddings.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embeddings.word_embeddings.weight.dtype

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, logits_at=None,
                return_packed=False) -> FastBertOutput:
        """``attention_mask``: 1 for tokens, 0 for padding. ``logits_at``: a [B, S] bool mask; when given,
        ``logits`` and ``last_hidden_state`` are [N, ...] for its N true positions, in row-major order, and the MLM
        head and the last layer run only there (and at the first tokens, for the pooler).
        ``return_packed``: run packed and return [T, ...] outputs for the T tokens, with ``cu_seqlens``."""
        input_ids, attention_mask, token_type_ids, logits_at = check_inputs(
            self.config, input_ids, attention_mask, token_type_ids, logits_at)
        if logits_at is not None and self.mlm is None:
            raise InputError("logits_at selects where the MLM head runs, and this checkpoint has no MLM head")
        graphs = self.use_cuda_graphs and self.device.type == "cuda"
        graphed = graphs and len(input_ids) <= self.graph_runner.max_batch
        # auto mode looks at the mask only for batches large enough to pack: batch 1 pays nothing for it
        positions = math.prod(input_ids.shape)
        may_pack = return_packed or self.packed is True or (
            self.packed is None and attention_mask is not None
            and positions >= tuning.settings(self.device).pack_from_positions)
        if may_pack or graphed:
            ids, mask, types, at = (as_array(t) if t is not None else None
                                    for t in (input_ids, attention_mask, token_type_ids, logits_at))
            if may_pack:
                mask = mask if mask is not None else np.ones(ids.shape, dtype=np.int32)
                if self._packs(mask, at, forced=return_packed or self.packed is True):
                    return self._forward_packed(ids, mask, types, at, graphs=graphs, return_packed=return_packed)
            if graphed:  # a replay needs no autograd state: entering a no-grad mode would cost a batch-1 call 2-4 µs
                logits_rows = np.flatnonzero(at) if at is not None else None
                return FastBertOutput(*self.graph_runner(ids, mask, types, logits_rows))
        return FastBertOutput(*self._forward_eager(input_ids, attention_mask, token_type_ids, logits_at))

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
        obstacle = packing_obstacle(attention_mask, logits_at, has_pooler=self.pooler is not None)
        if forced and obstacle:
            raise InputError(f"this batch cannot run packed: {obstacle}")
        return forced or (obstacle is None and pays_to_pack(attention_mask, tuning.settings(self.device)))

    def _forward_packed(self, input_ids, attention_mask, token_type_ids, logits_at, *, graphs, return_packed):
        batch = PackedBatch.from_padded(input_ids, attention_mask, token_type_ids, logits_at,
                                        self.embeddings.padding_idx)
        if graphs and self.graph_runner.fits(batch):
            return FastBertOutput(*self.graph_runner.packed(batch, return_packed=return_packed))
        return self._run_packed_eagerly(batch, return_packed)

    @torch.no_grad()
    def _run_packed_eagerly(self, batch: PackedBatch, return_packed: bool) -> FastBertOutput:
        key = (PACKED, batch.shape[0], batch.tokens, rows_key(self.mlm is not None, batch.logits_count))
        host = np.empty(buffer_size(key), dtype=np.int32)
        stage_packed(views(host, key), batch, self.config.pad_token_id)
        inputs = views(torch.from_numpy(host).to(self.device), key)
        return FastBertOutput(*batch.unpack(self.run_inputs(inputs, key), inputs, return_packed=return_packed))

    def run(self, input_ids, key_mask, token_type_ids, logits_index):
        """The forward pass on validated [B, S] device tensors: (hidden states, logits, pooled output)."""
        ops = self.ops
        x = self.embeddings(input_ids, token_type_ids, ops)                     # [B, S, H]
        return self.encode_and_heads(
            x, lambda qkv, heads, *output: ops.attention_output(qkv, key_mask, heads, *output),
            lambda qkv, rows, heads: ops.attention_rows(qkv, key_mask, rows, heads), None, logits_index)

    def run_packed(self, input_ids, token_type_ids, position_ids, cu_seqlens, first_tokens, logits_index):
        """The forward pass on a packed batch's [T] device tensors (``fastbert.packing``): hidden states and logits
        ([T, ...], or [N, ...] at ``logits_index``), and the pooler at ``first_tokens``."""
        ops = self.ops
        x = self.embeddings(input_ids[None], token_type_ids[None], ops, position_ids[None])[0]         # [T, H]
        return self.encode_and_heads(
            x, lambda qkv, heads, weight, bias, residual, norm: ops.linear(
                ops.attention_packed(qkv, cu_seqlens, heads), weight, bias, residual=residual, norm=norm),
            lambda qkv, rows, heads: ops.attention_packed_rows(qkv, cu_seqlens, rows, heads), first_tokens,
            logits_index)

    def run_inputs(self, inputs: dict, key: tuple):
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

    def encode_and_heads(self, x, attend, attend_rows, first_tokens, logits_index):
        """(hidden states, logits, pooled output) from embeddings ``x``: [B, S, H] padded (``first_tokens`` None),
        or [T, H] packed with each sequence's first token at ``first_tokens``. With ``logits_index``, hidden states
        and logits are [N, ...] at those token rows, and from the tuning's ``prune_from_tokens`` the last layer runs at
        those rows only (and the pooler's): a layer's other rows feed nothing but their own outputs."""
        token_count = x.numel() // x.shape[-1]
        prune = logits_index is not None and token_count >= tuning.settings(x.device).prune_from_tokens
        x = self.encode(x, attend, self.layers[:-1] if prune else None)
        if prune:
            if self.pooler is not None and first_tokens is None:
                first_tokens = torch.arange(0, token_count, x.shape[1], device=x.device)
            rows = logits_index if self.pooler is None else torch.cat([logits_index, first_tokens])
            out = self.layers[-1].at_rows(x, rows, attend_rows, self.ops)
            hidden, first = out[: len(logits_index)], out[len(logits_index):]
        else:
            hidden = x if logits_index is None else x.reshape(-1, x.shape[-1]).index_select(0, logits_index)
            first = x[:, 0] if first_tokens is None else x.index_select(0, first_tokens)
        pooled = None
        if self.pooler is not None:
            pooled = torch.tanh(F.linear(first, self.pooler.weight, self.pooler.bias))                # [B, H]
        logits = self.mlm(hidden, self.ops) if self.mlm is not None else None
        return hidden, logits, pooled

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
    def from_pretrained(cls, name_or_path, *, device=None, dtype=None, backend=None, revision=None, token=None):
        """Load a Hugging Face BERT/RoBERTa checkpoint or a fastbert checkpoint (hub id or local directory)."""
        device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = resolve_dtype(dtype, device)
        backend = backend or ("triton" if device.type == "cuda" else "torch")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "triton" and device.type != "cuda" and not interpreting():
            raise ValueError("backend='triton' on the CPU runs only under Triton's interpreter: set TRITON_INTERPRET=1 "
                             "before importing fastbert, or use backend='torch'")
        source = CheckpointSource(name_or_path, revision=revision, token=token)
        config = BertConfig.from_json(source.config_path)
        model = cls.from_state(config, load_state(source, config), device=device, dtype=dtype, backend=backend)
        model.name_or_path = source.name
        model.use_cuda_graphs = device.type == "cuda"
        return model

    @classmethod
    def from_state(cls, config, state, *, device="cpu", dtype=torch.float32, backend="torch"):
        """Build a model from tensors already in fastbert's layout (see ``fastbert.weights``)."""
        with torch.device("meta"):
            model = cls(config, mlm_head=any(k.startswith("mlm.") for k in state), pooler="pooler.weight" in state,
                        backend=backend)
        tensors = {name: t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)
                   for name, t in state.items()}
        if model.mlm is not None and "mlm.decoder.weight" not in tensors:
            if not config.tie_word_embeddings:
                raise CheckpointError("the MLM head has no decoder weight and tie_word_embeddings is false")
            tensors["mlm.decoder.weight"] = tensors.get("embeddings.word_embeddings.weight")
        expected = model.state_dict()
        missing = sorted(k for k in expected if tensors.get(k) is None)
        if missing:
            shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            raise CheckpointError(f"the checkpoint lacks {len(missing)} tensors the model needs: {shown}")
        for name, want in expected.items():
            if tensors[name].shape != want.shape:
                raise CheckpointError(
                    f"tensor {name} has shape {tuple(tensors[name].shape)}; the config implies {tuple(want.shape)}")
        model.load_state_dict({k: tensors[k] for k in expected}, assign=True)
        return model.requires_grad_(False).eval()

    def save_pretrained(self, directory) -> Path:
        """Write a fastbert checkpoint: ``fastbert.safetensors`` in the fused layout, and ``config.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        word_embeddings = self.embeddings.word_embeddings.weight
        if self.mlm is not None and self.mlm.decoder.weight.data_ptr() == word_embeddings.data_ptr():
            del state["mlm.decoder.weight"]  # tied: safetensors holds no aliases; loading ties it again
        save_file(state, str(directory / FASTBERT_WEIGHTS), metadata={"format": "pt", "layout": "fastbert"})
        (directory / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        return directory


def resolve_dtype(dtype, device: torch.device | None) -> torch.dtype:
    """A dtype from a torch.dtype or its name; None means float16 on CUDA, float32 elsewhere."""
    if dtype is None:
        return torch.float16 if device is not None and device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose float16, bfloat16 or float32")
        dtype = DTYPES[dtype]
    if dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"dtype {dtype} is not supported; choose float16, bfloat16 or float32")
    return dtype
