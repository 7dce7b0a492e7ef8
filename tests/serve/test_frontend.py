"""The request handling without Ray or HTTP: a Frontend over a batcher and a task in this process, as the throughput
benchmark runs it. Answers against the in-process pipeline, each bad field's status and message, the metrics text."""

import asyncio

import pytest

import fastbert
from fastbert.serve.errors import RequestError
from fastbert.serve.frontend import Frontend
from fastbert.serve.metrics import BatchMetrics, RequestMetrics, merge, render
from fastbert.serve.settings import ServeSettings
from fastbert.serve.tasks import load_task
from tests.checkpoints import save_bert_with_minilm_tokenizer

SETTINGS = ServeSettings(max_client_batch_size=4, max_batch_wait_ms=0.5).on("cpu")
TEXTS = ["Paris is the [MASK] of France.", "The capital of Italy is [MASK], and the capital of Spain is [MASK].",
         "[MASK]"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, minilm_path):
    return save_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("serve_fill_mask"))


@pytest.fixture(scope="module")
def fill_mask_task(checkpoint):
    return load_task("fill-mask", checkpoint, device="cpu")


def call(task, route: str, body):
    """``route``'s answer to ``body``, through a batcher as the server runs it."""
    async def main():
        batcher = SETTINGS.batcher(task.run)
        frontend = Frontend(task.spec(), SETTINGS, batcher.submit)
        try:
            return await getattr(frontend, route)(body)
        finally:
            batcher.close()

    return asyncio.run(main())


def refusal(task, route: str, body) -> RequestError:
    with pytest.raises(RequestError) as refused:
        call(task, route, body)
    return refused.value


def test_fill_mask_answers_as_the_pipeline(fill_mask_task, checkpoint):
    fill = fastbert.pipeline("fill-mask", model=checkpoint, device="cpu")
    assert call(fill_mask_task, "fill_mask", {"inputs": TEXTS, "top_k": 3}) == fill(TEXTS, top_k=3)
    assert call(fill_mask_task, "fill_mask", {"inputs": TEXTS[0]}) == fill(TEXTS[0])
    assert call(fill_mask_task, "fill_mask", {"inputs": [TEXTS[0]]}) == [fill(TEXTS[0])]  # a list: one per text


@pytest.mark.parametrize("body, message", [
    ({}, "missing field `inputs`"),
    ({"inputs": None}, "missing field `inputs`"),
    ({"inputs": []}, "`inputs` cannot be empty"),
    ({"inputs": 3}, "`inputs` must be a string or a list of strings, got a number"),
    ({"inputs": ["a [MASK]", 3]}, "got a list holding a number"),
    ({"inputs": "a [MASK]", "top_k": 0}, "`top_k` must be at least 1, got 0"),
    ({"inputs": "a [MASK]", "top_k": "3"}, "`top_k` must be an integer, got a string"),
    ({"inputs": "a [MASK]", "truncate": "yes"}, "`truncate` must be true or false, got a string"),
    ({"inputs": "no mask here"}, "the input has no mask token: write [MASK] where the word to predict goes"),
    (["a [MASK]"], "the request body must be a JSON object, got a list"),
])
def test_malformed_requests_are_422_naming_the_problem(fill_mask_task, body, message):
    refused = refusal(fill_mask_task, "fill_mask", body)
    assert (refused.status, refused.error_type) == (422, "validation")
    assert message in refused.message


def test_too_many_inputs_or_too_long_a_text_are_413(fill_mask_task):
    refused = refusal(fill_mask_task, "fill_mask", {"inputs": ["a [MASK]"] * 5})
    assert (refused.status, refused.message) == (413, "batch size 5 > maximum allowed batch size 4")
    long_text = "a [MASK] " + "word " * 60
    refused = refusal(fill_mask_task, "fill_mask", {"inputs": ["b [MASK]", long_text]})
    assert refused.status == 413 and "input 1 has 64 tokens, more than the 40 this model reads" in refused.message


def test_truncate_true_runs_a_long_text_cut_as_the_pipeline_cuts_it(fill_mask_task, checkpoint):
    long_text = "a [MASK] " + "word " * 60
    expected = fastbert.pipeline("fill-mask", model=checkpoint, device="cpu")(long_text)
    assert call(fill_mask_task, "fill_mask", {"inputs": long_text, "truncate": True}) == expected
    refused = refusal(fill_mask_task, "fill_mask", {"inputs": "[MASK] " + "word " * 60 + "[MASK]", "truncate": True})
    assert refused.status == 422 and "1 of its 2 [MASK] tokens lie past the first 40 tokens" in refused.message


def test_a_route_of_another_task_is_424(fill_mask_task):
    refused = refusal(fill_mask_task, "embed", {"inputs": "a text"})
    assert (refused.status, refused.error_type) == (424, "backend")
    assert refused.message == "/embed needs a model served with --task embed; this server runs fill-mask"


def test_tokenize_gives_ids_pieces_and_character_offsets(fill_mask_task):
    tokens = call(fill_mask_task, "tokenize", {"inputs": "Hello world"})
    assert tokens == [[{"id": 101, "text": "[CLS]", "special": True, "start": None, "stop": None},
                       {"id": 7592, "text": "Hello", "special": False, "start": 0, "stop": 5},
                       {"id": 2088, "text": "world", "special": False, "start": 6, "stop": 11},
                       {"id": 102, "text": "[SEP]", "special": True, "start": None, "stop": None}]]
    bare = call(fill_mask_task, "tokenize", {"inputs": ["Hello", "world"], "add_special_tokens": False})
    assert [[t["id"] for t in text] for text in bare] == [[7592], [2088]]


def test_info_names_the_model_and_limits(fill_mask_task, checkpoint):
    info = Frontend(fill_mask_task.spec(), SETTINGS, None).info()
    assert {k: info[k] for k in ("model_id", "task", "model_dtype", "device", "max_input_length", "max_batch_tokens",
                                 "max_client_batch_size")} == dict(
        model_id=str(checkpoint), task="fill-mask", model_dtype="float32", device="cpu", max_input_length=40,
        max_batch_tokens=SETTINGS.max_batch_tokens, max_client_batch_size=4)


def test_metrics_of_several_processes_add_up_in_prometheus_text():
    ingress, first, second = RequestMetrics(), BatchMetrics(), BatchMetrics()
    ingress.answered("/embed", 200, 0.003)
    ingress.answered("/embed", 413, 0.0004)
    first.batch_ran(tokens=300, inputs=10, seconds=0.02)
    second.batch_ran(tokens=20000, inputs=1, seconds=0.5)
    second.request_queued(0.002)
    text = render(merge([ingress.snapshot(), first.snapshot(in_flight=3), second.snapshot(in_flight=4)]))
    lines = set(text.splitlines())
    assert {'fastbert_requests_total{route="/embed",status="200"} 1.0',
            'fastbert_requests_total{route="/embed",status="413"} 1.0',
            'fastbert_request_duration_seconds_bucket{route="/embed",le="0.001"} 1.0',
            'fastbert_request_duration_seconds_count{route="/embed"} 2.0',
            'fastbert_batch_tokens_bucket{le="1024"} 1.0', 'fastbert_batch_tokens_bucket{le="+Inf"} 2.0',
            'fastbert_batch_tokens_sum 20300.0', 'fastbert_queue_duration_seconds_count 1.0',
            'fastbert_requests_in_flight 7.0', '# TYPE fastbert_batch_tokens histogram'} <= lines
