"""The ``fastbert`` command, end to end in a subprocess, on a tiny BERT with MiniLM's WordPiece tokenizer."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastbert
from fastbert.cli import main
from fastbert.weights import FASTBERT_WEIGHTS
from tests.checkpoints import checksums, save_bert_with_minilm_tokenizer
from tests.command_runs import ENVIRONMENT, REPO_ROOT, fastbert_command

TEXTS = ["Paris is the [MASK] of France.", "The capital of Italy is [MASK], and the capital of Spain is [MASK]."]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, minilm_path):
    return save_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("cli_bert"))


def assert_refused(run: subprocess.CompletedProcess, cause: str) -> None:
    """Exit status 2 and one line naming the cause, no traceback."""
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("fastbert: error: ") and cause in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr


def test_text_argument_prints_a_table_per_mask(checkpoint):
    run = fastbert_command("fill-mask", *TEXTS, "--model", checkpoint, "--top-k", "2")
    assert run.returncode == 0, run.stderr
    expected = fastbert.pipeline("fill-mask", model=checkpoint, device="cpu")(TEXTS, top_k=2)
    lines = run.stdout.splitlines()
    assert lines[0] == TEXTS[0] and lines[1].split() == ["rank", "score", "token_str", "sequence"]
    assert lines[2].split()[:3] == ["1", f"{expected[0][0]['score']:.4f}", expected[0][0]["token_str"]]
    assert lines[2].endswith(expected[0][0]["sequence"])
    assert "mask 1 of 2:" in lines and "mask 2 of 2:" in lines


def test_stdin_with_json_matches_the_python_api(checkpoint):
    stdin = "\n".join(TEXTS) + "\n\n"  # a blank line is skipped
    run = fastbert_command("fill-mask", "--model", checkpoint, "--top-k", "3", "--json", stdin=stdin)
    assert run.returncode == 0, run.stderr
    expected = fastbert.pipeline("fill-mask", model=checkpoint, device="cpu")(TEXTS, top_k=3)
    assert json.loads(run.stdout) == expected


def test_missing_model_exits_2_with_the_message(tmp_path):
    run = fastbert_command("fill-mask", "a [MASK].", "--model", tmp_path / "no-such-model")
    assert_refused(run, "no-such-model")


def test_text_without_mask_exits_2_naming_the_mask_token(checkpoint):
    run = fastbert_command("fill-mask", "Paris is the capital of France.", "--model", checkpoint)
    assert_refused(run, "has no mask token: write [MASK]")


# ids spelled out: an id "gpu" would mark the test as needing a GPU (tests/conftest.py)
@pytest.mark.parametrize("args, cause", [
    (["a [MASK] b", "--device", "cuda"], "device 'cuda' is not available"),
    (["a [MASK] b", "--device", "cuda:7"], "device 'cuda:7' is not available"),
    (["a [MASK] b", "--device", "gpu"], "unknown device 'gpu'"),
    (["a [MASK] b", "--device", "mps"], "does not run on mps devices, only on CUDA GPUs and the CPU"),
    (["a [MASK] b", "--top-k", "-1"], "top_k must be at least 0"),
    (["a [MASK] b", "--batch-size", "0"], "batch_size must be at least 1"),
    (["[MASK] " + "dog " * 100 + "[MASK]"], "the text: 1 of its 2 [MASK] tokens lie past the first 40 tokens"),
], ids=["cuda", "cuda-7", "unknown-device", "mps", "top-k", "batch-size", "cut-mask"])
def test_refusals_exit_2_naming_the_cause(checkpoint, args, cause):
    run = fastbert_command("fill-mask", "--model", checkpoint, *args)
    assert_refused(run, cause)
    if "--device" in args:
        assert run.stderr.rstrip().endswith("available: cpu")


def test_an_empty_model_name_exits_2():
    assert_refused(fastbert_command("fill-mask", "a [MASK] b", "--model", ""), "the model name is empty")


def test_output_into_a_closed_pipe_ends_quietly(checkpoint):
    """As `fastbert fill-mask ... --json | head` when head has read what it wants: no traceback."""
    command = [sys.executable, "-m", "fastbert.cli", "fill-mask", *TEXTS, "--model", str(checkpoint), "--json"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                          env=ENVIRONMENT) as process:
        process.stdout.close()  # before the command writes: its first write finds no reader
        stderr = process.stderr.read()
    assert process.returncode == 1 and stderr == ""


def test_top_k_0_prints_empty_predictions(checkpoint, capsys):
    assert main(["fill-mask", TEXTS[1], "--model", str(checkpoint), "--device", "cpu", "--top-k", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [[[], []]]
    assert main(["fill-mask", *TEXTS, "--model", str(checkpoint), "--device", "cpu", "--top-k", "0"]) == 0
    assert capsys.readouterr().out.count("rank  score  token_str  sequence") == 3


def test_convert_writes_a_checkpoint_the_pipeline_loads(checkpoint, tmp_path, capsys):
    assert main(["convert", str(checkpoint), str(tmp_path / "converted"), "--dtype", "float32"]) == 0
    assert "wrote" in capsys.readouterr().out
    converted = fastbert.pipeline("fill-mask", model=tmp_path / "converted", device="cpu")
    assert converted(TEXTS) == fastbert.pipeline("fill-mask", model=checkpoint, device="cpu")(TEXTS)


@pytest.mark.parametrize("destination, cause", [
    ("source", "is or holds the source checkpoint"),
    ("not-empty", "is not empty; choose another directory, or replace it with overwrite=True (--overwrite"),
    ("file", "is a file"),
])
def test_convert_refusals_exit_2_and_leave_the_source_unchanged(checkpoint, tmp_path, destination, cause):
    source = Path(shutil.copytree(checkpoint, tmp_path / "source"))
    (tmp_path / "not-empty").mkdir()
    (tmp_path / "not-empty" / "model.safetensors").write_text("stale")
    (tmp_path / "file").write_text("mine")
    before = checksums(tmp_path)
    assert_refused(fastbert_command("convert", source, tmp_path / destination), cause)
    assert checksums(tmp_path) == before


def test_convert_overwrite_replaces_a_directory_with_files(checkpoint, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.safetensors").write_text("stale")
    run = fastbert_command("convert", checkpoint, tmp_path / "out", "--overwrite")
    assert run.returncode == 0, run.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists() and (tmp_path / "out" / FASTBERT_WEIGHTS).is_file()
