"""CUDA-graph runner: one graph per (batch bucket, sequence bucket, logits rows), shared memory pool.

A call pads its inputs to the smallest bucket that holds them (padding tokens masked out, padded
rows fully masked), copies them with one host-to-device transfer into the graph's static buffer,
replays, and returns copies of the outputs sliced back to the caller's shape. Graphs are captured
on first use of a bucket or by ``warmup``; the least recently used are dropped past ``max_graphs``.
Batches larger than ``max_batch`` run eagerly: launch overhead is small beside their work, and their
graphs would hold much memory.
Replays run on the runner's own stream under a lock, so calls from several threads are safe.
Host-side staging is numpy on a pinned buffer: at batch 1 the host work is a good part of latency.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

SEQ_BUCKETS = (8, 16, 32, 64, 128, 256, 384, 512)
ALL_POSITIONS = -1  # logits key: the MLM head on every token (no logits_at)
NO_LOGITS = 0       # logits key: no MLM head


def seq_buckets(max_len: int) -> list[int]:
    """8 .. 512, then steps of 256 up to the model's maximum, which is always the last bucket."""
    buckets = [b for b in SEQ_BUCKETS if b < max_len]
    buckets += list(range(768, max_len, 256))
    return buckets + [max_len]


def smallest_bucket(n: int, buckets) -> int:
    return next(b for b in buckets if b >= n)


def batch_bucket(n: int) -> int:
    return 1 << (n - 1).bit_length()


@dataclass
class CapturedGraph:
    graph: torch.cuda.CUDAGraph
    host: np.ndarray          # pinned int32 staging, as numpy: ids | mask | types | logits rows
    pinned: torch.Tensor      # the same memory as a tensor, for the transfer
    device: torch.Tensor      # the graph's input buffer, same layout
    copied: torch.cuda.Event  # the last host->device copy out of ``pinned`` has finished
    outputs: tuple            # (hidden, logits, pooled) static output tensors


class GraphRunner:
    def __init__(self, model, max_graphs: int = 64, max_batch: int = 64):
        self.model = model
        self.max_graphs = max_graphs
        self.max_batch = max_batch
        self.pool = torch.cuda.graph_pool_handle()
        self.stream = torch.cuda.Stream(model.device)
        self.graphs: OrderedDict[tuple, CapturedGraph] = OrderedDict()
        self.lock = threading.Lock()
        self.seq_buckets = seq_buckets(model.config.max_sequence_length)

    def key(self, batch: int, seq_len: int, logits_rows: int | None) -> tuple:
        if self.model.mlm is None:
            rows = NO_LOGITS
        elif logits_rows is None:
            rows = ALL_POSITIONS
        else:
            rows = batch_bucket(max(logits_rows, 1))
        return batch_bucket(batch), smallest_bucket(seq_len, self.seq_buckets), rows

    def __call__(self, input_ids: np.ndarray, attention_mask, token_type_ids, logits_rows):
        """[B, S] numpy inputs (validated; mask and types may be None; ``logits_rows``: flat indices of
        the tokens that get logits, or None for all) -> (hidden, logits, pooled) on the device."""
        batch, seq_len = input_ids.shape
        key = self.key(batch, seq_len, None if logits_rows is None else len(logits_rows))
        with self.lock, torch.cuda.stream(self.stream):
            entry = self._graph(key)
            self._stage(entry, key, input_ids, attention_mask, token_type_ids, logits_rows)
            entry.graph.replay()
            hidden, logits, pooled = entry.outputs
            hidden = hidden[:batch, :seq_len].clone()
            if logits is not None:
                logits = logits[:batch, :seq_len] if key[2] == ALL_POSITIONS else logits[: len(logits_rows)]
                logits = logits.clone()
            pooled = pooled[:batch].clone() if pooled is not None else None
            done = self.stream.record_event()
        torch.cuda.current_stream().wait_event(done)
        return hidden, logits, pooled

    def warmup(self, keys) -> None:
        with self.lock, torch.cuda.stream(self.stream):
            for key in keys:
                self._graph(key)
        torch.cuda.current_stream().wait_stream(self.stream)

    def memory_bytes(self) -> int:
        """Bytes of the graphs' shared pool (all its segments, from the allocator's snapshot)."""
        return sum(segment["total_size"] for segment in torch.cuda.memory_snapshot()
                   if tuple(segment.get("segment_pool_id", ())) == tuple(self.pool))

    def _stage(self, entry, key, input_ids, attention_mask, token_type_ids, logits_rows):
        batch_b, seq_b, rows = key
        tokens = batch_b * seq_b
        batch, seq_len = input_ids.shape
        entry.copied.synchronize()  # the previous call's transfer out of the staging buffer is done
        ids, mask, types = (entry.host[i * tokens:(i + 1) * tokens].reshape(batch_b, seq_b) for i in range(3))
        ids.fill(self.model.config.pad_token_id)
        ids[:batch, :seq_len] = input_ids
        mask.fill(0)
        mask[:batch, :seq_len] = attention_mask if attention_mask is not None else 1
        types.fill(0)
        if token_type_ids is not None:
            types[:batch, :seq_len] = token_type_ids
        if rows > 0:
            index = entry.host[3 * tokens:]
            index.fill(0)
            # flat indices are into [B, S]; the graph's tokens are laid out [batch_b, seq_b]
            index[: len(logits_rows)] = logits_rows // seq_len * seq_b + logits_rows % seq_len
        entry.device.copy_(entry.pinned, non_blocking=True)
        entry.copied.record()

    def _graph(self, key) -> CapturedGraph:
        entry = self.graphs.get(key)
        if entry is not None:
            self.graphs.move_to_end(key)
            return entry
        if len(self.graphs) >= self.max_graphs:
            self.graphs.popitem(last=False)
        entry = self.graphs[key] = self._capture(key)
        return entry

    def _capture(self, key) -> CapturedGraph:
        batch_b, seq_b, rows = key
        tokens = batch_b * seq_b
        size = 3 * tokens + max(rows, 0)
        pinned = torch.zeros(size, dtype=torch.int32, pin_memory=True)
        static = torch.zeros(size, dtype=torch.int32, device=self.model.device)
        ids, mask, types = (static[i * tokens:(i + 1) * tokens].view(batch_b, seq_b) for i in range(3))
        ids.fill_(self.model.config.pad_token_id)
        mask.fill_(1)
        logits_index = static[3 * tokens:] if rows > 0 else None

        def forward():
            return self.model.run(ids, mask, types, logits_index)

        # an eager pass first: Triton compiles and autotunes here, never inside the capture
        forward()
        torch.cuda.current_stream().synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool, stream=self.stream):
            outputs = forward()
        copied = torch.cuda.Event()
        copied.record()
        return CapturedGraph(graph, pinned.numpy(), pinned, static, copied, outputs)
