"""Peak memory against video length: the real face stage through `ghost-engine run`.

The default CPU path (`--path default`): SCRFD detection, ArcFace recognition and z_id,
the generator on ONNX Runtime (exported once into the model folder's `onnx/` cache),
2d106det landmarks, at the default batch size and runtime. Its model files are the ones
the test suite makes (`tests/model_files.py`: the published layouts with constructed
weights), imported into a temporary store under a manifest of their own hashes
(`$GHOST_ENGINE_MODEL_MANIFEST`); the generator has random weights (`--generator random`:
the real network's cost without its weights). `--path dlib` runs dlib detection and
recognition instead. Clips of several lengths are made by re-encoding `nggyup.mp4`
(looped where a length is beyond it). Each run is a fresh process; its peak resident
memory is its own `ru_maxrss`. The first run has an empty `onnx/` cache, so it includes
the export (in a child process, whose peak is recorded beside it); the others reuse it.

Memory independent of length means a slope near zero: the least-squares slope of peak
RSS over frames, in MB per 1,000 frames, over the lengths from `--slope-from` on (a
shorter run ends before the queues, the encoder and the heaps have filled, so its peak
is lower for that reason alone; the slope over all lengths is recorded too).

`--ablations` reruns the first length past the fill once per memory setting of the
engine, each with that one setting undone in the run's process (`ABLATIONS`), so each
setting's saving is measured on the same path. `--before SRC` runs the same clip with
an older source tree (a `git archive` of it) on the same store. The generator's speed
with the engine's session settings is compared with ONNX Runtime's defaults at batch 8
(what the engine used before), the two taking turns on the same cached file. Writes
`bench/results/memory_vs_length.json` with the machine and the commit.

    python bench/memory_vs_length.py [--lengths 30,60,120,240,480] [--slope-from 120]
        [--ablations] [--before /tmp/ghost-engine-main]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil

from ghost_engine.measure.bench_config import parse_int_list
from ghost_engine.measure.bench_report import write_json_file
from ghost_engine.measure.machine import provenance
from ghost_engine.store.model_store import MANIFEST_ENV

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = "G_unet_2blocks"
# Run in each fresh process: the CLI (after undoing one memory setting, if asked), then
# its own peak and its children's (the export). argv: RESULT ABLATION CLI-ARGS...
_CHILD = """
import json, resource, sys, time
sys.path.insert(0, BENCH)
if sys.argv[2]:
    import memory_vs_length
    memory_vs_length.undo(sys.argv[2])
from ghost_engine.cli import main
t0, code = time.perf_counter(), 0
try:
    main(sys.argv[3:])
except SystemExit as exc:
    code = exc.code
mib = lambda who: resource.getrusage(who).ru_maxrss / 1024
stats = {"exit": code, "seconds": round(time.perf_counter() - t0, 1),
         "peak_rss_mb": round(mib(resource.RUSAGE_SELF), 1),
         "children_peak_rss_mb": round(mib(resource.RUSAGE_CHILDREN), 1)}
with open(sys.argv[1], "w") as fh:
    json.dump(stats, fh)
""".replace("BENCH", repr(str(Path(__file__).resolve().parent)))

# Each memory setting of the engine, and what undoing it in a run's process means (the
# engine as it was before that setting). `inline_weights` and `export_in_process` take
# the file or folder named by $GHOST_ENGINE_BENCH_ONNX.
ABLATIONS = {
    "generator_batch_8": "the generator on ONNX Runtime at 8 faces a call, not 1",
    "memory_pattern": "ONNX Runtime's memory pattern on (its default)",
    "no_heap_trim": "no malloc_trim after loading a session and at its first run",
    "two_arcfaces": "a second ArcFace (fill-rule weights) as the z_id encoder",
    "inline_weights": "the generator's ONNX file with its weights inside the graph",
    "export_in_process": "the export in the run's own process (into an empty cache)",
}
BENCH_ONNX_ENV = "GHOST_ENGINE_BENCH_ONNX"


def undo(ablation: str) -> None:
    """Undo the engine's memory setting `ablation` (a key of `ABLATIONS`) in this process."""
    import os

    from ghost_engine.backend import sessions
    from ghost_engine.export import onnx_cache
    from ghost_engine.pipeline import face_models
    from ghost_engine.runtime import onnx_model

    if ablation == "generator_batch_8":
        sessions.CPU_ONNX_GENERATOR_FACES = 8
    elif ablation == "memory_pattern":
        plain = onnx_model.session_options

        def with_pattern(providers, threads=0):  # type: ignore[no-untyped-def]
            opts = plain(providers, threads)
            opts.enable_mem_pattern = True
            return opts

        onnx_model.session_options = with_pattern
    elif ablation == "no_heap_trim":
        onnx_model.release_free_heap = lambda: None
    elif ablation == "two_arcfaces":
        shared = face_models._Loader.recognizers

        def two(self):  # type: ignore[no-untyped-def]
            matcher, encoder = shared(self)
            return matcher, (self.arcface(None) if encoder is matcher else encoder)

        face_models._Loader.recognizers = two
    elif ablation == "inline_weights":
        inline = Path(os.environ[BENCH_ONNX_ENV])
        onnx_cache.cached_onnx = lambda name, checkpoint, cache_dir: inline
    elif ablation == "export_in_process":
        fresh, cached = Path(os.environ[BENCH_ONNX_ENV]), onnx_cache.cached_onnx
        onnx_cache.export_in_child = onnx_cache.export_apart
        onnx_cache.cached_onnx = lambda name, checkpoint, cache_dir: cached(name, checkpoint, fresh)
    else:
        raise ValueError(f"unknown ablation {ablation!r}; known: {sorted(ABLATIONS)}")


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


