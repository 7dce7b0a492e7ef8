"""Fixtures of the server tests: a two-node Ray cluster on this machine with Serve on a free loopback port, shut down
after the package's tests; helpers to compare answers."""

import socket
from pathlib import Path

import pytest

from tests.checkpoints import save_bert_with_minilm_tokenizer
from tests.sentence_checkpoints import save_cross_encoder, save_encoder, save_sentence_transformer

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_POSITIONS = 128  # the tiny checkpoints read the load test's longest sentences (60 words) whole
SENTIMENT = {0: "negative", 1: "neutral", 2: "positive"}
BIO = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
# the pipelines' tiny checkpoints: architecture, and labels where it has some
ARCHITECTURES = {"fill-mask": ("BertForMaskedLM", None), "classify": ("BertForSequenceClassification", SENTIMENT),
                 "ner": ("BertForTokenClassification", BIO)}
# Ray's worker processes import fastbert from this checkout, as the tests do, whatever else is installed
WORKER_ENV = {"env_vars": {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def same_answer(got, expected, rel: float = 1e-4) -> bool:
    """JSON answers equal but for floats, which may differ in their last bits: the server batches inputs with
    others, so its sums run in another order than a lone in-process call's."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(
            same_answer(got[k], expected[k], rel) for k in expected)
    if isinstance(expected, (list, tuple)):
        return isinstance(got, list) and len(got) == len(expected) and all(
            same_answer(g, e, rel) for g, e in zip(got, expected))
    if isinstance(expected, float):
        return got == pytest.approx(expected, rel=rel, abs=1e-6)
    return got == expected


def answers_by_text(api, bodies: list[list[dict]]) -> dict:
    """The in-process answer (``api(texts, batch_size=)``) to each text of the load's bodies."""
    texts = sorted({text for client in bodies for body in client for text in body["inputs"]})
    return dict(zip(texts, api(texts, batch_size=16)))


def wrong_replies(report, bodies: list[list[dict]], expected: dict) -> list:
    """The load's 200 replies that are not the in-process answers to their texts."""
    return [r for r in report.replies if r.status == 200 and not same_answer(
        r.body, [expected[text] for text in bodies[r.client][r.request]["inputs"]])]


def save_checkpoint(task: str, directory: Path) -> Path:
    """A tiny random checkpoint for ``task`` over MiniLM's uncased WordPiece vocabulary."""
    if task == "embed":  # sentence-transformers' layout, mean pooling, a prompt by name
        encoder = save_encoder(directory / "encoder", "bert", max_position_embeddings=MAX_POSITIONS)
        return save_sentence_transformer(directory / "model", encoder, "mean", prompts={"query": "query: "})
    if task == "rerank":  # one label, saved as sentence-transformers' CrossEncoder saves it
        return save_cross_encoder(directory / "model", "bert", num_labels=1)
    architecture, labels = ARCHITECTURES[task]
    config = dict(id2label=labels, label2id={v: k for k, v in labels.items()}) if labels else {}
    return save_bert_with_minilm_tokenizer(directory, architecture, max_position_embeddings=MAX_POSITIONS, **config)


@pytest.fixture(scope="package")
def checkpoint(tmp_path_factory, minilm_path):
    """``checkpoint(task)``: the task's tiny checkpoint, built on first use."""
    built = {}

    def get(task: str) -> Path:
        if task not in built:
            built[task] = save_checkpoint(task, tmp_path_factory.mktemp(f"serve_{task}"))
        return built[task]

    return get


@pytest.fixture(scope="package")
def cluster_url():
    """Two Ray nodes on this machine (``ray.cluster_utils.Cluster``), two CPUs each, and Serve listening on loopback:
    its URL. Serve spreads a deployment's replicas over the nodes."""
    ray = pytest.importorskip("ray")
    serve = pytest.importorskip("ray.serve")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    cluster.add_node(num_cpus=2)
    ray.init(address=cluster.address, runtime_env=WORKER_ENV, log_to_driver=False)
    port = free_port()
    try:
        # one HTTP proxy: on one machine, a proxy per node would contend for the same port
        serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()
