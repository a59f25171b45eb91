"""Command line: parse, validate, call the engine or start the console.

This module imports neither torch nor Textual at import time, so ``steertui --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys

from steertui import __version__
from steertui.errors import SteertuiError


def build_parser() -> argparse.ArgumentParser:
    from steertui.commands import bench, compare, data, eval as eval_cmd, layers, replay, report, vectors, verdict

    parser = argparse.ArgumentParser(
        prog="steertui",
        description="Steer a code model and watch, live, what it does. "
        "With no command, opens the console on the embedded demo model and builtin examples.",
    )
    parser.add_argument("--version", action="version", version=f"steertui {__version__}")
    parser.add_argument("--model", metavar="M", help="local model folder or Hugging Face id (default: the shipped demo model)")
    parser.add_argument("--dataset", metavar="P", help="SecLLMHolmes checkout (default: $STEERTUI_DATASET, config, builtin examples)")
    parser.add_argument("--session", metavar="FILE", help="open a saved session file")
    parser.add_argument("--vectors", metavar="FILE", help="import a steering vector into the console: a file from "
                        "steertui vectors --export, a session's .safetensors sidecar, another tool's safetensors "
                        "file with one [d_model] tensor per layer named layer.L, or a GGUF control vector "
                        "(llama.cpp, repeng)")
    parser.add_argument("--vector", metavar="NAME", help="which vector of --vectors FILE (when it holds several)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda when available, else cpu)")
    parser.add_argument("--dtype", help="float32, bfloat16, float16 (default: bfloat16 on cuda, float32 on cpu)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    layers.register(sub)
    data.register(sub)
    eval_cmd.register(sub)
    replay.register(sub)
    report.register(sub)
    compare.register(sub)
    bench.register(sub)
    vectors.register(sub)
    verdict.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from steertui.tui.app import run_app

            return run_app(args)
        return int(args.handler(args) or 0)
    except SteertuiError as err:
        print(f"steertui: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("steertui: interrupted", file=sys.stderr)
        return 130
