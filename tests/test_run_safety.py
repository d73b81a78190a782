"""Nothing lost, nothing corrupt, no traceback: one test per way a run could hurt a user.

Each test runs the CLI (in this process, or as a child where a signal, a terminal or a
second process is needed) and checks the exit code, the one-line message, that every
input is byte for byte what it was (SHA-256), and that nothing is left at or beside the
output path.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from safety_checks import (
    FAST,
    assert_refused,
    decoded_frames,
    digests,
    listing,
    refusal_lines,
    run_cli,
)
from slow_runs import TESTS, segments_done, slow_cli_child, wait_until
from test_video_fixtures import MarkStage, make_video, pattern

import ghost_engine
from ghost_engine.errors import OutputExistsError, UserInputError, one_line
from ghost_engine.pipeline.report import RunReport
from ghost_engine.pipeline.video_job import VideoJob, run_video
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.journal import JOURNAL_NAME
from ghost_engine.video.lock import OutputLock, lock_path_for
from ghost_engine.video.output import NAME_MAX, temp_path_for
from ghost_engine.video.pixels import image_size
from ghost_engine.video.workdir import MARKER_NAME, work_dir_for


@pytest.fixture()
def scene(tmp_path, media) -> Path:
    """A work folder with a small clip, a photo with a face and a picture without one."""
    make_video(tmp_path / "clip.mp4", 6, 64, 48)
    (tmp_path / "face.jpg").write_bytes((media / "faces" / "mark.jpg").read_bytes())
    cv2.imwrite(str(tmp_path / "picture.png"), pattern(1, 40, 30))
    os.chdir(tmp_path)
    return tmp_path


def _refused_cleanly(scene: Path, argv: list[str], capsys, code: int, fragment: str) -> str:
    """Run; the refusal is one line with `fragment`, inputs and folder are unchanged."""
    before, names = digests(scene), listing(scene)
    got, err = run_cli(argv, capsys)
    assert_refused(got, err, code, fragment)
    assert digests(scene) == before
    assert listing(scene) == names
    return err


# -- data loss: no output may be an input ------------------------------------------------


@pytest.mark.parametrize("victim", ["clip.mp4", "face.jpg", "out.mp4"])
def test_json_may_be_neither_an_input_nor_the_output(scene, capsys, victim) -> None:
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-o", "out.mp4", "--json", victim, *FAST]
    words = {"clip.mp4": "is the target", "face.jpg": "is the source photo"}
    fragment = words.get(victim, "is also given as -o/--output")
    _refused_cleanly(scene, argv, capsys, 3, f"--json {victim} {fragment}")


def test_image_output_may_not_be_the_source_photo(scene, capsys) -> None:
    argv = ["run", "picture.png", "-s", "face.jpg", "-o", "face.jpg", "-y", *FAST]
    _refused_cleanly(scene, argv, capsys, 3, "-o/--output face.jpg is the source photo")


@pytest.mark.parametrize("flag", ["--output", "--report"])
def test_webcam_files_may_not_be_the_camera_file(scene, capsys, flag) -> None:
    argv = ["webcam", "-s", "face.jpg", "--camera", "clip.mp4", *FAST]
    argv += ["--output", "clip.mp4"] if flag == "--output" else ["--output", "none"]
    argv += ["--report", "clip.mp4"] if flag == "--report" else []
    _refused_cleanly(scene, argv, capsys, 3, f"{flag} clip.mp4 is the camera file")


@pytest.mark.parametrize("alias", ["symlink", "hard link", "dot-dot"])
def test_an_alias_of_the_target_is_refused(scene, capsys, alias) -> None:
    if alias == "symlink":
        os.symlink("clip.mp4", "alias.mp4")
        out = "alias.mp4"
    elif alias == "hard link":
        os.link("clip.mp4", "alias.mp4")
        out = "alias.mp4"
    else:
        out = f"../{scene.name}/clip.mp4"
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-o", out, "-y", *FAST]
    _refused_cleanly(scene, argv, capsys, 3, "is the target clip.mp4")


def test_a_user_folder_named_like_the_work_folder_is_left_alone(scene, capsys) -> None:
    mine = work_dir_for(scene / "o.mp4")
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work\n")
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-o", "o.mp4", *FAST]
    err = _refused_cleanly(scene, argv, capsys, 3, "is not a ghost-engine work folder")
    assert mine.name in err and (mine / "thesis.txt").read_text() == "years of work\n"


def test_an_existing_output_needs_consent(scene, capsys) -> None:
    (scene / "out.mp4").write_bytes(b"the user's own file")
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-o", "out.mp4", *FAST, "-q"]
    _refused_cleanly(scene, argv, capsys, 3, "out.mp4 already exists; add -y/--overwrite")
    with pytest.raises(OutputExistsError):
        ghost_engine.swap_video("clip.mp4", [], "out.mp4", stages=[], progress="quiet")
    assert (scene / "out.mp4").read_bytes() == b"the user's own file"
    code, err = run_cli([*argv, "-y"], capsys)
    assert code == 0, err
    assert decoded_frames(scene / "out.mp4") == 6


def test_the_terminal_prompt_asks_and_no_keeps_the_file(scene) -> None:
    """At a terminal the run asks (y/N); "n" refuses in one line, "y" replaces."""
    (scene / "out.png").write_bytes(b"keep me")
    argv = ["run", "picture.png", "-s", "face.jpg", "-o", "out.png", *FAST, "-q"]
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    results = {}
    for answer in ("n", "y"):
        master, slave = pty.openpty()
        child = subprocess.Popen(
            [sys.executable, "-c", "from ghost_engine.cli import main; main()", *argv],
            stdin=slave,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        os.close(slave)
        os.write(master, f"{answer}\n".encode())
        _, err = child.communicate(timeout=120)
        os.close(master)
        results[answer] = (child.returncode, err)
    code, err = results["n"]
    assert code == 3 and "Overwrite? [y/N]" in err and "not overwriting out.png" in err, err
    assert "Traceback" not in err
    code, err = results["y"]
    assert code == 0, err  # the picture has no face: written unchanged but labelled
    assert cv2.imread(str(scene / "out.png")).shape == (30, 40, 3)


# -- concurrency: one run per output -------------------------------------------------------


def test_a_second_run_on_the_same_output_refuses_at_once(scene, capsys) -> None:
    clip = make_video(scene / "long.mkv", 100, 64, 48, codec="ffv1", pix_fmt="bgr0")
    before = digests(scene)
    argv = ["run", str(clip), "-s", "face.jpg", "-o", "out.mkv", "--codec", "ffv1", "-q"]
    first = slow_cli_child(argv)
    assert wait_until(
        lambda: lock_path_for(scene / "out.mkv").exists() or first.poll() is not None
    ), "timed out"
    started = time.monotonic()
    code, err = run_cli([*argv, *FAST], capsys)
    assert time.monotonic() - started < 10
    assert_refused(code, err, 3, f"another ghost-engine run (process {first.pid}) is writing")
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert decoded_frames(scene / "out.mkv") == 100
    assert digests(scene).items() >= before.items()
    assert listing(scene) == set(before) | {"out.mkv"}


# -- the resume journal and leftovers --------------------------------------------------


@pytest.fixture()
def interrupted(scene, monkeypatch, capsys) -> tuple[list[str], Path]:
    """A CLI run stopped by an error after finished segments: its argv and work folder."""
    from ghost_engine.errors import NoFaceError

    clip = make_video(scene / "long.mkv", 75, 64, 48, codec="ffv1", pix_fmt="bgr0")
    argv = ["run", str(clip), "-s", "face.jpg", "-o", "out.mkv", "--codec", "ffv1"]
    argv += ["--segment-seconds", "1", "-q"]
    failing = MarkStage(fail_at=60, error=NoFaceError("stopped"))
    monkeypatch.setattr("ghost_engine.api.build_swap_stage", lambda *a, **k: failing)
    code, err = run_cli(argv, capsys)
    assert code == 2 and "stopped" in err
    work = work_dir_for(scene / "out.mkv")
    assert segments_done(work) >= 1
    monkeypatch.setattr("ghost_engine.api.build_swap_stage", lambda *a, **k: MarkStage())
    return argv, work


def _tamper(work: Path, edit) -> None:
    data = json.loads((work / JOURNAL_NAME).read_text())
    edit(data)
    (work / JOURNAL_NAME).write_text(json.dumps(data))


def test_a_journal_naming_a_file_outside_the_work_folder_is_refused(
    interrupted, scene, capsys
) -> None:
    argv, work = interrupted
    outside = make_video(scene / "x.mp4", 3, 64, 48)
    size = outside.stat().st_size

    def point_outside(data: dict) -> None:
        data["segments"][0].update(file=f"../{scene.name}/x.mp4", size=size)

    _tamper(work, point_outside)
    err = _refused_cleanly(scene, [*argv, "--resume"], capsys, 2, "which is not a segment")
    assert "run without --resume to start over" in err and not (scene / "out.mkv").exists()


@pytest.mark.parametrize("change", ["unknown key", "missing key"])
def test_a_journal_record_with_wrong_keys_is_refused(interrupted, scene, capsys, change) -> None:
    argv, work = interrupted
    if change == "unknown key":
        _tamper(work, lambda data: data["segments"][0].update(colour="blue"))
        fragment = "unknown key 'colour' in segment record 0"
    else:
        _tamper(work, lambda data: data["segments"][0].pop("size"))
        fragment = "lacks the key 'size' in segment record 0"
    err = _refused_cleanly(scene, [*argv, "--resume"], capsys, 2, fragment)
    assert "run without --resume" in err


def test_the_journal_loads_with_its_records_checked(interrupted, scene, capsys) -> None:
    """The untouched journal resumes: the output has every frame, nothing is left."""
    argv, work = interrupted
    code, err = run_cli([*argv, "--resume"], capsys)
    assert code == 0, err
    assert decoded_frames(scene / "out.mkv") == 75
    assert not work.exists() and not lock_path_for(scene / "out.mkv").exists()


def test_stale_partials_of_dead_runs_are_removed(scene, capsys) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = scene / "out.mp4"
    stale = temp_path_for(out).with_name(f".out.partial-{dead.pid}.mp4")
    alive = temp_path_for(out).with_name(f".out.partial-{os.getppid()}.mp4")
    stale.write_bytes(b"half a video")
    alive.write_bytes(b"being written by a live process")
    code, err = run_cli(["run", "clip.mp4", "-s", "face.jpg", "-o", "out.mp4", *FAST, "-q"], capsys)
    assert code == 0, err
    assert not stale.exists() and alive.exists()
    assert decoded_frames(out) == 6


# -- encoder settings: checked on a blank frame, before decoding ---------------------------


def test_an_odd_sized_video_is_padded_and_the_report_says_so(scene, capsys) -> None:
    make_video(scene / "odd.mp4", 5, 465, 561, pix_fmt="yuv444p")
    before = digests(scene)
    argv = ["run", "odd.mp4", "-s", "face.jpg", "-o", "out.mp4", "--json", "r.json", *FAST]
    code, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "odd.mp4 is 465x561" in err and "the output is 466x562" in err
    report = json.loads((scene / "r.json").read_text())
    assert report["settings"]["encode"]["padded_to"] == [466, 562]
    import av

    with av.open(str(scene / "out.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    source = [f.to_ndarray(format="rgb24") for f in av.open(str(scene / "odd.mp4")).decode()]
    assert len(frames) == 5 and frames[0].shape == (562, 466, 3)
    # the padding repeats the last column and row; the picture itself is kept
    assert cv2.PSNR(frames[2][:561, :465], source[2]) > 30
    assert digests(scene).items() >= before.items()


@pytest.mark.parametrize(
    ("settings", "option"),
    [
        (EncodeSettings(codec="hevc", pix_fmt="rgb24"), "--pix-fmt"),
        (EncodeSettings(preset="bogus"), "--preset"),
        (EncodeSettings(codec="av1"), "--codec"),  # SVT-AV1 takes nothing this small
    ],
)
def test_bad_encoder_settings_fail_before_decoding(scene, settings, option) -> None:
    tiny = make_video(scene / "tiny.mkv", 3, 2, 2, codec="ffv1", pix_fmt="bgr0")
    calls = []

    def read(*args, **kwargs):
        calls.append(args)
        raise AssertionError("decoding started")

    job = VideoJob(target=tiny, output=scene / "out.mkv", encode=settings)
    report = RunReport("video", str(tiny), "out.mkv", [])
    with pytest.raises(UserInputError) as info:
        run_video(job, [], report, read=read)
    assert info.value.option == option and calls == []
    assert "\n" not in str(info.value)
    assert listing(scene) == {"clip.mp4", "face.jpg", "picture.png", "tiny.mkv"}


def test_bad_encoder_settings_are_one_line_through_the_cli(scene, capsys) -> None:
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-o", "o.mp4", "--codec", "hevc"]
    _refused_cleanly(scene, [*argv, "--pix-fmt", "rgb24"], capsys, 2, "--pix-fmt rgb24 is not")
    _refused_cleanly(scene, [*argv, "--preset", "bogus"], capsys, 2, "'bogus' is not one of")


def test_a_one_pixel_video_works_or_is_refused_in_one_line(scene, capsys) -> None:
    make_video(scene / "one.mkv", 3, 1, 1, codec="ffv1", pix_fmt="bgr0")
    argv = ["run", "one.mkv", "-s", "face.jpg", "-o", "one.mp4", *FAST, "-q"]
    code, err = run_cli(argv, capsys)
    assert code == 0, err
    assert decoded_frames(scene / "one.mp4") == 3
    argv = ["run", "one.mkv", "-s", "face.jpg", "-o", "hevc.mkv", "--codec", "hevc", *FAST]
    _refused_cleanly(scene, argv, capsys, 2, "cannot encode a 1x1 yuv420p video")


# -- damaged media -------------------------------------------------------------------------


@pytest.fixture()
def damaged(scene) -> dict[str, Path]:
    """A clip with garbage in the middle, and one cut short whose index survived."""
    import av

    clip = make_video(scene / "whole.mp4", 25, 64, 48)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(0).bytes(2000)
    (scene / "corrupt.mp4").write_bytes(bytes(data))
    with (
        av.open(str(clip)) as src,
        av.open(str(scene / "indexed.mp4"), "w", options={"movflags": "+faststart"}) as dst,
    ):
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = stream
                dst.mux(packet)
    whole = (scene / "indexed.mp4").read_bytes()
    (scene / "indexed.mp4").write_bytes(whole[: len(whole) * 15 // 100])
    clip.unlink()
    # Matroska lists no frame count, and with audio only the video stream's DURATION tag
    # (not the container's duration) tells it ends early
    whole = make_video(scene / "whole.mkv", 25, 64, 48, codec="ffv1", pix_fmt="bgr0", audio="aac")
    mkv = whole.read_bytes()
    (scene / "cut.mkv").write_bytes(mkv[: len(mkv) // 4])
    (scene / "whole.mkv").unlink()
    return {
        "corrupt": scene / "corrupt.mp4",
        "truncated": scene / "indexed.mp4",
        "cut": scene / "cut.mkv",
    }


@pytest.mark.parametrize(
    ("kind", "frames", "words"),
    [
        (
            "corrupt",
            13,
            "decoded 13 of 25 frame(s), stopped after the frame at 0.480 s (decode error",
        ),
        (
            "truncated",
            2,
            "decoded 2 of 25 frame(s), stopped after the frame at 0.040 s (fewer frames than",
        ),
        (
            "cut",
            6,
            "decoded 6 of 25 frame(s), stopped after the frame at 0.200 s (the video ends",
        ),
    ],
)
def test_damage_is_one_warning_and_the_frames_that_decoded(
    damaged, scene, capsys, kind, frames, words
) -> None:
    before = digests(scene)
    argv = ["run", str(damaged[kind]), "-s", "face.jpg", "-o", "out.mp4", "--json", "r.json"]
    code, err = run_cli([*argv, *FAST, "-q"], capsys)
    assert code == 0, err
    assert err.count("\n") == 1 and "Traceback" not in err, err  # the warning alone
    assert f"{damaged[kind]} is damaged: {words}" in err and err.endswith("that decoded\n")
    damage = json.loads((scene / "r.json").read_text())["settings"]["input"]["damage"]
    assert damage["frames_decoded"] == frames and damage["frames_expected"] == 25
    assert decoded_frames(scene / "out.mp4") == frames
    assert digests(scene).items() >= before.items()


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "cut"])
def test_damage_with_on_damage_fail_writes_nothing(damaged, scene, capsys, kind) -> None:
    argv = ["run", str(damaged[kind]), "-s", "face.jpg", "-o", "out.mp4", *FAST]
    argv += ["--on-damage", "fail", "-q"]
    err = _refused_cleanly(scene, argv, capsys, 2, "is damaged: decoded")
    assert "of 25 frame(s)" in err and "run with --on-damage warn" in err


# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--start", "nan"], "--start: cannot read time 'nan'"),
        (["--end", "nan"], "--end: cannot read time 'nan'"),
        (["--end", "inf"], "--end: cannot read time 'inf'"),
        (["--similarity-threshold", "nan"], "use a number from -1 to 1"),
        (["--segment-seconds", "inf"], "use a number of at least 0.5"),
        (["--enhance-blend", "nan"], "use a number from 0 to 1"),
        (["--crf", "nan"], "use a whole number from 0 to 63"),
        (["--max-pixels", "nan"], "use a whole number of at least 1"),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_range(scene, capsys, extra, fragment) -> None:
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-o", "o.mp4", *FAST, *extra]
    err = _refused_cleanly(scene, argv, capsys, 2, fragment)
    assert extra[0] in err


@pytest.mark.parametrize(("flag", "value"), [("--fps", "nan"), ("--duration", "inf")])
def test_webcam_non_finite_numbers_are_refused(scene, capsys, flag, value) -> None:
    argv = ["webcam", "-s", "face.jpg", "--camera", "clip.mp4", "--output", "none", flag, value]
    _refused_cleanly(scene, argv, capsys, 2, f"Invalid value for '{flag}'")


def test_all_faces_with_a_target_face_is_refused(scene, capsys) -> None:
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-t", "face.jpg", "-o", "o.mp4", "--all-faces"]
    _refused_cleanly(scene, argv, capsys, 2, "--all-faces swaps every face, so -t/--target-face")
    with pytest.raises(UserInputError, match="--all-faces"):
        ghost_engine.swap_video(
            "clip.mp4",
            "face.jpg",
            "o.mp4",
            target_faces=["face.jpg"],
            config=ghost_engine.api.make_config(all_faces=True),
        )


def test_a_photo_with_two_faces_uses_the_largest_and_says_so(scene, media, capsys) -> None:
    big = cv2.imread(str(media / "faces" / "mark.jpg"))
    small = cv2.imread(str(media / "faces" / "elon_musk.jpg"))
    small = cv2.resize(
        small, (small.shape[1] * big.shape[0] // small.shape[0] // 2, big.shape[0] // 2)
    )
    group = np.full((big.shape[0], big.shape[1] + small.shape[1] + 20, 3), 128, np.uint8)
    group[:, : big.shape[1]] = big
    group[: small.shape[0], big.shape[1] + 20 :] = small
    cv2.imwrite(str(scene / "group.png"), group)
    argv = ["run", "clip.mp4", "-s", "group.png", "-o", "o.mp4", "--json", "r.json", *FAST]
    code, err = run_cli([*argv, "-q"], capsys)
    assert code == 0, err
    assert "group.png has 2 faces; using the largest" in err
    notes = json.loads((scene / "r.json").read_text())["settings"]["source_photos"]
    # the reference: the box the detector finds in the big photo alone (placed at 0, 0)
    from ghost_engine.backend import open_backend
    from ghost_engine.face.swap_config import SwapConfig
    from ghost_engine.pipeline.face_models import build_models

    config = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib")
    detector = build_models(config, open_backend("cpu").sessions).detector
    alone = detector([cv2.cvtColor(big, cv2.COLOR_BGR2RGB)])[0]
    assert len(alone) == 1
    want = [int(round(float(v))) for v in alone[0].box]
    assert notes == [{"photo": "group.png", "faces": 2, "used": "largest", "box": want}]


# -- paths ----------------------------------------------------------------------------------


def test_an_output_that_is_a_symlink_loop_is_refused(scene, capsys) -> None:
    os.symlink("loop.mp4", "loop.mp4")
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-o", "loop.mp4", "-y", *FAST]
    _refused_cleanly(scene, argv, capsys, 3, "loop.mp4 is a symbolic link that loops")


def test_a_250_character_output_name_works(scene, capsys) -> None:
    name = "n" * 246 + ".mp4"
    assert len(os.fsencode(work_dir_for(scene / name).name)) <= NAME_MAX
    code, err = run_cli(["run", "clip.mp4", "-s", "face.jpg", "-o", name, *FAST, "-q"], capsys)
    assert code == 0, err
    assert decoded_frames(scene / name) == 6
    assert listing(scene) == {"clip.mp4", "face.jpg", "picture.png", name}


def test_a_file_name_with_a_newline_stays_one_line(scene, capsys) -> None:
    argv = ["run", "clip\n.mp4", "-s", "face.jpg", "-o", "o.mp4", *FAST]
    err = _refused_cleanly(scene, argv, capsys, 2, "target file not found: clip\\n.mp4")
    assert err.count("\n") == 1
    assert one_line("a\nb\x1b[2J") == "a\\nb\\x1b[2J"


# -- the pixel limit --------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    head = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + head + struct.pack(">I", len(idat) - 4) + idat


def test_a_png_bomb_is_refused_from_its_header(scene, capsys) -> None:
    (scene / "bomb.png").write_bytes(_png_header(16385, 16385))
    started = time.monotonic()
    argv = ["run", "bomb.png", "-s", "face.jpg", "-o", "o.png", *FAST]
    err = _refused_cleanly(scene, argv, capsys, 2, "bomb.png is 16385x16385 (268.5 megapixels)")
    assert "--max-pixels 268468225" in err and time.monotonic() - started < 5
    argv = ["run", "clip.mp4", "-s", "bomb.png", "-o", "o.mp4", *FAST]
    _refused_cleanly(scene, argv, capsys, 2, "source photo bomb.png is 16385x16385")


def test_the_limit_applies_to_videos_and_can_be_raised(scene, capsys) -> None:
    argv = ["run", "clip.mp4", "-s", "face.jpg", "-o", "o.mp4", *FAST, "-q"]
    err = _refused_cleanly(scene, [*argv, "--max-pixels", "3071"], capsys, 2, "clip.mp4 is 64x48")
    assert "above the limit of 3071 pixels; add --max-pixels 3072" in err
    face = 778 * 759  # the source photo is checked against the same limit
    _refused_cleanly(scene, [*argv, "--max-pixels", str(face - 1)], capsys, 2, "face.jpg is 778")
    code, err = run_cli([*argv, "--max-pixels", str(face)], capsys)
    assert code == 0, err


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
@pytest.mark.parametrize(("width", "height"), [(67, 45), (1, 3), (300, 17)])
def test_header_sizes_match_what_opencv_decodes(tmp_path, suffix, width, height) -> None:
    ok, data = cv2.imencode(suffix, pattern(0, width, height))
    assert ok
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data.tobytes())
    decoded = cv2.imread(str(path))
    assert image_size(path) == (decoded.shape[1], decoded.shape[0]) == (width, height)


# -- signals ---------------------------------------------------------------------------------


def test_sigterm_stops_like_ctrl_c_and_the_run_resumes(scene, capsys, monkeypatch) -> None:
    clip = make_video(scene / "long.mkv", 125, 64, 48, codec="ffv1", pix_fmt="bgr0")
    before = digests(scene)
    argv = ["run", str(clip), "-s", "face.jpg", "-o", "out.mkv", "--codec", "ffv1"]
    argv += ["--segment-seconds", "1", "-q"]
    child = slow_cli_child(argv)
    work = work_dir_for(scene / "out.mkv")
    assert wait_until(lambda: segments_done(work) >= 2 or child.poll() is not None), "timed out"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("interrupted: ") and "run the same command with --resume" in err
    assert not (scene / "out.mkv").exists() and (work / MARKER_NAME).is_file()
    assert listing(scene) - set(before) == {
        work.name,
        *(f"{work.name}/{n}" for n in os.listdir(work)),
    }
    monkeypatch.setattr("ghost_engine.api.build_swap_stage", lambda *a, **k: MarkStage())
    code, err = run_cli([*argv, "--resume"], capsys)
    assert code == 0, err
    assert decoded_frames(scene / "out.mkv") == 125
    assert listing(scene) == set(before) | {"out.mkv"}
    assert digests(scene).items() >= before.items()


def test_a_held_lock_is_not_taken_twice_in_one_process(tmp_path) -> None:
    from ghost_engine.errors import OutputBusyError

    out = tmp_path / "o.mp4"
    with OutputLock(out):
        with pytest.raises(OutputBusyError, match=f"process {os.getpid()}"):
            OutputLock(out).acquire()
    assert not lock_path_for(out).exists()
    assert not refusal_lines("error: fine\n")
