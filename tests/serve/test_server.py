"""The server on a two-node Ray cluster on this machine, over HTTP on loopback: each route against the in-process
API, each bad request's status, a load test, replicas on both nodes, and a model replica killed under load."""

import asyncio
import time

import pytest

import fastbert
from benchmarks.serve_load import mixed_bodies, run_load
from tests.serve.conftest import MAX_POSITIONS, answers_by_text, same_answer, wrong_replies

requests = pytest.importorskip("requests")
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from fastbert.serve.app import APP_NAME, build  # noqa: E402 - needs Ray

MAX_CLIENT_BATCH_SIZE = 8
MAX_BATCH_TOKENS = 1024
MASKED = ["Paris is the [MASK] of France.", "The capital of Italy is [MASK], and the capital of Spain is [MASK].",
          "[MASK]"]
TOO_LONG = "word " * (MAX_POSITIONS + 10)


@pytest.fixture(scope="module")
def fill(checkpoint):
    return fastbert.pipeline("fill-mask", model=checkpoint("fill-mask"), device="cpu")


@pytest.fixture(scope="module")
def url(cluster_url, checkpoint):
    # as a Serve config file's args, or `serve run fastbert.serve.app:build key=value ...`, give them
    args = {"model": str(checkpoint("fill-mask")), "task": "fill-mask", "device": "cpu", "replicas": "2",
            "max_batch_tokens": str(MAX_BATCH_TOKENS), "max_client_batch_size": str(MAX_CLIENT_BATCH_SIZE)}
    serve.run(build(args), name=APP_NAME, route_prefix="/")
    yield cluster_url
    serve.delete(APP_NAME)


def post(url: str, route: str, body=None, *, data: str | None = None):
    return requests.post(url + route, json=body, data=data, timeout=60)


def test_fill_mask_answers_as_the_pipeline(url, fill):
    answer = post(url, "/fill-mask", {"inputs": MASKED, "top_k": 3})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert same_answer(answer.json(), fill(MASKED, top_k=3))
    assert same_answer(post(url, "/fill-mask", {"inputs": MASKED[0]}).json(), fill(MASKED[0]))
    assert same_answer(post(url, "/", {"inputs": MASKED[0]}).json(), fill(MASKED[0]))  # POST /: the task's route


def test_tokenize_health_and_info(url, checkpoint):
    tokens = post(url, "/tokenize", {"inputs": ["Hello world"]}).json()
    assert [t["text"] for t in tokens[0]] == ["[CLS]", "Hello", "world", "[SEP]"]
    health = requests.get(url + "/health", timeout=30)
    assert health.status_code == 200 and health.content == b""
    info = requests.get(url + "/info", timeout=30).json()
    assert (info["model_id"], info["task"], info["model_dtype"], info["max_input_length"], info["max_batch_tokens"],
            info["max_client_batch_size"]) == (str(checkpoint("fill-mask")), "fill-mask", "float32", MAX_POSITIONS,
                                               MAX_BATCH_TOKENS, MAX_CLIENT_BATCH_SIZE)


@pytest.mark.parametrize("route, body, raw, status, error_type", [
    ("/fill-mask", None, "{not json", 400, "validation"),
    ("/fill-mask", None, "", 400, "validation"),
    ("/fill-mask", {"inputs": ["a [MASK]"] * (MAX_CLIENT_BATCH_SIZE + 1)}, None, 413, "validation"),
    ("/fill-mask", {"inputs": "a [MASK] " + TOO_LONG}, None, 413, "validation"),
    ("/fill-mask", {"inputs": []}, None, 422, "validation"),
    ("/fill-mask", {"inputs": 7}, None, 422, "validation"),
    ("/fill-mask", {"top_k": 2}, None, 422, "validation"),
    ("/fill-mask", {"inputs": "no mask"}, None, 422, "validation"),
    ("/tokenize", {"inputs": [None]}, None, 422, "validation"),
    ("/embed", {"inputs": "a text"}, None, 424, "backend"),
])
def test_a_bad_request_gets_its_status_and_the_server_goes_on(url, fill, route, body, raw, status, error_type):
    answer = post(url, route, body, data=raw)
    assert answer.status_code == status, answer.text
    assert answer.json()["error_type"] == error_type and answer.json()["error"]
    assert same_answer(post(url, "/fill-mask", {"inputs": MASKED[0]}).json(), fill(MASKED[0]))


