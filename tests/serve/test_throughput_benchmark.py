"""benchmarks/serve_throughput.py runs where Ray, FastAPI and the HTTP stack are absent (as on the GPU machine): its
CPU check in a subprocess that cannot import them, with the model replica in a process of its own as well."""

import json
import subprocess
import sys

from tests.serve.conftest import REPO_ROOT

ABSENT = ("ray", "fastapi", "starlette", "uvicorn", "aiohttp", "prometheus_client", "pydantic", "requests")
RUN = ("import sys; sys.modules.update(dict.fromkeys({absent})); from benchmarks.serve_throughput import main; "
       "main({argv})")


def test_the_throughput_benchmark_runs_without_the_serving_stack(tmp_path, minilm_path):
    argv = ["--cpu", "--out", str(tmp_path)]
    done = subprocess.run([sys.executable, "-c", RUN.format(absent=ABSENT, argv=argv)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = tmp_path.glob("*-serve-throughput-*.json")
    result = json.loads(path.read_text())
    assert result["in_process_best"]["embeddings_per_s"] > 0
    points = [(row["processes"], row["texts_per_request"]) for row in result["server"]]
    assert points == [(1, 1), (1, 8), (2, 1), (2, 8)]
    assert all(row["embeddings_per_s"] > 0 and row["batches"] > 0 for row in result["server"])
