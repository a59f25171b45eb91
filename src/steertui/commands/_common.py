"""Options shared by several commands."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS keeps a value given before the command (``steertui --model M layers``).
    parser.add_argument("--model", metavar="M", default=argparse.SUPPRESS,
                        help="local model folder or Hugging Face id (default: the shipped demo model)")
    parser.add_argument("--device", default=argparse.SUPPRESS, help="cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default=argparse.SUPPRESS, help="float32, bfloat16, float16")
    parser.add_argument("--trust-remote-code", action="store_true", default=argparse.SUPPRESS,
                        help="allow a model's own Python code to run (off unless asked)")
    parser.add_argument("--download", action="store_true", default=argparse.SUPPRESS,
                        help="allow downloading a Hugging Face id that is not in the local cache")


def add_session_file(parser: argparse.ArgumentParser) -> None:
    """FILE, a saved session, and where a bare name is looked up (``--sessions-dir``)."""
    parser.add_argument("file", metavar="FILE", help="a session .toml file (a bare name is also looked up in the "
                        "sessions folder)")
    parser.add_argument("--sessions-dir", metavar="DIR", help="where bare session names are looked up "
                        "(default: $STEERTUI_SESSIONS, else the user data folder's sessions/)")


def add_dataset_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", metavar="P", default=argparse.SUPPRESS,
                        help="SecLLMHolmes checkout (the folder holding datasets/, or datasets/ itself)")


def load_model(args: argparse.Namespace):
    """Load the model named by ``--model`` (default: the demo model) with ``--device``/``--dtype``."""
    from steertui.engine.model import LoadedModel

    return LoadedModel.load(getattr(args, "model", None), device=getattr(args, "device", None),
                             dtype=getattr(args, "dtype", None),
                             trust_remote_code=getattr(args, "trust_remote_code", False),
                             allow_download=getattr(args, "download", False))


def int_at_least(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            below = "negative" if minimum == 0 else "not allowed"
            raise argparse.ArgumentTypeError(f"{value} is {below}: pass a whole number of at least {minimum}")
        return value

    parse.__name__ = f"whole number >= {minimum}"  # argparse names the type in its messages
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def comma_list(text: str, convert: Any, what: str, empty: str) -> tuple[Any, ...]:
    """``text`` split at commas, each part through ``convert``; an argparse error naming ``what`` the parts should
    be, or saying ``empty`` when there is none."""
    try:
        values = tuple(convert(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of {what}") from None
    if not values:
        raise argparse.ArgumentTypeError(empty)
    return values


def alpha_list(text: str) -> tuple[float, ...]:
    """``-1,0,1`` -> (-1.0, 0.0, 1.0): one or more finite coefficients (an argparse type)."""
    import math

    values = comma_list(text, float, "numbers", "no value given: pass at least one number, e.g. --alpha=-1,0,1")
    bad = [x for x in values if not math.isfinite(x)]
    if bad:
        raise argparse.ArgumentTypeError(f"{bad[0]} is not a finite number: alphas must be finite, e.g. --alpha=-1,0,1")
    return values


def layer_list(text: str) -> tuple[int, ...]:
    """``1,3`` -> (1, 3): one or more layer indices, none negative (an argparse type)."""
    values = comma_list(text, int, "layer indices", "no layer given: pass layer indices, e.g. --layers 1,3")
    if min(values) < 0:
        raise argparse.ArgumentTypeError(f"'{text}': layer indices are 0 or more")
    return values


def check_vector_args(args: argparse.Namespace) -> None:
    """``--vector NAME`` picks a vector of ``--vectors FILE``: without the file it is an error (eval, the console)."""
    from steertui.errors import SteertuiError

    if getattr(args, "vector", None) and not getattr(args, "vectors", None):
        raise SteertuiError("--vector names a vector of --vectors FILE, and no file is given",
                            "add --vectors FILE, or drop --vector")


def name_list(text: str) -> list[str]:
    """An argparse type for a repeatable option that also takes names separated by commas (``--cwe 22,787``,
    with ``action="extend"``)."""
    return list(comma_list(text, str.strip, "names", f"'{text}' names nothing: give e.g. cwe-787, or 22,787"))


name_list.__name__ = "list of names"  # argparse names the type in its messages
