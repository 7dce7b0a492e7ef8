"""CUDA-graph runner: one graph per input bucket, all sharing one memory pool.

Padded batches get a graph per (batch bucket, sequence bucket, selected rows); packed batches
(``fastbert.packing``) one per (batch bucket, token-count bucket, selected rows). A call pads its
inputs to the smallest bucket that holds them (padding tokens masked out or inert) into the graph's
pinned staging buffer (``fastbert.staging``, numpy: at batch 1 the host work is a good part of
latency) and replays; the graph's first node copies that buffer to the device, so a call launches
nothing before the replay. Inputs already on the GPU get graphs of their own, per bucket and input dtypes
(``fastbert.ops.device_inputs``): their first node copies a table of the inputs' addresses, and a kernel stages
them; their checks replay a small graph too, so such a call launches nothing from Python either. Outputs come back
as copies in the caller's shape. Graphs are captured on first use of a bucket or by ``warmup``; the least recently
used are dropped past ``max_graphs``. Padded batches of more than ``max_batch`` rows, packed ones of more tokens
than ``max_batch`` full rows hold, and calls with outputs past ``max_output_bytes`` run eagerly, since their graphs
would hold much memory; up to there a graph saves the host work of launching, which at 128 rows of 128 tokens was
still a good part of an eager call (benchmarks/NOTES.md, "Task workloads"). Replays run on the caller's stream
under a lock, so calls from several threads are safe."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from .heads import Rows
from .inputs import CheckedInputs
from .ops.common import collection_paused
from .ops.device_inputs import STATS, TABLE_SLOTS, InputKinds, InputStats, fill_table
from .ops.device_inputs import launch_input_stats, launch_stage_padded
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
    pinned: torch.Tensor      # what its first node copies in: the int32 staging buffer of a graph fed from the
                              # host, or the int64 table of the input addresses of one fed from the device
    host: dict | None         # fed from the host: named numpy views of ``pinned`` (fastbert.staging)
    table: np.ndarray | None  # fed from the device: the numpy view of ``pinned``
    inputs: dict              # named views of the graph's device input buffer
    done: torch.cuda.Event    # the last call's replay (copy in included) and copies out have finished
    outputs: dict             # the forward pass's named static output tensors
    kept: tuple = ()          # other device tensors it reads, allocated outside its pool: alive as long as it is


@dataclass
class StatsGraph:
    """The device-input stats kernel in a graph: the table of the inputs' addresses copied in, the stats out."""
    graph: torch.cuda.CUDAGraph
    table: np.ndarray  # numpy view of the pinned table
    stats: np.ndarray  # numpy view of the pinned STATS float64 values
    done: torch.cuda.Event
    kept: tuple        # the tables and stats it reads and writes, pinned and on the device: alive as long as it is


