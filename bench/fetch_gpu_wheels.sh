#!/usr/bin/env bash
# Wheels the GPU check machine lacks (Python 3.12, no network there): PyAV (decode on the
# CPU fallback, probing, x264 encoding, muxing) and PyNvVideoCodec (NVDEC), ~59 MiB in
# all, downloaded into .whl/ here; gpu_check.sh installs them there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "av==19.0.2" "PyNvVideoCodec==2.2.4"
ls -l .whl
