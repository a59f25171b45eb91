"""Options shared by several commands."""

from __future__ import annotations

import argparse


def add_model_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps a value given before the command (``steertui --model M layers``).
    parser.add_argument("--model", metavar="M", default=argparse.SUPPRESS,
                        help="local model folder or Hugging Face id (default: the shipped demo model)")
    parser.add_argument("--device", default=argparse.SUPPRESS, help="cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default=argparse.SUPPRESS, help="float32, bfloat16, float16")


def add_dataset_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", metavar="P", default=argparse.SUPPRESS,
                        help="SecLLMHolmes checkout (the folder holding datasets/, or datasets/ itself)")
