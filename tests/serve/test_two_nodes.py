"""Two Ray nodes on this machine (``ray.cluster_utils.Cluster``), one CPU each: the two model replicas land one per
node, and both serve. The app comes from ``build``, as a Serve config file deploys it."""

import asyncio

import pytest

import fastbert
from benchmarks.serve_load import mixed_bodies, run_load
from tests.checkpoints import save_bert_with_minilm_tokenizer
from tests.serve.conftest import WORKER_ENV, answers_by_text, free_port, wrong_replies

requests = pytest.importorskip("requests")
ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

from ray.cluster_utils import Cluster  # noqa: E402 - needs Ray

from fastbert.serve.app import APP_NAME, build  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, minilm_path):
    return save_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("serve_nodes_bert"), max_position_embeddings=128)


@pytest.fixture(scope="module")
def two_node_url(checkpoint):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, runtime_env=WORKER_ENV, log_to_driver=False)
    port = free_port()
    try:
        # one HTTP proxy: on one machine, a proxy per node would contend for the same port
        serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
        # as a Serve config file's args, or `serve run fastbert.serve.app:build key=value ...`, give them
        args = {"model": str(checkpoint), "task": "fill-mask", "device": "cpu", "replicas": "2",
                "max_batch_tokens": "1024"}
        serve.run(build(args), name=APP_NAME, route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


def replica_node(name: str) -> str:
    replica = ray.get_actor(name, namespace="serve")
    return ray.get(replica.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id()))


def test_replicas_on_both_nodes_both_serving(two_node_url, checkpoint):
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["name"].startswith(f"SERVE_REPLICA::{APP_NAME}#Model#")]
    assert len(names) == 2
    assert len({replica_node(name) for name in names}) == 2
    assert len({node["NodeID"] for node in ray.nodes() if node["Alive"]}) == 2

    info = requests.get(two_node_url + "/info", timeout=30).json()
    assert (info["task"], info["max_batch_tokens"]) == ("fill-mask", 1024)

    bodies = mixed_bodies("fill-mask", clients=8, requests_per_client=10, seed=3)
    report = asyncio.run(run_load(two_node_url + "/fill-mask", bodies))
    assert {r.status for r in report.replies} == {200}
    fill = fastbert.pipeline("fill-mask", model=checkpoint, device="cpu")
    assert not wrong_replies(report, bodies, answers_by_text(fill, bodies))
    batches = serve.get_deployment_handle("Model", APP_NAME).broadcast("metrics_snapshot").results()
    ran = [next(m for m in snapshot if m.name == "fastbert_batch_inputs").values[()][-1] for snapshot in batches]
    assert len(ran) == 2 and all(count > 0 for count in ran), ran
