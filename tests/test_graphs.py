"""CUDA-graph runner: buckets, and on the GPU replay == eager, padding invariance, threads, the LRU bound."""

import threading
import weakref

import pytest
import torch

from fastbert import FastBert, InputError
from fastbert.graphs import batch_bucket, seq_buckets, smallest_bucket
from fastbert.ops.common import collection_paused
from tests.test_model import random_batch
from tests.test_model_triton import REALISTIC_BERT, hf_model

FP16_ATOL = 2e-2  # logits of a 4-layer fp16 model: a few fp16 ulps at magnitudes ~4


def test_buckets():
    assert seq_buckets(512) == [8, 16, 32, 64, 128, 256, 384, 512]
    assert seq_buckets(40) == [8, 16, 32, 40]
    assert seq_buckets(1024) == [8, 16, 32, 64, 128, 256, 384, 512, 768, 1024]
    assert [smallest_bucket(n, seq_buckets(512)) for n in (1, 8, 9, 385, 512)] == [8, 8, 16, 512, 512]
    assert [batch_bucket(n) for n in (1, 2, 3, 5, 32, 33)] == [1, 2, 4, 8, 32, 64]


def test_warmup_is_a_no_op_without_cuda(bert_mlm_dir):
    model = FastBert.from_pretrained(bert_mlm_dir, device="cpu")
    model.warmup()
    assert model.graph_memory_bytes() == 0 and model._graph_runner is None


@pytest.fixture(scope="module")
def gpu_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("realistic")
    hf_model("BertForMaskedLM", REALISTIC_BERT).save_pretrained(path)
    return path


def eager_and_graphed(path, packed=None):
    eager = FastBert.from_pretrained(path, device="cuda")
    eager.use_cuda_graphs = False
    graphed = FastBert.from_pretrained(path, device="cuda")
    eager.packed = graphed.packed = packed
    return eager, graphed


@pytest.mark.gpu
@pytest.mark.parametrize("batch", [1, 3])
def test_replay_equals_eager_in_every_bucket(gpu_model_dir, batch):
    eager, graphed = eager_and_graphed(gpu_model_dir, packed=False)
    for seq in graphed.graph_runner.seq_buckets:
        ids, mask, types = random_batch(REALISTIC_BERT, [seq] * batch, pad_id=0, with_types=True)
        select = torch.zeros_like(ids, dtype=torch.bool)
        select[:, seq // 2] = True
        want = eager(ids, attention_mask=mask, token_type_ids=types, logits_at=select)
        got = graphed(ids, attention_mask=mask, token_type_ids=types, logits_at=select)
        torch.testing.assert_close(got.logits, want.logits, atol=FP16_ATOL, rtol=0)
        torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=FP16_ATOL, rtol=0)
    assert graphed.graph_memory_bytes() > 0


@pytest.mark.gpu
@pytest.mark.parametrize("lengths", [[7], [1], [33, 20], [511, 3, 200]])
@pytest.mark.parametrize("packed", [False, True])
def test_padding_into_a_bucket_changes_nothing(gpu_model_dir, lengths, packed):
    eager, graphed = eager_and_graphed(gpu_model_dir, packed)
    ids, mask, types = random_batch(REALISTIC_BERT, lengths, pad_id=0, with_types=True)
    got = graphed(ids, attention_mask=mask, token_type_ids=types)
    assert got.logits.shape == (len(lengths), max(lengths), REALISTIC_BERT["vocab_size"])
    for row, n in enumerate(lengths):
        alone = eager(ids[row:row + 1, :n], token_type_ids=types[row:row + 1, :n]).logits[0]
        torch.testing.assert_close(got.logits[row, :n], alone, atol=FP16_ATOL, rtol=0)


@pytest.mark.gpu
def test_calls_from_several_threads(gpu_model_dir):
    _, graphed = eager_and_graphed(gpu_model_dir)
    batches = [random_batch(REALISTIC_BERT, [n], pad_id=0, with_types=False)[0] for n in (5, 17, 60, 5, 130, 17)]
    expected = [graphed(ids).logits for ids in batches]
    results = [None] * len(batches) * 4

    def work(i):
        results[i] = graphed(batches[i % len(batches)]).logits

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, got in enumerate(results):
        torch.testing.assert_close(got, expected[i % len(batches)], atol=0, rtol=0)


