"""A generated corpus of bad input, run through the CLI as a new user would type it.

Every case runs `ghost-engine run` or `ghost-engine webcam` in a fresh copy of a small
world (tiny clips made with PyAV, a photo with a face, broken and hostile files) and is
held to the same rules: the exit code and the words expected; a refusal is one `error: `
line; never a traceback; every input byte for byte as it was (SHA-256); nothing left
beside the output; an output that exists decodes to the end with PyAV and holds the
expected frames. Cases run in this process; signals and concurrent runs use children.
Each group prints its counts (shown with -s) and asserts them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from safety_checks import FAST, decoded_frames, digests, listing, refusal_lines, run_cli
from slow_runs import segments_done, slow_cli_child, wait_until
from test_video_fixtures import MarkStage, make_video, pattern, write_audio_only

from ghost_engine.errors import NoFaceError
from ghost_engine.video.journal import JOURNAL_NAME
from ghost_engine.video.lock import lock_path_for
from ghost_engine.video.workdir import MARKER_NAME, work_dir_for

NAN, INF = str(math.nan), str(math.inf)
Q = ["-q"]


@dataclass
class Case:
    """One bad input: the argv (in the world folder), what must come back, and where
    the output, if any, is (`output`, holding `frames` frames)."""

    name: str
    argv: list[str]
    code: int
    words: str = ""
    output: str | None = None
    frames: int | None = None
    setup: Callable[[Path], None] | None = None
    gone: tuple[str, ...] = ()  # files the run should remove (stale partials)
    kept: tuple[str, ...] = ()  # files that may change (an output replaced with -y)
    own: str | None = None  # the engine's work folder: its contents are the run's to change


FAILURES = ("tracebacks", "modified inputs", "corrupt outputs", "leftovers", "wrong answers")


@dataclass
class Tally:
    """What the corpus counts: every case, and each kind of failure (`FAILURES`)."""

    cases: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def fail(self, kind: str, problem: str) -> None:
        """Count one failure of `kind`, which `problem` describes."""
        if kind not in FAILURES:
            raise ValueError(f"unknown kind of failure {kind!r}: one of {FAILURES}")
        self.failures[kind] += 1
        self.problems.append(problem)

    def expect(self, ok: bool, problem: str, kind: str = "wrong answers") -> None:
        """A failure of `kind` unless `ok`."""
        if not ok:
            self.fail(kind, problem)

    def show(self, group: str) -> None:
        counts = ", ".join(f"{self.failures[kind]} {kind}" for kind in FAILURES)
        print(f"\n{group}: {self.cases} cases, {counts}")

    def assert_clean(self, at_least: int) -> None:
        assert self.cases >= at_least
        counts = [self.failures[kind] for kind in FAILURES]
        assert counts == [0] * len(FAILURES), "\n".join(self.problems)


# -- the world --------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    head = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + head


def _jpeg_header(width: int, height: int) -> bytes:
    import struct

    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


def _damaged(world: Path) -> None:
    import av

    clip = make_video(world / "whole.mp4", 25, 64, 48)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(0).bytes(2000)
    (world / "corrupt.mp4").write_bytes(bytes(data))
    fast = world / "fast.mp4"
    with (
        av.open(str(clip)) as src,
        av.open(str(fast), "w", options={"movflags": "+faststart"}) as dst,
    ):
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = stream
                dst.mux(packet)
    whole = fast.read_bytes()
    (world / "indexed.mp4").write_bytes(whole[: len(whole) * 15 // 100])
    (world / "noindex.mp4").write_bytes(clip.read_bytes()[: len(clip.read_bytes()) // 3])
    mkv = make_video(world / "whole.mkv", 25, 64, 48, codec="ffv1", pix_fmt="bgr0").read_bytes()
    (world / "cut.mkv").write_bytes(mkv[: len(mkv) // 4])
    (world / "whole.mkv").unlink()
    for name in ("whole.mp4", "fast.mp4"):
        (world / name).unlink()


@pytest.fixture(scope="module")
def template(tmp_path_factory, media) -> Path:
    """The files every case starts from (copied afresh for each case)."""
    world = tmp_path_factory.mktemp("world")
    make_video(world / "clip.mp4", 6, 64, 48)
    make_video(world / "clip.mkv", 6, 64, 48, codec="ffv1", pix_fmt="bgr0", audio="aac")
    make_video(world / "odd.mkv", 4, 67, 45, codec="ffv1", pix_fmt="bgr0")
    make_video(world / "one.mkv", 3, 1, 1, codec="ffv1", pix_fmt="bgr0")
    make_video(world / "zero.avi", 0)
    write_audio_only(world / "sound.mka")
    _damaged(world)
    (world / "face.jpg").write_bytes((media / "faces" / "mark.jpg").read_bytes())
    (world / "ref.jpg").write_bytes((media / "faces" / "mark.jpg").read_bytes())
    cv2.imwrite(str(world / "picture.png"), pattern(2, 40, 30))
    cv2.imwrite(str(world / "blank.png"), np.full((80, 80, 3), 90, np.uint8))
    (world / "notes.txt").write_text("not a picture\n")
    (world / "empty.mp4").write_bytes(b"")
    (world / "noise.mp4").write_bytes(np.random.default_rng(1).bytes(5000))
    (world / "bomb.png").write_bytes(_png_header(16385, 16385))
    (world / "bomb.jpg").write_bytes(_jpeg_header(20000, 20000))
    (world / "cut.jpg").write_bytes((world / "face.jpg").read_bytes()[:200])
    (world / "photo.mp4").write_bytes((world / "picture.png").read_bytes())  # a PNG, misnamed
    (world / "folder").mkdir()
    return world


def _run_in_copy(
    case: Case, template: Path, world: Path, capsys, tally: Tally
) -> tuple[dict[str, str], set[str], int, str]:
    """Run `case` in `world`, a fresh copy of the world made ready by the case's setup, and
    count it: (the digests and the listing before the run, exit code, stderr)."""
    shutil.copytree(template, world, symlinks=True)
    os.chdir(world)
    if case.setup is not None:
        case.setup(world)
    before, names = digests(world), listing(world)
    code, err = run_cli(case.argv, capsys)
    tally.cases += 1
    return before, names, code, err


def _check(case: Case, template: Path, root: Path, capsys, tally: Tally) -> None:
    """Run one case in a fresh copy of the world and count what went wrong."""
    world = root / f"case{tally.cases:03d}"
    before, names, code, err = _run_in_copy(case, template, world, capsys, tally)
    said = f"[{case.name}] exit {code}: {err!r}"
    if "Traceback" in err:
        tally.fail("tracebacks", f"traceback {said}")
    wrong = code != case.code or case.words not in err
    if case.code != 0 and refusal_lines(err):
        wrong = True
    if wrong:
        tally.fail("wrong answers", f"wrong answer (want exit {case.code}, {case.words!r}) {said}")
    after = digests(world)

    def mine(name: str) -> bool:
        return name in case.gone + case.kept or bool(case.own and name.startswith(case.own))

    changed = [k for k, v in before.items() if after.get(k) != v and not mine(k)]
    if changed:
        tally.fail("modified inputs", f"modified {changed} {said}")
    made = {n for n in listing(world) - names if not mine(n)}
    expected = {case.output} if case.output and code == 0 else set()
    lost = {n for n in names - listing(world) if not mine(n)}
    if made - expected or lost:
        tally.fail("leftovers", f"left {sorted(made - expected)} lost {sorted(lost)} {said}")
    if case.output and code == 0:
        try:
            frames = decoded_frames(world / case.output)
        except Exception as exc:  # any decode failure is a corrupt output
            frames = f"undecodable ({exc})"
        if frames != case.frames:
            tally.fail("corrupt outputs", f"output has {frames} frames, want {case.frames} {said}")
    os.chdir(root)
    shutil.rmtree(world, ignore_errors=True)


def _run_all(cases: list[Case], template: Path, tmp_path: Path, capsys, group: str) -> Tally:
    tally = Tally()
    for case in cases:
        _check(case, template, tmp_path, capsys, tally)
    with capsys.disabled():
        tally.show(group)
    return tally


def run(*args: str) -> list[str]:
    """`ghost-engine run` with the fast face settings first (so a case's own flags win)."""
    return ["run", *FAST, *args]


# -- files: targets, sources and references --------------------------------------------


def _fifo(world: Path) -> None:
    os.mkfifo(world / "pipe.mp4")


def file_cases() -> list[Case]:
    o = ["-o", "out.mp4"]
    fail = ["--on-damage", "fail", *Q]

    def on(target: str, *args: str, source: str = "face.jpg") -> list[str]:
        """`run` on `target` with `source` as the source photo, into out.mp4."""
        return run(target, "-s", source, *o, *args)

    def swapped(name: str, target: str, words: str, frames: int) -> Case:
        """A damaged or odd `target` swapped into out.mp4 of `frames` frames."""
        return Case(name, on(target, *Q), 0, words, "out.mp4", frames)

    refused = {  # exit 2: name: (argv, words)
        "missing target": (on("nope.mp4"), "target file not found"),
        "target is a folder": (on("folder"), "not a regular file"),
        "target is /dev/null": (on("/dev/null"), "not a regular file"),
        "empty target": (on("empty.mp4"), "target file is empty"),
        "text target": (on("notes.txt"), "not an image or video"),
        "noise target": (on("noise.mp4"), "noise.mp4"),
        "audio only": (on("sound.mka"), "has no video stream"),
        "zero frames": (on("zero.avi"), "no decodable frames"),
        "moov lost": (on("noindex.mp4"), "noindex.mp4"),
        "matroska cut short, fail": (on("cut.mkv", *fail), "is damaged: decoded 6 of 25"),
        "corrupt middle, fail": (on("corrupt.mp4", *fail), "is damaged: decoded 13 of 25"),
        "truncated, fail": (on("indexed.mp4", *fail), "is damaged: decoded 2 of 25"),
        "one pixel, av1": (
            run("one.mkv", "-s", "face.jpg", "-o", "o.mkv", "--codec", "av1"),
            "cannot encode a 1x1",
        ),
        "png bomb target": (run("bomb.png", "-s", "face.jpg", "-o", "o.png"), "16385x16385"),
        "jpeg bomb target": (run("bomb.jpg", "-s", "face.jpg", "-o", "o.png"), "20000x20000"),
        "missing source": (on("clip.mp4", source="gone.jpg"), "source photo file not found"),
        "source is a folder": (on("clip.mp4", source="folder"), "source photo is not a regular"),
        "source is text": (on("clip.mp4", source="notes.txt"), "notes.txt"),
        "source cut short": (on("clip.mp4", source="cut.jpg"), "cut.jpg"),
        "source without a face": (on("clip.mp4", source="blank.png"), "no face found in blank.png"),
        "source bomb": (on("clip.mp4", source="bomb.png"), "source photo bomb.png is 16385x16385"),
        "empty source": (on("clip.mp4", source=""), "give at least one source photo"),
        "commas only": (on("clip.mp4", source=",,"), "give at least one source photo"),
        "missing reference": (on("clip.mp4", "-t", "gone.jpg"), "target face photo file not found"),
        "reference bomb": (on("clip.mp4", "-t", "bomb.jpg"), "20000x20000"),
        "two people, no references": (
            on("clip.mp4", "-s", "ref.jpg"),
            "add one -t/--target-face",
        ),
        "references miscounted": (
            on("clip.mp4", "-t", "ref.jpg", "-t", "ref.jpg"),
            "1 source person(s) but 2 target face(s)",
        ),
    }
    return [Case(name, argv, 2, words) for name, (argv, words) in refused.items()] + [
        Case("target is a fifo", on("pipe.mp4"), 2, "not a regular file", setup=_fifo),
        swapped("corrupt middle", "corrupt.mp4", "decoded 13 of 25 frame(s)", 13),
        swapped("truncated, index kept", "indexed.mp4", "decoded 2 of 25 frame(s)", 2),
        swapped("matroska cut short", "cut.mkv", "(the video ends before its header says)", 6),
        swapped("odd size", "odd.mkv", "the output is 68x46", 4),
        swapped("one pixel", "one.mkv", "output is 2x2", 3),
        Case("image target, video output", on("picture.png"), 3, "needs a .png or .jpg"),
        Case("misnamed png target", on("photo.mp4"), 3, "needs a .png or .jpg"),
        Case(
            "good run", run("clip.mkv", "-s", "face.jpg", "-o", "out.mkv", *Q), 0, "", "out.mkv", 6
        ),
    ]


def test_corpus_files(template, tmp_path, capsys) -> None:
    _run_all(file_cases(), template, tmp_path, capsys, "files").assert_clean(30)


# -- options -----------------------------------------------------------------------------

_BAD_NUMBERS = {
    "--start": [NAN, INF, "-inf", "-1", "abc", "1:2:3:4", ""],
    "--end": [NAN, INF, "0", "-5", "x"],
    "--similarity-threshold": [NAN, INF, "-inf", "1.5", "x"],
    "--segment-seconds": [NAN, INF, "0.1", "x"],
    "--enhance-blend": [NAN, "2", "-0.1"],
    "--crf": [NAN, "1.5", "-1", "64", "x"],
    "--batch-size": ["0", NAN, "-3", "2000"],
    "--max-pixels": ["0", NAN, "-1", "1e9"],
    "--generator-blocks": ["0", "4", NAN],
}
_BAD_CHOICES = (
    "--codec",
    "--preset",
    "--smoothing",
    "--generator",
    "--detector",
    "--recognizer",
    "--mask-mode",
    "--runtime",
    "--device",
    "--enhance-mode",
    "--on-damage",
)


def option_cases() -> list[Case]:
    base = ["clip.mp4", "-s", "face.jpg", "-o", "out.mp4"]
    cases = []
    for flag, values in _BAD_NUMBERS.items():
        for value in values:
            words = "cannot read time" if flag in ("--start", "--end") else f"'{flag}'"
            if flag == "--end" and value == "0":
                words = "--end must be"
            if flag == "--start" and value == "-1":
                words = "cannot read time '-1'"
            cases.append(Case(f"{flag} {value!r}", run(*base, flag, value), 2, words))
    for flag in _BAD_CHOICES:
        cases.append(Case(f"{flag} bogus", run(*base, flag, "bogus"), 2, "'bogus' is not one of"))
    refusals = [  # (name, the options after `base`, exit code, words)
        ("all faces with a reference", "--all-faces -t ref.jpg", 2, "--all-faces swaps every face"),
        ("empty range", "--start 2 --end 1", 2, "must be after --start"),
        ("start past the end", "--start 50", 2, "is past the end"),
        ("preset on vp9", "--codec vp9 --preset fast", 2, "--preset applies to h264 and hevc only"),
        ("prores in mp4", "--codec prores", 3, "cannot be stored in a .mp4"),
        ("unknown pixel format", "--pix-fmt bogus", 2, "unknown pixel format 'bogus'"),
        ("rgb24 for hevc", "--codec hevc --pix-fmt rgb24", 2, "--pix-fmt rgb24 is not supported"),
        ("engine without cuda", "--generator-engine notes.txt", 2, "add --device cuda"),
        ("engine missing", "--generator-engine gone.engine", 2, "'--generator-engine'"),
        ("unknown option", "--bogus", 2, "No such option '--bogus'"),
    ]
    cases += [
        Case(name, run(*base, *args.split()), code, words) for name, args, code, words in refusals
    ]
    cases += [
        Case(
            "crf without crf mode",
            run("clip.mp4", "-s", "face.jpg", "-o", "o.mkv", "--codec", "ffv1", "--crf", "3"),
            2,
            "--crf does not apply",
        ),
        Case("no output", ["run", "clip.mp4", "-s", "face.jpg"], 2, "Missing option '-o'"),
        Case("no source", ["run", "clip.mp4", "-o", "out.mp4"], 2, "Missing option '-s'"),
        Case(
            "no target", ["run", "-s", "face.jpg", "-o", "out.mp4"], 2, "Missing argument 'TARGET'"
        ),
        Case("no command", ["frobnicate"], 2, "No such command 'frobnicate'"),
    ]
    return cases


def test_corpus_options(template, tmp_path, capsys) -> None:
    _run_all(option_cases(), template, tmp_path, capsys, "options").assert_clean(60)


# -- paths: outputs and side outputs ----------------------------------------------------


def _alias(kind: str, victim: str, name: str) -> Callable[[Path], None] | None:
    def make(world: Path) -> None:
        if kind == "symlink":
            os.symlink(victim, world / name)
        elif kind == "hard link":
            os.link(world / victim, world / name)

    return make if kind in ("symlink", "hard link") else None


def _spelling(kind: str, victim: str, name: str) -> str:
    return {
        "same": victim,
        "dot slash": f"./{victim}",
        "dot-dot": f"folder/../{victim}",
        "absolute": "ABS/" + victim,
        "symlink": name,
        "hard link": name,
    }[kind]


def path_cases() -> list[Case]:
    cases = []
    kinds = ("same", "dot slash", "dot-dot", "absolute", "symlink", "hard link")
    roles = {"target": "clip.mp4", "source photo": "face.jpg", "target face photo": "ref.jpg"}
    for role, victim in roles.items():
        for kind in kinds:
            suffix = Path(victim).suffix
            name = f"alias{suffix}"
            spelled = _spelling(kind, victim, name)
            # -o: a video target for the clip, an image target for the photos
            target = "clip.mp4" if role == "target" else "picture.png"
            args = [target, "-s", "face.jpg", "-o", spelled, "-y"]
            if role == "target face photo":
                args[2:2] = []
                args += ["-t", "ref.jpg"]
            cases.append(
                Case(
                    f"-o {kind} of the {role}",
                    run(*args),
                    3,
                    f"is the {role}",
                    setup=_alias(kind, victim, name),
                )
            )
            json_args = ["clip.mp4", "-s", "face.jpg", "-o", "out.mp4", "--json", spelled]
            if role == "target face photo":
                json_args += ["-t", "ref.jpg"]
            cases.append(
                Case(
                    f"--json {kind} of the {role}",
                    run(*json_args),
                    3,
                    f"is the {role}",
                    setup=_alias(kind, victim, name),
                )
            )

    def existing(world: Path) -> None:
        (world / "out.mp4").write_bytes(b"the user's file")

    def dangling(world: Path) -> None:
        os.symlink("nowhere/out.mp4", world / "out.mp4")

    def loop(world: Path) -> None:
        os.symlink("out.mp4", world / "out.mp4")

    def users_folder(world: Path) -> None:
        (world / ".out.mp4.ghost-work").mkdir()
        (world / ".out.mp4.ghost-work" / "mine.txt").write_text("mine\n")

    long_ok = "l" * 246 + ".mp4"
    too_long = "l" * 252 + ".mp4"

    def out(path: str, *args: str) -> list[str]:
        """`run` on clip.mp4 with face.jpg as the source, into `path`."""
        return run("clip.mp4", "-s", "face.jpg", "-o", path, *args)

    json_refusals = {  # --json path: words (exit 3)
        "-o is --json": ("out.mp4", "is also given as -o/--output"),
        "--json is a folder": ("folder", "--json path is a directory"),
        "--json folder missing": ("no/r.json", "--json folder does not exist"),
        "--json under a file": ("notes.txt/r.json", "--json folder is not a directory"),
        "--json too long": (too_long, "--json file name is too long"),
        "--json is a device": ("/dev/null", "not a regular file"),
    }
    for name, (path, words) in json_refusals.items():
        cases.append(Case(name, out("out.mp4", "--json", path), 3, words))
    cases += [
        Case("-o is a folder", out("folder"), 3, "output path is a directory"),
        Case("-o is empty", out(""), 3, "output path is a directory"),
        Case("-o folder missing", out("no/out.mp4"), 3, "output folder does not exist"),
        Case("-o under a file", out("notes.txt/out.mp4"), 3, "output folder is not a directory"),
        Case("-o is a device", out("/dev/null", "-y"), 3, "not a regular file"),
        Case("-o loops", out("out.mp4", "-y"), 3, "symbolic link that loops", setup=loop),
        Case("-o too long", out(too_long), 3, "output file name is too long"),
        Case(
            "-o folder name too long",
            out("d" * 256 + "/o.mp4"),
            3,
            "folder name in the output path is too long",
        ),
        Case("-o unknown container", out("out.xyz"), 3, "cannot tell the video container"),
        Case("-o exists", out("out.mp4"), 3, "already exists; add -y/--overwrite", setup=existing),
        Case(
            "-o exists, -y",
            out("out.mp4", "-y", *Q),
            0,
            "",
            "out.mp4",
            6,
            setup=existing,
            kept=("out.mp4",),
        ),
        Case("-o dangling link", out("out.mp4"), 3, "output folder does not exist", setup=dangling),
        Case(
            "-o a user's work-named folder",
            out("out.mp4"),
            3,
            "is not a ghost-engine work folder",
            setup=users_folder,
        ),
        Case("-o long name", out(long_ok, *Q), 0, "", long_ok, 6),
        Case("-o newline name", out("new\nline.mp4", *Q), 0, "", "new\nline.mp4", 6),
        Case("-o control characters", out("bell\x07.mkv", *Q), 0, "", "bell\x07.mkv", 6),
        Case(
            "missing target with a newline",
            run("a\nb.mp4", "-s", "face.jpg", "-o", "out.mp4"),
            2,
            "a\\nb.mp4",
        ),
    ]
    return cases


def _stale_case() -> Case:
    """A partial file of a dead run beside the output: the next run removes it."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = f".out.partial-{dead.pid}.mp4"

    def plant(world: Path) -> None:
        (world / name).write_bytes(b"half a video")

    argv = run("clip.mp4", "-s", "face.jpg", "-o", "out.mp4", *Q)
    return Case("stale partial", argv, 0, "", "out.mp4", 6, setup=plant, gone=(name,))


def test_corpus_paths(template, tmp_path, capsys) -> None:
    cases = path_cases() + [_stale_case()]
    for case in cases:  # the absolute spelling needs the case's own folder
        case.argv = [
            a.replace("ABS/", f"{tmp_path}/case{cases.index(case):03d}/") for a in case.argv
        ]
    _run_all(cases, template, tmp_path, capsys, "paths").assert_clean(55)


# -- the resume journal ---------------------------------------------------------------------


def _journal_cases() -> list[tuple[str, Callable[[dict, Path], None], int, str, int | None]]:
    """(name, tampering, exit code, words, frames of the output when it succeeds)."""

    def seg(data: dict) -> dict:
        return data["segments"][0]

    def outside(data: dict, work: Path) -> None:
        seg(data)["file"] = "../clip.mkv"

    def link_out(data: dict, work: Path) -> None:
        name = seg(data)["file"]
        (work / name).unlink()
        os.symlink(work.parent / "clip.mkv", work / name)
        seg(data)["size"] = (work.parent / "clip.mkv").stat().st_size

    def garbage_segment(data: dict, work: Path) -> None:
        path = work / seg(data)["file"]
        path.write_bytes(b"\x00" * path.stat().st_size)

    def missing_segment(data: dict, work: Path) -> None:
        (work / seg(data)["file"]).unlink()

    def not_json(data: dict, work: Path) -> None:
        data.clear()
        data["__raw__"] = "{ not json"

    name_cases = {
        "absolute file": "/etc/passwd",
        "nested file": "sub/segment-00000.mp4",
        "dot-dot": "..",
        "empty name": "",
        "the journal itself": "journal.json",
        "the marker": MARKER_NAME,
        "backslashes": "..\\\\clip.mkv",
    }
    cases: list = [("outside via ..", outside, 2, "which is not a segment inside", None)]
    for label, value in name_cases.items():
        cases.append(
            (label, lambda d, w, v=value: seg(d).update(file=v), 2, "which is not a segment", None)
        )
    cases += [
        ("a link out of the folder", link_out, 2, "which is not a segment inside", None),
        (
            "unknown record key",
            lambda d, w: seg(d).update(colour="blue"),
            2,
            "unknown key 'colour'",
            None,
        ),
        (
            "missing record key",
            lambda d, w: seg(d).pop("frames"),
            2,
            "lacks the key 'frames'",
            None,
        ),
        (
            "unknown top key",
            lambda d, w: d.update(extra=1),
            2,
            "unknown key 'extra' in its top level",
            None,
        ),
        (
            "missing top key",
            lambda d, w: d.pop("fingerprint"),
            2,
            "lacks the key 'fingerprint' in its top level",
            None,
        ),
        (
            "text for a number",
            lambda d, w: seg(d).update(frames="25"),
            2,
            "not a whole number",
            None,
        ),
        ("true for a number", lambda d, w: seg(d).update(size=True), 2, "not a whole number", None),
        ("negative size", lambda d, w: seg(d).update(size=-1), 2, "negative count", None),
        ("segments out of order", lambda d, w: d["segments"].reverse(), 2, "out of order", None),
        (
            "record not an object",
            lambda d, w: d["segments"].insert(0, [1, 2]),
            2,
            "not a JSON object",
            None,
        ),
        ("segments not a list", lambda d, w: d.update(segments={}), 2, "not a list", None),
        ("not json", not_json, 2, "cannot be read", None),
        (
            "another version",
            lambda d, w: d.update(version=99),
            2,
            "made by another version of ghost-engine",
            None,
        ),
        (
            "another fingerprint",
            lambda d, w: d["fingerprint"].update(segment_s=3.0),
            2,
            "different segment_s (3.0 before, 1.0 now)",
            None,
        ),
        ("damaged segment", garbage_segment, 0, "", 100),
        ("missing segment", missing_segment, 0, "", 100),
        ("wrong size", lambda d, w: seg(d).update(size=seg(d)["size"] + 1), 0, "", 100),
        ("untouched", lambda d, w: None, 0, "", 100),
    ]
    return cases


def test_corpus_journal_tampering(template, tmp_path, capsys, monkeypatch) -> None:
    """In each case's world a real run stops after finished segments; its journal (or a
    segment) is tampered with; then the same command with `--resume`."""
    argv = ["run", "long.mkv", "-s", "face.jpg", "-o", "out.mkv", "--codec", "ffv1"]
    argv += ["--segment-seconds", "1", "-q"]
    failing = MarkStage(fail_at=90, error=NoFaceError("stopped"))
    cases = []
    for name, tamper, code, words, frames in _journal_cases():

        def setup(world: Path, tamper=tamper) -> None:
            make_video(world / "long.mkv", 100, 64, 48, codec="ffv1", pix_fmt="bgr0")
            monkeypatch.setattr("ghost_engine.api.build_swap_stage", lambda *a, **k: failing)
            stopped, err = run_cli(argv, capsys)
            assert stopped == 2 and segments_done(work_dir_for(world / "out.mkv")) >= 2, err
            monkeypatch.setattr("ghost_engine.api.build_swap_stage", lambda *a, **k: MarkStage())
            work = work_dir_for(world / "out.mkv")
            data = json.loads((work / JOURNAL_NAME).read_text())
            tamper(data, work)
            raw = data.pop("__raw__", None)
            (work / JOURNAL_NAME).write_text(raw if raw is not None else json.dumps(data))

        cases.append(Case(name, [*argv, "--resume"], code, words, "out.mkv", frames, setup=setup))
    tally = Tally()
    for case in cases:
        _check_journal(case, template, tmp_path, capsys, tally)
    with capsys.disabled():
        tally.show("journal tampering")
    tally.assert_clean(25)


def _check_journal(case: Case, template: Path, root: Path, capsys, tally: Tally) -> None:
    """`_check`, where the work folder is part of the world: a refusal must leave it as it
    was (it is the user's way to resume), a success removes it (and only it)."""
    work = work_dir_for(template / "out.mkv").name  # the name only: the same in every world
    if case.code == 0:
        case.own = work
    _check(case, template, root, capsys, tally)
    if case.code == 0 and (root / f"case{tally.cases - 1:03d}" / work).exists():
        tally.fail("leftovers", f"[{case.name}] the work folder is still there")


# -- the webcam ------------------------------------------------------------------------------


def webcam_cases() -> list[Case]:
    def cam(*args: str) -> list[str]:
        return ["webcam", "-s", "face.jpg", *FAST, *args]

    def existing(world: Path) -> None:
        (world / "live.mp4").write_bytes(b"the user's recording")

    def link(world: Path) -> None:
        os.symlink("clip.mp4", world / "cam.mp4")

    def hard(world: Path) -> None:
        os.link(world / "clip.mp4", world / "cam.mp4")

    def live(output: str, *args: str) -> list[str]:
        """The webcam with clip.mp4 as the camera, into `output`."""
        return cam("--camera", "clip.mp4", "--output", output, *args)

    return [
        Case("output is the camera", live("clip.mp4"), 3, "--output clip.mp4 is the camera file"),
        Case(
            "output links to the camera", live("cam.mp4", "-y"), 3, "is the camera file", setup=link
        ),
        Case(
            "output hard-links the camera",
            live("cam.mp4", "-y"),
            3,
            "is the camera file",
            setup=hard,
        ),
        Case(
            "report is the camera",
            live("none", "--report", "clip.mp4"),
            3,
            "--report clip.mp4 is the camera file",
        ),
        Case(
            "report is the source", live("none", "--report", "face.jpg"), 3, "is the source photo"
        ),
        Case(
            "report is the output",
            live("live.mp4", "--report", "live.mp4"),
            3,
            "is also given as --output",
        ),
        Case("output exists", live("live.mp4"), 3, "already exists", setup=existing),
        Case("output folder", live("folder"), 3, "output path is a directory"),
        Case("output folder missing", live("no/live.mp4"), 3, "output folder does not exist"),
        Case("output container unknown", live("live.xyz"), 3, "cannot tell the video container"),
        Case(
            "camera folder",
            cam("--camera", "folder", "--output", "none"),
            2,
            "camera file not found",
        ),
        Case(
            "camera missing",
            cam("--camera", "gone.mp4", "--output", "none"),
            2,
            "camera file not found",
        ),
        Case(
            "camera is text",
            cam("--camera", "notes.txt", "--output", "none"),
            2,
            "not an image or video",
        ),
        Case(
            "camera too big",
            [
                "webcam",
                "-s",
                "picture.png",
                *FAST,
                "--camera",
                "clip.mp4",
                "--output",
                "none",
                "--max-pixels",
                "2000",
            ],
            2,
            "camera file clip.mp4 is 64x48",
        ),
        Case("fps nan", live("none", "--fps", NAN), 2, "'--fps'"),
        Case("duration inf", live("none", "--duration", INF), 2, "'--duration'"),
        Case("resolution zero", live("none", "--resolution", "0x0"), 2, "resolution"),
        Case("resolution odd", live("none", "--resolution", "641x480"), 2, "even width and height"),
        Case("port too big", live("none", "--control-port", "70000"), 2, "'--control-port'"),
        Case("stream scheme", live("ftp://host/x"), 2, "cannot stream to ftp://"),
        Case(
            "output exists, -y",
            live("live.mp4", "-y", "--all-faces", "-q"),
            0,
            "",
            "live.mp4",
            None,
            setup=existing,
            kept=("live.mp4",),
        ),
    ]


def test_corpus_webcam(template, tmp_path, capsys) -> None:
    cases = webcam_cases()
    tally = Tally()
    for case in cases:
        if case.code == 0:  # a live run drops frames: the count its summary states
            _check_live(case, template, tmp_path, capsys, tally)
            continue
        _check(case, template, tmp_path, capsys, tally)
    with capsys.disabled():
        tally.show("webcam")
    tally.assert_clean(20)


def _check_live(case: Case, template: Path, root: Path, capsys, tally: Tally) -> None:
    """A live run's case: checked like the others, with the output's frame count taken
    from the delivered count its summary line states."""
    world = root / f"live{tally.cases:03d}"
    before, names, code, err = _run_in_copy(case, template, world, capsys, tally)
    said = f"[{case.name}] exit {code}: {err!r}"
    if "Traceback" in err or code != 0:
        tally.fail("wrong answers", said)
    after = digests(world)
    if any(after.get(k) != v for k, v in before.items() if k not in case.kept):
        tally.fail("modified inputs", f"modified {said}")
    if listing(world) - names - {case.output}:
        tally.fail("leftovers", f"left {sorted(listing(world) - names)} {said}")
    delivered = [line for line in err.splitlines() if line.startswith("delivered ")]
    want = int(delivered[0].split()[1]) if delivered else -1
    try:
        got = decoded_frames(world / case.output)
    except Exception as exc:
        got = f"undecodable ({exc})"
    if got != want or want < 1:
        tally.fail("corrupt outputs", f"output has {got} frames, summary says {want} {said}")
    os.chdir(root)


# -- signals and concurrent runs (children) ---------------------------------------------------


def test_corpus_signals_and_concurrent_runs(template, tmp_path, capsys, monkeypatch) -> None:
    tally = Tally()
    note = tally.expect
    world = tmp_path / "live-world"
    shutil.copytree(template, world, symlinks=True)
    make_video(world / "long.mkv", 100, 64, 48, codec="ffv1", pix_fmt="bgr0")
    monkeypatch.chdir(world)
    base = ["run", "long.mkv", "-s", "face.jpg", "--codec", "ffv1", "--segment-seconds", "1", "-q"]
    monkeypatch.setattr("ghost_engine.api.build_swap_stage", lambda *a, **k: MarkStage())
    inputs, names = digests(world), listing(world)

    def after_stop(out: str, sig: int, want: int, repeat: bool = False) -> None:
        child = slow_cli_child([*base, "-o", out], world)
        work = work_dir_for(world / out)
        wait_until(lambda: segments_done(work) >= 2 or child.poll() is not None)
        child.send_signal(sig)
        if repeat:
            time.sleep(0.05)
            child.send_signal(sig)
        _, err = child.communicate(timeout=60)
        tally.cases += 1
        note("Traceback" not in err, f"traceback {err!r}", "tracebacks")
        note(
            child.returncode == want and err.count("\n") == 1, f"{out}: {child.returncode} {err!r}"
        )
        note(err.startswith("interrupted: ") and "--resume" in err, f"{out}: {err!r}")
        note(
            not (world / out).exists() and (work / MARKER_NAME).is_file(),
            f"{out} left",
            "leftovers",
        )
        # the same command with --resume finishes the file
        code, err = run_cli([*base, "-o", out, "--resume"], capsys)
        tally.cases += 1
        note(code == 0 and "Traceback" not in err, f"resume {out}: {code} {err!r}")
        note(_decodes(world / out) == 100, f"resumed {out} is not 100 frames", "corrupt outputs")
        note(
            not work.exists() and not lock_path_for(world / out).exists(),
            "resume left",
            "leftovers",
        )

    after_stop("term.mkv", signal.SIGTERM, 128 + signal.SIGTERM)
    after_stop("int.mkv", signal.SIGINT, 130)
    after_stop("twice.mkv", signal.SIGTERM, 128 + signal.SIGTERM, repeat=True)

    # two runs on one output: the second refuses at once, the first finishes
    first = slow_cli_child([*base, "-o", "same.mkv"], world)
    wait_until(lambda: lock_path_for(world / "same.mkv").exists() or first.poll() is not None)
    second = slow_cli_child([*base, "-o", "same.mkv"], world)
    _, second_err = second.communicate(timeout=60)
    _, first_err = first.communicate(timeout=120)
    tally.cases += 2
    note(second.returncode == 3 and "another ghost-engine run" in second_err, repr(second_err))
    note(not refusal_lines(second_err), repr(second_err))
    note(first.returncode == 0, repr(first_err))
    note(_decodes(world / "same.mkv") == 100, "same.mkv is not 100 frames", "corrupt outputs")

    # two runs on two outputs at once both finish
    runs = [slow_cli_child([*base, "-o", f"par{i}.mkv"], world) for i in range(2)]
    for i, child in enumerate(runs):
        _, err = child.communicate(timeout=120)
        tally.cases += 1
        note(child.returncode == 0, f"par{i}: {err!r}")
        note(_decodes(world / f"par{i}.mkv") == 100, f"par{i} frames", "corrupt outputs")

    # a killed run (no handler runs) then a fresh run without --resume: no leftovers
    child = slow_cli_child([*base, "-o", "killed.mkv"], world)
    wait_until(
        lambda: segments_done(work_dir_for(world / "killed.mkv")) >= 1 or child.poll() is not None
    )
    child.kill()
    child.wait()
    code, err = run_cli([*base, "-o", "killed.mkv"], capsys)
    tally.cases += 1
    note(code == 0, f"after kill: {code} {err!r}")
    note(_decodes(world / "killed.mkv") == 100, "killed.mkv frames", "corrupt outputs")

    made = {"term.mkv", "int.mkv", "twice.mkv", "same.mkv", "par0.mkv", "par1.mkv", "killed.mkv"}
    note(listing(world) == names | made, f"left {sorted(listing(world) - names)}", "leftovers")
    note(digests(world).items() >= inputs.items(), "an input changed", "modified inputs")
    with capsys.disabled():
        tally.show("signals and concurrent runs")
    tally.assert_clean(11)


def _decodes(path: Path) -> int | str:
    try:
        return decoded_frames(path)
    except Exception as exc:
        return f"undecodable ({exc})"


def test_the_corpus_has_at_least_150_cases(tmp_path) -> None:
    """The in-process tables plus the 11 child cases above."""
    sizes = {
        "files": len(file_cases()),
        "options": len(option_cases()),
        "paths": len(path_cases()) + 1,
        "journal": len(_journal_cases()),
        "webcam": len(webcam_cases()),
        "signals and concurrency": 11,
    }
    print(f"\ncorpus: {sum(sizes.values())} cases: {sizes}")
    assert sum(sizes.values()) >= 150