def test_load_every_answer_right_none_lost(url, fill):
    bodies = mixed_bodies("fill-mask", clients=32, requests_per_client=50)
    expected = answers_by_text(fill, bodies)
    report = asyncio.run(run_load(url + "/fill-mask", bodies, timeout_s=120))
    assert len(report.replies) == 32 * 50
    assert {r.status for r in report.replies} == {200}
    assert not wrong_replies(report, bodies, expected)
    print(report.summary())


def metrics(url: str) -> dict[str, float]:
    text = requests.get(url + "/metrics", timeout=30).text
    return {sample: float(value) for sample, value in (line.rsplit(" ", 1) for line in text.splitlines()
                                                       if line and not line.startswith("#"))}


def test_metrics_count_requests_and_batches(url):
    post(url, "/fill-mask", {"inputs": MASKED})
    values = metrics(url)
    assert values['fastbert_requests_total{route="/fill-mask",status="200"}'] >= 1
    assert values['fastbert_request_duration_seconds_count{route="/fill-mask"}'] >= 1
    assert values["fastbert_batch_inputs_count"] >= 1 and values["fastbert_batch_inputs_sum"] >= 3
    assert values["fastbert_batch_tokens_sum"] > 0 and values["fastbert_queue_duration_seconds_count"] >= 1
    assert values["fastbert_requests_in_flight"] == 0


def replicas() -> list[str]:
    """The model replicas' actor names."""
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["name"].startswith(f"SERVE_REPLICA::{APP_NAME}#Model#"))


def replica_node(name: str) -> str:
    replica = ray.get_actor(name, namespace="serve")
    return ray.get(replica.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id()))


def _batcher_in_flight(_) -> int:
    model = serve.get_replica_context().servable_object
    return 0 if model is None else model.batcher.in_flight  # None: a replacement replica still constructing


def in_flight(name: str) -> int:
    """Requests queued or running in the batcher of the model replica ``name``; 0 while it is starting."""
    replica = ray.get_actor(name, namespace="serve")
    return ray.get(replica.__ray_call__.remote(_batcher_in_flight))


def test_the_replicas_run_on_both_nodes_and_both_serve(url):
    assert len({node["NodeID"] for node in ray.nodes() if node["Alive"]}) == 2
    names = replicas()
    assert len(names) == 2 and len({replica_node(name) for name in names}) == 2
    report = asyncio.run(run_load(url + "/fill-mask", mixed_bodies("fill-mask", clients=16, requests_per_client=5,
                                                                  seed=1), timeout_s=60))
    assert {r.status for r in report.replies} == {200}
    snapshots = serve.get_deployment_handle("Model", APP_NAME).broadcast("metrics_snapshot").results()
    batches = [next(m for m in snapshot if m.name == "fastbert_batch_inputs").values.get((), [0])[-1]
               for snapshot in snapshots]
    assert len(batches) == 2 and all(count > 0 for count in batches), batches  # the load reached both


KILL_ATTEMPTS = 3  # a kill can race the completion of the requests it was aimed at, and then hit none


def test_a_replica_killed_under_load_costs_503s_only_and_is_replaced(url, fill):
    bodies = mixed_bodies("fill-mask", clients=16, requests_per_client=20, seed=2)
    expected = answers_by_text(fill, bodies)

    async def load_and_kill() -> tuple:
        load = asyncio.ensure_future(run_load(url + "/fill-mask", bodies, timeout_s=60))
        while True:  # kill a replica with requests inside
            holding = [name for name in replicas() if await asyncio.to_thread(in_flight, name) >= 2]
            if holding:
                ray.kill(ray.get_actor(holding[0], namespace="serve"))
                return holding[0], await load
            await asyncio.sleep(0.02)

    refused = []
    for _ in range(KILL_ATTEMPTS):
        victim, report = asyncio.run(load_and_kill())
        statuses = [r.status for r in report.replies]
        assert set(statuses) <= {200, 503}, statuses  # none timed out (0), none lost
        assert not wrong_replies(report, bodies, expected)
        refused += [r for r in report.replies if r.status == 503]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (victim in replicas() or len(replicas()) < 2):
            time.sleep(0.5)
        assert victim not in replicas() and len(replicas()) == 2
        if refused:
            break
    assert refused, f"no request of {KILL_ATTEMPTS} killed replicas was answered 503"
    assert '"error_type": "unhealthy"' in refused[0].body
    assert same_answer(post(url, "/fill-mask", {"inputs": MASKED[0]}).json(), fill(MASKED[0]))
