#!/usr/bin/env bash
# GPU machine entry point: install wheels from .whl/ (if present, for packages the machine
# lacks), then run every GPU-only check into $OUT (default bench/results/gpu_check).
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir="${OUT:-bench/results/gpu_check}"
if compgen -G ".whl/*.whl" > /dev/null; then
    python -m pip install --no-deps --no-index --quiet .whl/*.whl
fi
exec timeout 470 python bench/gpu_check.py --out "$out_dir" "$@"
