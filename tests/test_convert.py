"""The converter writes a fastbert checkpoint whose outputs equal those of its source."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastbert import FastBert, convert_checkpoint
from fastbert.weights import FASTBERT_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("fixture", ["bert_mlm_dir", "roberta_mlm_dir", "bert_base_dir"])
def test_round_trip_fp32(tmp_path, request, fixture):
    source = request.getfixturevalue(fixture)
    converted = convert_checkpoint(source, tmp_path / "converted", dtype="float32")
    assert (converted / FASTBERT_WEIGHTS).exists()
    ids = torch.randint(2, 99, (3, 17))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    a = FastBert.from_pretrained(source, device="cpu")(ids, attention_mask=mask)
    b = FastBert.from_pretrained(converted, device="cpu")(ids, attention_mask=mask)
    assert torch.equal(a.last_hidden_state, b.last_hidden_state)
    for x, y in [(a.logits, b.logits), (a.pooler_output, b.pooler_output)]:
        assert (x is None and y is None) or torch.equal(x, y)


def test_converted_checkpoint_loads_without_remapping(tmp_path, bert_mlm_dir, monkeypatch):
    converted = convert_checkpoint(bert_mlm_dir, tmp_path / "c", dtype="float16")
    import fastbert.weights

    monkeypatch.setattr(fastbert.weights, "remap_hf_state",
                        lambda *a: pytest.fail("a fastbert checkpoint was remapped"))
    model = FastBert.from_pretrained(converted, device="cpu")
    assert model.head.decoder.weight.data_ptr() == model.embeddings.word_embeddings.weight.data_ptr()


def test_minilm_conversion_copies_tokenizer(tmp_path, minilm_path):
    converted = convert_checkpoint(minilm_path, tmp_path / "minilm", dtype="bfloat16")
    assert {"tokenizer.json", "vocab.txt", "tokenizer_config.json"} <= {p.name for p in converted.iterdir()}
    model = FastBert.from_pretrained(converted, device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and model.pooler is not None


def test_convert_script(tmp_path, bert_mlm_dir):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "convert_checkpoint.py"), str(bert_mlm_dir), str(tmp_path / "out"),
         "--dtype", "float32"],
        capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / FASTBERT_WEIGHTS).exists()
