"""CUDA-graph runner: one graph per input bucket, all sharing one memory pool.

Padded batches get a graph per (batch bucket, sequence bucket, selected rows); packed batches
(``fastbert.packing``) one per (batch bucket, token-count bucket, selected rows). A call pads its
inputs to the smallest bucket that holds them (padding tokens masked out or inert) into the graph's
pinned staging buffer (``fastbert.staging``, numpy: at batch 1 the host work is a good part of
latency) and replays; the graph's first node copies that buffer to the device, so a call launches
nothing before the replay. Outputs come back as copies in the caller's shape. Graphs are captured on
first use of a bucket or by ``warmup``; the least recently used are dropped past ``max_graphs``.
Padded batches of more than ``max_batch`` rows, and packed ones of more tokens than ``max_batch`` full
rows hold, run eagerly, since their graphs would hold much memory; up to there a graph saves the host
work of launching, which at 128 rows of 128 tokens was still a good part of an eager call
(benchmarks/NOTES.md, "Task workloads"). Replays run on the caller's stream under a lock, so calls from
several threads are safe."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from .heads import Rows
from .ops.common import collection_paused
from .packing import PackedBatch, token_bucket
from .staging import PACKED, PADDED, buffer_size, rows_key, stage_packed, stage_padded, views

SEQ_BUCKETS = (8, 16, 32, 64, 128, 256, 384, 512)


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
    pinned: torch.Tensor | None  # pinned int32 staging buffer, copied to the device by the graph's first node; None
    host: dict | None            # for a graph fed from the device. Named numpy views of ``pinned`` (fastbert.staging)
    inputs: dict                 # named views of the graph's device input buffer
    done: torch.cuda.Event    # the last call's replay (copy in included) and copies out have finished
    outputs: dict             # the forward pass's named static output tensors


class GraphRunner:
    def __init__(self, model, max_graphs: int = 64, max_batch: int = 256):
        # not a strong reference: a model and its runner in a cycle would hold the graphs' memory past ``del model``,
        # until a garbage collection
        self.model = weakref.proxy(model)
        self.max_graphs = max_graphs
        self.max_batch = max_batch
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: OrderedDict[tuple, CapturedGraph] = OrderedDict()
        self.lock = threading.Lock()
        self.seq_buckets = seq_buckets(model.config.max_sequence_length)

    @property
    def max_tokens(self) -> int:
        """The largest packed batch that replays from a graph."""
        return self.max_batch * self.model.config.max_sequence_length

    def key(self, batch: int, seq_len: int, logits_rows: int | None) -> tuple:
        """The padded graph for [batch, seq_len] inputs with ``logits_rows`` selected rows (None: no selection)."""
        return PADDED, batch_bucket(batch), smallest_bucket(seq_len, self.seq_buckets), rows_key(logits_rows,
                                                                                                 batch_bucket)

    def packed_key(self, batch: int, tokens: int, logits_rows: int | None) -> tuple:
        return PACKED, batch_bucket(batch), token_bucket(tokens), rows_key(logits_rows, batch_bucket)

    def fits(self, batch: PackedBatch) -> bool:
        return batch.tokens <= self.max_tokens and batch.shape[0] <= self.max_tokens

    def __call__(self, input_ids, attention_mask, token_type_ids, logits_rows):
        """[B, S] inputs (validated; mask and types may be None; ``logits_rows``: flat indices of the selected
        tokens, or None) -> the named outputs on the device, copied out of the graph's buffers. Numpy inputs are
        staged in the graph's pinned buffer, which its first node copies in; device tensors are staged on the device
        straight into its input buffer (a graph captured without that copy), so they make no round trip."""
        batch, seq_len = input_ids.shape
        selected = logits_rows is not None
        key = self.key(batch, seq_len, len(logits_rows) if selected else None)
        layout = self.model.output_rows(selected=selected)
        ends = {Rows.TOKENS: (batch, seq_len), Rows.SELECTED: (len(logits_rows) if selected else 0,),
                Rows.SEQUENCES: (batch,)}

        def stage(buffers):
            stage_padded(buffers, input_ids, attention_mask, token_type_ids, logits_rows,
                         self.model.config.pad_token_id)

        def finish(outputs, inputs):
            return {name: t[tuple(slice(end) for end in ends[layout[name]])].clone() for name, t in outputs.items()}

        return self._replay(key, stage, finish, from_device=isinstance(input_ids, torch.Tensor))

    def packed(self, batch: PackedBatch, *, return_packed: bool):
        """A packed batch (see ``fits``) -> its outputs, unpacked as ``PackedBatch.unpack`` does."""
        key = self.packed_key(batch.shape[0], batch.tokens, batch.logits_count)

        def stage(host):
            stage_packed(host, batch, self.model.config.pad_token_id)

        layout = self.model.output_rows(selected=batch.logits_rows is not None)

        def finish(outputs, inputs):
            return batch.unpack(outputs, layout, inputs, return_packed=return_packed)

        return self._replay(key, stage, finish)

    def warmup(self, keys) -> None:
        with self.lock:
            for key in keys:
                self._graph(key, from_device=False)

    def memory_bytes(self) -> int:
        """Bytes of the graphs' shared pool (all its segments, from the allocator's snapshot)."""
        return sum(segment["total_size"] for segment in torch.cuda.memory_snapshot()
                   if tuple(segment.get("segment_pool_id", ())) == tuple(self.pool))

    def _replay(self, key, stage, finish, *, from_device: bool = False):
        """On the caller's stream. A graph's buffers are reused only once its last call has finished on the
        device, whatever stream that call ran on; single-threaded, that wait is already over."""
        with self.lock:
            entry = self._graph(key, from_device=from_device)
            entry.done.synchronize()
            stage(entry.inputs if from_device else entry.host)
            entry.graph.replay()
            result = finish(entry.outputs, entry.inputs)
            entry.done.record()
        return result

    def _graph(self, key, *, from_device: bool) -> CapturedGraph:
        entry = self.graphs.get((key, from_device))
        if entry is not None:
            self.graphs.move_to_end((key, from_device))
            return entry
        if len(self.graphs) >= self.max_graphs:
            self.graphs.popitem(last=False)
        entry = self.graphs[key, from_device] = self._capture(key, copy_in=not from_device)
        return entry

    def _full_rows(self, key) -> PackedBatch:
        """A packed batch of the key's token count in rows as long as the model allows."""
        _, batch_b, tokens_b, _ = key
        length = min(tokens_b, self.model.config.max_sequence_length)
        mask = np.ones((min(batch_b, -(-tokens_b // length)), length), dtype=np.int32)
        mask.reshape(-1)[tokens_b:] = 0
        return PackedBatch.from_padded(np.zeros_like(mask), mask, None, None, None)

    @torch.inference_mode()
    def _capture(self, key, *, copy_in: bool) -> CapturedGraph:
        """A graph for ``key``; with ``copy_in``, its first node copies a pinned host buffer into its inputs (packed
        batches, staged on the host, always have one)."""
        size = buffer_size(key)
        pinned = torch.zeros(size, dtype=torch.int32, pin_memory=True) if copy_in else None
        with torch.inference_mode(False):  # an ordinary tensor: calls fed from the device write into it outside
            static = torch.zeros(size, dtype=torch.int32, device=self.model.device)
        inputs = views(static, key)
        # a valid batch to capture with: every token real, so eager warm-up runs every kernel on sane data
        if key[0] == PADDED:
            inputs["ids"].fill_(self.model.config.pad_token_id)
            inputs["mask"].fill_(1)
        else:
            stage_packed(views(pinned.numpy(), key), self._full_rows(key), self.model.config.pad_token_id)
            static.copy_(pinned)

        def forward():
            return self.model.run_inputs(inputs, key)

        # an eager pass first: Triton compiles and autotunes here, never inside the capture
        forward()
        torch.cuda.current_stream().synchronize()
        graph = torch.cuda.CUDAGraph()
        with collection_paused(), torch.cuda.graph(graph, pool=self.pool):
            if copy_in:
                static.copy_(pinned, non_blocking=True)  # a memcpy node: pinned memory may be read from a graph
            outputs = forward()
        done = torch.cuda.Event()
        done.record()
        host = views(pinned.numpy(), key) if copy_in else None
        return CapturedGraph(graph, pinned, host, inputs, done, outputs)
