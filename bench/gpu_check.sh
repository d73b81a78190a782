#!/usr/bin/env bash
# Device entry point: install carried wheels (if a .whl/ folder is present), then run every
# GPU-only check into $OUT (default bench/results/gpu_check). Extra arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir="${OUT:-bench/results/gpu_check}"
if compgen -G ".whl/*.whl" > /dev/null; then
    python -m pip install --no-deps --no-index --quiet .whl/*.whl
fi
exec timeout 470 python bench/gpu_check.py --out "$out_dir" "$@"
