"""``fastbert ner`` in a subprocess, on a tiny BERT token classifier (BIO labels) with MiniLM's WordPiece tokenizer."""

import json

import pytest

import fastbert
from tests.checkpoints import save_bert_with_minilm_tokenizer
from tests.command_runs import fastbert_command
from tests.pipelines.conftest import BIO, TEXTS, labelled

CPU = ("--device", "cpu")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, minilm_path):
    return save_bert_with_minilm_tokenizer(tmp_path_factory.mktemp("ner"), "BertForTokenClassification",
                                           **labelled(BIO))


@pytest.fixture(scope="module")
def tagger(checkpoint):
    return fastbert.pipeline("token-classification", model=checkpoint, device="cpu")


def test_text_arguments_print_each_texts_entities(checkpoint, tagger):
    run = fastbert_command("ner", *TEXTS[:3], "--model", checkpoint, *CPU)
    assert run.returncode == 0, run.stderr
    blocks = run.stdout.split("\n\n")
    assert len(blocks) == 3
    for block, text, entities in zip(blocks, TEXTS, tagger(TEXTS[:3], aggregation_strategy="simple")):
        lines = block.splitlines()
        assert lines[0] == text
        if not entities:
            assert lines[1:] == ["(no entities)"]
            continue
        assert lines[1].split() == ["entity", "score", "start", "end", "word"] and len(lines) == 2 + len(entities)
        first = entities[0]
        assert lines[2].split()[:4] == [first["entity_group"], f"{first['score']:.4f}", str(first["start"]),
                                        str(first["end"])]


@pytest.mark.parametrize("strategy", [None, "none", "average"])
def test_stdin_with_json_prints_the_pipelines_answer(checkpoint, tagger, strategy):
    arguments = ["--aggregation-strategy", strategy] if strategy else []
    run = fastbert_command("ner", "--model", checkpoint, "--json", *CPU, *arguments, stdin="\n".join(TEXTS) + "\n")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == tagger(TEXTS, aggregation_strategy=strategy or "simple")


@pytest.mark.parametrize("arguments, message", [
    (["a text", "--model", "{missing}"], "no-such-model"),
    (["\t", "--model", "{checkpoint}"], "text 0 is only whitespace"),
    (["a text", "--model", "{checkpoint}", "--aggregation-strategy", "longest"],
     "argument --aggregation-strategy: invalid choice: 'longest'"),
])
def test_bad_input_exits_2_with_the_reason(checkpoint, tmp_path, arguments, message):
    arguments = [a.format(checkpoint=checkpoint, missing=tmp_path / "no-such-model") for a in arguments]
    run = fastbert_command("ner", *arguments, *CPU)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
