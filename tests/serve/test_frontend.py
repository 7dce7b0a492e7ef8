"""The request handling without Ray or HTTP: a Frontend over a batcher and a task in this process, as the throughput
benchmark runs it. Answers against the in-process APIs, each bad field's status and message, the metrics text."""

import asyncio
import base64

import numpy as np
import pytest
import torch

import fastbert
from fastbert.serve.errors import RequestError
from fastbert.serve.frontend import Frontend
from fastbert.serve.metrics import BatchMetrics, RequestMetrics, merge, render
from fastbert.serve.settings import ServeSettings
from fastbert.serve.tasks import load_task
from tests.serve.conftest import MAX_POSITIONS, same_answer

SETTINGS = ServeSettings(max_client_batch_size=4, max_batch_wait_ms=0.5).on("cpu")
MASKED = ["Paris is the [MASK] of France.", "The capital of Italy is [MASK], and the capital of Spain is [MASK].",
          "[MASK]"]
TEXTS = ["Paris is the capital of France.", "John Smith lives in Rome.", "a"]
TOO_LONG = "word " * (MAX_POSITIONS + 10)


@pytest.fixture(scope="module")
def task(checkpoint):
    """``task(name)``: the task loaded on the CPU, once."""
    loaded = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = load_task(name, checkpoint(name), device="cpu")
        return loaded[name]

    return get


def call(task, route: str, body):
    """``route``'s answer to ``body``, through a batcher as the server runs it."""
    async def main():
        batcher = SETTINGS.batcher(task.run)
        try:
            return await getattr(Frontend(task.spec(), SETTINGS, batcher.submit), route)(body)
        finally:
            batcher.close()

    return asyncio.run(main())


def refusal(task, route: str, body) -> RequestError:
    with pytest.raises(RequestError) as refused:
        call(task, route, body)
    return refused.value


def test_fill_mask_answers_as_the_pipeline(task, checkpoint):
    fill = fastbert.pipeline("fill-mask", model=checkpoint("fill-mask"), device="cpu")
    assert call(task("fill-mask"), "fill_mask", {"inputs": MASKED, "top_k": 3}) == fill(MASKED, top_k=3)
    assert call(task("fill-mask"), "fill_mask", {"inputs": MASKED[0]}) == fill(MASKED[0])
    assert call(task("fill-mask"), "fill_mask", {"inputs": [MASKED[0]]}) == [fill(MASKED[0])]  # one per text


def test_embed_answers_as_sentence_encoder_encode(task, checkpoint):
    encoder = fastbert.SentenceEncoder.from_pretrained(checkpoint("embed"), device="cpu")
    embed = task("embed")
    expected = encoder.encode(TEXTS, normalize_embeddings=True).tolist()
    assert same_answer(call(embed, "embed", {"inputs": TEXTS}), expected)
    assert same_answer(call(embed, "embed", {"inputs": TEXTS[0], "normalize": False, "prompt_name": "query"}),
                       [encoder.encode(TEXTS[0], prompt_name="query").tolist()])
    refused = refusal(embed, "embed", {"inputs": TEXTS[0], "prompt_name": "passage"})
    assert refused.status == 422 and "prompt name 'passage' is not one of this model's prompts" in refused.message


