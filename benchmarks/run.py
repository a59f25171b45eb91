"""Benchmarks: ``steertui bench`` (src/steertui/commands/bench.py, src/steertui/engine/bench.py) measures each of
steertui's jobs against a plain-transformers baseline in the same process, interleaved, as ratios.

    python benchmarks/run.py [--quick] [--shape starcoderbase-1b] [--repeats N] [--json FILE] ...

takes the same options as ``steertui bench``.
"""

from __future__ import annotations

import sys

from steertui.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
