"""The converter writes a fastbert checkpoint whose outputs equal those of its source, and never damages its
source or a destination it was not allowed to replace."""

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastbert import CheckpointError, DestinationError, FastBert, convert_checkpoint
from fastbert.weights import FASTBERT_WEIGHTS
from tests.checkpoints import checksums

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


@pytest.fixture
def source(tmp_path, bert_mlm_dir):
    """A private copy of a checkpoint, so that a converter that damaged its source could not harm other tests."""
    return Path(shutil.copytree(bert_mlm_dir, tmp_path / "source"))


@pytest.mark.parametrize("overwrite", [False, True])
def test_the_source_directory_is_refused(source, overwrite):
    before = checksums(source.parent)
    for dst in (source, source / "..", source.parent):
        with pytest.raises(DestinationError, match="is or holds the source checkpoint"):
            convert_checkpoint(source, dst, dtype="float32", overwrite=overwrite)
    assert checksums(source.parent) == before


def test_a_destination_with_files_is_replaced_only_with_overwrite(tmp_path, source):
    before = checksums(source)
    dst = Path(shutil.copytree(source, tmp_path / "dst"))  # a Hugging Face checkpoint, with model.safetensors
    with pytest.raises(DestinationError, match="is not empty.*overwrite"):
        convert_checkpoint(source, dst, dtype="float32")
    assert checksums(dst) == before
    convert_checkpoint(source, dst, dtype="float32", overwrite=True)
    assert sorted(checksums(dst)) == ["config.json", FASTBERT_WEIGHTS]  # nothing stale left beside the new files
    assert checksums(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "source"]  # no staging or set-aside directory


def test_an_empty_destination_directory_is_used(tmp_path, source):
    (tmp_path / "empty").mkdir()
    assert (convert_checkpoint(source, tmp_path / "empty", dtype="float32") / FASTBERT_WEIGHTS).is_file()


def test_a_destination_that_is_a_file_is_refused(tmp_path, source):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(DestinationError, match="is a file"):
        convert_checkpoint(source, tmp_path / "file", dtype="float32", overwrite=True)
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [False, True])
def test_a_failure_while_writing_leaves_everything_as_it_was(tmp_path, source, monkeypatch, failure, existing):
    dst = tmp_path / "dst"
    if existing:
        (dst / "old").mkdir(parents=True)
        (dst / "old" / "config.json").write_text("{}")
    before = checksums(tmp_path)
    save = FastBert.save_pretrained

    def save_then_fail(model, directory):
        save(model, directory)  # half the checkpoint written: the tokenizer files are still to come
        raise failure

    monkeypatch.setattr(FastBert, "save_pretrained", save_then_fail)
    expected = (DestinationError, "No space left") if isinstance(failure, OSError) else (KeyboardInterrupt, None)
    with pytest.raises(expected[0], match=expected[1]):
        convert_checkpoint(source, dst, dtype="float32", overwrite=True)
    assert checksums(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == (["dst", "source"] if existing else ["source"])


def test_an_unreadable_source_writes_nothing(tmp_path, source):
    (source / "model.safetensors").write_bytes(b"not safetensors")
    before = checksums(source)
    with pytest.raises(CheckpointError, match="cannot read weight file"):
        convert_checkpoint(source, tmp_path / "dst", dtype="float32")
    assert checksums(source) == before and not (tmp_path / "dst").exists()