@dataclass(frozen=True)
class RunSetup:
    """What every run of one path shares: source photo, model folder, extra CLI
    options and environment, and the command that runs `ghost-engine` (a `python -c`
    script and the paths put before the package, for `--before`)."""

    face: Path
    models: Path
    extra: tuple[str, ...]
    env: dict[str, str]
    pythonpath: tuple[Path, ...] = ()


def run_cli(clip: Path, out: Path, setup: RunSetup, ablation: str = "") -> dict:
    """One `ghost-engine run` in a fresh process: its peaks, time and report figures."""
    result, report = out.with_suffix(".stats.json"), out.with_suffix(".report.json")
    argv = ["run", str(clip), "-s", str(setup.face), "-o", str(out), "--generator", "random"]
    argv += ["--models-dir", str(setup.models), "--json", str(report), "-q", *setup.extra]
    env = dict(setup.env)
    if setup.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(map(str, setup.pythonpath))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(result), ablation, *argv], env=env)
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
    models = doc.get("settings", {}).get("models")
    if models is not None:
        stats["models"] = models
    return stats


def made_store(tmp: Path, env: dict[str, str]) -> Path:
    """A model folder holding the test suite's model files (`tests/model_files.py`),
    imported by `ghost-engine models import` under a manifest of their hashes, which
    `env` names from then on."""
    sys.path.insert(0, str(ROOT / "tests"))
    from model_files import write_model_files, write_own_manifest

    files = write_model_files(tmp / "made")
    env[MANIFEST_ENV] = str(write_own_manifest(files, tmp / "own-models.json"))
    models = tmp / "models"
    command = [sys.executable, "-m", "ghost_engine", "models", "import", str(tmp / "made")]
    subprocess.run([*command, "--models-dir", str(models)], env=env, check=True)
    for path in files.values():
        path.unlink()  # the store holds its own copies
    return models


def source_tree(archive_root: Path, dest: Path) -> Path:
    """An importable `ghost_engine` package from a source tree's folders (engine/ is the
    package, export/, kernels/ and training/ its subpackages, as pyproject maps them)."""
    package = dest / "ghost_engine"
    shutil.copytree(archive_root / "engine", package)
    for sub in ("export", "kernels", "training"):
        shutil.copytree(archive_root / sub, package / sub)
    return dest


