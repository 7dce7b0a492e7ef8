"""Each fastbert kernel against the PyTorch op it replaces, at BERT shapes, beside the measured ceilings.

Embeddings, LayerNorm (residual + bias), softmax and bias+GELU against their PyTorch references (the
functions beside each kernel), attention against ``F.scaled_dot_product_attention``, and the fused
linear layers against eager torch, cuBLASLt's GELU epilogue and a bare GEMM.

Memory-bound ops report GB/s (every byte read or written counted once), attention and GEMMs TFLOP/s.
Times come from CUDA-graph replay: ``ops_reps`` back-to-back calls captured in one graph, so launch
overhead vanishes as it does inside fastbert's own graphs; P50 over ``ops_iters`` replays. Inputs that fit
in L2 (50 MB on an H200) stay there across the repeated calls, so small shapes can beat HBM bandwidth.

Run ``python -m benchmarks.bench_ops [--quick | --cpu] [--out DIR]`` (same as ``benchmarks.run --sections ops``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .results import describe
from .timing import graphed, time_calls

TIMING_METHOD = "CUDA-graph replay: {reps} back-to-back calls per graph, P50 over {iters} replays, divided by {reps}"
EPS = 1e-12
WARMUP_REPLAYS = 2
MAX_POSITIONS = 512


@dataclass(frozen=True)
class Case:
    implementations: dict[str, Callable[[], torch.Tensor]]
    work: float                           # bytes moved (memory-bound ops) or FLOPs (attention, GEMMs)
    exact: torch.Tensor | None = None     # fp32 exact result, for ops whose error is part of the comparison


def _random(*shape, device, dtype, scale=1.0):
    return torch.randn(*shape, device=device, dtype=dtype) * scale


def embeddings_case(shape, batch, seq, device, dtype):
    from fastbert.ops.embeddings import embeddings, embeddings_reference  # late: --cpu turns the interpreter on first

    h, e = shape["hidden"], dtype.itemsize
    ids = torch.randint(0, shape["vocab"], (batch, seq), device=device)
    tables = [_random(rows, h, device=device, dtype=dtype) for rows in (shape["vocab"], MAX_POSITIONS, 2)]
    norm = [_random(h, device=device, dtype=dtype) for _ in range(2)]
    args = (ids, None, *tables, *norm, EPS)
    rows_moved = 2 * batch * seq + seq + 1 + 2  # word rows in, out, position rows, the type row, norm weight and bias
    moved = ids.numel() * ids.element_size() + rows_moved * h * e
    return Case({"fastbert": lambda: embeddings(*args), "torch reference": lambda: embeddings_reference(*args)}, moved)


def layer_norm_case(shape, batch, seq, device, dtype):
    from fastbert.ops.layer_norm import layer_norm, layer_norm_reference

    h, e = shape["hidden"], dtype.itemsize
    x, residual = (_random(batch, seq, h, device=device, dtype=dtype) for _ in range(2))
    weight, bias, x_bias = (_random(h, device=device, dtype=dtype) for _ in range(3))
    kwargs = dict(residual=residual, x_bias=x_bias)
    return Case({"fastbert": lambda: layer_norm(x, weight, bias, EPS, **kwargs),
                 "torch reference": lambda: layer_norm_reference(x, weight, bias, EPS, **kwargs)},
                (3 * batch * seq + 3) * h * e)


def softmax_case(shape, batch, seq, device, dtype):
    """Over the MLM vocabulary, one row per token (the all-positions case; fill-mask needs one row per [MASK])."""
    from fastbert.ops.softmax import softmax, softmax_reference

    x = _random(batch * seq, shape["vocab"], device=device, dtype=dtype)
    return Case({"fastbert": lambda: softmax(x), "torch reference": lambda: softmax_reference(x)},
                2 * x.numel() * dtype.itemsize)


def attention_case(shape, batch, seq, device, dtype):
    from fastbert.ops.attention import attention

    h, heads = shape["hidden"], shape["heads"]
    qkv = _random(batch, seq, 3 * h, device=device, dtype=dtype)
    key_mask = torch.ones(batch, seq, dtype=torch.int32, device=device)
    q, k, v = qkv.view(batch, seq, 3, heads, h // heads).permute(2, 0, 3, 1, 4)  # [B, heads, S, D] views, no copy
    keep = key_mask.bool()[:, None, None, :]
    return Case({"fastbert": lambda: attention(qkv, key_mask, heads),
                 "torch SDPA, padding mask": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=keep),
                 "torch SDPA, no mask": lambda: F.scaled_dot_product_attention(q, k, v)},
                4 * batch * seq * seq * h)


def bias_gelu_case(shape, batch, seq, device, dtype):
    from fastbert.ops.gelu import bias_gelu, bias_gelu_reference

    x = _random(batch * seq, shape["intermediate"], device=device, dtype=dtype)
    bias = _random(shape["intermediate"], device=device, dtype=dtype)
    return Case({"fastbert": lambda: bias_gelu(x, bias), "torch reference": lambda: bias_gelu_reference(x, bias)},
                (2 * x.numel() + bias.numel()) * dtype.itemsize)


def ffn_up_case(shape, batch, seq, device, dtype):
    """FFN-up with its activation: fastbert's linear (in fp16/bf16 on the GPU, cuBLASLt's GELU epilogue), a GEMM then
    fastbert's exact bias_gelu, cuBLASLt's GELU epilogue called directly (tanh approximation, not BERT's erf) and
    eager torch; errors against exact erf GELU computed in fp32."""
    from fastbert.ops.gelu import bias_gelu
    from fastbert.ops.linear import linear

    h, i = shape["hidden"], shape["intermediate"]
    x = _random(batch * seq, h, device=device, dtype=dtype)
    weight = _random(i, h, device=device, dtype=dtype, scale=h ** -0.5)
    bias = _random(i, device=device, dtype=dtype)
    exact = F.gelu(x.float() @ weight.float().t() + bias.float())
    return Case({"fastbert linear(gelu=True)": lambda: linear(x, weight, bias, gelu=True),
                 "GEMM + fastbert bias_gelu": lambda: bias_gelu(F.linear(x, weight), bias),
                 "_addmm_activation (GELU epilogue)":
                     lambda: torch._addmm_activation(bias, x, weight.t(), use_gelu=True),
                 "torch addmm + gelu": lambda: F.gelu(F.linear(x, weight, bias))},
                2 * batch * seq * h * i, exact)


def ffn_down_case(shape, batch, seq, device, dtype):
    """FFN-down with what follows it in BERT: bias, residual, LayerNorm; fastbert's fused linear against eager torch
    (as transformers runs it) and a bare GEMM (the part no fusion removes)."""
    from fastbert.ops.linear import linear

    h, i = shape["hidden"], shape["intermediate"]
    x = _random(batch * seq, i, device=device, dtype=dtype)
    weight = _random(h, i, device=device, dtype=dtype, scale=i ** -0.5)
    bias, norm_weight, norm_bias = (_random(h, device=device, dtype=dtype) for _ in range(3))
    residual = _random(batch * seq, h, device=device, dtype=dtype)
    return Case({"fastbert linear(residual, norm)": lambda: linear(x, weight, bias, residual=residual,
                                                                   norm=(norm_weight, norm_bias, EPS)),
                 "torch addmm + add + layer_norm": lambda: F.layer_norm(F.linear(x, weight, bias) + residual, (h,),
                                                                        norm_weight, norm_bias, EPS),
                 "GEMM alone (F.linear)": lambda: F.linear(x, weight)},
                2 * batch * seq * h * i)


# name -> (case builder, unit, ceiling in floors)
OPS = {
    "embeddings": (embeddings_case, "GB/s", "copy_gbps"),
    "layer_norm (residual + bias)": (layer_norm_case, "GB/s", "copy_gbps"),
    "softmax (vocabulary)": (softmax_case, "GB/s", "copy_gbps"),
    "attention": (attention_case, "TFLOP/s", "gemm_tflops"),
    "bias_gelu": (bias_gelu_case, "GB/s", "copy_gbps"),
    "FFN-up linear + GELU": (ffn_up_case, "TFLOP/s", "gemm_tflops"),
    "FFN-down linear + residual + LayerNorm": (ffn_down_case, "TFLOP/s", "gemm_tflops"),
}
RATE_SCALE = {"GB/s": 1e9, "TFLOP/s": 1e12}


def measure_case(case: Case, unit: str, ceiling: float, settings) -> dict:
    profile, results = settings.profile, {}
    for name, fn in case.implementations.items():
        try:
            replay = graphed(fn, settings.device, reps=profile.ops_reps)
            timing = time_calls(replay, settings.device, warmup=WARMUP_REPLAYS, iters=profile.ops_iters)
            seconds = timing.p50_ms / 1e3 / profile.ops_reps
            rate = case.work / seconds / RATE_SCALE[unit]
            results[name] = dict(status="ok", us=seconds * 1e6, rate=rate, pct_of_ceiling=100 * rate / ceiling)
            if case.exact is not None:
                results[name]["max_abs_err_vs_exact"] = (replay().float() - case.exact).abs().max().item()
        except Exception as e:  # noqa: BLE001 - one implementation failing leaves the others' numbers
            results[name] = dict(status="failed", error=describe(e))
    return results


def run(settings) -> dict:
    profile, floors = settings.profile, settings.floors
    ops = {}
    for op, (build, unit, ceiling_key) in OPS.items():
        points = []
        for batch in profile.ops_batches:
            for seq in profile.ops_seqs:
                point = dict(batch=batch, seq=seq)
                if settings.budget.left() < 10.0:
                    point.update(status="skipped", reason=settings.budget.spent_reason)
                else:
                    try:
                        case = build(profile.ops_shape, batch, seq, settings.device, settings.dtype)
                        point["implementations"] = measure_case(case, unit, floors[ceiling_key], settings)
                    except Exception as e:  # noqa: BLE001 - e.g. out of memory at one shape
                        point.update(status="failed", error=describe(e))
                points.append(point)
        ops[op] = dict(unit=unit, ceiling=ceiling_key, points=points)
    return dict(
        timing=TIMING_METHOD.format(reps=profile.ops_reps, iters=profile.ops_iters) if settings.on_cuda
        else "CPU: plain calls timed with perf_counter (structure only, no timing claims)",
        shape=profile.ops_shape, dtype=str(settings.dtype).removeprefix("torch."),
        ceilings=dict(copy_gbps=floors["copy_gbps"], gemm_tflops=floors["gemm_tflops"]), ops=ops,
    )


if __name__ == "__main__":
    from .run import main

    main(["--sections", "ops", *sys.argv[1:]])
