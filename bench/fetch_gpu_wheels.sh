#!/usr/bin/env bash
# Wheels for the GPU check machine (Python 3.12, no network there), into .whl/ here;
# gpu_check.sh installs them there:
# - the project's own pure-Python wheel, built from this checkout (run this again after
#   changing the code: the GPU check imports ghost_engine from this wheel);
# - PyAV (decode on the CPU fallback, probing, x264 encoding, muxing) and PyNvVideoCodec
#   (NVDEC), ~59 MiB in all, downloaded (pip keeps files it already has).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
rm -f .whl/ghost_engine-*.whl
# setuptools packs whatever build/lib holds, so files removed from the tree since an
# earlier build would ride along; build/__editable__* (an editable install) stays.
rm -rf build/lib build/bdist.*
python3 -m pip wheel -q --no-deps -w .whl .
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "av==19.0.2" "PyNvVideoCodec==2.2.4"
ls -l .whl
