"""Bad input gets one line, the documented exit code, and nothing at the output path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
from test_video_fixtures import make_video, pattern, write_audio_only

from ghost_engine.cli import main


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["run", *argv])
    err = capsys.readouterr().err.strip()
    return int(info.value.code), err


def _assert_clean(folder: Path, before: set[str]) -> None:
    """No output, no temporary file, no work folder left behind."""
    assert set(os.listdir(folder)) == before


@pytest.fixture()
def clip(tmp_path) -> Path:
    return make_video(tmp_path / "clip.mp4", 6, 64, 48)


@pytest.fixture()
def blank_png(tmp_path) -> Path:
    path = tmp_path / "blank.png"
    cv2.imwrite(str(path), pattern(0, 80, 80))
    return path


def _case(tmp_path: Path, name: str) -> tuple[list[str], int, str]:
    """argv, exit code, message fragment for each bad input (built inside tmp_path)."""
    out = str(tmp_path / "out.mp4")
    clip = str(tmp_path / "clip.mp4")
    if name == "missing target":
        return ["nope.mp4", "-s", "x.jpg", "-o", out], 2, "target file not found: nope.mp4"
    if name == "target is a folder":
        return [str(tmp_path), "-s", "x.jpg", "-o", out], 2, "target is not a regular file"
    if name == "not media":
        (tmp_path / "notes.mp4").write_text("just text, not a video\n")
        return [str(tmp_path / "notes.mp4"), "-s", "x", "-o", out], 2, "not an image or video"
    if name == "empty file":
        (tmp_path / "empty.mp4").write_bytes(b"")
        return [str(tmp_path / "empty.mp4"), "-s", "x", "-o", out], 2, "target file is empty"
    if name == "no video stream":
        audio_only = tmp_path / "sound.mka"
        write_audio_only(audio_only)
        return [str(audio_only), "-s", "x", "-o", out], 2, "has no video stream"
    if name == "zero frames":
        make_video(tmp_path / "zero.avi", 0)
        return [str(tmp_path / "zero.avi"), "-s", "x", "-o", out], 2, "no decodable frames"
    if name == "output folder is a file":
        (tmp_path / "afile").write_text("x")
        bad = str(tmp_path / "afile" / "out.mp4")
        return [clip, "-s", "x", "-o", bad], 3, "output folder is not a directory"
    if name == "output folder missing":
        bad = str(tmp_path / "missing" / "out.mp4")
        return [clip, "-s", "x", "-o", bad], 3, "output folder does not exist"
    if name == "unknown container":
        return [clip, "-s", "x", "-o", str(tmp_path / "out.xyz")], 3, "cannot tell the video"
    if name == "codec not storable":
        argv = [clip, "-s", "x", "-o", out, "--codec", "prores"]
        return argv, 3, "--codec prores cannot be stored in a .mp4 file"
    if name == "crf without crf mode":
        argv = [clip, "-s", "x", "-o", str(tmp_path / "o.mkv"), "--codec", "ffv1", "--crf", "3"]
        return argv, 2, "--crf does not apply to --codec ffv1"
    if name == "bad time":
        return [clip, "-s", "x", "-o", out, "--start", "abc"], 2, "cannot read time 'abc'"
    if name == "empty range":
        argv = [clip, "-s", "x", "-o", out, "--start", "2", "--end", "1"]
        return argv, 2, "--end (1.0) must be after --start (2.0)"
    if name == "start past the end":
        return [clip, "-s", "x", "-o", out, "--start", "50"], 2, "is past the end"
    if name == "image target, video output":
        img = tmp_path / "photo.png"
        cv2.imwrite(str(img), pattern(0, 16, 16))
        return [str(img), "-s", "x", "-o", out], 3, "needs a .png or .jpg output"
    raise KeyError(name)


CASES = [
    "missing target",
    "target is a folder",
    "not media",
    "empty file",
    "no video stream",
    "zero frames",
    "output folder is a file",
    "output folder missing",
    "unknown container",
    "codec not storable",
    "crf without crf mode",
    "bad time",
    "empty range",
    "start past the end",
    "image target, video output",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_one_line_with_exit_code(tmp_path, capsys, clip, name) -> None:
    argv, code, fragment = _case(tmp_path, name)
    before = set(os.listdir(tmp_path))
    os.chdir(tmp_path)
    rc, err = _run(argv, capsys)
    assert rc == code, err
    assert err.startswith("error: ") and fragment in err, err
    assert "\n" not in err and "Traceback" not in err
    _assert_clean(tmp_path, before)


# -- checks that need the face stages (source photos, models, devices) ---------------


@pytest.mark.slow
def test_source_photo_without_face_is_named(tmp_path, capsys, clip, blank_png) -> None:
    before = set(os.listdir(tmp_path))
    argv = [str(clip), "-s", str(blank_png), "-o", str(tmp_path / "out.mp4")]
    rc, err = _run([*argv, "--generator", "passthrough", "--detector", "dlib"], capsys)
    assert rc == 2 and "blank.png" in err and "face" in err.lower(), err
    _assert_clean(tmp_path, before)


def test_missing_source_photo_is_named(tmp_path, capsys, clip) -> None:
    before = set(os.listdir(tmp_path))
    rc, err = _run([str(clip), "-s", "gone.jpg", "-o", str(tmp_path / "o.mp4")], capsys)
    assert rc == 2 and "source photo file not found: gone.jpg" in err, err
    _assert_clean(tmp_path, before)


def test_missing_models_say_which_and_how(tmp_path, capsys, clip, media) -> None:
    before = set(os.listdir(tmp_path))
    face = media / "faces" / "mark.jpg"
    models = tmp_path / "models"
    models.mkdir()
    before.add("models")
    argv = [str(clip), "-s", str(face), "-o", str(tmp_path / "o.mp4"), "--models-dir", str(models)]
    rc, err = _run(argv, capsys)
    assert rc == 5, err
    assert "missing model files" in err and "ghost-engine models download" in err, err
    assert "arcface_iresnet100" in err or "G_unet_2blocks" in err, err
    _assert_clean(tmp_path, before)


def test_cuda_without_a_device_is_refused(tmp_path, capsys, clip, media, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no GPU, on any machine
    before = set(os.listdir(tmp_path))
    face = media / "faces" / "mark.jpg"
    argv = [str(clip), "-s", str(face), "-o", str(tmp_path / "o.mp4"), "--device", "cuda"]
    rc, err = _run(argv, capsys)
    assert rc == 2 and "--device cuda" in err and "no CUDA device" in err, err
    _assert_clean(tmp_path, before)


def test_people_and_reference_counts_must_match(tmp_path, capsys, clip, blank_png) -> None:
    argv = [str(clip), "-s", str(blank_png), "-s", str(blank_png), "-o", str(tmp_path / "o.mp4")]
    rc, err = _run(argv, capsys)
    assert rc == 2 and "one -t/--target-face photo per" in err, err


_FSIZE_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))
from ghost_engine.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path, media) -> None:
    """A file-size limit makes every write past 150 kB fail as a full disk would."""
    clip = make_video(tmp_path / "big.mkv", 40, 320, 240, codec="ffv1", pix_fmt="bgr0")
    before = set(os.listdir(tmp_path))
    out = tmp_path / "out.mkv"
    argv = ["run", str(clip), "-s", str(media / "faces" / "mark.jpg"), "-o", str(out)]
    argv += ["--generator", "passthrough", "--detector", "dlib", "--codec", "ffv1", "-q"]
    proc = subprocess.run(
        [sys.executable, "-c", _FSIZE_LIMIT, *argv], capture_output=True, text=True, timeout=120
    )
    err = proc.stderr.strip()
    assert proc.returncode == 3, err
    assert err.startswith("error: no space left while writing") and "\n" not in err, err
    _assert_clean(tmp_path, before)


def test_a_tensorrt_engine_needs_the_cuda_backend(tmp_path, capsys, clip, media) -> None:
    engine = tmp_path / "G.engine"
    engine.write_bytes(b"not needed: refused before loading")
    before = set(os.listdir(tmp_path))
    face = media / "faces" / "mark.jpg"
    argv = [str(clip), "-s", str(face), "-o", str(tmp_path / "o.mp4")]
    rc, err = _run([*argv, "--generator-engine", str(engine)], capsys)
    assert rc == 2 and "--device cuda" in err and "TensorRT" in err, err
    _assert_clean(tmp_path, before)
