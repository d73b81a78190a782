"""The GPU check's parts: what travels (the clip, trimmed wheels) and the NVDEC loader.

`bench/gpu_carry.py` cuts the clip and trims the wheels the GPU machine gets;
`ghost_engine.runtime.gpu_packages.require_nvcodec` says why PyNvVideoCodec does not load
(naming the driver library) and loads its decoder module alone where only NVENC's library
is missing. Fake packages and hand-made ELF files stand in for the real ones here.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib
import re
import shutil
import struct
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from ghost_engine.backend.cuda.context import device_context
from ghost_engine.backend.cuda.decode import open_device_source
from ghost_engine.errors import OptionalDependencyError
from ghost_engine.runtime import gpu_packages as gpu

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import gpu_carry  # noqa: E402 - a script beside the check, not a package

NVENC_ERROR = (
    "Failed to load NVENC library: libnvidia-encode.so.1: cannot open shared object file: "
    "No such file or directory\n\n=== TROUBLESHOOTING STEPS ===\n\nThe NVENC library could "
    "not be found. This usually means:\n1. **Running in Docker?**"
)  # what PyNvVideoCodec 2.2.4's import raises (RuntimeError) without libnvidia-encode


# ---------------------------------------------------------------- the clip


def test_clip_is_the_sources_first_frames_cut_at_a_keyframe(media, tmp_path):
    source = media / "videos" / "nggyup.mp4"  # a keyframe every second
    made = gpu_carry.make_clip(source, tmp_path / "clip.mp4", seconds=1.0)
    assert made["frames"] == 30 and made["seconds"] == 1.0
    with av.open(str(tmp_path / "clip.mp4")) as clip, av.open(str(source)) as src:
        assert [s.type for s in clip.streams] == ["video", "audio"]
        ours = list(clip.decode(video=0))
        theirs = [f for _, f in zip(range(31), src.decode(video=0), strict=False)]
    assert len(ours) == 30
    for a, b in zip(ours, theirs, strict=False):
        assert a.pts == b.pts
        assert np.array_equal(a.to_ndarray(format="rgb24"), b.to_ndarray(format="rgb24"))
    assert not list(tmp_path.glob(".*.tmp"))


def test_clip_without_its_source_is_one_line_naming_it(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_carry.py"), "clip", str(tmp_path / "c.mp4")]
        + ["--source", str(tmp_path / "nggyup.mp4")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "nggyup.mp4 is missing" in proc.stderr and "shared media" in proc.stderr


# ---------------------------------------------------------------- trimmed wheels


def fake_elf(soname: str | None, needed: list[str], pad: int = 0) -> bytes:
    """A 64-bit ELF with only what `elf_dynamic` reads: .dynstr, .dynamic, headers."""
    strings = b"\0"
    offsets = {}
    for name in [soname or "", *needed]:
        if name and name not in offsets:
            offsets[name] = len(strings)
            strings += name.encode() + b"\0"
    entries = [(1, offsets[n]) for n in needed] + ([(14, offsets[soname])] if soname else [])
    dynamic = b"".join(struct.pack("<qQ", t, v) for t, v in [*entries, (0, 0)])
    body_at = 64
    strtab_at = body_at
    dynamic_at = strtab_at + len(strings)
    shoff = dynamic_at + len(dynamic) + pad
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HH", header, 0x3A, 64, 3)
    sections = [
        struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, strtab_at, len(strings), 0, 0, 1, 0),
        struct.pack("<IIQQQQIIQQ", 0, 6, 0, 0, dynamic_at, len(dynamic), 1, 0, 8, 16),
    ]
    return bytes(header) + strings + dynamic + b"\0" * pad + b"".join(sections)


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def _nvcodec_like(tmp_path: Path) -> Path:
    """PyNvVideoCodec 2.2.4's layout in small: extension modules linking a bundled
    libavformat shipped three times, a runtime in a folder of its own, samples and
    benchmarks at the top level, an FFmpeg tarball in the data folder."""
    fmt = fake_elf("libfmt.so.63", ["libc.so.6"], pad=4096)
    ext = fake_elf(None, ["libfmt.so.63", "libcudart-1.so.12", "libcuda.so.1", "libc.so.6"])
    dist = "pkg-2.2.4.dist-info"
    return _wheel(
        tmp_path / "pkg-2.2.4-cp312-cp312-manylinux_2_28_x86_64.whl",
        {
            "pkg/__init__.py": b"from ._native import *\n",
            "pkg/_native.cpython-312-x86_64-linux-gnu.so": ext,
            "pkg/_native.py": b"# the Cython source of the extension\n",
            "pkg/_native.pyi": b"def f() -> None: ...\n",
            "pkg/decoders/__init__.py": b"",
            "pkg/libfmt.so": fmt,
            "pkg/libfmt.so.63": fmt,
            "pkg/libfmt.so.63.1.101": fmt,
            "pkg./libcudart-1.so.12": fake_elf("libcudart-1.so.12", ["libc.so.6"]),
            "samples/utils/__init__.py": b"",
            "samples/decode.py": b"print('sample')\n",
            "benchmarks/bench.py": b"",
            "pkg-2.2.4.data/data/ffmpeg/src/ffmpeg.tar.xz": b"\xfd7zXZ" + b"\0" * 5000,
            f"{dist}/METADATA": b"Name: pkg\nVersion: 2.2.4\n",
            f"{dist}/WHEEL": b"Wheel-Version: 1.0\nTag: cp312-cp312-manylinux_2_28_x86_64\n",
            f"{dist}/top_level.txt": b"pkg\nsamples\nbenchmarks\n",
            f"{dist}/RECORD": b"stale\n",
        },
    )


def test_elf_dynamic_reads_a_real_extension_module():
    from numpy._core import _multiarray_umath

    path = Path(_multiarray_umath.__file__)
    soname, needed = gpu_carry.elf_dynamic(path.read_bytes())
    assert soname is None and "libc.so.6" in needed  # a manylinux build links glibc
    if shutil.which("readelf"):
        listed = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True)
        assert needed == re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", listed.stdout)


def test_trim_keeps_what_the_import_loads_and_rewrites_record(tmp_path):
    src = _nvcodec_like(tmp_path)
    report = gpu_carry.trim_wheel(src, tmp_path / "out")
    out = tmp_path / "out" / src.name
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_LZMA}
        record = z.read("pkg-2.2.4.dist-info/RECORD").decode().splitlines()
        files = {n: z.read(n) for n in names}
    assert names == {
        "pkg/__init__.py",
        "pkg/_native.cpython-312-x86_64-linux-gnu.so",
        "pkg/decoders/__init__.py",
        "pkg/libfmt.so.63",  # the copy the extension asks for
        "pkg./libcudart-1.so.12",
        "pkg-2.2.4.dist-info/METADATA",
        "pkg-2.2.4.dist-info/WHEEL",
        "pkg-2.2.4.dist-info/top_level.txt",
        "pkg-2.2.4.dist-info/RECORD",
    }
    rows = {r.split(",")[0]: r.split(",")[1:] for r in record}
    assert set(rows) == names
    for name, (digest, size) in rows.items():
        if name.endswith("RECORD"):
            assert digest == size == ""
            continue
        expected = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest()).rstrip(b"=")
        assert digest == f"sha256={expected.decode()}" and int(size) == len(files[name])
    assert report.files_before == 17 and report.files_after == 9
    assert "samples/decode.py" in report.dropped and report.bytes_after < report.bytes_before
    assert "->" in report.line()


def test_trim_refuses_to_drop_a_library_a_kept_module_needs(tmp_path):
    src = _wheel(
        tmp_path / "pkg-1.0-py3-none-any.whl",
        {
            "pkg/__init__.py": b"",
            "pkg/_native.so": fake_elf(None, ["libgone.so.1", "libc.so.6"]),
            "pkg-1.0.dist-info/METADATA": b"Name: pkg\n",
        },
    )
    with pytest.raises(gpu_carry.CarryError, match=r"pkg/_native.so needs libgone.so.1"):
        gpu_carry.trim_wheel(src, tmp_path / "out")


def test_trim_without_the_wheel_says_how_to_get_it(tmp_path):
    with pytest.raises(gpu_carry.CarryError, match="fetch_gpu_wheels.sh"):
        gpu_carry.trim_wheel(tmp_path / "av-19.0.2-cp312-abi3-x.whl", tmp_path)


def test_sizes_add_the_carried_paths_to_the_tree_and_refuse_over_the_limit(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.py").write_bytes(b"x" * 1000)
    (tmp_path / ".whl").mkdir()
    (tmp_path / ".whl" / "w.whl").write_bytes(b"y" * 2**20)
    lines = gpu_carry.sizes(tmp_path, [tmp_path / ".whl"])
    assert lines[-1] == "carried in all: 1.0 MiB of 64 MiB"
    assert any(".whl/w.whl: 1.0 MiB" in line for line in lines)
    with open(tmp_path / ".whl" / "big.whl", "wb") as f:
        f.truncate(65 * 2**20)
    with pytest.raises(gpu_carry.CarryError, match="more than 64 MiB"):
        gpu_carry.sizes(tmp_path, [tmp_path / ".whl"])
    with pytest.raises(gpu_carry.CarryError, match="missing"):
        gpu_carry.sizes(tmp_path, [tmp_path / ".gpu"])


# ---------------------------------------------------------------- the NVDEC loader


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A PyNvVideoCodec whose `__init__` raises `error`, and a decoder module beside it
    (a .py file standing in for the extension module)."""

    def make(error: str, kind: str = "RuntimeError", decoder: str | None = "ok") -> Path:
        folder = tmp_path / "site" / "PyNvVideoCodec"
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text(f"raise {kind}({error!r})\n")
        if decoder == "ok":
            (folder / "PyNvVideoCodec_130.py").write_text(
                "def CreateDemuxer(filename): ...\n"
                "def CreateDecoder(**kwargs): ...\n"
                "def GetDecoderCaps(**kwargs): ...\n"
            )
        elif decoder is not None:
            (folder / "PyNvVideoCodec_130.py").write_text(f"raise ImportError({decoder!r})\n")
        monkeypatch.syspath_prepend(str(folder.parent))
        monkeypatch.delitem(sys.modules, "PyNvVideoCodec", raising=False)
        importlib.invalidate_caches()
        monkeypatch.setattr(gpu, "EXTENSION_SUFFIXES", [".py"])
        return folder

    return make


