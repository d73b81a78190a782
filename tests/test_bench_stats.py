"""The timing rule (warm-up excluded, median of repeats), efficiency, memory peaks."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ghost_engine.measure.memory import MemorySampler, process_peak_rss_mib
from ghost_engine.measure.stages import StageResult
from ghost_engine.measure.stats import Measurement, efficiency, measure
from ghost_engine.measure.suite import cpu_ceiling


class _FakeWork:
    """Each call advances a fake clock by the next programmed duration."""

    def __init__(self, durations: list[float]) -> None:
        self.durations = list(durations)
        self.now = 0.0
        self.calls = 0

    def __call__(self) -> None:
        self.now += self.durations[self.calls]
        self.calls += 1

    def clock(self) -> float:
        return self.now


def test_warmup_calls_are_run_but_not_timed():
    work = _FakeWork([50.0, 40.0, 1.0, 3.0, 2.0])
    m = measure(
        work, items=4, warmup=2, repeats=3, clock=work.clock, cpu_clock=lambda: 2 * work.now
    )
    assert work.calls == 5
    assert m.samples_s == (1.0, 3.0, 2.0)
    assert m.cpu_samples_s == (2.0, 6.0, 4.0)  # two busy cores
    assert m.cpu_median_s == 4.0
    assert m.warmup == 2
    assert m.median_s == 2.0
    assert m.per_s == pytest.approx(2.0)  # 4 items / 2 s


def test_median_ignores_one_slow_repeat():
    work = _FakeWork([0.5, 0.5, 9.0, 0.7, 0.6])
    m = measure(work, items=1, warmup=0, repeats=5, clock=work.clock)
    assert m.median_s == pytest.approx(0.6)
    assert m.per_s == pytest.approx(1 / 0.6)


def test_even_number_of_repeats_takes_the_middle_mean():
    m = Measurement((1.0, 4.0, 2.0, 3.0), items=10, warmup=1)
    assert m.median_s == pytest.approx(2.5)
    assert m.to_dict()["per_s"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"warmup": -1}, "warmup"), ({"repeats": 0}, "repeats")],
)
def test_measure_rejects_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        measure(lambda: None, items=1, **kwargs)


def test_measurement_needs_samples_and_items():
    with pytest.raises(ValueError, match="at least one"):
        Measurement((), items=1, warmup=0)
    with pytest.raises(ValueError, match="items"):
        Measurement((1.0,), items=0, warmup=0)


def test_efficiency_is_end_to_end_over_the_slowest_stage():
    eff = efficiency(1.2, {"decode": 200.0, "generator": 1.5, "detect": 14.0})
    assert eff.slowest_stage == "generator"
    assert eff.slowest_fps == 1.5
    assert eff.value == pytest.approx(0.8)
    assert eff.to_dict() == {
        "value": 0.8,
        "e2e_fps": 1.2,
        "slowest_stage": "generator",
        "slowest_fps": 1.5,
    }


@pytest.mark.parametrize(
    ("e2e", "stages", "message"),
    [(1.0, {}, "at least one"), (0.0, {"a": 1.0}, "> 0"), (1.0, {"a": 0.0}, "positive")],
)
def test_efficiency_rejects_meaningless_input(e2e, stages, message):
    with pytest.raises(ValueError, match=message):
        efficiency(e2e, stages)


def test_memory_sampler_sees_a_temporary_allocation():
    with MemorySampler(interval_s=0.005) as sampler:
        base = sampler.peak.rss_mib
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
        time.sleep(0.3)  # the sampling thread must catch it before it is freed
        del block
    assert sampler.peak.rss_mib >= base + 150
    assert process_peak_rss_mib() >= sampler.peak.rss_mib - 1
    assert "peak_gpu_allocated_mib" not in sampler.peak.to_dict()


def _stage(name: str, unit: str, wall_s: float, cpu_s: float, faces_per_frame: float = 1.0):
    m = Measurement((wall_s,), items=2, warmup=0, cpu_samples_s=(cpu_s,))
    fps = m.per_s if unit == "frames" else m.per_s / faces_per_frame
    return StageResult(name, unit, "x", m, fps)


def test_cpu_ceiling_counts_every_stage_on_the_cores():
    # generator: 2 faces in 2 s wall using 4 CPU s (two cores); 1 face per frame
    stages = [
        _stage("detect", "frames", 0.2, 0.2),
        _stage("generator", "faces", 2.0, 4.0),
        _stage("encode", "frames", 0.2, 0.4),
    ]
    assert stages[1].cpu_s_per_frame == pytest.approx(2.0)
    out = cpu_ceiling(stages, cores=2)
    # per frame: 0.1 + 2.0 + 0.2 = 2.3 CPU s on 2 cores -> 1.15 s > the generator's 1.0 s
    assert out["cpu_s_per_frame_total"] == pytest.approx(2.3)
    assert out["efficiency_ceiling_all_overlapped"] == pytest.approx(1.0 / 1.15, abs=1e-4)
    assert cpu_ceiling(stages, cores=8)["efficiency_ceiling_all_overlapped"] == 1.0
