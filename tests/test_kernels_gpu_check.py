"""The GPU check on a CPU: every section in its own process, simulated, and its failures.

`--device cpu --simulate --tiny` runs every section small (Numba's CUDA simulator, the
backend's emulated flavour, stand-in networks), so each line of the check runs before a
GPU machine sees it; a missing clip or wheel fails the check with one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SCRIPT = BENCH / "gpu_check.py"
SECTIONS = [
    "probe",
    "generator",
    "end_to_end",
    "kernels",
    "onnx_runner",
    "arcface",
    "end_to_end_1080p",
]


def _gpu_check(out: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """The script on the CPU, in a fresh interpreter (each section in its own)."""
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)  # the script sets it for its sections
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--device", "cpu", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def clip(media, tmp_path_factory) -> Path:
    """The check's clip as fetch_gpu_wheels.sh makes it (here 2 s of nggyup.mp4)."""
    sys.path.insert(0, str(BENCH))
    import gpu_carry

    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    gpu_carry.make_clip(media / "videos" / "nggyup.mp4", out, seconds=2.0)
    return out


@pytest.fixture(scope="module")
def simulated_run(clip, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("gpu_check")
    proc = _gpu_check(out, "--simulate", "--tiny", "--video", str(clip), timeout=400)
    return proc, out


@pytest.mark.slow
def test_every_section_runs_in_the_simulated_check(simulated_run):
    proc, out = simulated_run
    report = json.loads((out / "gpu_check.json").read_text())
    statuses = {k: v["status"] for k, v in report["sections"].items()}
    assert statuses == dict.fromkeys(SECTIONS, "ok"), (statuses, proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    # what comes back is the report alone: videos went to the removed scratch folder
    assert sorted(p.name for p in out.iterdir()) == [
        "gpu_check.json",
        "gpu_check.log",
        "summary.txt",
    ]
    table = (out / "summary.txt").read_text().splitlines()
    assert [line.split()[0] for line in table[1:]] == SECTIONS
    env = report["environment"]
    assert set(env["driver_libraries"]) == {
        "libcuda.so.1",
        "libnvcuvid.so.1",
        "libnvidia-encode.so.1",
    }
    assert env["packages"]["torch"] and env["clip"]["bytes"] > 0 and env["commit"]


@pytest.mark.slow
def test_simulated_sections_report_what_the_gpu_run_will(simulated_run):
    _, out = simulated_run
    sections = json.loads((out / "gpu_check.json").read_text())["sections"]

    probe = sections["probe"]
    assert "PyNvVideoCodec" in probe["nvcodec"]["engine_reason"]
    assert probe["numba_launch"]["arrays"] == "simulator"
    assert set(probe["transfers"]) == {"context", "tiny_rgb", "1MiB"}

    gen = sections["generator"]
    assert gen["network"] == "stand-in (tiny)"
    assert gen["pipeline_path"]["flavour"] == "emulated"
    assert gen["pipeline_path"]["batch_3"]["max_level_diff"] == 0  # no graphs off the GPU
    assert set(gen["throughput"]) == set(gen["cuda_graph"]) == {"1", "2"}
    assert gen["cuda_graph"]["1"]["captured"] is False
    assert gen["torch_compile"]["default"]["max_abs_diff_vs_eager"] < 1e-2

    e2e = sections["end_to_end"]
    assert e2e["flavour"] == "emulated"
    full = e2e["full"]
    # 0.4 s of a 30 fps clip through the backend, with x264 and into a null sink
    assert full["x264"]["frames"] == full["null_sink"]["frames"] == 12
    steps = {"decode", "face-analysis", "face-synthesis", "download", "encode"}
    assert set(full["x264"]["stage_frames_per_s"]) == steps
    assert 0 < full["null_sink"]["efficiency"] <= 1.0
    assert full["x264"]["swap_seconds"]["paste"] > 0
    assert full["x264"]["cpu"]["by_thread_s"].get("ghost-face-analysis", 0) > 0
    for name in ("detection_off", "passthrough_generator", "upload_decode"):
        assert e2e[name]["null_sink"]["frames"] == 12, name
    assert e2e["passthrough_generator"]["null_sink"]["swap_seconds"]["generator"] == 0.0
    assert full["null_sink"]["swap_seconds"]["generator"] > 0
    assert full["decode"] == "upload"  # emulated: NVDEC is refused with the reason
    diff = e2e["decode_only"]["pixel_diff"]
    assert diff["frames"] == 8 and diff["max_levels"] == 0

    kernels = sections["kernels"]
    assert kernels["backend"] == "simulator"
    assert kernels["within_one_level"] is True and kernels["max_abs_diff"]["nv12_to_rgb"] == 0

    assert sections["onnx_runner"]["float32"]["max_abs_diff_vs_onnxruntime"] < 1e-4
    assert sections["arcface"]["network"] == "arcface_iresnet18"
    big = sections["end_to_end_1080p"]["full"]
    assert big["x264"]["frames"] == 12


def test_the_check_fails_without_its_clip(tmp_path):
    proc = _gpu_check(tmp_path / "out", "--video", str(tmp_path / ".gpu" / "clip.mp4"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "clip.mp4 is missing" in proc.stderr and "fetch_gpu_wheels.sh" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_section_past_its_share_is_killed_and_the_next_runs(clip, tmp_path):
    proc = _gpu_check(
        tmp_path,
        "--simulate",
        "--tiny",
        "--video",
        str(clip),
        "--sections",
        "generator,onnx_runner",
        "--section-seconds",
        "generator=0.2",  # three times that with --tiny; its imports alone take longer
    )
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    generator, runner = report["sections"]["generator"], report["sections"]["onnx_runner"]
    assert generator["status"] == "timed out after 0.6 s"
    assert 0.6 <= generator["seconds"] < 5
    assert runner["status"] == "ok"
    assert proc.returncode == 1


def test_a_failing_section_is_recorded_and_the_next_runs(tmp_path):
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_text("not a video")
    proc = _gpu_check(
        tmp_path / "out",
        "--simulate",
        "--tiny",
        "--video",
        str(not_a_video),
        "--sections",
        "kernels,onnx_runner",
    )
    sections = json.loads((tmp_path / "out" / "gpu_check.json").read_text())["sections"]
    assert sections["kernels"]["status"] == "error"
    assert "decoded no frames" in sections["kernels"]["error"]
    assert "Traceback" in sections["kernels"]["traceback"]
    assert sections["onnx_runner"]["status"] == "ok"
    assert proc.returncode == 1
    assert "decoded no frames" in (tmp_path / "out" / "summary.txt").read_text()


def test_sections_left_without_time_are_not_run_and_the_json_is_written(clip, tmp_path):
    proc = _gpu_check(
        tmp_path, "--video", str(clip), "--sections", "kernels,arcface", "--total-seconds", "5"
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    for name in ("kernels", "arcface"):
        assert report["sections"][name]["status"].startswith("not run: out of time")
    assert not list(tmp_path.glob(".*.tmp"))
    assert "not run: out of time" in (tmp_path / "summary.txt").read_text()


def test_gpu_check_rejects_unknown_sections(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--sections", "kernels,warp9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "warp9" in proc.stderr


def test_gpu_check_without_the_installed_package_says_how_to_get_it(tmp_path):
    """`-S` leaves site-packages (and with it the installed ghost_engine) out."""
    proc = subprocess.run(
        [sys.executable, "-S", str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") <= 1 and "No module named 'ghost_engine'" in proc.stderr
    assert "fetch_gpu_wheels.sh" in proc.stderr


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ((), "no ghost_engine wheel in .whl/"),
        (("ghost_engine-0.1.0-py3-none-any.whl",), "no av wheel in .whl/"),
        (
            ("ghost_engine-0.1.0-py3-none-any.whl", "av-19.0.2-cp312-abi3-x.whl"),
            "no pynvvideocodec wheel in .whl/",
        ),
        (
            (
                "ghost_engine-0.1.0-py3-none-any.whl",
                "av-19.0.2-cp312-abi3-x.whl",
                "pynvvideocodec-2.2.4-cp312-cp312-x.whl",
            ),
            "no clip at .gpu/clip.mp4",
        ),
    ],
)
def test_gpu_check_sh_refuses_to_start_without_a_wheel_or_the_clip(tmp_path, present, missing):
    (tmp_path / "bench").mkdir()
    shutil.copy(BENCH / "gpu_check.sh", tmp_path / "bench")
    (tmp_path / ".whl").mkdir()
    for name in present:
        (tmp_path / ".whl" / name).write_bytes(b"")
    proc = subprocess.run(
        ["bash", str(tmp_path / "bench" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and missing in proc.stderr
    assert "fetch_gpu_wheels.sh" in proc.stderr