def _nvdec_library(monkeypatch, present: bool) -> None:
    real = gpu.driver_library_error

    def fake(name: str) -> str | None:
        if name == gpu.NVDEC_LIBRARY:
            return None if present else f"{name}: cannot open shared object file"
        return real(name)

    monkeypatch.setattr(gpu, "driver_library_error", fake)


def test_without_nvenc_the_decoder_module_is_loaded_alone(fake_package, monkeypatch):
    fake_package(NVENC_ERROR)
    _nvdec_library(monkeypatch, present=True)
    module = gpu.require_nvcodec()
    assert hasattr(module, "CreateDecoder") and module.__version__ == "?"
    note = gpu.nvcodec_load_note(module)
    assert "decoder module PyNvVideoCodec_130.py alone" in note
    assert "libnvidia-encode.so.1" in note and "NVENC is unavailable" in note
    assert gpu.require_nvcodec() is module  # loaded once


def test_without_nvenc_or_nvdec_both_libraries_are_named(fake_package, monkeypatch):
    fake_package(NVENC_ERROR)
    _nvdec_library(monkeypatch, present=False)
    with pytest.raises(OptionalDependencyError) as info:
        gpu.require_nvcodec()
    message = str(info.value)
    assert "libnvcuvid.so.1 (NVDEC's driver library), which is missing" in message
    assert "libnvidia-encode.so.1 (NVENC's driver library)" in message
    assert "TROUBLESHOOTING" not in message and "\n" not in message


