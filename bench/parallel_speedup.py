"""What the two-phase run can gain: analysis pass and synthesis per frame on the CPU,
the speed-up Amdahl's law predicts from them for 1, 2, 4 and 8 workers, and, for the
worker counts the machine has cores for, the measured speed-up beside it.

The clip is nggyup.mp4 from 1.0 s (one face), the face path dlib's (detector,
recogniser, 68 landmarks: no model files are needed) with the random-weight generator
of the default architecture (2 blocks) on the default CPU runtime. In one process it

1. runs the analysis pass (`parallel.planning.write_plan`): decode, detect, track,
   match, smooth, plus the synthesis of the calls where mask parameters are due;
2. synthesises and encodes every segment from the plan (`segment_work`), after one
   warm-up segment that loads the models;

then predicts S(W) = 1 / ((1 - p) + p / W) with p = synthesis / (analysis + synthesis),
the share of the two-phase work that the workers split. `--measure` also times
`ghost-engine run` sequentially and with `--workers W` for each W up to the usable
cores (each worker one share of them). Writes bench/results/parallel_speedup.json.

    python bench/parallel_speedup.py [--frames 60] [--segment-seconds 0.5] [--measure]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.measure.machine import describe_machine, git_commit
from ghost_engine.parallel.plan import PLAN_NAME, read_plan
from ghost_engine.parallel.planning import write_plan
from ghost_engine.parallel.segment_work import SegmentSpec, synthesise_segment, worker_threads
from ghost_engine.pipeline.runner import PipelineConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.pipeline.video_job import segment_format
from ghost_engine.shared_paths import media_dir
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.reader import probe_video
from ghost_engine.video.segments import SegmentPlan

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "parallel_speedup.json"
START_S = 1.0
WORKERS = (1, 2, 4, 8)


def _config(models: Path) -> SwapConfig:
    return SwapConfig(
        generator="random", detector="dlib", recognizer="dlib", models_dir=models, batch_size=8
    )


def measure_phases(clip: Path, source: Path, frames: int, segment_s: float, work: Path) -> dict:
    info = probe_video(clip)
    end_s = START_S + frames / float(info.rate)
    config = _config(work / "models")
    stage = build_swap_stage(config, [[source]])
    segments = SegmentPlan(START_S, segment_s, info.time_base)
    fingerprint = {"bench": "parallel_speedup"}
    started = time.perf_counter()
    done = write_plan(
        stage,
        target=clip,
        segments=segments,
        start_s=START_S,
        end_s=end_s,
        folder=work,
        fingerprint=fingerprint,
        pipeline=PipelineConfig(batch_size=config.batch_size),
    )
    analysis_s = time.perf_counter() - started
    stage.close()
    plan = read_plan(work / PLAN_NAME, fingerprint)
    fmt, suffix = segment_format("ffv1")
    spec = SegmentSpec(
        config=config,
        target=clip,
        work=work,
        plan_fingerprint=fingerprint,
        encode=EncodeSettings(codec="ffv1"),
        format_name=fmt,
        suffix=suffix,
        width=info.width,
        height=info.height,
        rate=info.rate,
        segments=segments,
        pts_offset=round(START_S / info.time_base),
    )
    warm = time.perf_counter()
    synthesise_segment(spec, plan.segments[0])
    load_s = time.perf_counter() - warm
    started = time.perf_counter()
    for segment in plan.segments:
        synthesise_segment(spec, segment)
    synthesis_s = time.perf_counter() - started
    count = plan.frame_count()
    return {
        "frames": count,
        "segments": len(plan.segments),
        "analysis_pass_s": round(analysis_s, 3),
        "analysis_pass_s_per_frame": round(analysis_s / count, 4),
        "analysis_calls_synthesised": [done["synthesised_calls"], done["calls"]],
        "analysis_step_s": done["timings"],
        "first_segment_with_model_load_s": round(load_s, 3),
        "synthesis_s": round(synthesis_s, 3),
        "synthesis_s_per_frame": round(synthesis_s / count, 4),
    }


def predict(phases: dict) -> dict:
    a, s = phases["analysis_pass_s"], phases["synthesis_s"]
    p = s / (a + s)
    return {
        "parallel_fraction": round(p, 4),
        "speedup": {str(w): round(1 / ((1 - p) + p / w), 3) for w in WORKERS},
        "limit": round(1 / (1 - p), 3),
    }


def measure_runs(clip: Path, source: Path, frames: int, segment_s: float, work: Path) -> dict:
    """Wall seconds of `ghost-engine run` sequentially and with --workers W."""
    info = probe_video(clip)
    end_s = START_S + frames / float(info.rate)
    base = [sys.executable, "-m", "ghost_engine", "run", str(clip), "-s", str(source)]
    base += ["--generator", "random", "--detector", "dlib", "--recognizer", "dlib"]
    base += ["--start", str(START_S), "--end", f"{end_s:.4f}", "--codec", "ffv1", "-q", "-y"]
    base += ["--segment-seconds", str(segment_s), "--models-dir", str(work / "models")]
    cores = worker_threads(None, 1)
    runs: dict[str, float] = {}
    for workers in [1, *[w for w in WORKERS if 1 < w <= cores]]:
        out = work / f"run-{workers}.mkv"
        argv = [*base, "-o", str(out)] + (["--workers", str(workers)] if workers > 1 else [])
        started = time.perf_counter()
        subprocess.run(argv, check=True)
        runs[str(workers)] = round(time.perf_counter() - started, 3)
    seq = runs["1"]
    return {
        "wall_s": runs,
        "speedup": {w: round(seq / t, 3) for w, t in runs.items()},
        "note": f"worker counts up to the {cores} usable core(s); each worker a share of them",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--segment-seconds", type=float, default=0.5)
    parser.add_argument("--measure", action="store_true", help="also time real runs")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    media = media_dir()
    clip = media / "videos" / "nggyup.mp4"
    source = media / "faces" / "beckham.jpg"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        phases = measure_phases(clip, source, args.frames, args.segment_seconds, work / "p")
        result = {
            "what": "two-phase run: analysis pass vs synthesis per frame, Amdahl prediction",
            "clip": f"nggyup.mp4 from {START_S} s, {args.frames} frames",
            "face_path": "dlib detector/recogniser/landmarks, generator random (2 blocks)",
            "machine": describe_machine(),
            "commit": git_commit(ROOT),
            "phases": phases,
            "predicted": predict(phases),
        }
        if args.measure:
            result["measured"] = measure_runs(clip, source, args.frames, args.segment_seconds, work)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("phases", "predicted")}, indent=2))
    if "measured" in result:
        print(json.dumps(result["measured"], indent=2))


if __name__ == "__main__":
    main()
