"""The GPU check script's logic on a CPU: kernels under the simulator, report on disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPT = BENCH / "gpu_check.py"


def _gpu_check(out: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """The script on the CPU, in a fresh interpreter (it sets the simulator switch)."""
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--device", "cpu", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_gpu_check_runs_its_cpu_logic_and_writes_the_report(media, tmp_path):
    video = str(media / "videos" / "nggyup.mp4")
    sections = "kernels,nvdec,onnx_runner,end_to_end"
    proc = _gpu_check(tmp_path, "--simulate", "--tiny", "--video", video, "--sections", sections)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    kernels = report["sections"]["kernels"]
    assert kernels["status"] == "ok", kernels
    assert kernels["backend"] == "simulator"
    assert kernels["frames_from"].endswith("nggyup.mp4")
    assert set(kernels["max_abs_diff"]) == {
        "nv12_to_rgb",
        "letterbox_levels",
        "warp_affine_batch",
        "fill_hull",
        "erode_zero_border",
        "gaussian_blur",
        "blend_inverse_warp",
    }
    assert kernels["within_one_level"] is True
    assert kernels["max_abs_diff"]["nv12_to_rgb"] == 0
    assert report["sections"]["nvdec"]["status"] == "skipped"
    assert "PyNvVideoCodec" in report["sections"]["nvdec"]["reason"]
    runner = report["sections"]["onnx_runner"]
    assert runner["status"] == "ok", runner
    assert runner["float32"]["max_abs_diff_vs_onnxruntime"] < 1e-4
    e2e = report["sections"]["end_to_end"]
    assert e2e["status"] == "ok", e2e
    clip = e2e["720p"]
    assert clip["flavour"] == "emulated" and clip["decode"] == "upload"
    # 0.3 s of a 30 fps clip through the backend, with and without the encoder
    assert clip["encoded"]["frames"] == clip["no_encode"]["frames"] == 9
    steps = {"decode", "face-analysis", "face-synthesis", "download", "encode"}
    assert set(clip["encoded"]["stage_frames_per_s"]) == steps
    assert 0 < clip["no_encode"]["efficiency"] <= 1.0
    assert clip["encoded"]["swap_seconds"]["paste"] > 0
    assert "kernels" in (tmp_path / "summary.txt").read_text()


def test_gpu_check_rejects_unknown_sections(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--sections", "kernels,warp9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "warp9" in proc.stderr


def test_gpu_check_skips_sections_it_has_no_time_for_and_still_writes_json(tmp_path):
    proc = _gpu_check(tmp_path, "--sections", "nvdec,webcam", "--total-seconds", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    for name in ("nvdec", "webcam"):
        assert report["sections"][name]["status"] == "skipped"
        assert "out of time" in report["sections"][name]["reason"]
    assert not list(tmp_path.glob(".*.tmp"))
    assert "out of time" in (tmp_path / "summary.txt").read_text()


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


def test_gpu_check_sh_refuses_to_start_without_the_project_wheel(tmp_path):
    (tmp_path / "bench").mkdir()
    shutil.copy(BENCH / "gpu_check.sh", tmp_path / "bench")
    (tmp_path / ".whl").mkdir()
    proc = subprocess.run(
        ["bash", str(tmp_path / "bench" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "no ghost_engine wheel in .whl/" in proc.stderr
