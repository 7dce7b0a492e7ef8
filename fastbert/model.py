"""The BERT / RoBERTa encoder and its MLM head on fastbert's fused layout.

GEMMs go through torch (cuBLAS on the GPU); everything else is an op of the chosen backend
(``fastbert.ops``): the PyTorch references, or the fused Triton kernels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from .config import BertConfig
from .errors import CheckpointError
from .hub import CheckpointSource
from .inputs import check_inputs
from .ops import BACKENDS
from .ops.common import interpreting
from .weights import FASTBERT_WEIGHTS, load_state

DTYPES = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}


@dataclass
class FastBertOutput:
    last_hidden_state: torch.Tensor             # [B, S, H]
    logits: torch.Tensor | None = None          # [B, S, V]; [N, V] for the N positions of logits_at; None: no MLM head
    pooler_output: torch.Tensor | None = None   # [B, H] where the checkpoint has a pooler


class Embeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.padding_idx = config.pad_token_id if config.is_roberta else None

    def forward(self, input_ids, token_type_ids, ops):                          # [B, S] -> [B, S, H]
        return ops.embeddings(input_ids, token_type_ids, self.word_embeddings.weight, self.position_embeddings.weight,
                              self.token_type_embeddings.weight, self.norm.weight, self.norm.bias, self.norm.eps,
                              self.padding_idx)


class EncoderLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        hidden, intermediate, eps = config.hidden_size, config.intermediate_size, config.layer_norm_eps
        self.num_heads = config.num_attention_heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.ffn_up = nn.Linear(hidden, intermediate)
        self.ffn_down = nn.Linear(intermediate, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, key_mask, ops):                                         # x: [B, S, H]
        context = ops.attention(F.linear(x, self.qkv.weight, self.qkv.bias), key_mask, self.num_heads)  # [B, S, H]
        x = ops.layer_norm(F.linear(context, self.attn_out.weight), self.attn_norm.weight, self.attn_norm.bias,
                           self.attn_norm.eps, residual=x, x_bias=self.attn_out.bias)
        hidden = ops.bias_gelu(F.linear(x, self.ffn_up.weight), self.ffn_up.bias)                   # [B, S, I]
        return ops.layer_norm(F.linear(hidden, self.ffn_down.weight), self.ffn_norm.weight, self.ffn_norm.bias,
                              self.ffn_norm.eps, residual=x, x_bias=self.ffn_down.bias)


class MLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, x, ops):                                                   # [..., H] -> [..., V]
        h = ops.bias_gelu(F.linear(x, self.transform.weight), self.transform.bias)
        h = ops.layer_norm(h, self.norm.weight, self.norm.bias, self.norm.eps)
        return F.linear(h, self.decoder.weight, self.decoder.bias)


class FastBert(nn.Module):
    def __init__(self, config: BertConfig, *, mlm_head: bool = True, pooler: bool = False, backend: str = "torch"):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if pooler else None
        self.mlm = MLMHead(config) if mlm_head else None
        self.backend = backend

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

    @torch.inference_mode()
    def forward(self, input_ids, attention_mask=None, token_type_ids=None, *, logits_at=None) -> FastBertOutput:
        """``attention_mask``: 1 for tokens, 0 for padding. ``logits_at``: a [B, S] bool mask; when given,
        the MLM head runs only there and ``logits`` is [N, V] for its N true positions, in row-major order."""
        input_ids, attention_mask, token_type_ids, logits_at = check_inputs(
            self.config, input_ids, attention_mask, token_type_ids, logits_at)
        device = self.device
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        key_mask = attention_mask.to(device=device, dtype=torch.int32, non_blocking=True)
        input_ids = input_ids.to(device, non_blocking=True)
        if token_type_ids is not None:
            token_type_ids = token_type_ids.to(device, non_blocking=True)
        logits_index = logits_at.flatten().nonzero().squeeze(1).to(device) if logits_at is not None else None
        return FastBertOutput(*self.run(input_ids, key_mask, token_type_ids, logits_index))

    def run(self, input_ids, key_mask, token_type_ids, logits_index):
        """The forward pass on validated device tensors: (hidden states, logits, pooled output)."""
        ops = self.ops
        x = self.embeddings(input_ids, token_type_ids, ops)                     # [B, S, H]
        for layer in self.layers:
            x = layer(x, key_mask, ops)
        pooled = torch.tanh(F.linear(x[:, 0], self.pooler.weight, self.pooler.bias)) if self.pooler is not None else None
        logits = None
        if self.mlm is not None:
            selected = x if logits_index is None else x.flatten(0, 1).index_select(0, logits_index)
            logits = self.mlm(selected, ops)
        return x, logits, pooled

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
        return model

    @classmethod
    def from_state(cls, config, state, *, device="cpu", dtype=torch.float32, backend="torch"):
        """Build a model from tensors already in fastbert's layout (see ``fastbert.weights``)."""
        with torch.device("meta"):
            model = cls(config, mlm_head=any(k.startswith("mlm.") for k in state), pooler="pooler.weight" in state,
                        backend=backend)
        tensors = {name: t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype) for name, t in state.items()}
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
                raise CheckpointError(f"tensor {name} has shape {tuple(tensors[name].shape)}; the config implies {tuple(want.shape)}")
        model.load_state_dict({k: tensors[k] for k in expected}, assign=True)
        return model.requires_grad_(False).eval()

    def save_pretrained(self, directory) -> Path:
        """Write a fastbert checkpoint: ``fastbert.safetensors`` in the fused layout, and ``config.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        if self.mlm is not None and self.mlm.decoder.weight.data_ptr() == self.embeddings.word_embeddings.weight.data_ptr():
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