@pytest.mark.gpu
def test_live_graphs_are_bounded(gpu_model_dir):
    _, graphed = eager_and_graphed(gpu_model_dir)
    graphed.graph_runner.max_graphs = 2
    for seq in (8, 16, 32, 64, 8):
        graphed(torch.randint(1, 100, (1, seq)))
    assert list(graphed.graph_runner.graphs) == [(("padded", 1, 64, 0), None), (("padded", 1, 8, 0), None)]


@pytest.mark.gpu
def test_a_dropped_model_frees_its_graphs_at_once(gpu_model_dir):
    _, graphed = eager_and_graphed(gpu_model_dir)
    graphed(torch.randint(1, 100, (1, 8)))
    dropped = weakref.ref(graphed)
    with collection_paused():
        del graphed
        assert dropped() is None, "the model outlived its last reference: a reference cycle holds it and its graphs"


@pytest.mark.gpu
def test_bad_ids_on_the_gpu_leave_the_context_usable(gpu_model_dir):
    _, graphed = eager_and_graphed(gpu_model_dir)
    with pytest.raises(InputError, match="outside the vocabulary"):
        graphed(torch.tensor([[5, REALISTIC_BERT["vocab_size"]]], device="cuda"))
    assert graphed(torch.tensor([[5, 6]], device="cuda")).logits.isfinite().all()


@pytest.mark.gpu
def test_warmup_captures_batch_one_buckets(gpu_model_dir):
    _, graphed = eager_and_graphed(gpu_model_dir)
    graphed.warmup(batch_sizes=(1, 2))
    assert len(graphed.graph_runner.graphs) == 2 * len(graphed.graph_runner.seq_buckets)


@pytest.mark.gpu
def test_batches_past_the_largest_graph_run_eagerly(gpu_model_dir):
    eager, graphed = eager_and_graphed(gpu_model_dir)
    graphed.graph_runner.max_batch = 2
    ids = torch.randint(1, 100, (3, 9))
    torch.testing.assert_close(graphed(ids).logits, eager(ids).logits, atol=0, rtol=0)
    assert not graphed.graph_runner.graphs


@pytest.mark.gpu
@pytest.mark.parametrize("packed", [False, True])
def test_calls_with_outputs_past_the_bound_run_eagerly(gpu_model_dir, packed):
    """All-position logits of a large batch: no graph (its copy-out would double their memory), same answer."""
    eager, graphed = eager_and_graphed(gpu_model_dir, packed=packed)
    ids, mask, _ = random_batch(REALISTIC_BERT, [64, 30, 64, 9], pad_id=0, with_types=False)
    size = graphed.output_bytes(4, int(mask.sum()) if packed else mask.numel(), None)
    graphed.graph_runner.max_output_bytes = size - 1
    torch.testing.assert_close(graphed(ids, attention_mask=mask).logits, eager(ids, attention_mask=mask).logits,
                               atol=0, rtol=0)
    assert not graphed.graph_runner.graphs
    graphed.graph_runner.max_output_bytes = size
    graphed(ids, attention_mask=mask)
    assert graphed.graph_runner.graphs


def one_mask_per_row(mask):
    at = torch.zeros_like(mask, dtype=torch.bool)
    for row, n in enumerate(mask.sum(1).tolist()):
        if n:
            at[row, torch.randint(0, n, ()).item()] = True
    return at


