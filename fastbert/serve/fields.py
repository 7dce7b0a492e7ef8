"""Readers of a request body's fields: each returns the field's value or its default, or raises a 422 naming the field.

As in text-embeddings-inference, fields the server does not know are ignored, and a null stands for the default.
"""

from __future__ import annotations

from .errors import malformed


def body_object(body) -> dict:
    if not isinstance(body, dict):
        raise malformed(f"the request body must be a JSON object, got {_kind(body)}")
    return body


def texts(body: dict, name: str) -> tuple[list[str], bool]:
    """A string or a non-empty list of strings, as a list; and whether it was a single string."""
    if isinstance(body.get(name), str):
        return [body[name]], True
    return text_list(body, name, "a string or a list of strings"), False


def text_list(body: dict, name: str, expected: str = "a list of strings") -> list[str]:
    value = _required(body, name)
    if not isinstance(value, list) or not all(isinstance(text, str) for text in value):
        raise malformed(f"`{name}` must be {expected}, got {_json_type(value)}")
    if not value:
        raise malformed(f"`{name}` cannot be empty")
    return value


def text(body: dict, name: str) -> str:
    value = _required(body, name)
    if not isinstance(value, str):
        raise malformed(f"`{name}` must be a string, got {_json_type(value)}")
    return value


def optional_text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise malformed(f"`{name}` must be a string, got {_json_type(value)}")
    return value


def sequences(body: dict, name: str) -> tuple[list[str | tuple[str, str]], bool]:
    """text-embeddings-inference's /predict inputs: a text, a pair ``[text, text_pair]``, or a batch of one-text
    lists and pairs ``[[text], [text, text_pair], ...]``; and whether it was a single text or pair."""
    value = _required(body, name)
    if isinstance(value, str):
        return [value], True
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value) and len(value) <= 2:
        return [_sequence(value)], True
    if isinstance(value, list) and value and all(
            isinstance(v, list) and 1 <= len(v) <= 2 and all(isinstance(t, str) for t in v) for v in value):
        return [_sequence(v) for v in value], False
    if value == []:
        raise malformed(f"`{name}` cannot be empty")
    raise malformed(f"`{name}` must be a string, a pair of strings [text, text_pair], or a batch of them "
                    f"[[text], [text, text_pair], ...]")


def flag(body: dict, name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise malformed(f"`{name}` must be true or false, got {_json_type(value)}")
    return value


def integer(body: dict, name: str, default: int, *, minimum: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(f"`{name}` must be an integer, got {_json_type(value)}")
    if value < minimum:
        raise malformed(f"`{name}` must be at least {minimum}, got {value}")
    return value


def choice(body: dict, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in choices:
        raise malformed(f"`{name}` must be one of {', '.join(choices)}, got {value!r}")
    return value


def _sequence(value: list[str]) -> str | tuple[str, str]:
    return value[0] if len(value) == 1 else (value[0], value[1])


def _required(body: dict, name: str):
    if body.get(name) is None:
        raise malformed(f"missing field `{name}`")
    return body[name]


def _json_type(value) -> str:
    if isinstance(value, list) and value:
        odd = [v for v in value if not isinstance(v, str)]
        return f"a list holding {_kind(odd[0])}" if odd else "a list of strings"
    return _kind(value)


def _kind(value) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
