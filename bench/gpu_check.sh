#!/usr/bin/env bash
# GPU machine entry point: install the wheels in .whl/ (the project's own ghost_engine
# wheel and trimmed PyAV and PyNvVideoCodec, made by bench/fetch_gpu_wheels.sh where pip
# works) beside the machine's packages, then run every GPU-only check on .gpu/clip.mp4
# into $OUT (default bench/results/gpu_check): gpu_check.json, summary.txt and
# gpu_check.log. Ends within 300 s. The check imports ghost_engine from that wheel, as
# any user of the package does, never from the checkout's folders. Arguments go to
# bench/gpu_check.py (e.g. --sections probe,generator).
set -euo pipefail
shopt -s nullglob nocaseglob
cd "$(dirname "$0")/.."
out_dir="${OUT:-bench/results/gpu_check}"
site="${GHOST_SITE:-/tmp/ghost-site}"  # where the wheels go (no network, no root needed)
missing() {
    echo "gpu_check.sh: $1; run bash bench/fetch_gpu_wheels.sh in the checkout (where pip works) and carry .whl and .gpu" >&2
    exit 1
}
for name in ghost_engine av pynvvideocodec; do
    wheels=(.whl/"$name"-*.whl)
    ((${#wheels[@]})) || missing "no $name wheel in .whl/"
done
[[ -f .gpu/clip.mp4 ]] || missing "no clip at .gpu/clip.mp4"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec timeout 285 python3 bench/gpu_check.py --out "$out_dir" --video .gpu/clip.mp4 "$@"
