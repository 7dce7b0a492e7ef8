"""A device that is not there, or that fastbert does not run on, is one DeviceError naming it and what is
available. CUDA's presence is simulated, so that these tests say the same on machines with and without GPUs."""

import pytest
import torch

from fastbert import DeviceError, FastBert
from fastbert.devices import resolve_device


@pytest.fixture
def gpus(monkeypatch):
    """Sets how many CUDA GPUs torch sees; 0: none (CUDA built in, or not with ``built=False``)."""

    def simulate(count: int, *, built: bool = True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: built)

    return simulate


def test_default_is_cuda_when_available_else_cpu(gpus):
    gpus(0)
    assert resolve_device(None) == torch.device("cpu")
    gpus(1)
    assert resolve_device(None) == torch.device("cuda")


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1", torch.device("cuda", 0)])
def test_devices_that_are_there_resolve(gpus, device):
    gpus(2)
    assert resolve_device(device) == torch.device(device)


@pytest.mark.parametrize("built, why", [(False, "this torch was built without CUDA"), (True, "no CUDA GPU is visible")])
def test_cuda_without_cuda(gpus, built, why):
    gpus(0, built=built)
    with pytest.raises(DeviceError, match=f"^device 'cuda' is not available: {why}; available: cpu$"):
        resolve_device("cuda")


def test_cuda_index_beyond_the_device_count(gpus):
    gpus(1)
    with pytest.raises(DeviceError, match="'cuda:7' is not available: this machine has 1 CUDA device; "
                                          "available: cpu, cuda:0$"):
        resolve_device("cuda:7")
    gpus(2)
    with pytest.raises(DeviceError, match="has 2 CUDA devices; available: cpu, cuda:0, cuda:1$"):
        resolve_device(torch.device("cuda", 2))


# ids spelled out: an id "gpu" would mark the test as needing a GPU (tests/conftest.py)
@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:x", "", -1, 1.5], ids=repr)
def test_unknown_devices(gpus, device):
    gpus(0)
    with pytest.raises(DeviceError, match=f"unknown device {device!r}; available: cpu$"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["mps", "xpu", "meta"])
def test_device_types_fastbert_does_not_run_on(gpus, device):
    gpus(1)
    with pytest.raises(DeviceError, match=f"does not run on {device} devices.*; available: cpu, cuda:0$"):
        resolve_device(device)


def test_from_pretrained_checks_the_device_first(gpus, bert_mlm_dir):
    gpus(0, built=False)
    with pytest.raises(DeviceError, match="'cuda' is not available"):
        FastBert.from_pretrained(bert_mlm_dir, device="cuda")
