#!/usr/bin/env bash
# GPU machine entry point: install the wheels in .whl/ (bench/fetch_gpu_wheels.sh makes
# them: the project's own ghost_engine wheel, PyAV and PyNvVideoCodec) beside the
# machine's packages, then run every GPU-only check into $OUT (default
# bench/results/gpu_check). Ends within 8 minutes. The check imports ghost_engine from
# that wheel, as any user of the package does, never from the checkout's folders.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
out_dir="${OUT:-bench/results/gpu_check}"
site="${GHOST_SITE:-/tmp/ghost-site}"  # where the wheels go (no network, no root needed)
project=(.whl/ghost_engine-*.whl)
if ((${#project[@]} == 0)); then
    echo "gpu_check.sh: no ghost_engine wheel in .whl/; run bench/fetch_gpu_wheels.sh in the checkout (where pip works) first" >&2
    exit 1
fi
others=()
for wheel in .whl/*.whl; do
    [[ $wheel == .whl/ghost_engine-* ]] || others+=("$wheel")
done
pip_install=(python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir
    --upgrade --target "$site")
if ((${#others[@]})); then
    "${pip_install[@]}" "${others[@]}"
fi
"${pip_install[@]}" --find-links .whl ghost-engine
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec timeout 470 python3 bench/gpu_check.py --out "$out_dir" "$@"
