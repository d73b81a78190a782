"""Peak memory against video length: the real face stage through `ghost-engine run`.

Runs the CLI with the random-weight generator (`--generator random`: the real network's
cost without its weights), the default batch size and runtime (ONNX Runtime on the CPU,
the generator exported once into the model folder's `onnx/` cache) and dlib detection
and recognition, on clips of several lengths made by re-encoding `nggyup.mp4` (looped
where a length is beyond it). Each run is a fresh process; its peak resident memory is
its own `ru_maxrss`. The first run uses an empty model folder, so it includes the export
(in a child process, whose peak is recorded beside it); the others reuse the cached file.

Memory independent of length means a slope near zero: the least-squares slope of peak
RSS over frames, in MB per 1,000 frames, over the lengths from `--slope-from` on (a
shorter run ends before the queues, the encoder and the heaps have filled, so its peak
is lower for that reason alone; the slope over all lengths is recorded too). The
generator's speed with the engine's session
settings is compared with ONNX Runtime's defaults at batch 8 (what the engine used
before), the two taking turns on the same cached file. Writes
`bench/results/memory_vs_length.json` with the machine and the commit.

    python bench/memory_vs_length.py [--lengths 30,60,120,240,480,960] [--slope-from 120]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil

from ghost_engine.measure.bench_config import parse_int_list
from ghost_engine.measure.bench_report import write_json_file
from ghost_engine.measure.machine import provenance

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = "G_unet_2blocks"
# Run in each fresh process: the CLI, then its own peak and its children's (the export).
_CHILD = """
import json, resource, sys, time
from ghost_engine.cli import main
t0, code = time.perf_counter(), 0
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
mib = lambda who: resource.getrusage(who).ru_maxrss / 1024
stats = {"exit": code, "seconds": round(time.perf_counter() - t0, 1),
         "peak_rss_mb": round(mib(resource.RUSAGE_SELF), 1),
         "children_peak_rss_mb": round(mib(resource.RUSAGE_CHILDREN), 1)}
with open(sys.argv[1], "w") as fh:
    json.dump(stats, fh)
"""


def loop_clip(source: Path, dest: Path, frames: int) -> None:
    """Re-encode `source` looped until `frames` frames (x264 ultrafast, fresh timestamps)."""
    with av.open(str(source)) as src:
        width, height = src.streams.video[0].width, src.streams.video[0].height
    with av.open(str(dest), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        written = 0
        while written < frames:
            with av.open(str(source)) as src:
                for vf in src.decode(src.streams.video[0]):
                    if written >= frames:
                        break
                    frame = vf.reformat(format="yuv420p")
                    frame.pts, frame.time_base = written, Fraction(1, 30)
                    out.mux(stream.encode(frame))
                    written += 1
        out.mux(stream.encode(None))


class TreeSampler:
    """Samples the resident memory of a process and its children (the export) every
    `interval_s`: the whole machine's cost of a run, which `ru_maxrss` splits in two."""

    def __init__(self, pid: int, interval_s: float = 0.25) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.perf_counter()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree)
            except psutil.Error:
                continue
            self.samples.append((time.perf_counter() - self._t0, rss / 2**20))

    def stop(self) -> dict:
        """The sampled peak and a timeline of at most 60 points (seconds, MB)."""
        self._stop.set()
        self._thread.join()
        step = max(1, len(self.samples) // 60)
        return {
            "sampled_tree_peak_mb": round(max((r for _, r in self.samples), default=0.0), 1),
            "timeline_s_mb": [[round(t, 1), round(r)] for t, r in self.samples[::step]],
        }


def run_cli(clip: Path, out: Path, face: Path, models: Path, extra: list[str]) -> dict:
    """One `ghost-engine run` in a fresh process: its peaks, time and report figures."""
    result, report = out.with_suffix(".stats.json"), out.with_suffix(".report.json")
    argv = ["run", str(clip), "-s", str(face), "-o", str(out), "--generator", "random"]
    argv += ["--models-dir", str(models), "--json", str(report), "-q", *extra]
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(result), *argv])
    sampler = TreeSampler(proc.pid)
    if proc.wait() != 0:
        raise RuntimeError(f"ghost-engine run failed on {clip} (exit {proc.returncode})")
    stats = json.loads(result.read_text())
    if stats["exit"] not in (0, None):
        raise RuntimeError(f"ghost-engine run failed on {clip}: exit {stats['exit']}")
    stats.update(sampler.stop())
    doc = json.loads(report.read_text())
    generator_s = doc["swap_seconds"]["generator"]
    stats.update(
        frames=doc["frames"],
        frames_with_faces=doc["frames_with_faces"],
        generator_s=generator_s,
        # nggyup has one face, so swapped frames are faces
        generator_faces_per_s=round(doc["frames_with_faces"] / generator_s, 3),
        frames_per_s=doc["frames_per_second"],
    )
    return stats