def test_a_decoder_module_that_does_not_load_is_named_with_its_error(fake_package, monkeypatch):
    fake_package(NVENC_ERROR, decoder="libcuda.so.1: cannot open shared object file")
    _nvdec_library(monkeypatch, present=True)
    with pytest.raises(OptionalDependencyError, match=r"PyNvVideoCodec_130.py: libcuda.so.1"):
        gpu.require_nvcodec()


@pytest.mark.parametrize(
    ("kind", "error", "expected"),
    [
        (
            "ImportError",
            "libcuda.so.1: cannot open shared object file: No such file or directory",
            "needs the NVIDIA driver's libcuda.so.1 (the CUDA driver)",
        ),
        (
            "RuntimeError",
            "Could not dynamically load libnvcuvid.so.1. Please ensure Nvidia Graphics...",
            "needs the NVIDIA driver's libnvcuvid.so.1 (NVDEC's driver library)",
        ),
        ("RuntimeError", "Driver version is too old", "(RuntimeError: Driver version is too old)"),
    ],
)
def test_import_failures_name_the_cause_not_a_missing_package(fake_package, kind, error, expected):
    fake_package(error, kind=kind, decoder=None)
    with pytest.raises(OptionalDependencyError) as info:
        gpu.require_nvcodec()
    assert expected in str(info.value)
    assert "not installed" not in str(info.value)


def test_an_old_pynvvideocodec_is_refused_naming_the_floor(tmp_path, monkeypatch):
    folder = tmp_path / "PyNvVideoCodec"
    folder.mkdir()
    (folder / "__init__.py").write_text("__version__ = '1.0.2'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "PyNvVideoCodec", raising=False)
    with pytest.raises(OptionalDependencyError, match=r"PyNvVideoCodec>=2.2.*1\.0\.2 is installed"):
        gpu.require_nvcodec()


def test_the_cuda_backends_decode_reason_names_the_missing_library(
    media, fake_package, monkeypatch
):
    fake_package(NVENC_ERROR)
    _nvdec_library(monkeypatch, present=False)
    gpu_like = dataclasses.replace(device_context("emulated"), flavour="cuda")  # NVDEC's turn
    clip = media / "videos" / "nggyup.mp4"
    with open_device_source(clip, gpu_like, 2, end_s=0.1) as source:
        assert source.backend == "upload"
        assert "libnvidia-encode.so.1" in source.reason and "libnvcuvid.so.1" in source.reason


def test_the_messages_name_the_cuda_extras_requirements():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["cuda"]
    assert set(extra) == {
        gpu.CUPY_REQUIREMENT,
        gpu.NUMBA_CUDA_REQUIREMENT,
        gpu.NVCODEC_REQUIREMENT,
    }
    assert gpu.CUPY_REQUIREMENT.startswith("cupy-cuda13x")
    assert gpu.NVCODEC_REQUIREMENT == "PyNvVideoCodec>=2.2"


def test_missing_library_reads_the_first_line_only():
    assert gpu.missing_library(NVENC_ERROR) == "libnvidia-encode.so.1"
    assert gpu.missing_library("Driver version is too old\nsee libfoo.so.1") is None
