"""Where results go: ``<gpu-slug>-<date>.json`` (the kernel micro-benchmarks: ``...-ops.json``) under the output
directory, sections merged into an existing file so that several calls build one result."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

DEFAULT_DIR = Path(__file__).parent / "results"
SCHEMA = 1
SEPARATE_SECTIONS = {"ops": "-ops"}  # sections kept in a file of their own, by file-name suffix
ERROR_CHARS = 2000


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def stem(environment: dict) -> str:
    return f"{slug(environment['gpu'])}-{environment['date']}"


def json_path(out_dir: Path, result_stem: str, section: str | None = None) -> Path:
    return Path(out_dir) / f"{result_stem}{SEPARATE_SECTIONS.get(section, '')}.json"


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}


def merge(out_dir: Path, result_stem: str, section: str, data, environment: dict) -> Path:
    """Writes ``data`` under the key ``section`` of its result file, keeping every other key already there."""
    path = json_path(out_dir, result_stem, section)
    merged = load(path)
    merged.update(schema=SCHEMA, environment=environment)
    merged[section] = data
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(merged, indent=1, default=str) + "\n")
    os.replace(partial, path)  # a call killed mid-write leaves the previous file whole
    return path


def latest_stem(out_dir: Path) -> str:
    """The newest main result in ``out_dir`` (dates sort in file names)."""
    suffixes = tuple(f"{s}.json" for s in SEPARATE_SECTIONS.values())
    mains = sorted(p for p in Path(out_dir).glob("*.json") if not p.name.endswith(suffixes))
    if not mains:
        raise FileNotFoundError(f"no result JSON in {out_dir}")
    return max(mains, key=lambda p: (p.stem[-10:], p.stat().st_mtime)).stem  # by date, then age


def describe(error: BaseException) -> str:
    """An exception as a result records it: type and message, cut to a readable length."""
    text = f"{type(error).__name__}: {error}".strip()
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + " [...]"
