"""How a call's texts and text pairs are read: one or a list (any iterable but a str, bytes or dict), each checked."""

import pytest

from fastbert import InputError
from fastbert.text_inputs import checked, excerpt, pairs


def test_one_text_or_any_iterable_of_them():
    assert (checked("a").items, checked("a").single) == (["a"], True)
    listed = checked(text for text in ("a", "b"))
    assert (listed.items, listed.single) == (["a", "b"], False)


def test_empty_texts_are_refused_unless_allowed():
    with pytest.raises(InputError, match="no texts: give a text or a non-empty list of texts"):
        checked([])
    with pytest.raises(InputError, match="text 1 is empty"):
        checked(["a", ""])
    assert checked([], allow_empty=True).items == [] and checked(["a", ""], allow_empty=True).items == ["a", ""]


def test_pairs_are_one_pair_or_a_list_of_them():
    assert (pairs(["a", "b"]).items, pairs(["a", "b"]).single) == ([("a", "b")], True)
    assert pairs([("a", "b"), ["c", "d"]]).items == [("a", "b"), ("c", "d")]
    assert pairs([]).items == []


def test_excerpts_are_cut_inside_a_strings_quotes():
    assert excerpt("x" * 50, limit=4) == "'xxxx...'" and excerpt(list(range(50)), limit=4) == "[0, ..."
