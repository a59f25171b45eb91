#!/usr/bin/env bash
# The GPU tables of the README's Performance section: `steertui bench` in bfloat16 on the starcoderbase-1b and
# starcoderbase-7b shapes (random weights of those exact configurations, nothing downloaded), each written as
# JSON and Markdown into OUT (default bench-cuda/).
#
#   benchmarks/cuda.sh [OUT]
#
# Run from the repository root of a checkout whose package is installed, or set PYTHONPATH=src. On a box
# without network, WHEELS=DIR installs the missing packages from wheels in DIR first (pip --no-index).
# DATASET=PATH: the SecLLMHolmes checkout the extraction and evaluation rows read (default ../shared/secllmholmes
# when it exists, else the builtin examples). A shape that fails does not stop the other.
set -uo pipefail
out=${1:-bench-cuda}
py=${PYTHON:-python3}
mkdir -p "$out"
if [ -n "${WHEELS:-}" ]; then
  "$py" -m pip install -q --no-index --find-links "$WHEELS" nnsight==0.8.1 tomli-w platformdirs rich || exit 1
fi
dataset=${DATASET:-../shared/secllmholmes}
[ -d "$dataset" ] || dataset=builtin
if ! "$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device seen by torch ($("$py" -c 'import torch; print(torch.__version__)' 2>&1)): run this on a GPU box" >&2
  exit 1
fi
status=0
for shape in starcoderbase-1b starcoderbase-7b; do
  "$py" -m steertui bench --shape "$shape" --device cuda --dtype bfloat16 --dataset "$dataset" \
    --rows generate,forward,lens,extract,memory,eval --json "$out/$shape.json" --markdown "$out/$shape.md" \
    || { echo "bench of $shape failed (exit $?)" >&2; status=1; }
done
exit $status