class GraphRunner:
    def __init__(self, model, max_graphs: int = 64, max_batch: int = 256, max_output_bytes: int = 256 * 2**20):
        # not a strong reference: a model and its runner in a cycle would hold the graphs' memory past ``del model``,
        # until a garbage collection
        self.model = weakref.proxy(model)
        self.max_graphs = max_graphs
        self.max_batch = max_batch
        self.max_output_bytes = max_output_bytes
        self.bytes_per_position = model.output_bytes(1, 1, 1)  # at least a call's output bytes over its positions
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: OrderedDict[tuple, CapturedGraph] = OrderedDict()
        self.stats_graphs: dict[InputKinds, StatsGraph] = {}
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

    def takes(self, batch: int, positions: int, selected: int | None) -> bool:
        """Whether a padded call of ``batch`` rows, ``positions`` in all, replays from a graph."""
        return batch <= self.max_batch and self._holds(batch, positions, selected)

    def fits(self, batch: PackedBatch) -> bool:
        """Whether a packed batch replays from a graph."""
        return (batch.tokens <= self.max_tokens and batch.shape[0] <= self.max_tokens
                and self._holds(batch.shape[0], batch.tokens, batch.logits_count))

    def _holds(self, batch: int, positions: int, selected: int | None) -> bool:
        """Outputs past ``max_output_bytes`` run eagerly: a replay's outputs are copied out of the graph's pool, which
        doubles their memory, and at that size the copy costs more than the eager pass's launches
        (benchmarks/NOTES.md, "Work at every token"). The bound per position settles most calls with one product."""
        return (positions * self.bytes_per_position <= self.max_output_bytes
                or self.model.output_bytes(batch, positions, selected) <= self.max_output_bytes)

    def __call__(self, checked: CheckedInputs):
        """Checked [B, S] inputs -> the named outputs on the device, copied out of the graph's buffers. Numpy inputs
        are staged in the graph's pinned buffer, which its first node copies in; for device tensors the graph's
        first node copies a table of their addresses and a kernel stages them, so they make no round trip."""
        input_ids, mask, types, logits_at = checked.input_ids, checked.attention_mask, checked.token_type_ids, \
            checked.logits_at
        batch, seq_len = input_ids.shape
        selected = logits_at is not None
        key = self.key(batch, seq_len, checked.selected if selected else None)
        if isinstance(input_ids, torch.Tensor):
            feed = InputKinds.of(input_ids, mask, types, logits_at)

            def stage(entry):
                fill_table(entry.table, input_ids, mask, types, logits_at)
        else:
            feed, rows = None, np.flatnonzero(logits_at) if selected else None

            def stage(entry):
                stage_padded(entry.host, input_ids, mask, types, rows, self.model.config.pad_token_id)

        def finish(outputs, inputs):
            layout = self.model.output_rows(selected=selected)
            ends = {Rows.TOKENS: (batch, seq_len), Rows.SELECTED: (checked.selected or 0,), Rows.SEQUENCES: (batch,)}
            return {name: t[tuple(slice(end) for end in ends[layout[name]])].clone() for name, t in outputs.items()}

        return self._replay(key, stage, finish, feed=feed)

    def input_stats(self, input_ids, attention_mask=None, token_type_ids=None, logits_at=None) -> InputStats:
        """``fastbert.ops.device_inputs.input_stats`` from a graph: the call launches nothing from Python."""
        kinds = InputKinds.of(input_ids, attention_mask, token_type_ids, logits_at)
        with self.lock:
            entry = self.stats_graphs.get(kinds)
            if entry is None:
                entry = self.stats_graphs[kinds] = self._capture_stats(kinds)
            fill_table(entry.table, input_ids, attention_mask, token_type_ids, logits_at)
            entry.graph.replay()
            entry.done.record()
            entry.done.synchronize()
            return InputStats.read(entry.stats, has_types=token_type_ids is not None)

    def packed(self, batch: PackedBatch, *, return_packed: bool):
        """A packed batch (see ``fits``) -> its outputs, unpacked as ``PackedBatch.unpack`` does."""
        key = self.packed_key(batch.shape[0], batch.tokens, batch.logits_count)

        def stage(entry):
            stage_packed(entry.host, batch, self.model.config.pad_token_id)

        layout = self.model.output_rows(selected=batch.logits_rows is not None)

        def finish(outputs, inputs):
            return batch.unpack(outputs, layout, inputs, return_packed=return_packed)

        return self._replay(key, stage, finish)

    def warmup(self, keys) -> None:
        with self.lock:
            for key in keys:
                self._graph(key)

    def memory_bytes(self) -> int:
        """Bytes of the graphs' shared pool (all its segments, from the allocator's snapshot)."""
        return sum(segment["total_size"] for segment in torch.cuda.memory_snapshot()
                   if tuple(segment.get("segment_pool_id", ())) == tuple(self.pool))

    def _replay(self, key, stage, finish, *, feed: InputKinds | None = None):
        """On the caller's stream. A graph's buffers are reused only once its last call has finished on the
        device, whatever stream that call ran on; single-threaded, that wait is already over."""
        with self.lock:
            entry = self._graph(key, feed, stage)
            entry.done.synchronize()
            stage(entry)
            entry.graph.replay()
            result = finish(entry.outputs, entry.inputs)
            entry.done.record()
        return result

    def _graph(self, key, feed: InputKinds | None = None, stage=None) -> CapturedGraph:
        entry = self.graphs.get((key, feed))
        if entry is not None:
            self.graphs.move_to_end((key, feed))
            return entry
        if len(self.graphs) >= self.max_graphs:
            self.graphs.popitem(last=False)
        entry = self.graphs[key, feed] = self._capture(key, feed, stage)
        return entry

    def _full_rows(self, key) -> PackedBatch:
        """A packed batch of the key's token count in rows as long as the model allows."""
        _, batch_b, tokens_b, _ = key
        length = min(tokens_b, self.model.config.max_sequence_length)
        mask = np.ones((min(batch_b, -(-tokens_b // length)), length), dtype=np.int32)
        mask.reshape(-1)[tokens_b:] = 0
        return PackedBatch.from_padded(np.zeros_like(mask), mask, None, None, None)

    @torch.inference_mode()
    def _capture(self, key, feed: InputKinds | None, stage) -> CapturedGraph:
        """A graph for ``key``. Fed from the host (``feed`` None), its first node copies a pinned buffer into its
        inputs, which an eager pass first fills with a valid batch of every token real. Fed from the device, its first
        node copies the pinned address table of inputs of ``feed``'s kinds and a kernel stages them; the eager pass
        runs on the inputs of the call that captures, which ``stage(entry)`` points the table at."""
        size = buffer_size(key)
        device = self.model.device
        with torch.inference_mode(False):  # an ordinary tensor, which code outside inference mode may update in place
            static = torch.zeros(size, dtype=torch.int32, device=device)
        inputs = views(static, key)
        if feed is None:
            pinned = torch.zeros(size, dtype=torch.int32, pin_memory=True)
            entry = CapturedGraph(torch.cuda.CUDAGraph(), pinned, views(pinned.numpy(), key), None, inputs,
                                  torch.cuda.Event(), {})
            self._stage_valid_batch(entry.host, key)

            def copy_in():
                static.copy_(pinned, non_blocking=True)  # a memcpy node: pinned memory may be read from a graph
        else:
            pinned = torch.zeros(TABLE_SLOTS, dtype=torch.int64, pin_memory=True)
            table = torch.zeros(TABLE_SLOTS, dtype=torch.int64, device=device)
            entry = CapturedGraph(torch.cuda.CUDAGraph(), pinned, None, pinned.numpy(), inputs, torch.cuda.Event(), {},
                                  kept=(table,))
            stage(entry)

            def copy_in():
                table.copy_(pinned, non_blocking=True)
                launch_stage_padded(inputs, table, feed, self.model.config.pad_token_id)

        def forward():
            return self.model.run_inputs(inputs, key)

        # an eager pass first: Triton compiles and autotunes here, never inside the capture
        copy_in()
        forward()
        torch.cuda.current_stream().synchronize()
        with collection_paused(), torch.cuda.graph(entry.graph, pool=self.pool):
            copy_in()
            entry.outputs = forward()
        entry.done.record()
        return entry

    def _stage_valid_batch(self, host: dict, key) -> None:
        pad_id = self.model.config.pad_token_id
        if key[0] == PADDED:
            host["ids"][...] = pad_id
            host["mask"][...] = 1
            host["types"][...] = 0
            host["rows"][...] = 0
        else:
            stage_packed(host, self._full_rows(key), pad_id)

    @torch.inference_mode()
    def _capture_stats(self, kinds: InputKinds) -> StatsGraph:
        """The stats kernel for inputs of ``kinds`` in a graph: its table copied in, its stats copied out to pinned
        memory."""
        device = self.model.device
        pinned_table = torch.zeros(TABLE_SLOTS, dtype=torch.int64, pin_memory=True)
        pinned_stats = torch.zeros(STATS, dtype=torch.float64, pin_memory=True)
        table = torch.zeros(TABLE_SLOTS, dtype=torch.int64, device=device)
        stats = torch.zeros(STATS, dtype=torch.float64, device=device)
        # reads nothing yet: a table of an empty batch, its addresses the table's own
        pinned_table.numpy()[:] = table.data_ptr()
        pinned_table.numpy()[-2:] = 0

        def run():
            table.copy_(pinned_table, non_blocking=True)
            launch_input_stats(table, stats, kinds)
            pinned_stats.copy_(stats, non_blocking=True)

        run()  # compiles outside the capture
        torch.cuda.current_stream().synchronize()
        graph = torch.cuda.CUDAGraph()
        with collection_paused(), torch.cuda.graph(graph, pool=self.pool):
            run()
        return StatsGraph(graph, pinned_table.numpy(), pinned_stats.numpy(), torch.cuda.Event(),
                          kept=(pinned_table, pinned_stats, table, stats))
