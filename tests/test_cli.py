"""The ``fastbert`` command, end to end in a subprocess, on a tiny BERT with MiniLM's WordPiece tokenizer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastbert
from fastbert.cli import main
from tests.checkpoints import save_bert_with_minilm_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["Paris is the [MASK] of France.", "The capital of Italy is [MASK], and the capital of Spain is [MASK]."]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, minilm_path):
    return save_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("cli_bert"))


def fastbert_command(*args, stdin: str = ""):
    """``fastbert ARGS`` run as a user runs it: a fresh process, the hub unreachable."""
    return subprocess.run([sys.executable, "-m", "fastbert.cli", *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


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
    assert run.returncode == 2
    assert "no-such-model" in run.stderr and "Traceback" not in run.stderr


def test_text_without_mask_exits_2_naming_the_mask_token(checkpoint):
    run = fastbert_command("fill-mask", "Paris is the capital of France.", "--model", checkpoint)
    assert run.returncode == 2
    assert "has no mask token: write [MASK]" in run.stderr and "Traceback" not in run.stderr


def test_convert_writes_a_checkpoint_the_pipeline_loads(checkpoint, tmp_path, capsys):
    assert main(["convert", str(checkpoint), str(tmp_path / "converted"), "--dtype", "float32"]) == 0
    assert "wrote" in capsys.readouterr().out
    converted = fastbert.pipeline("fill-mask", model=tmp_path / "converted", device="cpu")
    assert converted(TEXTS) == fastbert.pipeline("fill-mask", model=checkpoint, device="cpu")(TEXTS)
