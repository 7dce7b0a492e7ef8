#!/usr/bin/env python3
"""Convert a Hugging Face BERT/RoBERTa checkpoint (hub id or directory) to a fastbert checkpoint."""

import argparse

from fastbert import convert_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("src", help="hub model id or local Hugging Face checkpoint directory")
    parser.add_argument("dst", help="directory to write the fastbert checkpoint to")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--revision", default=None, help="hub revision (branch, tag or commit)")
    args = parser.parse_args(argv)
    dst = convert_checkpoint(args.src, args.dst, dtype=args.dtype, revision=args.revision)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