@pytest.mark.gpu
@pytest.mark.parametrize("lengths", [[1, 7], [512, 1, 33, 511], [3, 0, 100]])
def test_packed_replay_equals_packed_eager_and_padded(gpu_model_dir, lengths):
    eager, graphed = eager_and_graphed(gpu_model_dir, packed=True)
    ids, mask, types = random_batch(REALISTIC_BERT, lengths, pad_id=0, with_types=True)
    at = one_mask_per_row(mask)
    valid = mask.cuda().bool()
    eager.packed = False
    padded = eager(ids, attention_mask=mask, token_type_ids=types)
    padded_at = eager(ids, attention_mask=mask, token_type_ids=types, logits_at=at)
    eager.packed = True
    for model in (eager, graphed):
        every = model(ids, attention_mask=mask, token_type_ids=types)
        selected = model(ids, attention_mask=mask, token_type_ids=types, logits_at=at)
        torch.testing.assert_close(every.logits[valid], padded.logits[valid], atol=FP16_ATOL, rtol=0)
        torch.testing.assert_close(every.last_hidden_state[valid], padded.last_hidden_state[valid], atol=FP16_ATOL,
                                   rtol=0)
        assert (every.last_hidden_state[~valid] == 0).all() and (every.logits[~valid] == 0).all()
        torch.testing.assert_close(selected.logits, padded_at.logits, atol=FP16_ATOL, rtol=0)
    assert all(key[0] == "packed" for key, _ in graphed.graph_runner.graphs)


@pytest.mark.gpu
def test_one_packed_graph_serves_any_split_of_its_tokens(gpu_model_dir):
    eager, graphed = eager_and_graphed(gpu_model_dir, packed=True)
    for lengths in ([100, 28], [64, 64], [127, 1]):
        ids, mask, _ = random_batch(REALISTIC_BERT, lengths, pad_id=0, with_types=False)
        got = graphed(ids, attention_mask=mask).logits
        for row, n in enumerate(lengths):
            alone = eager(ids[row:row + 1, :n]).logits[0]
            torch.testing.assert_close(got[row, :n], alone, atol=FP16_ATOL, rtol=0)
    assert list(graphed.graph_runner.graphs) == [(("packed", 2, 128, 0), None)]


@pytest.mark.gpu
def test_packed_batches_past_the_largest_graph_run_eagerly(gpu_model_dir):
    eager, graphed = eager_and_graphed(gpu_model_dir, packed=True)
    graphed.graph_runner.max_batch = 1
    ids, mask, _ = random_batch(REALISTIC_BERT, [300, 300], pad_id=0, with_types=False)
    torch.testing.assert_close(graphed(ids, attention_mask=mask).logits, eager(ids, attention_mask=mask).logits,
                               atol=0, rtol=0)
    assert not graphed.graph_runner.graphs


@pytest.mark.gpu
@pytest.mark.parametrize("lengths", [[8], [1, 33, 200], [16] * 5])
@pytest.mark.parametrize("kinds", ["int64", "int32 ids, bool mask", "float mask, strided"])
def test_device_inputs_replay_without_a_round_trip(gpu_model_dir, monkeypatch, lengths, kinds):
    """Inputs already on the GPU answer as the same inputs on the host, staged on the device: no copy to the host,
    whatever their dtypes and strides (each kind its own graphs)."""
    _, graphed = eager_and_graphed(gpu_model_dir, packed=False)
    ids, mask, types = random_batch(REALISTIC_BERT, lengths, pad_id=0, with_types=True)
    select = mask.bool() & (torch.rand(ids.shape) < 0.3)
    select[:, 0] = True
    want = graphed(ids, attention_mask=mask, token_type_ids=types, logits_at=select)
    ids, mask, types, select = (t.cuda() for t in (ids, mask, types, select))
    if kinds == "int32 ids, bool mask":
        ids, mask = ids.int(), mask.bool()
    elif kinds == "float mask, strided":  # [B, S] views of [S, B] tensors
        ids, mask, types, select = (t.t().contiguous().t() for t in (ids, mask.float(), types, select))
    for name in ("numpy", "cpu", "tolist", "item"):
        original = getattr(torch.Tensor, name)

        def refused(t, *args, _original=original, **kwargs):
            if t.is_cuda:
                pytest.fail("a device tensor went to the host")
            return _original(t, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, refused)
    for _ in range(2):  # the capture, then a replay of the graph fed from the device
        got = graphed(ids, attention_mask=mask, token_type_ids=types, logits_at=select)
        assert torch.equal(got.logits, want.logits) and torch.equal(got.last_hidden_state, want.last_hidden_state)
    assert len(graphed.graph_runner.stats_graphs) == 1
