"""Hub ids resolve through huggingface_hub's cache; missing models fail with a message that says why."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fastbert import FastBert, ModelNotFoundError

ROOT = Path(__file__).resolve().parents[1]


def populate_hf_cache(cache: Path, repo_id: str, checkpoint: Path, commit: str = "0123456789abcdef" * 2 + "01234567"):
    """The cache layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in checkpoint.iterdir():
        shutil.copyfile(f, snapshot / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def run_offline(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_hub_id_resolves_offline_from_cache(tmp_path, bert_mlm_dir):
    populate_hf_cache(tmp_path / "hub", "tiny-org/tiny-bert", bert_mlm_dir)
    code = f"""
import torch
from fastbert import FastBert
ids = torch.randint(0, 99, (2, 11))
hub = FastBert.from_pretrained("tiny-org/tiny-bert", device="cpu")(ids).logits
local = FastBert.from_pretrained({str(bert_mlm_dir)!r}, device="cpu")(ids).logits
assert torch.equal(hub, local)
print("ok")
"""
    result = run_offline(code, tmp_path / "hub")
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_uncached_hub_id_offline_says_how_to_fix(tmp_path):
    code = """
from fastbert import FastBert
FastBert.from_pretrained("tiny-org/not-cached", device="cpu")
"""
    result = run_offline(code, tmp_path / "empty-hub")
    assert result.returncode != 0
    assert "ModelNotFoundError" in result.stderr
    assert "not in the Hugging Face cache" in result.stderr and "local checkpoint directory" in result.stderr


@pytest.mark.parametrize("name", ["./no/such/dir", "/definitely/not/here", "too/many/slashes/here"])
def test_path_that_is_not_a_directory_or_hub_id(name):
    with pytest.raises(ModelNotFoundError, match="neither a local directory nor a valid Hugging Face Hub model id"):
        FastBert.from_pretrained(name, device="cpu")


def test_file_instead_of_directory(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        FastBert.from_pretrained(tmp_path / "model.safetensors", device="cpu")


def test_empty_name_is_not_the_current_directory(bert_mlm_dir, monkeypatch):
    monkeypatch.chdir(bert_mlm_dir)  # a checkpoint that an empty name must not load
    with pytest.raises(ModelNotFoundError, match="the model name is empty"):
        FastBert.from_pretrained("", device="cpu")
