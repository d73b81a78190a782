"""`ghost-engine webcam`: a file as the camera into a file with a JSON report, and the
errors users get for outputs and options that cannot work here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import cv2
import pytest
from test_video_fixtures import make_video

from ghost_engine.cli import main
from ghost_engine.commands.webcam import parse_resolution
from ghost_engine.errors import UserInputError
from ghost_engine.webcam.controls import LiveControls
from ghost_engine.webcam.live_stage import build_live_stage
from ghost_engine.webcam.sinks import StreamSink, open_output, stream_format


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["webcam", *argv])
    return int(info.value.code), capsys.readouterr().err.strip()


@pytest.fixture()
def clip(tmp_path) -> Path:
    return make_video(tmp_path / "clip.mp4", 6, 64, 48)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1280x720", (1280, 720)),
        (" 640X480 ", (640, 480)),
        (None, None),
        ("1280", UserInputError),
        ("12x", UserInputError),
        ("641x480", UserInputError),
    ],
)
def test_parse_resolution(text, expected):
    if expected is UserInputError:
        with pytest.raises(UserInputError):
            parse_resolution(text)
    else:
        assert parse_resolution(text) == expected


def test_stream_outputs_are_recognised_without_connecting():
    """rtsp:// and friends go to FFmpeg's muxers; connecting needs a server, so only the
    argument handling can be checked here."""
    sink = open_output("rtsp://127.0.0.1:8554/live", fps=30.0, controls=LiveControls(1))
    assert isinstance(sink, StreamSink) and sink.format == "rtsp"
    assert stream_format("rtmp://host/app") == "flv"
    assert stream_format("udp://239.0.0.1:1234") == "mpegts"
    with pytest.raises(UserInputError, match="rtsp://"):
        stream_format("ftp://host/file")


def test_window_smoothing_is_refused_before_models_load(tmp_path):
    from ghost_engine.face.swap_config import SwapConfig

    config = SwapConfig(generator="passthrough", detector="dlib", smoothing="window")
    with pytest.raises(UserInputError, match="ema or none"):
        build_live_stage(config, [[tmp_path / "never-read.jpg"]])


@pytest.mark.parametrize(
    ("case", "code", "fragment"),
    [
        ("window", 6, "pip install opencv-python"),
        ("virtual-camera", 6, "pip install pyvirtualcam"),
        ("bad resolution", 2, "use WIDTHxHEIGHT"),
        ("missing camera", 2, "camera file not found"),
        ("window smoothing", 2, "'window' is not one of"),
        ("output folder missing", 3, "output folder does not exist"),
        ("bad stream scheme", 2, "cannot stream to ftp://"),
    ],
)
def test_cli_errors(case, code, fragment, clip, tmp_path, capsys, monkeypatch):
    if case == "window" and "GUI:                           NONE" not in cv2.getBuildInformation():
        # an OpenCV build with a GUI: fail the window as the headless build does

        def no_gui(*args):
            raise cv2.error("The function is not implemented. Rebuild the library with GUI")

        monkeypatch.setattr(cv2, "namedWindow", no_gui)
    if case == "virtual-camera":
        monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # not installed, anywhere
    argv = ["-s", "face.jpg", "--camera", str(clip), "--output"]
    argv += {
        "window": ["window"],
        "virtual-camera": ["virtual-camera"],
        "bad resolution": ["none", "--resolution", "12x"],
        "missing camera": ["none", "--camera", str(tmp_path / "nope.mp4")],
        "window smoothing": ["none", "--smoothing", "window"],
        "output folder missing": [str(tmp_path / "no" / "out.mp4")],
        "bad stream scheme": ["ftp://host/x"],
    }[case]
    before = set(p.name for p in tmp_path.iterdir())
    got_code, err = _run(argv, capsys)
    assert got_code == code, err
    assert fragment in err
    assert set(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.slow
def test_cli_file_camera_to_file_with_report(media, tmp_path, capsys):
    out, report = tmp_path / "live.mp4", tmp_path / "live.json"
    faces = media / "faces"
    argv = [
        *("-s", str(faces / "elon_musk.jpg"), "-s", str(faces / "mark.jpg")),
        *("--camera", str(media / "videos" / "dance.mp4"), "--output", str(out)),
        *("--generator", "passthrough", "--detector", "dlib", "--recognizer", "dlib"),
        *("--all-faces", "--duration", "1.5", "--control-port", "0"),
        *("--report", str(report), "--report-frames"),
    ]
    code, err = _run(argv, capsys)
    assert code == 0, err
    assert "live controls: http://127.0.0.1:" in err
    data = json.loads(report.read_text())
    frames = data["frames"]
    assert frames["delivered"] == len(data["per_frame"]) >= 2
    assert frames["captured"] == frames["delivered"] + frames["dropped"]
    assert data["latency_ms"]["p99"] >= data["latency_ms"]["p50"] > 0
    # the file holds the delivered frames, stamped with their capture times (ms)
    with av.open(str(out)) as container:
        pts = [round(float(vf.time) * 1000) for vf in container.decode(video=0)]
    first = data["per_frame"][0]["captured"]
    want = [round((r["captured"] - first) * 1000) for r in data["per_frame"]]
    assert pts == want
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files
