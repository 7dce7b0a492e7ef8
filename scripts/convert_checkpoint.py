#!/usr/bin/env python3
"""Convert a Hugging Face BERT/RoBERTa checkpoint (hub id or directory) to a fastbert checkpoint:
the same as ``fastbert convert SRC DST [--dtype ...] [--revision ...] [--overwrite]``."""

import sys

from fastbert.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
