"""``fastbert embed`` and ``fastbert rerank``, end to end in subprocesses, against the Python API."""

import json

import numpy as np
import pytest
import torch

from fastbert import CrossEncoder, SentenceEncoder
from tests.command_runs import fastbert_command, fastbert_command_on_a_terminal
from tests.sentence_checkpoints import save_cross_encoder, save_encoder, save_sentence_transformer

TEXTS = ["Paris is the capital of France.", "Berlin is the capital of Germany.", "I like apples."]
QUERY = "capital of France"


@pytest.fixture(scope="module")
def embedder(tmp_path_factory, minilm_path):
    encoder = save_encoder(tmp_path_factory.mktemp("encoder") / "model", "bert")
    return save_sentence_transformer(tmp_path_factory.mktemp("st"), encoder, ("mean", "cls"),
                                     dense=[(8, torch.nn.Tanh())], prompts={"query": "query: "})


@pytest.fixture(scope="module")
def reranker(tmp_path_factory, minilm_path):
    return save_cross_encoder(tmp_path_factory.mktemp("ce") / "ce", "bert", 1)


def embeddings(path, texts, **kwargs):
    return SentenceEncoder.from_pretrained(path, device="cpu").encode(texts, **kwargs)


def test_embed_prints_a_line_per_text(embedder):
    run = fastbert_command("embed", *TEXTS, "--model", embedder, "--device", "cpu")
    assert run.returncode == 0, run.stderr
    printed = np.array([[float(x) for x in line.split()] for line in run.stdout.splitlines()])
    np.testing.assert_allclose(printed, embeddings(embedder, TEXTS), rtol=1e-7, atol=0)


def test_embed_stdin_json_normalized_with_a_prompt(embedder):
    run = fastbert_command("embed", "--model", embedder, "--device", "cpu", "--json", "--normalize", "--prompt-name",
                           "query", stdin="\n".join(TEXTS) + "\n\n")
    assert run.returncode == 0, run.stderr
    expected = embeddings(embedder, TEXTS, normalize_embeddings=True, prompt_name="query")
    np.testing.assert_array_equal(np.array(json.loads(run.stdout), dtype=np.float32), expected)


@pytest.mark.parametrize("suffix", [".npy", ".jsonl"])
def test_embed_output_file(embedder, tmp_path, suffix):
    out = tmp_path / "sub" / f"embeddings{suffix}"
    run = fastbert_command("embed", *TEXTS, "--model", embedder, "--device", "cpu", "--output", out)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"wrote {out} (3 x 8)"
    expected = embeddings(embedder, TEXTS)
    if suffix == ".npy":
        saved = np.load(out)
        assert saved.dtype == np.float32
        np.testing.assert_array_equal(saved, expected)
    else:
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [line["text"] for line in lines] == TEXTS
        np.testing.assert_array_equal(np.array([line["embedding"] for line in lines], dtype=np.float32), expected)


def test_embed_refuses_an_unknown_output_format_before_loading(tmp_path):
    run = fastbert_command("embed", "a", "--model", tmp_path / "no-such-model", "--output", tmp_path / "out.csv")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "has an unknown format: name a .npy or .jsonl file" in run.stderr


def test_rerank_prints_documents_best_first(reranker):
    run = fastbert_command("rerank", QUERY, *TEXTS, "--model", reranker, "--device", "cpu", "--top-k", "2")
    assert run.returncode == 0, run.stderr
    expected = CrossEncoder.from_pretrained(reranker, device="cpu").rank(QUERY, TEXTS, top_k=2, return_documents=True)
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["rank", "score", "index", "text"] and len(lines) == 3
    for line, result in zip(lines[1:], expected):
        assert line.split()[1:3] == [f"{result['score']:.4f}", str(result["corpus_id"])]
        assert line.endswith(result["text"])


def test_rerank_json_from_stdin_is_the_api_answer(reranker):
    run = fastbert_command("rerank", QUERY, "--model", reranker, "--device", "cpu", "--json",
                           stdin="\n".join(TEXTS) + "\n")
    assert run.returncode == 0, run.stderr
    expected = CrossEncoder.from_pretrained(reranker, device="cpu").rank(QUERY, TEXTS, return_documents=True)
    assert json.loads(run.stdout) == expected


def test_rerank_without_documents_exits_2(reranker):
    run = fastbert_command("rerank", QUERY, "--model", reranker, "--device", "cpu")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "fastbert: error: no documents to rerank: give them as arguments, or one per line on stdin" in run.stderr


@pytest.mark.parametrize("command", ["embed", "rerank"])
def test_missing_model_exits_2(tmp_path, command):
    run = fastbert_command(command, *([QUERY] if command == "rerank" else []), "a text", "--model",
                           tmp_path / "no-such-model")
    assert run.returncode == 2 and "no-such-model" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("command", ["embed", "rerank"])
def test_progress_bar_on_a_terminal_for_long_inputs(embedder, reranker, command):
    """With stderr a terminal: a bar for more texts than one batch, none for one batch; never on stdout."""
    model, head = (embedder, []) if command == "embed" else (reranker, [QUERY])
    for batch_size, shown in (("2", True), ("32", False)):
        run = fastbert_command_on_a_terminal(command, *head, *TEXTS, "--model", model, "--device", "cpu",
                                             "--batch-size", batch_size)
        assert run.returncode == 0, run.stderr
        assert (f"{len(TEXTS)}/{len(TEXTS)}" in run.stderr) == shown, run.stderr
        assert "text/s" not in run.stdout
