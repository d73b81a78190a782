"""Peak memory against video length: a long and a short 720p clip through `ghost-engine run`.

Builds a long clip (default 3,000 frames) and a short one (300) by looping
`nggyup.mp4`, runs the CLI on each in a fresh subprocess with `--generator passthrough`,
and records each run's peak resident memory (its own `ru_maxrss`). Streaming means the
difference stays small (the acceptance bound is 150 MB). Writes
`bench/results/memory_vs_length.json` with the machine and git commit.

    python bench/memory_vs_length.py [--long 3000] [--short 300] [--generator passthrough]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
_CHILD = """
import json, resource, sys, time
from ghost_engine.cli import main
t0, code = time.perf_counter(), 0
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
stats = {"exit": code, "peak_rss_mb": peak_mb, "seconds": time.perf_counter() - t0}
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


def run_cli(clip: Path, out: Path, face: Path, generator: str, extra: list[str]) -> dict:
    result = out.with_suffix(".json")
    argv = ["run", str(clip), "-s", str(face), "-o", str(out), "--generator", generator, "-q"]
    subprocess.run([sys.executable, "-c", _CHILD, str(result), *argv, *extra], check=True)
    return json.loads(result.read_text())


def git_commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, default=3000)
    parser.add_argument("--short", type=int, default=300)
    parser.add_argument("--generator", default="passthrough")
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--extra", nargs="*", default=["--detector", "dlib"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/memory_vs_length.json")
    args = parser.parse_args()
    source = args.media / "videos" / "nggyup.mp4"
    face = args.media / "faces" / "mark.jpg"
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, frames in (("short", args.short), ("long", args.long)):
            clip = Path(tmp) / f"{label}.mp4"
            loop_clip(source, clip, frames)
            t0 = time.perf_counter()
            stats = run_cli(clip, Path(tmp) / f"{label}-out.mp4", face, args.generator, args.extra)
            stats.update(frames=frames, wall_s=round(time.perf_counter() - t0, 1))
            runs[label] = stats
            print(label, stats, flush=True)
    result = {
        "runs": runs,
        "peak_rss_difference_mb": runs["long"]["peak_rss_mb"] - runs["short"]["peak_rss_mb"],
        "bound_mb": 150,
        "generator": args.generator,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "max_rss_unit": "ru_maxrss of each run's own process",
        },
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