def slope_mb_per_1000(frames: list[int], peaks: list[float]) -> float:
    """Least-squares slope of peak RSS (MB) over length, per 1,000 frames."""
    return float(np.polyfit(np.asarray(frames, float), np.asarray(peaks, float), 1)[0] * 1000)


def generator_speed(onnx_file: Path, rounds: int) -> dict:
    """Faces/s of the generator on 8 faces: ONNX Runtime's default session at batch 8
    (the engine before) against the engine's session and faces per call, taking turns
    (one warm-up round each) so the machine's load falls on both alike."""
    import onnxruntime as ort

    from ghost_engine.backend.sessions import CPU_ONNX_GENERATOR_FACES
    from ghost_engine.runtime.onnx_model import open_session

    rng = np.random.default_rng(0)
    feeds = {
        "target": rng.uniform(-1, 1, (8, 3, 256, 256)).astype(np.float32),
        "z_id": rng.standard_normal((8, 512)).astype(np.float32),
    }
    contenders = {
        "ort_defaults_batch_8": (ort.InferenceSession(str(onnx_file), ort.SessionOptions()), 8),
        f"engine_batch_{CPU_ONNX_GENERATOR_FACES}": (
            open_session(onnx_file),
            CPU_ONNX_GENERATOR_FACES,
        ),
    }
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    for turn in range(rounds + 1):
        for name, (session, step) in contenders.items():
            t0 = time.perf_counter()
            for i in range(0, 8, step):
                session.run(None, {k: v[i : i + step] for k, v in feeds.items()})
            if turn:
                speeds[name].append(8 / (time.perf_counter() - t0))
        print("generator speed", {k: round(v[-1], 3) for k, v in speeds.items() if v}, flush=True)
    before, after = speeds.values()
    return {
        "faces": 8,
        "rounds": rounds,
        "faces_per_s_median": {k: round(statistics.median(v), 3) for k, v in speeds.items()},
        "faces_per_s_best": {k: round(max(v), 3) for k, v in speeds.items()},
        "after_over_before_median_of_rounds": round(
            statistics.median(a / b for a, b in zip(after, before, strict=True)), 3
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="30,60,120,240,480,960")
    parser.add_argument("--slope-from", type=int, default=120)
    parser.add_argument("--first-run", type=int, default=120, help="frames of the export run")
    parser.add_argument("--speed-rounds", type=int, default=8)
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/memory_vs_length.json")
    args = parser.parse_args(argv)
    lengths = sorted(parse_int_list(args.lengths, "--lengths"))
    source = args.media / "videos" / "nggyup.mp4"
    face = args.media / "faces" / "mark.jpg"
    extra = ["--detector", "dlib", "--recognizer", "dlib"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        models = tmp / "models"
        clips = {n: tmp / f"clip{n}.mp4" for n in {args.first_run, *lengths}}
        for n, clip in clips.items():
            loop_clip(source, clip, n)
        first = run_cli(clips[args.first_run], tmp / "first.mp4", face, models, extra)
        first["frames_requested"] = args.first_run
        print("first run (export)", {k: v for k, v in first.items() if k != "timeline_s_mb"})
        runs = []
        for n in lengths:
            stats = run_cli(clips[n], tmp / f"out{n}.mp4", face, models, extra)
            runs.append(stats)
            print(n, "frames", {k: v for k, v in stats.items() if k != "timeline_s_mb"})
        onnx_files = sorted((models / "onnx").glob(f"{GENERATOR}.*.onnx"))
        speed = generator_speed(onnx_files[0], args.speed_rounds)
    for run in runs[:-1]:  # the first run's and the longest run's timelines are kept
        del run["timeline_s_mb"]
    frames = [r["frames"] for r in runs]
    peaks = [r["peak_rss_mb"] for r in runs]
    filled = [i for i, n in enumerate(frames) if n >= args.slope_from]
    filled_slope = slope_mb_per_1000([frames[i] for i in filled], [peaks[i] for i in filled])
    result = {
        **provenance(),
        "settings": {
            "command": "ghost-engine run CLIP -s mark.jpg --generator random " + " ".join(extra),
            "defaults": "batch size 8, runtime auto (ONNX Runtime on the CPU)",
            "clips": "nggyup.mp4 re-encoded (looped past its 289 frames), x264 ultrafast",
            "peak_rss": "ru_maxrss of each run's own process; the export runs in a child, "
            "whose ru_maxrss is children_peak_rss_mb; sampled_tree_peak_mb samples both",
        },
        "first_run_with_export": first,
        "runs": runs,
        "slope_from_frames": args.slope_from,
        "slope_mb_per_1000_frames": round(filled_slope, 2),
        "slope_all_lengths_mb_per_1000_frames": round(slope_mb_per_1000(frames, peaks), 2),
        "peak_rss_mb": max(peaks),
        "generator_speed": speed,
    }
    write_json_file(result, args.out)
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "machine")}, indent=1))


if __name__ == "__main__":
    main()
