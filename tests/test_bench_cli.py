"""`ghost-engine bench` end to end on a few frames of a real clip."""

from __future__ import annotations

import json

import cv2
import pytest
from click.testing import CliRunner

from ghost_engine.cli import cli
from ghost_engine.errors import InputFileNotFoundError
from ghost_engine.measure.bench_config import STAGE_NAMES, BenchConfig
from ghost_engine.measure.bench_report import check_report
from ghost_engine.measure.workload import generator_installed


def test_missing_video_is_reported_before_loading_models(tmp_path):
    result = CliRunner().invoke(cli, ["bench", str(tmp_path / "nope.mp4"), "-q"])
    assert isinstance(result.exception, InputFileNotFoundError)
    assert "nope.mp4" in str(result.exception)


def test_bad_batch_list_is_a_user_error(tmp_path):
    result = CliRunner().invoke(cli, ["bench", str(tmp_path / "v.mp4"), "--batch-sizes", "1,a"])
    assert "--batch-sizes" in str(result.exception)


@pytest.mark.slow
def test_bench_runs_every_stage_on_a_real_clip(media, tmp_path):
    video = media / "videos" / "dance.mp4"
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    args = ["bench", str(video), "--frames", "2", "--batch-sizes", "1", "--repeats", "1"]
    args += ["--warmup", "0", "--pipeline-batch", "2", "--generator-blocks", "1"]
    args += ["--pipeline-runtime", "torch"]  # no one-off ONNX export in a unit test
    args += ["--enhance"]  # the super-resolution stage is reported too
    args += ["--json", str(out), "--plot", str(plot), "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "efficiency:" in result.output

    data = json.loads(out.read_text())
    check_report(data)
    assert [s["name"] for s in data["stages"]] == list(STAGE_NAMES)
    for stage in data["stages"]:
        assert stage["per_s"] > 0 and stage["frames_per_s"] > 0, stage
    fps = {s["name"]: s["frames_per_s"] for s in data["stages"]}
    assert [(g["runtime"], g["batch_size"]) for g in data["generator"]] == [("torch", 1)]
    for row in data["generator"]:
        tflops = row["items_per_s"] * 32.62e9 / 1e12
        assert row["achieved_tflop_per_s"] == pytest.approx(tflops, rel=1e-3)
    e2e = data["end_to_end"]
    assert e2e["frames"] == 2 and e2e["frames_per_s"] > 0
    assert e2e["faces_swapped"] == 2  # one face in every frame of dance.mp4
    eff = data["efficiency"]
    assert eff["slowest_fps"] == pytest.approx(min(fps.values()), rel=1e-3)
    assert eff["value"] == pytest.approx(e2e["frames_per_s"] / min(fps.values()), rel=1e-3)
    assert data["random_weights"] == (
        not generator_installed(BenchConfig(video=video, generator_blocks=1))
    )
    assert data["memory"]["peak_rss_mib"] > 100
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[1] >= 1000
