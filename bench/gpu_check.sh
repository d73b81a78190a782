#!/usr/bin/env bash
# GPU machine entry point: install the wheels in .whl/ (bench/fetch_gpu_wheels.sh makes
# them: PyAV and PyNvVideoCodec) beside the machine's packages, then run every GPU-only
# check into $OUT (default bench/results/gpu_check). Ends within 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir="${OUT:-bench/results/gpu_check}"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/ghost-site .whl/*.whl
    export PYTHONPATH="/tmp/ghost-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
exec timeout 470 python3 bench/gpu_check.py --out "$out_dir" "$@"
