"""End to end on the real clip `nggyup.mp4` (720p, AAC audio)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from test_video_fixtures import decode_all, stream_seconds

import ghost_engine
from ghost_engine.backend import host_ops
from ghost_engine.cli import main
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.interfaces import PassStage
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.label import is_labelled
from ghost_engine.video.reader import read_frames


def _video_props(path) -> tuple[int, int, int, float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for p in c.demux(s) if p.size)
        return frames, s.codec_context.width, s.codec_context.height, stream_seconds(path, "video")


@pytest.mark.slow
def test_nggyup_keeps_frames_size_duration_audio_and_is_labelled(media, tmp_path) -> None:
    src = media / "videos" / "nggyup.mp4"
    out = tmp_path / "out.mp4"
    fast = EncodeSettings(preset="ultrafast")
    report = ghost_engine.swap_video(src, [], out, stages=[], encode=fast, progress="quiet")
    n_in, w_in, h_in, dur_in = _video_props(src)
    n_out, w_out, h_out, dur_out = _video_props(out)
    assert (n_out, w_out, h_out) == (n_in, w_in, h_in) == (289, 1280, 720)
    assert abs(dur_out - dur_in) <= 1 / 30
    assert report.audio == ["copied aac"]
    # the audio duration the containers declare (what ffprobe shows), within one frame
    assert abs(_declared_audio_s(out) - _declared_audio_s(src)) <= 1 / 30
    with av.open(str(out)) as c:
        assert is_labelled(c.metadata)


def _declared_audio_s(path) -> float:
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return float(a.duration * a.time_base)


@pytest.mark.slow
def test_passthrough_changes_only_pixels_inside_face_masks(media, tmp_path, monkeypatch) -> None:
    """Lossless output: outside the pasted masks bit-identical, inside PSNR >= 30 dB."""
    supports: dict[int, np.ndarray] = {}
    original = host_ops.paste_back

    def recording_paste(frame, swap, mask, matrix):
        h, w = frame.shape[:2]
        full = cv2.warpAffine(
            np.asarray(mask, np.float32),
            np.asarray(matrix, np.float64),
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
        )
        key = id(frame)
        supports[key] = supports.get(key, np.zeros((h, w), bool)) | (full > 0)
        original(frame, swap, mask, matrix)
        frame_masks.append((key, supports[key]))

    frame_masks: list = []
    monkeypatch.setattr(host_ops, "paste_back", recording_paste)
    src = media / "videos" / "nggyup.mp4"
    config = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib")
    out = tmp_path / "out.mkv"
    stages = [build_swap_stage(config, [[media / "faces" / "mark.jpg"]])]
    seen: list[np.ndarray] = []

    class Spy(PassStage):  # records, per output frame, the union of its mask supports
        name = "spy"

        def process(self, frames):
            for f in frames:
                seen.append(supports.pop(id(f.image), np.zeros(f.image.shape[:2], bool)))
            return frames

    report = ghost_engine.swap_video(
        src,
        [],
        out,
        stages=[*stages, Spy()],
        encode=EncodeSettings(codec="ffv1"),
        end_s=0.5,
        progress="quiet",
    )
    got, _ = decode_all(out)
    # the frames as the engine decoded them (its YUV -> RGB conversion, not swscale's:
    # the two differ by about 0.8 levels on average on this clip)
    ref = [f.image for f in read_frames(src, end_s=0.5)][: len(got)]
    assert len(got) == len(seen) == 15 and report.frames_with_faces >= 12
    inside_err, inside_n = 0.0, 0
    for out_img, in_img, support in zip(got, ref, seen, strict=True):
        np.testing.assert_array_equal(out_img[~support], in_img[~support])
        diff = out_img[support].astype(np.float64) - in_img[support].astype(np.float64)
        inside_err += float((diff**2).sum())
        inside_n += diff.size
    assert inside_n > 0
    psnr = 10 * np.log10(255.0**2 / (inside_err / inside_n))
    assert psnr >= 30.0, psnr


@pytest.mark.slow
def test_cli_passthrough_writes_report(media, tmp_path, capsys) -> None:
    out, rep = tmp_path / "o.mp4", tmp_path / "r.json"
    argv = ["run", str(media / "videos" / "nggyup.mp4"), "-s", str(media / "faces" / "mark.jpg")]
    argv += ["-o", str(out), "--generator", "passthrough", "--detector", "dlib"]
    argv += ["--recognizer", "dlib", "--start", "2", "--end", "2.5", "--json", str(rep), "-q"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0, capsys.readouterr().err
    import json

    data = json.loads(rep.read_text())
    assert data["frames"] == 15 == data["frames_with_faces"] + data["frames_without_faces"]
    assert data["frames_with_faces"] >= 10
    assert set(data["stage_seconds"]) == {"decode", "face-swap", "encode"}
    assert {"detect", "paste"} <= set(data["swap_seconds"])
    assert _video_props(out)[0] == 15
