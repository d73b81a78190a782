"""Results JSON schema, provenance, terminal table, chart file and runtime defaults."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import pytest
import torch

from ghost_engine.errors import OptionalDependencyError, UserInputError
from ghost_engine.measure.bench_config import STAGES, BenchConfig, parse_int_list, parse_name_list
from ghost_engine.measure.bench_report import BenchReport, check_report, format_table, write_json
from ghost_engine.measure.chart import write_chart
from ghost_engine.measure.machine import describe_machine, provenance
from ghost_engine.measure.runtimes import count_flops, make_runner
from ghost_engine.measure.stats import Measurement, efficiency
from ghost_engine.runtime.defaults import DEFAULTS_PATH, default_runtime, load_defaults

REPO = Path(__file__).resolve().parent.parent


def _stage(name: str, unit: str, per_s: float) -> dict:
    m = Measurement((1.0 / per_s,), items=1, warmup=1)
    return {
        "name": name,
        "unit": unit,
        "implementation": "x",
        "per_s": m.per_s,
        "frames_per_s": m.per_s,
        "measurement": m.to_dict(),
    }


def _report() -> BenchReport:
    speeds = {"decode": 90.0, "detect": 12.0, "generator": 1.4, "encode": 30.0}
    stages = [_stage(n, u, speeds.get(n, 50.0)) for n, u in STAGES]
    sweep = [
        {
            "runtime": "torch",
            "batch_size": b,
            "items_per_s": 1.3 + 0.1 * b,
            "ms_per_item": 1000 / (1.3 + 0.1 * b),
            "achieved_tflop_per_s": (1.3 + 0.1 * b) * 62e9 / 1e12,
        }
        for b in (1, 8)
    ]
    eff = efficiency(1.2, {s["name"]: s["frames_per_s"] for s in stages})
    return BenchReport(
        provenance=provenance(),
        settings={"device": "cpu", "frames": 24},
        random_weights=True,
        stages=stages,
        generator=sweep,
        end_to_end={"frames": 24, "frames_per_s": 1.2},
        efficiency=eff.to_dict(),
        memory={"peak_rss_mib": 2000.0, "process_peak_rss_mib": 2100.0},
        notes=["random weights"],
    )


def test_report_has_machine_commit_and_date():
    data = _report().to_dict()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert data["commit"].split("+")[0] == head
    assert data["date"][:4].isdigit() and "T" in data["date"]
    machine = data["machine"]
    assert machine["logical_cores"] >= 1 and machine["ram_gib"] > 0
    assert machine["torch"] == torch.__version__
    assert machine["onnxruntime"] and machine["python"] and machine["cpu"]
    assert data["efficiency"]["slowest_stage"] == "generator"
    assert data["efficiency"]["value"] == pytest.approx(1.2 / 1.4, abs=1e-4)


def test_json_round_trip_and_schema_errors(tmp_path):
    data = _report().to_dict()
    out = tmp_path / "bench.json"
    write_json(data, out)
    loaded = json.loads(out.read_text())
    check_report(loaded)
    assert [s["name"] for s in loaded["stages"]] == [n for n, _ in STAGES]

    broken = dict(loaded, stages=loaded["stages"][::-1])
    with pytest.raises(ValueError, match="pipeline order"):
        check_report(broken)
    missing = {k: v for k, v in loaded.items() if k != "efficiency"}
    with pytest.raises(ValueError, match="efficiency"):
        check_report(missing)
    wrong = dict(loaded, random_weights="yes")
    with pytest.raises(ValueError, match="random_weights"):
        check_report(wrong)
    no_cpu = dict(loaded, machine={k: v for k, v in loaded["machine"].items() if k != "cpu"})
    with pytest.raises(ValueError, match="cpu"):
        check_report(no_cpu)


def test_table_lists_every_stage_and_the_efficiency():
    text = format_table(_report().to_dict())
    for name, _ in STAGES:
        assert f"\n{name} " in text
    assert "efficiency: 0.857" in text
    assert "RANDOM" in text


def test_chart_is_a_readable_png(tmp_path):
    path = write_chart(_report().to_dict(), tmp_path / "bench.png")
    image = cv2.imread(str(path))
    assert image is not None
    assert image.shape[0] >= 400 and image.shape[1] >= 1000
    assert float(image.std()) > 10  # bars, text and lines, not a blank canvas


def test_describe_machine_counts_cores():
    import os

    assert describe_machine()["logical_cores"] == os.cpu_count()


def test_option_lists_parse_and_validate(tmp_path):
    assert parse_int_list("1,8,32", "--batch-sizes") == (1, 8, 32)
    assert parse_name_list("torch,onnxruntime,torch") == ("torch", "onnxruntime")
    with pytest.raises(UserInputError, match="--batch-sizes"):
        parse_int_list("1,x", "--batch-sizes")
    with pytest.raises(UserInputError, match="--runtime"):
        BenchConfig(video=tmp_path / "v.mp4", runtimes=("tensorflow",))
    with pytest.raises(UserInputError, match="--batch-sizes"):
        BenchConfig(video=tmp_path / "v.mp4", batch_sizes=(0,))


@pytest.mark.slow  # the first FlopCounterMode use imports torch's tracing stack (~10 s)
def test_flop_count_of_a_known_layer():
    assert count_flops(torch.nn.Linear(10, 20, bias=False), (torch.zeros(3, 10),)) == 2 * 3 * 200


def test_tensorrt_runtime_is_refused_with_a_reason(tmp_path):
    with pytest.raises((OptionalDependencyError, UserInputError), match="TensorRT|tensorrt"):
        make_runner("tensorrt", torch.nn.Identity(), "cpu", tmp_path, "G_unet_2blocks")
    with pytest.raises(UserInputError, match="unknown runtime"):
        make_runner("tflite", torch.nn.Identity(), "cpu", tmp_path, "G_unet_2blocks")


def test_default_runtime_reads_the_table(tmp_path):
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps({"devices": {"cpu": {"G_unet_2blocks": "onnxruntime"}}}))
    assert default_runtime("G_unet_2blocks", "cpu", path=path) == "onnxruntime"
    assert default_runtime("arcface_iresnet100", "cpu", path=path) == "torch"
    assert default_runtime("G_unet_2blocks", "cuda", path=path) == "torch"
    assert default_runtime("scrfd_10g_bnkps", "cuda", path=path) == "onnxruntime"
    with pytest.raises(UserInputError, match="device"):
        default_runtime("G_unet_2blocks", "tpu", path=path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"devices": {"cpu": {"G_unet_2blocks": "tflite"}}}))
    with pytest.raises(UserInputError, match="tflite"):
        default_runtime("G_unet_2blocks", "cpu", path=bad)


def test_packaged_defaults_name_a_runtime_for_every_network():
    if not DEFAULTS_PATH.is_file():
        pytest.fail(f"{DEFAULTS_PATH} is missing; run bench/cpu_runtimes.py")
    table = load_defaults(DEFAULTS_PATH)["devices"]["cpu"]
    for name in ("G_unet_1blocks", "G_unet_2blocks", "G_unet_3blocks", "arcface_iresnet100"):
        assert table[name] in ("torch", "onnxruntime")
        assert default_runtime(name, "cpu") == table[name]
