"""Decode/encode round trips, rotation, variable frame rate, ranges, audio and labels."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from test_video_fixtures import MarkStage, decode_all, make_video, pattern, stream_seconds

import ghost_engine
from ghost_engine.choices import CODECS
from ghost_engine.video import encode as encode_module
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.label import is_labelled, read_jpeg_description, read_png_text
from ghost_engine.video.media import MediaKind, detect_kind

LOSSLESS_MKV = EncodeSettings(codec="ffv1")
LOSSLESS_MP4 = EncodeSettings(codec="h264", crf=0, pix_fmt="rgb24")


def _swap(src, out, **kw):
    kw.setdefault("stages", [])
    kw.setdefault("progress", "quiet")
    return ghost_engine.swap_video(src, [], out, **kw)


def test_every_codec_choice_has_an_encoder_and_no_more() -> None:
    """`--codec` offers `choices.CODECS`; the encoder table covers exactly those, in order."""
    assert tuple(encode_module._CODECS) == CODECS


@pytest.mark.parametrize("encode,suffix", [(LOSSLESS_MKV, ".mkv"), (LOSSLESS_MP4, ".mp4")])
def test_lossless_round_trip_odd_size_is_exact(tmp_path, encode, suffix) -> None:
    src = make_video(tmp_path / "in.mkv", 12, 67, 45, codec="ffv1", pix_fmt="bgr0")
    out = tmp_path / f"out{suffix}"
    report = _swap(src, out, encode=encode, segment_s=0.2)
    got, times = decode_all(out)
    assert report.frames == 12 and len(got) == 12
    for i, img in enumerate(got):
        np.testing.assert_array_equal(img, pattern(i, 67, 45))
    np.testing.assert_allclose(times, [i / 25 for i in range(12)], atol=1e-6)


def test_default_h264_output_is_close_and_labelled(tmp_path) -> None:
    src = make_video(tmp_path / "in.mp4", 10, 64, 48)
    out = tmp_path / "out.mp4"
    _swap(src, out)
    got, _ = decode_all(out)
    ref, _ = decode_all(src)
    psnr = [cv2.PSNR(a, b) for a, b in zip(got, ref, strict=True)]
    assert min(psnr) > 35.0
    with av.open(str(out)) as c:
        assert is_labelled(c.metadata)
        assert c.streams.video[0].codec_context.name == "h264"


def test_rotation_metadata_is_applied(tmp_path) -> None:
    src = make_video(tmp_path / "rot.mkv", 4, 40, 24, codec="ffv1", pix_fmt="bgr0", rotation=90)
    out = tmp_path / "out.mkv"
    _swap(src, out, encode=LOSSLESS_MKV)
    got, _ = decode_all(out)
    assert got[0].shape == (40, 24, 3)
    for i, img in enumerate(got):
        np.testing.assert_array_equal(img, np.rot90(pattern(i, 40, 24), k=1))


def test_variable_frame_rate_timestamps_survive(tmp_path) -> None:
    pts = [0, 1, 3, 4, 8, 9, 10, 15, 16, 20]
    src = make_video(tmp_path / "vfr.mp4", len(pts), pts=pts, time_base=Fraction(1, 25))
    out = tmp_path / "out.mp4"
    _swap(src, out, segment_s=0.25)
    _, times = decode_all(out)
    np.testing.assert_allclose(times, [p / 25 for p in pts], atol=1e-4)


def test_time_range_selects_frames_and_restarts_clock(tmp_path) -> None:
    src = make_video(tmp_path / "in.mkv", 75, 32, 32, codec="ffv1", pix_fmt="bgr0", audio="aac")
    out = tmp_path / "out.mkv"
    report = _swap(src, out, encode=LOSSLESS_MKV, start_s=1.0, end_s=2.0)
    got, times = decode_all(out)
    assert report.frames == 25 and len(got) == 25
    np.testing.assert_array_equal(got[0], pattern(25, 32, 32))
    np.testing.assert_array_equal(got[-1], pattern(49, 32, 32))
    assert times[0] == pytest.approx(0.0, abs=1e-3)
    assert stream_seconds(out, "audio") == pytest.approx(1.0, abs=0.05)


def test_audio_is_copied_when_the_container_allows(tmp_path) -> None:
    src = make_video(tmp_path / "in.mp4", 50, audio="aac")
    out = tmp_path / "out.mp4"
    report = _swap(src, out, segment_s=0.5)
    assert report.audio == ["copied aac"]
    assert stream_seconds(out, "audio") == pytest.approx(stream_seconds(src, "audio"), abs=1e-3)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        pa = [bytes(p) for p in a.demux(audio=0) if p.size]
        pb = [bytes(p) for p in b.demux(audio=0) if p.size]
    assert pa == pb  # stream copy: the very same packets


def test_audio_is_reencoded_only_when_needed_and_subtitles_follow(tmp_path) -> None:
    src = make_video(tmp_path / "in.mkv", 25, audio="pcm_s16le", subtitles=True)
    webm = _swap(src, tmp_path / "out.webm", encode=EncodeSettings(codec="vp9"))
    assert webm.audio == ["re-encoded pcm_s16le -> libopus"]
    assert any("subtitle" in d for d in webm.dropped_streams)
    assert stream_seconds(tmp_path / "out.webm", "audio") == pytest.approx(1.0, abs=0.05)
    mkv = _swap(src, tmp_path / "out.mkv")
    assert mkv.audio == ["copied pcm_s16le"] and mkv.dropped_streams == []
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "subtitle"]
        cues = [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert cues == [b"hello"]


def test_kind_comes_from_content_not_extension(tmp_path) -> None:
    png_named_mp4 = tmp_path / "photo.mp4"
    ok, buf = cv2.imencode(".png", pattern(0, 16, 16))
    png_named_mp4.write_bytes(buf.tobytes())
    video_named_jpg = make_video(tmp_path / "clip.jpg.mkv", 2, codec="ffv1", pix_fmt="bgr0")
    renamed = video_named_jpg.rename(tmp_path / "clip.jpg")
    assert detect_kind(png_named_mp4) is MediaKind.IMAGE
    assert detect_kind(renamed) is MediaKind.VIDEO


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_image_output_is_labelled_and_swapped(tmp_path, suffix) -> None:
    target = tmp_path / "t.png"
    cv2.imwrite(str(target), cv2.cvtColor(pattern(3, 40, 30), cv2.COLOR_RGB2BGR))
    out = tmp_path / f"out{suffix}"
    report = ghost_engine.swap_image(target, [], out, stages=[MarkStage(delay=1)])
    data = out.read_bytes()
    if suffix == ".png":
        assert "Synthetic media" in read_png_text(data)["synthetic"]
        got = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
        expected = pattern(3, 40, 30)
        expected[:8, :8] = 255 - expected[:8, :8]
        np.testing.assert_array_equal(got, expected)
    else:
        assert "Synthetic media" in read_jpeg_description(data)
        assert cv2.imread(str(out)).shape == (30, 40, 3)  # still a valid JPEG
    assert report.frames == 1 and report.frames_with_faces == 1
