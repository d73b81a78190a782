"""Device frame sources on the CPU: the upload path against `read_frames`, the pool's
bound on memory, the choice between NVDEC and the upload with its reasons, and the NV12
plane packing. The NVDEC decode itself needs a GPU and is not run here.

Tolerance: none; the upload path must give `read_frames`'s frames bit for bit.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
import types
from fractions import Fraction

import numpy as np
import pytest
from test_video_fixtures import make_video

from ghost_engine.backend.cuda.context import device_context
from ghost_engine.backend.cuda.decode import (
    NvdecUnavailable,
    nv12_from_planes,
    nvdec_format,
    open_device_source,
)
from ghost_engine.kernels.colour import YuvFormat
from ghost_engine.video.reader import probe_video, read_frames


@pytest.fixture
def clip(media):
    return media / "videos" / "nggyup.mp4"  # 1280x720, 30 fps, time base 1/30000


@pytest.fixture
def emulated():
    return device_context("emulated")


@pytest.fixture
def fake_gpu(emulated):
    """A context that says it is on a GPU (numpy arrays): enough to reach the NVDEC choice."""
    return dataclasses.replace(emulated, flavour="cuda")


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the source"
        time.sleep(0.01)


def test_emulated_context_uploads_and_says_why(clip, emulated):
    with open_device_source(clip, emulated, 3, end_s=0.1) as source:
        assert source.backend == "upload"
        assert "'emulated'" in source.reason and "GPU" in source.reason
        assert source.pool.count == 3


@pytest.mark.parametrize(
    ("start_s", "end_s", "first_index", "indices", "pts"),
    [
        (None, 0.2, 0, range(0, 6), range(0, 6000, 1000)),
        (0.5, 0.7, 10, range(10, 16), range(15000, 21000, 1000)),
    ],
)
def test_upload_frames_equal_read_frames(clip, emulated, start_s, end_s, first_index, indices, pts):
    expected = list(read_frames(clip, start_s=start_s, end_s=end_s, first_index=first_index))
    got, buffers = [], set()
    source = open_device_source(
        clip, emulated, 2, start_s=start_s, end_s=end_s, first_index=first_index
    )
    with source:
        for frame in source:
            got.append((frame.index, frame.pts, frame.time_base, frame.image.copy()))
            buffers.add(id(frame.image))
            frame.release()
    assert [g[0] for g in got] == [f.index for f in expected] == list(indices)
    assert [g[1] for g in got] == [f.pts for f in expected] == list(pts)
    assert {g[2] for g in got} == {Fraction(1, 30000)}
    for (_, _, _, image), ref in zip(got, expected, strict=True):
        assert image.shape == (720, 1280, 3)
        np.testing.assert_array_equal(image, ref.image)
    assert len(buffers) <= 2  # six frames, all in the pool's two buffers
    assert source.pool.in_use == 0


def test_pool_bounds_the_source_and_stop_ends_it(clip, emulated):
    stop = threading.Event()
    source = open_device_source(clip, emulated, 2, end_s=1.0, stop=stop)
    frames, errors = [], []

    def consume() -> None:
        try:
            for frame in source:
                frames.append(frame)  # held, never released by this consumer
        except InterruptedError as exc:
            errors.append(exc)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    _wait_for(lambda: len(frames) == 2)
    time.sleep(0.3)
    assert len(frames) == 2 and reader.is_alive()  # blocked on the pool, not decoding on
    assert source.pool.in_use == 2

    frames[0].release()
    _wait_for(lambda: len(frames) == 3)
    assert frames[2].image is frames[0].image  # the released buffer, reused
    assert frames[2].index == 2

    stop.set()
    reader.join(timeout=5.0)
    assert not reader.is_alive()
    assert len(errors) == 1 and "stopped" in str(errors[0])
    assert len(frames) == 3
    source.close()
    source.close()  # idempotent


def test_a_set_stop_ends_the_source_before_the_first_frame(clip, emulated):
    stop = threading.Event()
    stop.set()
    with open_device_source(clip, emulated, 2, end_s=0.2, stop=stop) as source:
        with pytest.raises(InterruptedError):
            next(iter(source))
        assert source.pool.in_use == 0


def test_nvdec_not_asked_for(clip, fake_gpu):
    with open_device_source(clip, fake_gpu, 2, prefer_nvdec=False) as source:
        assert source.backend == "upload"
        assert "prefer_nvdec=False" in source.reason


def test_without_pynvvideocodec_the_reason_names_it(clip, fake_gpu, monkeypatch):
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", None)  # import raises ImportError
    with open_device_source(clip, fake_gpu, 2) as source:
        assert source.backend == "upload"
        assert "PyNvVideoCodec" in source.reason


def test_rotated_video_falls_back(tmp_path, fake_gpu):
    src = make_video(tmp_path / "rot.mp4", 3, 64, 48, rotation=90)
    rotation = probe_video(src).rotation
    assert rotation in (90, 270)
    with open_device_source(src, fake_gpu, 2) as source:
        assert source.backend == "upload"
        assert f"rotated by {rotation} degrees" in source.reason
        buffer = source.pool.acquire()
        assert buffer.shape == (64, 48, 3)  # upright: 48 wide, 64 high
        source.pool.release(buffer)


def _fake_nvcodec(*, supported: bool = True, time_base=(1, 30000), create_error=None, decoder=None):
    """PyNvVideoCodec as far as opening goes: it cannot load here (no NVIDIA driver)."""
    demuxer = types.SimpleNamespace(
        GetTimebaseNum=lambda: time_base[0],
        GetTimebaseDen=lambda: time_base[1],
        GetNvCodecId=lambda: "cudaVideoCodec.H264",
        ChromaFormat=lambda: "cudaVideoChromaFormat.420",
        BitDepth=lambda: 8,
    )

    def create_decoder(**kwargs):
        if create_error is not None:
            raise create_error
        return decoder

    return types.SimpleNamespace(
        __version__="2.2.4",
        CreateDemuxer=lambda filename: demuxer,
        GetDecoderCaps=lambda **kwargs: {
            "supported": int(supported),
            "width_max": 8192,
            "height_max": 8192,
        },
        CreateDecoder=create_decoder,
    )


@pytest.mark.parametrize(
    ("fake", "reason"),
    [
        (
            _fake_nvcodec(create_error=RuntimeError("cuvidCreateDecoder: CUDA_ERROR_NO_DEVICE")),
            "NVDEC could not open this h264 stream (RuntimeError: cuvidCreateDecoder: "
            "CUDA_ERROR_NO_DEVICE)",
        ),
        (
            _fake_nvcodec(supported=False),
            "this GPU's NVDEC does not decode h264 (cudaVideoCodec.H264)",
        ),
        (
            _fake_nvcodec(time_base=(1, 1000)),
            "PyNvVideoCodec reads the time base as 1/1000, PyAV as 1/30000",
        ),
    ],
)
def test_nvdec_failures_fall_back_with_the_error(clip, fake_gpu, monkeypatch, fake, reason):
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", fake)
    with open_device_source(clip, fake_gpu, 2, end_s=0.1) as source:
        assert source.backend == "upload"
        assert reason in source.reason


def test_nvdec_opened_through_the_decoder_module_alone_says_so(clip, fake_gpu, monkeypatch):
    # where NVENC's library is missing, PyNvVideoCodec's decoder module is loaded alone
    # (tests/test_gpu_check_parts.py); the source then says so in its reason, which the
    # run's report carries (settings.cuda_backend)
    from ghost_engine.runtime import gpu_packages

    fake = _fake_nvcodec(decoder=object())
    note = "NVDEC through PyNvVideoCodec's decoder module PyNvVideoCodec_130.so alone"
    monkeypatch.setattr(gpu_packages, "require_nvcodec", lambda: fake)
    monkeypatch.setattr(gpu_packages, "nvcodec_load_note", lambda m: note if m is fake else "")
    with open_device_source(clip, fake_gpu, 2) as source:
        assert source.backend == "nvdec"
        assert source.reason == note
    monkeypatch.setattr(gpu_packages, "nvcodec_load_note", lambda m: "")  # the whole package
    with open_device_source(clip, fake_gpu, 2) as source:
        assert source.backend == "nvdec" and source.reason == ""


def test_nvdec_is_refused_for_streams_the_kernel_does_not_convert(tmp_path, fake_gpu, monkeypatch):
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", _fake_nvcodec())
    src = make_video(tmp_path / "444.mp4", 2, 64, 48, pix_fmt="yuv444p")
    with open_device_source(src, fake_gpu, 2) as source:
        assert source.backend == "upload"
        assert "not yuv444p" in source.reason
    with pytest.raises(NvdecUnavailable, match="yuv444p"):
        nvdec_format(src)


def test_nvdec_reads_h264_as_the_cpu_path_does(clip):
    # nggyup's H.264 says nothing of its colours: BT.601, limited range, and H.264's
    # default left-sited chroma (tests/test_colour_conversion.py checks the frames)
    assert nvdec_format(clip) == YuvFormat(matrix="bt601", full_range=False, siting="left")


def _cai(ptr: int, shape: tuple, pitch: int) -> dict:
    strides = (pitch, 1, 1) if shape[2] == 1 else (pitch, 2, 1)
    return {"shape": shape, "strides": strides, "data": (ptr, False), "typestr": "|u1"}


def test_pitched_nv12_planes_are_packed_into_the_scratch_frame():
    h, w, pitch = 6, 8, 16
    nv12 = np.random.default_rng(5).integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)
    memory = np.zeros(pitch * (h + 2 + h // 2), np.uint8)  # chroma plane after a 2-row gap
    chroma_ptr = pitch * (h + 2)
    for row in range(h):
        memory[row * pitch : row * pitch + w] = nv12[row]
    for row in range(h // 2):
        start = chroma_ptr + row * pitch
        memory[start : start + w] = nv12[h + row]

    def view(ptr, shape, row_pitch):
        return np.lib.stride_tricks.as_strided(memory[ptr:], shape, (row_pitch, 1))

    planes = [_cai(0, (h, w, 1), pitch), _cai(chroma_ptr, (h // 2, w // 2, 2), pitch)]
    scratch = np.zeros_like(nv12)
    got = nv12_from_planes(planes, view, scratch)
    assert got is scratch
    np.testing.assert_array_equal(got, nv12)


def test_contiguous_nv12_planes_are_one_view_without_a_copy():
    h, w = 6, 8
    memory = np.random.default_rng(6).integers(0, 256, h * 3 // 2 * w, dtype=np.uint8)

    def view(ptr, shape, row_pitch):
        return np.lib.stride_tricks.as_strided(memory[ptr:], shape, (row_pitch, 1))

    planes = [_cai(0, (h, w, 1), w), _cai(h * w, (h // 2, w // 2, 2), w)]
    scratch = np.zeros((h * 3 // 2, w), np.uint8)
    got = nv12_from_planes(planes, view, scratch)
    assert got is not scratch and np.shares_memory(got, memory)
    np.testing.assert_array_equal(got, memory.reshape(h * 3 // 2, w))
    assert not scratch.any()
