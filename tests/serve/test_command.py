"""``fastbert serve`` in a subprocess, as a user runs it: it answers, refuses what passes its concurrency limit with
429, and on SIGTERM stops every process it started."""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import fastbert
from tests.serve.conftest import REPO_ROOT, free_port, same_answer

requests = pytest.importorskip("requests")
pytest.importorskip("ray.serve")
aiohttp = pytest.importorskip("aiohttp")


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the live processes that name ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if text in line:
            found.append(line)
    return found


def wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if requests.get(url + "/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or not ready to answer
            pass
        time.sleep(1)
    pytest.fail(f"no healthy server after {timeout_s} s:\n{log.read_text()[-3000:]}")


async def concurrent_statuses(url: str, body: dict, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:
        async def one():
            async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=60)) as response:
                return response.status
        return sorted(await asyncio.gather(*(one() for _ in range(count))))


def test_serve_answers_refuses_past_its_limit_and_stops_on_sigterm(checkpoint, tmp_path):
    ray_dir = tempfile.mkdtemp(prefix="fbray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "RAY_TMPDIR": ray_dir, "HF_HUB_OFFLINE": "1"}
    model = checkpoint("fill-mask")
    command = [sys.executable, "-m", "fastbert.cli", "serve", str(model), "--task", "fill-mask", "--device", "cpu",
               "--port", str(port), "--max-concurrent-requests", "1", "--max-batch-wait-ms", "1000"]
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
    try:
        wait_for_health(url, process, log)
        text = "Paris is the [MASK] of France."
        expected = fastbert.pipeline("fill-mask", model=model, device="cpu")(text)
        assert same_answer(requests.post(url + "/fill-mask", json={"inputs": text}, timeout=60).json(), expected)
        # one request admitted, held up to 1 s for others to join its batch; the rest refused at once
        assert asyncio.run(concurrent_statuses(url + "/fill-mask", {"inputs": text}, 5)) == [200, 429, 429, 429, 429]
        assert processes_mentioning(ray_dir)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    assert "shutting down" in log.read_text()
    deadline = time.monotonic() + 30
    while processes_mentioning(ray_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not processes_mentioning(ray_dir)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=5)
