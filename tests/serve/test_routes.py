"""Each task's routes over HTTP on the cluster, against the in-process API for the same inputs: an app per task, on
its own route prefix, one model replica each."""

import pytest

import fastbert
from tests.serve.conftest import same_answer

requests = pytest.importorskip("requests")
serve = pytest.importorskip("ray.serve")

from fastbert.serve.app import application  # noqa: E402 - needs Ray

TEXTS = ["Paris is the capital of France.", "John Smith lives in Rome.", "a"]


def deploy(task: str, model, cluster_url: str):
    """The app of ``task`` at ``/<task>``; its URL, until the module's end."""
    serve.run(application(str(model), task=task, device="cpu", replicas=1), name=task, route_prefix=f"/{task}")
    yield f"{cluster_url}/{task}"
    serve.delete(task)


@pytest.fixture(scope="module")
def embed_url(cluster_url, checkpoint):
    yield from deploy("embed", checkpoint("embed"), cluster_url)


@pytest.fixture(scope="module")
def rerank_url(cluster_url, checkpoint):
    yield from deploy("rerank", checkpoint("rerank"), cluster_url)


@pytest.fixture(scope="module")
def classify_url(cluster_url, checkpoint):
    yield from deploy("classify", checkpoint("classify"), cluster_url)


@pytest.fixture(scope="module")
def ner_url(cluster_url, checkpoint):
    yield from deploy("ner", checkpoint("ner"), cluster_url)


def post(url: str, body: dict):
    answer = requests.post(url, json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_embed_answers_as_sentence_encoder_encode(embed_url, checkpoint):
    encoder = fastbert.SentenceEncoder.from_pretrained(checkpoint("embed"), device="cpu")
    normalized = encoder.encode(TEXTS, normalize_embeddings=True).tolist()
    assert same_answer(post(embed_url + "/embed", {"inputs": TEXTS}), normalized)
    assert same_answer(post(embed_url + "/embed", {"inputs": TEXTS[0], "normalize": False, "prompt_name": "query"}),
                       [encoder.encode(TEXTS[0], prompt_name="query").tolist()])
    answer = post(embed_url + "/v1/embeddings", {"input": TEXTS, "model": "tiny"})
    assert same_answer([d["embedding"] for d in answer["data"]], normalized)
    info = requests.get(embed_url + "/info", timeout=30).json()
    assert info["task"] == "embed" and list(info["model_type"]) == ["embedding"]


def test_rerank_answers_as_cross_encoder_rank(rerank_url, checkpoint):
    cross_encoder = fastbert.CrossEncoder.from_pretrained(checkpoint("rerank"), device="cpu")
    ranked = cross_encoder.rank("Where is Paris?", TEXTS, return_documents=True)
    assert same_answer(post(rerank_url + "/rerank", {"query": "Where is Paris?", "texts": TEXTS, "return_text": True}),
                       [{"index": r["corpus_id"], "score": r["score"], "text": r["text"]} for r in ranked])


def test_predict_answers_as_the_text_classification_pipeline(classify_url, checkpoint):
    classify = fastbert.pipeline("text-classification", model=checkpoint("classify"), device="cpu")
    pair = {"text": TEXTS[0], "text_pair": TEXTS[1]}
    assert same_answer(post(classify_url + "/predict", {"inputs": TEXTS[0]}), classify(TEXTS[0], top_k=None))
    assert same_answer(post(classify_url + "/predict", {"inputs": [[TEXTS[2]], TEXTS[:2]], "raw_scores": True}),
                       classify([TEXTS[2], pair], top_k=None, function_to_apply="none"))
    assert same_answer(post(classify_url + "/", {"inputs": TEXTS[:2]}), classify(pair, top_k=None))
    info = requests.get(classify_url + "/info", timeout=30).json()
    assert info["task"] == "classify" and list(info["model_type"]) == ["classifier"]


def test_ner_answers_as_the_token_classification_pipeline(ner_url, checkpoint):
    ner = fastbert.pipeline("token-classification", model=checkpoint("ner"), device="cpu",
                            aggregation_strategy="simple")
    assert same_answer(post(ner_url + "/ner", {"inputs": TEXTS}), ner(TEXTS))
    assert same_answer(post(ner_url + "/ner", {"inputs": TEXTS[1]}), ner(TEXTS[1]))
    refused = requests.post(ner_url + "/predict", json={"inputs": TEXTS[0]}, timeout=60)
    assert refused.status_code == 424 and refused.json()["error_type"] == "backend"
