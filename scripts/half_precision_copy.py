"""A copy of a Hugging Face checkpoint directory with its safetensors weights in fp16, in the same format, so that
fastbert, transformers and sentence-transformers all load it (half the size to carry to another machine).

    python scripts/half_precision_copy.py SRC DST
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file


def half_precision_copy(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "pytorch_model.bin"))
    for weights in src.rglob("*.safetensors"):
        tensors = {name: t.half() if t.is_floating_point() else t for name, t in load_file(weights).items()}
        target = dst / weights.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(target), metadata={"format": "pt"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path, help="a directory that does not exist yet")
    args = parser.parse_args()
    half_precision_copy(args.src, args.dst)


if __name__ == "__main__":
    main()
