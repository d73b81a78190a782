"""`run_bench`: every measurement of `ghost-engine bench`, in one report."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from ghost_engine.measure.bench_config import BenchConfig
from ghost_engine.measure.bench_report import BenchReport
from ghost_engine.measure.endtoend import EndToEndResult, measure_end_to_end
from ghost_engine.measure.machine import provenance
from ghost_engine.measure.memory import process_peak_rss_mib
from ghost_engine.measure.runtimes import time_network
from ghost_engine.measure.stages import StageResult, measure_stages
from ghost_engine.measure.stats import efficiency
from ghost_engine.measure.workload import Workload, prepare
from ghost_engine.runtime.devices import check_device

Log = Callable[[str], None]


def _notes(work: Workload, config: BenchConfig) -> list[str]:
    impl = work.implementations()
    notes = []
    if work.random_weights:
        notes.append(
            "generator and z_id encoder use random fill-rule weights of the right "
            "architecture (no checkpoint installed); timing does not depend on the values"
        )
    notes.append(
        f"identity = the per-frame matching recogniser ({impl['identity']}); the source z_id "
        f"({impl['z_id']}) is computed once per run, not per frame"
    )
    notes.append(
        f"{work.faces_per_frame:.2f} faces per frame found in the {len(work.frames)} "
        "benchmark frames; face stages' frames/s = faces/s / faces per frame"
    )
    notes.append(f"torch intra-op threads: {torch.get_num_threads()}")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        notes.append(
            f"the machine was busy (1-minute load {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores): other processes shared the CPU during the measurement"
        )
    return notes


def _eager_generator(work: Workload, name: str) -> torch.nn.Module:
    """The PyTorch generator with the pipeline's weights: the sweep's reference, also when
    the pipeline itself runs the generator through ONNX Runtime."""
    from ghost_engine import networks
    from ghost_engine.networks.fill import fill_module
    from ghost_engine.store import ModelStore

    if work.random_weights:
        return fill_module(networks.build(name))
    return networks.load(name, ModelStore(work.swap_config.models_dir).path(name))


def _sweep(work: Workload, config: BenchConfig, log: Log) -> list[dict]:
    runner = work.generator
    if runner.module is None:
        return []
    name = f"G_unet_{config.generator_blocks}blocks"
    pipeline_module = runner.module
    module = (
        pipeline_module
        if isinstance(pipeline_module, torch.nn.Module)
        else _eager_generator(work, name)
    )
    with tempfile.TemporaryDirectory(prefix="ghost-bench-onnx-") as tmp:
        rows = time_network(
            name,
            module,
            runtimes=config.runtimes,
            batch_sizes=config.batch_sizes,
            device=config.device,
            warmup=config.warmup,
            repeats=config.repeats,
            workdir=Path(tmp),
            on_result=lambda r: log(
                f"generator {r.runtime} batch {r.batch_size}: {r.items_per_s:.3f} faces/s"
            ),
        )
    if isinstance(pipeline_module, torch.nn.Module):
        runner.module = pipeline_module.to(config.device)
    return [r.to_dict() for r in rows]


def limits(stages: list[StageResult], e2e: EndToEndResult) -> dict:
    """Where the end-to-end time goes, from the last timed run's own bookkeeping.

    `generator_slowdown_in_pipeline` > 1 means other threads took cores from the
    generator; `other_face_steps_s_per_frame` is work done serially in the face stage's
    thread beside the generator; `face_thread_busy_fraction` near 1 means that thread
    is the bottleneck.
    """
    alone = {s.name: s for s in stages}
    wall = e2e.runs_s[-1]
    swap = e2e.swap_seconds
    out: dict = {"face_stage_seconds_per_frame": {}}
    if e2e.faces_swapped and "generator" in swap and "generator" in alone:
        inside = swap["generator"] / e2e.faces_swapped
        own = 1.0 / alone["generator"].measurement.per_s
        out["generator_s_per_face_alone"] = round(own, 4)
        out["generator_s_per_face_in_pipeline"] = round(inside, 4)
        out["generator_slowdown_in_pipeline"] = round(inside / own, 4)
    other = sum(v for k, v in swap.items() if k != "generator")
    out["other_face_steps_s_per_frame"] = round(other / e2e.frames, 4)
    out["face_stage_seconds_per_frame"] = {k: round(v / e2e.frames, 4) for k, v in swap.items()}
    busy = {k: round(v / wall, 4) for k, v in e2e.step_seconds.items()}
    out["thread_busy_fraction"] = busy
    out.update(cpu_ceiling(stages))
    return out


def cpu_ceiling(stages: list[StageResult], cores: int | None = None) -> dict:
    """The best efficiency this machine allows even with every stage overlapped.

    A frame needs the CPU seconds of every stage; spread over `cores` cores it cannot
    take less than their sum / cores, nor less than the slowest stage's own time.
    """
    cores = cores or len(os.sched_getaffinity(0))
    cpu = {s.name: s.cpu_s_per_frame for s in stages if s.cpu_s_per_frame is not None}
    if len(cpu) != len(stages):
        return {}
    slowest = min(stages, key=lambda s: s.frames_per_s)
    floor = max(1.0 / slowest.frames_per_s, sum(cpu.values()) / cores)
    return {
        "cpu_s_per_frame": {k: round(v, 5) for k, v in cpu.items()},
        "cpu_s_per_frame_total": round(sum(cpu.values()), 4),
        "cores": cores,
        "efficiency_ceiling_all_overlapped": round(1.0 / slowest.frames_per_s / floor, 4),
    }


def run_bench(config: BenchConfig, log: Log = lambda _msg: None) -> BenchReport:
    """Prepare, time every stage alone, sweep the generator, run end to end."""
    check_device(config.device)
    load_start = os.getloadavg()[0]
    log(f"preparing {config.video} ({config.frames} frames) and the models")
    work = prepare(config)
    log("timing each stage alone")
    stages = measure_stages(work, config)
    for s in stages:
        log(f"  {s.name}: {s.frames_per_s:.3f} frames/s")
    log("timing the generator per batch size and runtime")
    sweep = _sweep(work, config, log)
    log("running the whole pipeline end to end")
    e2e = measure_end_to_end(work, config)
    eff = efficiency(e2e.fps, {s.name: s.frames_per_s for s in stages})
    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in dataclasses.asdict(config).items()
        if k != "models_dir"
    }
    settings["frames_used"] = len(work.frames)
    settings["video_size"] = [work.info.width, work.info.height]
    memory = {**e2e.memory.to_dict(), "process_peak_rss_mib": round(process_peak_rss_mib(), 1)}
    prov = provenance()
    prov["machine"]["load_average_1min_start"] = round(load_start, 2)
    return BenchReport(
        provenance=prov,
        settings=settings,
        random_weights=work.random_weights,
        stages=[s.to_dict() for s in stages],
        generator=sweep,
        end_to_end={**e2e.to_dict(), "limits": limits(stages, e2e)},
        efficiency=eff.to_dict(),
        memory=memory,
        notes=_notes(work, config),
    )