def inline_copy(onnx_file: Path, dest: Path) -> Path:
    """`onnx_file` with its external weights put back inside the graph (in a child
    process, so this one stays small)."""
    code = "import onnx, sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, str(onnx_file), str(dest)], check=True)
    return dest


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
    parser.add_argument("--path", choices=("default", "dlib"), default="default")
    parser.add_argument("--lengths", default="30,60,120,240,480")
    parser.add_argument("--slope-from", type=int, default=120)
    parser.add_argument("--first-run", type=int, default=120, help="frames of the export run")
    parser.add_argument("--ablations", action="store_true", help="undo each setting once")
    parser.add_argument("--before", type=Path, help="an older source tree to run too")
    parser.add_argument("--speed-rounds", type=int, default=8)
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/memory_vs_length.json")
    args = parser.parse_args(argv)
    lengths = sorted(parse_int_list(args.lengths, "--lengths"))
    source = args.media / "videos" / "nggyup.mp4"
    face = args.media / "faces" / "mark.jpg"
    env = {k: v for k, v in os.environ.items() if k not in (MANIFEST_ENV, "PYTHONPATH")}
    compared: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.path == "default":
            setup = RunSetup(face, made_store(tmp, env), (), env)
        else:
            extra = ("--detector", "dlib", "--recognizer", "dlib")
            setup = RunSetup(face, tmp / "models", extra, env)
        clips = {n: tmp / f"clip{n}.mp4" for n in {args.first_run, *lengths}}
        for n, clip in clips.items():
            loop_clip(source, clip, n)
        first = run_cli(clips[args.first_run], tmp / "first.mp4", setup)
        first["frames_requested"] = args.first_run
        print("first run (export)", _brief(first), flush=True)
        runs = []
        for n in lengths:
            stats = run_cli(clips[n], tmp / f"out{n}.mp4", setup)
            runs.append(stats)
            print(n, "frames", _brief(stats), flush=True)
        onnx_file = sorted((setup.models / "onnx").glob(f"{GENERATOR}.*.onnx"))[0]
        probe = min((n for n in lengths if n >= args.slope_from), default=lengths[-1])
        if args.ablations:
            compared["ablations"] = ablation_runs(clips[probe], tmp, setup, onnx_file)
            compared["ablations_frames"] = probe
        if args.before is not None:
            compared["before"] = before_runs(args.before, clips[probe], tmp, setup)
            compared["before"]["frames"] = probe
        speed = generator_speed(onnx_file, args.speed_rounds) if args.speed_rounds else None
    for run in runs[:-1]:  # the first run's and the longest run's timelines are kept
        del run["timeline_s_mb"]
    frames = [r["frames"] for r in runs]
    peaks = [r["peak_rss_mb"] for r in runs]
    filled = [i for i, n in enumerate(frames) if n >= args.slope_from]
    filled_slope = slope_mb_per_1000([frames[i] for i in filled], [peaks[i] for i in filled])
    command = "ghost-engine run CLIP -s mark.jpg --generator random " + " ".join(setup.extra)
    result = {
        **provenance(),
        "settings": {
            "path": args.path,
            "command": command.strip(),
            "models": "tests/model_files.py's files imported under their own manifest"
            if args.path == "default"
            else "dlib; the generator only",
            "defaults": "batch size 8, runtime auto (ONNX Runtime on the CPU)",
            "clips": "nggyup.mp4 re-encoded (looped past its 289 frames), x264 ultrafast",
            "peak_rss": "ru_maxrss of each run's own process; the export runs in a child, "
            "whose ru_maxrss is children_peak_rss_mb; sampled_tree_peak_mb samples both",
        },
        "first_run_with_export": first,
        "runs": runs,
        "peak_rss_mb_by_frames": dict(zip(map(str, frames), peaks, strict=True)),
        "slope_from_frames": args.slope_from,
        "slope_mb_per_1000_frames": round(filled_slope, 2),
        "slope_all_lengths_mb_per_1000_frames": round(slope_mb_per_1000(frames, peaks), 2),
        "peak_rss_mb": max(peaks),
        **compared,
        "generator_speed": speed,
    }
    write_json_file(result, args.out)
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "machine")}, indent=1))


def before_runs(tree: Path, clip: Path, tmp: Path, setup: RunSetup) -> dict:
    """Two runs of `clip` with the source tree `tree`, on a copy of the store without its
    `onnx/` cache (an older tree may cache another format under the same name): the
    first exports, the second reuses what the first cached."""
    models = tmp / "old-models"
    shutil.copytree(setup.models, models, ignore=shutil.ignore_patterns("onnx"))
    old = dataclass_replace(setup, models=models, pythonpath=(source_tree(tree, tmp / "old"),))
    found: dict = {"source": str(tree)}
    for name in ("first_run_with_export", "cached"):
        stats = run_cli(clip, tmp / f"before-{name}.mp4", old)
        stats.pop("timeline_s_mb")
        found[name] = stats
        print("before", name, _brief(stats), flush=True)
    shutil.rmtree(models)
    return found


def ablation_runs(clip: Path, tmp: Path, setup: RunSetup, onnx_file: Path) -> dict:
    """One run of `clip` per entry of `ABLATIONS`: its peak, and how much above the
    engine's own run of the same clip (run again here, beside them)."""
    inline = inline_copy(onnx_file, tmp / "inline.fp32.onnx")
    targets = {"inline_weights": inline, "export_in_process": tmp / "fresh-onnx"}
    base = run_cli(clip, tmp / "base.mp4", setup)["peak_rss_mb"]
    print("engine as is", base, flush=True)
    found: dict = {"engine_peak_rss_mb": base}
    for name, what in ABLATIONS.items():
        env = dict(setup.env)
        if name in targets:
            env[BENCH_ONNX_ENV] = str(targets[name])
        stats = run_cli(clip, tmp / f"{name}.mp4", dataclass_replace(setup, env=env), name)
        found[name] = {
            "undone": what,
            "peak_rss_mb": stats["peak_rss_mb"],
            "children_peak_rss_mb": stats["children_peak_rss_mb"],
            "saved_mb": round(stats["peak_rss_mb"] - base, 1),
        }
        print(name, found[name], flush=True)
    inline.unlink()
    return found


def _brief(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if k not in ("timeline_s_mb", "models")}


if __name__ == "__main__":
    main()