def test_openai_embeddings_as_floats_or_base64(task, checkpoint):
    encoder = fastbert.SentenceEncoder.from_pretrained(checkpoint("embed"), device="cpu")
    answer = call(task("embed"), "openai_embeddings", {"input": TEXTS[:2], "model": "any"})
    expected = encoder.encode(TEXTS[:2], normalize_embeddings=True)
    assert [d["index"] for d in answer["data"]] == [0, 1] and answer["object"] == "list"
    assert same_answer([d["embedding"] for d in answer["data"]], expected.tolist())
    tokens = sum(len(encoding) for encoding in encoder.tokenizer.encode(TEXTS[:2], MAX_POSITIONS))
    assert answer["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    packed = call(task("embed"), "openai_embeddings", {"input": TEXTS[0], "encoding_format": "base64"})
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert same_answer(decoded.tolist(), expected[0].tolist())


def test_rerank_answers_as_cross_encoder_rank(task, checkpoint):
    cross_encoder = fastbert.CrossEncoder.from_pretrained(checkpoint("rerank"), device="cpu")
    query, documents = "Where is Paris?", TEXTS
    ranked = cross_encoder.rank(query, documents, return_documents=True)
    expected = [{"index": r["corpus_id"], "score": r["score"], "text": r["text"]} for r in ranked]
    assert same_answer(call(task("rerank"), "rerank", {"query": query, "texts": documents, "return_text": True}),
                       expected)
    raw = cross_encoder.predict([(query, d) for d in documents], activation_fn=torch.nn.Identity()).tolist()
    answer = call(task("rerank"), "rerank", {"query": query, "texts": documents, "raw_scores": True})
    assert same_answer(answer, sorted(({"index": i, "score": s} for i, s in enumerate(raw)),
                                      key=lambda rank: rank["score"], reverse=True))
    refused = refusal(task("rerank"), "rerank", {"query": query, "texts": []})
    assert (refused.status, refused.message) == (422, "`texts` cannot be empty")


def test_predict_answers_every_label_as_the_pipeline(task, checkpoint):
    classify = fastbert.pipeline("text-classification", model=checkpoint("classify"), device="cpu")
    predict = task("classify")
    assert same_answer(call(predict, "predict", {"inputs": TEXTS[0]}), classify(TEXTS[0], top_k=None))
    # text-embeddings-inference's grammar: [text, text_pair] is one pair; a batch is a list of one-text lists and pairs
    pair = {"text": TEXTS[0], "text_pair": TEXTS[1]}
    assert same_answer(call(predict, "predict", {"inputs": TEXTS[:2]}), classify(pair, top_k=None))
    assert same_answer(call(predict, "predict", {"inputs": [[TEXTS[2]], TEXTS[:2]], "raw_scores": True}),
                       classify([TEXTS[2], pair], top_k=None, function_to_apply="none"))


def test_ner_answers_the_simple_entities_of_the_pipeline(task, checkpoint):
    ner = fastbert.pipeline("token-classification", model=checkpoint("ner"), device="cpu",
                            aggregation_strategy="simple")
    assert same_answer(call(task("ner"), "ner", {"inputs": TEXTS}), ner(TEXTS))
    assert same_answer(call(task("ner"), "ner", {"inputs": TEXTS[1]}), ner(TEXTS[1]))


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
def test_malformed_requests_are_422_naming_the_problem(task, body, message):
    refused = refusal(task("fill-mask"), "fill_mask", body)
    assert (refused.status, refused.error_type) == (422, "validation")
    assert message in refused.message


@pytest.mark.parametrize("inputs", [[["a", "b", "c"]], [["a"], "b"], [[]], [1]])
def test_predict_refuses_what_is_no_text_pair_or_batch(task, inputs):
    refused = refusal(task("classify"), "predict", {"inputs": inputs})
    assert refused.status == 422 and "`inputs` must be a string, a pair of strings" in refused.message


def test_too_many_inputs_or_too_long_a_text_are_413(task):
    refused = refusal(task("fill-mask"), "fill_mask", {"inputs": ["a [MASK]"] * 5})
    assert (refused.status, refused.message) == (413, "batch size 5 > maximum allowed batch size 4")
    refused = refusal(task("fill-mask"), "fill_mask", {"inputs": ["b [MASK]", "a [MASK] " + TOO_LONG]})
    assert refused.status == 413
    assert f"input 1 has {MAX_POSITIONS + 14} tokens, more than the {MAX_POSITIONS} this model reads" in refused.message


def test_truncate_true_runs_a_long_text_cut_as_the_pipeline_cuts_it(task, checkpoint):
    long_text = "a [MASK] " + TOO_LONG
    expected = fastbert.pipeline("fill-mask", model=checkpoint("fill-mask"), device="cpu")(long_text)
    assert call(task("fill-mask"), "fill_mask", {"inputs": long_text, "truncate": True}) == expected
    refused = refusal(task("fill-mask"), "fill_mask", {"inputs": "[MASK] " + TOO_LONG + "[MASK]", "truncate": True})
    assert refused.status == 422
    assert f"1 of its 2 [MASK] tokens lie past the first {MAX_POSITIONS} tokens" in refused.message


def test_embed_and_rerank_cut_long_inputs_as_their_encoders_cut_them(task, checkpoint):
    """The request side tokenizes embed and rerank inputs once, cut to the model's length as its own tokenizer cuts
    them, and the replica runs those tokens: answers with ``truncate`` equal the in-process APIs', and a refusal
    counts the whole input's tokens."""
    encoder = fastbert.SentenceEncoder.from_pretrained(checkpoint("embed"), device="cpu")
    long_text = "a " + TOO_LONG
    answer = call(task("embed"), "embed", {"inputs": [TEXTS[0], long_text], "normalize": False, "truncate": True})
    assert same_answer(answer, encoder.encode([TEXTS[0], long_text]).tolist())
    refused = refusal(task("embed"), "embed", {"inputs": [TEXTS[0], long_text]})
    whole = MAX_POSITIONS + 13  # "a", the words of TOO_LONG, [CLS] and [SEP]
    assert refused.status == 413 and f"input 1 has {whole} tokens, more than the {encoder.max_seq_length}" in (
        refused.message)
    cross_encoder = fastbert.CrossEncoder.from_pretrained(checkpoint("rerank"), device="cpu")
    answer = call(task("rerank"), "rerank", {"query": "a query", "texts": [TEXTS[1], long_text], "raw_scores": True,
                                             "truncate": True})
    expected = cross_encoder.predict([("a query", TEXTS[1]), ("a query", long_text)],
                                     activation_fn=torch.nn.Identity()).tolist()
    assert same_answer(sorted(answer, key=lambda rank: rank["index"]),
                       [{"index": i, "score": score} for i, score in enumerate(expected)])


def test_a_route_of_another_task_is_424(task):
    refused = refusal(task("fill-mask"), "embed", {"inputs": "a text"})
    assert (refused.status, refused.error_type) == (424, "backend")
    assert refused.message == "/embed needs a model served with --task embed; this server runs fill-mask"


def test_tokenize_gives_ids_pieces_and_character_offsets(task):
    tokens = call(task("fill-mask"), "tokenize", {"inputs": "Hello world"})
    assert tokens == [[{"id": 101, "text": "[CLS]", "special": True, "start": None, "stop": None},
                       {"id": 7592, "text": "Hello", "special": False, "start": 0, "stop": 5},
                       {"id": 2088, "text": "world", "special": False, "start": 6, "stop": 11},
                       {"id": 102, "text": "[SEP]", "special": True, "start": None, "stop": None}]]
    bare = call(task("fill-mask"), "tokenize", {"inputs": ["Hello", "world"], "add_special_tokens": False})
    assert [[t["id"] for t in text] for text in bare] == [[7592], [2088]]


def test_info_names_the_model_its_labels_and_the_limits(task, checkpoint):
    info = Frontend(task("classify").spec(), SETTINGS, None).info()
    assert {k: info[k] for k in ("model_id", "task", "model_dtype", "device", "max_input_length", "max_batch_tokens",
                                 "max_client_batch_size")} == dict(
        model_id=str(checkpoint("classify")), task="classify", model_dtype="float32", device="cpu",
        max_input_length=MAX_POSITIONS, max_batch_tokens=SETTINGS.max_batch_tokens, max_client_batch_size=4)
    assert info["model_type"] == {"classifier": {"id2label": {0: "negative", 1: "neutral", 2: "positive"},
                                                 "label2id": {"negative": 0, "neutral": 1, "positive": 2}}}


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
