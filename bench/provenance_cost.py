"""What a C2PA manifest costs on a 720p video: seconds per GB to sign, and to verify.

Builds 720p H.264 MP4 files of growing length by copying the packets of `nggyup.mp4`
(1280x720) back to back (no re-encoding; +faststart, as the engine's outputs are), then
times what a run adds after muxing: `provenance.sign.seal_file` on the finished file
(the ingredients' SHA-256, the C2PA library hashing the file and writing its signed
copy, the rename), with the file as target and one source photo as ingredients. It also
times `provenance.verify.verify_file` (the library's reader, every hash checked). Each
size is timed `--repeats` times (median); GB here is 10^9 bytes. The page cache is warm
(each file was just written), so these are CPU and memory costs, not a cold disk's.

    python bench/provenance_cost.py [--loops 1 10 50] [--repeats 3]

Writes `bench/results/provenance_cost.json` with the machine and git commit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

from ghost_engine.measure.machine import provenance as run_provenance
from ghost_engine.provenance.manifest import Ingredient, ProvenanceConfig, file_sha256
from ghost_engine.provenance.sign import check_provenance, seal_file
from ghost_engine.provenance.verify import verify_file
from ghost_engine.shared_paths import media_dir

ROOT = Path(__file__).resolve().parent.parent
GB = 1e9


def loop_packets(source: Path, dest: Path, loops: int) -> tuple[int, int, int]:
    """`source`'s video packets `loops` times over into `dest` (timestamps shifted); the
    frame count, width and height."""
    frames = 0
    with (
        av.open(str(source)) as src,
        av.open(str(dest), "w", options={"movflags": "+faststart"}) as out,
    ):
        video = src.streams.video[0]
        stream = out.add_stream_from_template(video)
        width, height = video.codec_context.width, video.codec_context.height
        packets = [p for p in src.demux(video) if p.size]
        span = max(int(p.pts) + int(p.duration or 0) for p in packets) - min(
            int(p.pts) for p in packets
        )
        for loop in range(loops):
            for packet in packets:
                copy = av.Packet(bytes(packet))
                copy.pts = int(packet.pts) + loop * span
                copy.dts = int(packet.dts) + loop * span
                copy.duration = packet.duration
                copy.is_keyframe = packet.is_keyframe
                copy.time_base = packet.time_base
                copy.stream = stream
                out.mux(copy)
                frames += 1
    return frames, width, height


def time_one(clip: Path, photo: Path, work: Path, config: ProvenanceConfig) -> dict:
    """One seal and one verify of a fresh copy of `clip`."""
    temp, scratch = work / "partial.mp4", work / "signing.mp4"
    shutil.copyfile(clip, temp)
    inputs = [("target", clip), ("source photo", photo)]
    t0 = time.perf_counter()
    for role, path in inputs:  # what seal_file does first, timed on its own
        Ingredient.of(role, path)
    t1 = time.perf_counter()
    sealed = seal_file(temp, scratch, work / "out.mp4", config, inputs)
    t2 = time.perf_counter()
    result = verify_file(temp, [work / "signing" / "ca.pem"])
    t3 = time.perf_counter()
    if sealed.form != "c2pa" or not result.intact:
        raise SystemExit(f"signing did not verify: {sealed.as_dict()} {result.failures}")
    return {
        "hash_ingredients_s": t1 - t0,
        "sign_s": (t2 - t1) - (t1 - t0),  # seal_file less its hashing
        "seal_total_s": t2 - t1,
        "verify_s": t3 - t2,
        "signed_bytes": temp.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/provenance_cost.json")
    args = parser.parse_args()
    media = media_dir()
    if media is None:
        sys.exit("the shared media folder is missing (set GHOST_ENGINE_MEDIA)")
    source, photo = media / "videos" / "nggyup.mp4", media / "faces" / "mark.jpg"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # a signing identity of its own, so the bench never touches the user's
        config = ProvenanceConfig(signing_dir=work / "signing")
        t0 = time.perf_counter()
        check_provenance(config, work / "out.mp4")  # makes the identity, signs a probe
        first_check_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        check_provenance(config, work / "out.mp4")
        check_s = time.perf_counter() - t0
        for loops in args.loops:
            clip = work / f"clip{loops}.mp4"
            frames, width, height = loop_packets(source, clip, loops)
            size = clip.stat().st_size
            file_sha256(clip)  # warm the page cache once
            timings = [time_one(clip, photo, work, config) for _ in range(args.repeats)]
            median = {k: statistics.median(t[k] for t in timings) for k in timings[0]}
            row = {
                "loops": loops,
                "frames": frames,
                "size": [width, height],
                "input_bytes": size,
                "signed_bytes": int(median["signed_bytes"]),
                "manifest_overhead_bytes": int(median["signed_bytes"]) - size,
                "median_s": {k: round(v, 4) for k, v in median.items() if k.endswith("_s")},
                "seal_s_per_gb": round(median["seal_total_s"] / (size / GB), 2),
                "sign_s_per_gb": round(median["sign_s"] / (size / GB), 2),
                "verify_s_per_gb": round(median["verify_s"] / (size / GB), 2),
                "repeats": args.repeats,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            clip.unlink()
    largest = max(rows, key=lambda r: r["input_bytes"])
    report = {
        **run_provenance(),
        "what": "C2PA signing (seal_file: ingredient hashes + c2pa sign + rename) and "
        "verification of 720p H.264 MP4 files looped from nggyup.mp4; GB = 1e9 bytes",
        "check_provenance_s": {"first_run": round(first_check_s, 4), "later": round(check_s, 4)},
        "rows": rows,
        "summary": {
            "file_bytes": largest["input_bytes"],
            "seal_s_per_gb": largest["seal_s_per_gb"],
            "sign_s_per_gb": largest["sign_s_per_gb"],
            "verify_s_per_gb": largest["verify_s_per_gb"],
        },
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
