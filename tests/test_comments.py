"""Comments and docstrings under fastbert/ say why the code is so, not what one machine measured: timings, rates
and GPU models go stale with every GPU or driver, and live in benchmarks/NOTES.md, which a comment may name."""

import ast
import io
import re
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fastbert"

NUMBER = r"\d+(?:\.\d+)?(?:\s*(?:-|–|to)\s*\d+(?:\.\d+)?)?"
UNIT = r"(?:[µμ]s|us|ns|ms|s|secs?|seconds?|minutes?|[KMGT]B/s|[KMG]iB/s|[GT]FLOP/s|[GT]FLOPS)"
MEASUREMENT = re.compile(rf"{NUMBER}\s*{UNIT}(?![\w/])|\b[ABH]\d{{3}}\b")


def comments_and_docstrings(source: str):
    """(line, text) of every comment and every module, class or function docstring."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                first = node.body[0].lineno
                for offset, line in enumerate(docstring.splitlines()):
                    yield first + offset, line


def measurements(source: str) -> list[tuple[int, str]]:
    """(line, text) of each measurement in a comment or docstring of ``source``, in line order."""
    return sorted(((line, match.group(0)) for line, text in comments_and_docstrings(source)
                   for match in MEASUREMENT.finditer(text)), key=lambda found: found[0])


def test_the_pattern_finds_measurements_and_nothing_else():
    found = measurements('"""Twelve layers 312 -> 276 µs on an H200, 4 TB/s, 2.2 s against 0.7 s."""\n'
                         "x = 1  # 5-16 μs less, 13 ms, 600 TFLOP/s\n")
    assert [text for _, text in found] == ["276 µs", "H200", "4 TB/s", "2.2 s", "0.7 s", "5-16 μs", "13 ms",
                                           "600 TFLOP/s"]
    assert not measurements('"""fp16 and bf16, 64 rows, 3 steps, 1.2 MB of weights, sm90, 2 sequences, 8 x 128,\n'
                            'max_position_embeddings, 768 -> 2304 outputs, 1.5x."""\n'
                            "x = '12 ms'  # a string in code is not a comment\n")


def test_no_measurements_in_comments_or_docstrings():
    offending = [f"{path.relative_to(PACKAGE.parent)}:{line}: {text}" for path in sorted(PACKAGE.rglob("*.py"))
                 for line, text in measurements(path.read_text())]
    assert not offending, "timings or GPU models in comments (move them to benchmarks/NOTES.md):\n" + \
        "\n".join(offending)
