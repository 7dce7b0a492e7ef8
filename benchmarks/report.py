"""Regenerates the markdown reports and plots from result JSON, and the README's benchmark section.

``python -m benchmarks.report [--results DIR] [--stem STEM] [--readme PATH]``: the README's text between
``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` is replaced; a README without both markers
is left untouched.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import tables
from .results import DEFAULT_DIR, json_path, latest_stem, load

START_MARKER = "<!-- benchmarks:start -->"
END_MARKER = "<!-- benchmarks:end -->"
DEFAULT_README = Path(__file__).resolve().parents[1] / "README.md"


def plot(data: dict, out_dir: Path, result_stem: str) -> dict[str, Path]:
    try:
        from .plots import render
    except ImportError as e:  # matplotlib is a benchmark extra; numbers matter more than pictures
        print(f"no plots: {e}")
        return {}
    return render(data, out_dir, result_stem)


def render(out_dir: Path, result_stem: str) -> dict:
    """Writes ``<stem>.md`` (and ``<stem>-ops.md``) and the plots; returns the main data and what was written."""
    out_dir = Path(out_dir)
    data = load(json_path(out_dir, result_stem))
    written = dict(images={}, markdown=[])
    if data:
        written["images"] = plot(data, out_dir, result_stem)
        markdown = out_dir / f"{result_stem}.md"
        markdown.write_text(tables.render(data, images={k: p.name for k, p in written["images"].items()}))
        written["markdown"].append(markdown)
    ops = load(json_path(out_dir, result_stem, "ops"))
    if ops:
        markdown = out_dir / f"{result_stem}-ops.md"
        markdown.write_text(tables.render_ops(ops))
        written["markdown"].append(markdown)
    return dict(data=data, **written)


def rewrite_readme(readme: Path, block: str) -> bool:
    """Replaces the text between the markers; False (file untouched) when they are missing or out of order."""
    text = readme.read_text()
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < start:
        return False
    readme.write_text(text[:start + len(START_MARKER)] + "\n" + block.strip() + "\n" + text[end:])
    return True


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_DIR, help="directory of the result JSON")
    parser.add_argument("--stem", help="result name without .json (default: the newest in --results)")
    parser.add_argument("--readme", type=Path, default=DEFAULT_README)
    args = parser.parse_args(argv)
    result_stem = args.stem or latest_stem(args.results)
    written = render(args.results, result_stem)
    if not written["data"]:
        raise SystemExit(f"no {json_path(args.results, result_stem)}")
    for path in [*written["markdown"], *written["images"].values()]:
        print(f"wrote {path}")

    def link(path: Path) -> str:
        return Path(os.path.relpath(Path(path).resolve(), args.readme.resolve().parent)).as_posix()
    block = tables.readme_block(written["data"], {k: link(p) for k, p in written["images"].items()},
                                link(written["markdown"][0]))
    if not args.readme.is_file():
        print(f"no README at {args.readme}: nothing rewritten")
    elif rewrite_readme(args.readme, block):
        print(f"rewrote the benchmark section of {args.readme}")
    else:
        print(f"{args.readme} has no {START_MARKER} ... {END_MARKER} markers: left untouched")


if __name__ == "__main__":
    main()
