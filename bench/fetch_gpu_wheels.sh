#!/usr/bin/env bash
# What the GPU check takes to a GPU machine (Python 3.12, no network there), made here
# where pip works; bench/gpu_check.sh uses it there. Carry `.whl` and `.gpu` (both
# ignored by git):
# - .whl/: the project's own pure-Python wheel, built from this checkout (run this again
#   after changing the code: the check imports ghost_engine from this wheel), and the
#   PyAV and PyNvVideoCodec wheels trimmed to what their imports load
#   (bench/gpu_carry.py trim; the full downloads stay in $GHOST_WHEEL_CACHE);
# - .gpu/clip.mp4: the first 6 s of the shared nggyup.mp4, copied without re-encoding,
#   and .gpu/commit.txt, the commit the project's wheel was built from.
# Prints every size and the total that travels (at most 64 MiB). Anything missing is an
# error that names it.
set -euo pipefail
shopt -s nullglob nocaseglob
cd "$(dirname "$0")/.."
python="${PYTHON:-}"
if [[ -z $python ]]; then
    python=python3
    [[ -x .venv/bin/python ]] && python=.venv/bin/python
fi
cache="${GHOST_WHEEL_CACHE:-${TMPDIR:-/tmp}/ghost-gpu-wheels}"  # outside the checkout
mkdir -p .whl .gpu "$cache"
rm -f .whl/*.whl
# setuptools packs whatever build/lib holds, so files removed from the tree since an
# earlier build would ride along; build/__editable__* (an editable install) stays.
rm -rf build/lib build/bdist.*
"$python" -m pip wheel -q --no-deps -w .whl .
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$cache" "av==19.0.2" "PyNvVideoCodec==2.2.4"
av=("$cache"/av-19.0.2-*.whl)
nvc=("$cache"/pynvvideocodec-2.2.4-*.whl)
if ((${#av[@]} != 1 || ${#nvc[@]} != 1)); then
    echo "fetch_gpu_wheels.sh: expected one av 19.0.2 and one PyNvVideoCodec 2.2.4 wheel in $cache" >&2
    exit 1
fi
"$python" bench/gpu_carry.py trim "${av[0]}" "${nvc[0]}" --out .whl
"$python" bench/gpu_carry.py clip .gpu/clip.mp4
"$python" -c 'import sys; from pathlib import Path; from ghost_engine.measure.machine import git_commit; print(git_commit(Path(sys.argv[1])))' . >.gpu/commit.txt
"$python" bench/gpu_carry.py sizes . .whl .gpu
