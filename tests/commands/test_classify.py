"""``fastbert classify`` in a subprocess, on a tiny BERT sequence classifier with MiniLM's WordPiece tokenizer."""

import json

import pytest

import fastbert
from tests.checkpoints import save_bert_with_minilm_tokenizer
from tests.command_runs import fastbert_command, fastbert_command_on_a_terminal
from tests.pipelines.conftest import SENTIMENT, TEXTS, labelled

CPU = ("--device", "cpu")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, minilm_path):
    return save_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("classify"), "BertForSequenceClassification",
                                           **labelled(SENTIMENT))


@pytest.fixture(scope="module")
def masked_lm(tmp_path_factory, minilm_path):
    return save_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("classify_mlm"))


@pytest.fixture(scope="module")
def classifier(checkpoint):
    return fastbert.pipeline("text-classification", model=checkpoint, device="cpu")


def test_text_arguments_print_a_table_of_labels(checkpoint, classifier):
    run = fastbert_command("classify", *TEXTS[:2], "--model", checkpoint, *CPU)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["label", "score", "text"] and len(lines) == 3
    for line, text, expected in zip(lines[1:], TEXTS, classifier(TEXTS[:2])):
        assert line.split()[:2] == [expected["label"], f"{expected['score']:.4f}"] and line.endswith(text)


@pytest.mark.parametrize("top_k, options", [(None, {}), ("2", dict(top_k=2)), ("all", dict(top_k=None))])
def test_stdin_with_json_prints_the_pipelines_answer(checkpoint, classifier, top_k, options):
    arguments = ["--top-k", top_k] if top_k else []
    run = fastbert_command("classify", "--model", checkpoint, "--json", *CPU, *arguments, stdin="\n".join(TEXTS) + "\n")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == classifier(TEXTS, **options)


def test_top_k_lists_each_texts_labels_best_first(checkpoint):
    run = fastbert_command("classify", *TEXTS[:2], "--model", checkpoint, *CPU, "--top-k", "all")
    rows = [line.split(maxsplit=2) for line in run.stdout.splitlines()[1:]]
    assert len(rows) == 2 * len(SENTIMENT) and [row[2] for row in rows[::len(SENTIMENT)]] == TEXTS[:2]
    scores = [float(row[1]) for row in rows[:len(SENTIMENT)]]
    assert scores == sorted(scores, reverse=True)


def test_progress_bar_on_a_terminal_for_more_texts_than_a_batch(checkpoint):
    """The rule of every command (embed's and rerank's tests show it too): a bar when stderr is a terminal and the
    texts fill more than one batch; none for one batch, none into a pipe; never on stdout."""
    texts = "\n".join(f"text number {i}" for i in range(12))
    for batch_size, shown in (("4", True), ("32", False)):
        run = fastbert_command_on_a_terminal("classify", "--model", checkpoint, "--json", *CPU, "--batch-size",
                                             batch_size, stdin=texts)
        assert run.returncode == 0, run.stderr
        assert len(json.loads(run.stdout)) == 12 and ("12/12" in run.stderr) == shown, run.stderr
    piped = fastbert_command("classify", "--model", checkpoint, "--json", *CPU, "--batch-size", "4", stdin=texts)
    assert piped.returncode == 0 and "12/12" not in piped.stderr, piped.stderr


@pytest.mark.parametrize("arguments, message", [
    (["", "--model", "{checkpoint}"], "text 0 is empty"),
    (["a text", "--model", "{masked_lm}"], "has a masked-lm head; text-classification needs a checkpoint saved from"),
    (["a text", "--model", "{checkpoint}", "--top-k", "0"], "argument --top-k: must be at least 1 or 'all', got 0"),
    (["a text"], "the following arguments are required: --model"),
])
def test_bad_input_exits_2_with_the_reason(checkpoint, masked_lm, arguments, message):
    arguments = [a.format(checkpoint=checkpoint, masked_lm=masked_lm) for a in arguments]
    run = fastbert_command("classify", *arguments, *CPU)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
