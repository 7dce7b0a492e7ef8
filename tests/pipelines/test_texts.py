"""What every task pipeline refuses before tokenizing, with an InputError naming the text at fault; and the tasks
there are."""

import pytest

import fastbert
from fastbert import InputError
from fastbert.pipelines import PIPELINES
from tests.pipelines.conftest import BIO, SENTIMENT, labelled, save

BAD_TEXTS = [
    ("", "the text is empty"),
    ("  \n", r"the text is only whitespace \('  \\n'\)"),
    (None, "the text is None, not a string"),
    (42, "the text is int 42, not a string"),
    (b"bytes", "the text is bytes, not a string: decode it first"),
    ([], "no texts: give a text or a non-empty list of texts"),
    (["fine", None], "text 1 is None, not a string"),
    (["fine", "also fine", ""], "text 2 is empty"),
]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    checkpoints = {
        "text-classification": save(tmp_path_factory, "bert", "ForSequenceClassification", **labelled(SENTIMENT)),
        "token-classification": save(tmp_path_factory, "bert", "ForTokenClassification", **labelled(BIO)),
        "feature-extraction": save(tmp_path_factory, "bert", "ForMaskedLM"),
    }
    return {task: fastbert.pipeline(task, model=path, device="cpu") for task, path in checkpoints.items()}


@pytest.mark.parametrize("task", list(PIPELINES))
@pytest.mark.parametrize("bad, message", BAD_TEXTS)
def test_bad_texts_are_input_errors_naming_the_text(pipelines, task, bad, message):
    with pytest.raises(InputError, match=message):
        pipelines[task](bad)


def test_an_unknown_task_names_the_tasks_there_are():
    with pytest.raises(ValueError, match="unknown task 'summarization'; supported tasks: fill-mask, "
                                         "text-classification, token-classification, feature-extraction"):
        fastbert.pipeline("summarization")


def test_fill_mask_takes_its_options_per_call(pipelines):
    with pytest.raises(InputError, match="fill-mask takes its options per call; got top_k"):
        fastbert.pipeline("fill-mask", model=pipelines["feature-extraction"].model.name_or_path, device="cpu", top_k=3)
