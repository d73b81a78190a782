"""CPU runtime comparison: PyTorch vs ONNX Runtime for every network the engine runs.

    python bench/cpu_runtimes.py [--batch-sizes 1,8] [--repeats 3] [--networks ...]

Times each network (random fill-rule weights, real shapes) under both runtimes at each
batch size, the runtimes taking turns call by call; writes
`bench/results/cpu_runtimes.json` (with machine, commit, date) after every network, and
from it `engine/runtime/runtime_defaults.json`, which `default_runtime()` reads: the faster
runtime per network by the geometric mean of its speed-up over the batch sizes.
SCRFD and 2d106det exist only as ONNX files, so ONNX Runtime is their runtime.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from ghost_engine import networks
from ghost_engine.measure.bench_config import parse_int_list
from ghost_engine.measure.bench_report import write_json_file
from ghost_engine.measure.machine import provenance
from ghost_engine.measure.runtimes import NetworkTiming, time_network
from ghost_engine.networks.fill import fill_module
from ghost_engine.runtime.defaults import DEFAULTS_PATH, ONNX_ONLY

ROOT = Path(__file__).resolve().parent
NETWORKS = (
    "G_unet_1blocks",
    "G_unet_2blocks",
    "G_unet_3blocks",
    "arcface_iresnet100",
    "sr_lipspade",
)
RUNTIMES = ("torch", "onnxruntime")


def speedups(rows: list[dict]) -> dict[str, dict]:
    """Per network: ONNX Runtime's speed over PyTorch (geometric mean over batch sizes)
    and the faster runtime."""
    out = {}
    for name in dict.fromkeys(r["network"] for r in rows):
        ratios = []
        for batch in sorted({r["batch_size"] for r in rows if r["network"] == name}):
            speed = {
                r["runtime"]: r["items_per_s"]
                for r in rows
                if r["network"] == name and r["batch_size"] == batch
            }
            if set(RUNTIMES) <= set(speed):
                ratios.append(speed["onnxruntime"] / speed["torch"])
        if ratios:
            gmean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
            out[name] = {
                "onnxruntime_over_torch": round(gmean, 4),
                "faster": "onnxruntime" if gmean > 1.0 else "torch",
            }
    return out


def defaults_document(results: dict) -> dict:
    """The `runtime_defaults.json` contents derived from a results document."""
    chosen = speedups(results["results"])
    cpu = {name: v["faster"] for name, v in chosen.items()}
    cpu.update({name: "onnxruntime" for name in sorted(ONNX_ONLY)})
    machine = results["machine"]
    return {
        "source": "bench/results/cpu_runtimes.json",
        "date": results["date"],
        "commit": results["commit"],
        "machine": f"{machine['cpu']}, {machine['logical_cores']} cores",
        "rule": "faster by the geometric mean of items/s over batch sizes "
        f"{results['settings']['batch_sizes']}; ONNX-only networks use onnxruntime",
        "speedup_onnxruntime_over_torch": {
            "cpu": {n: v["onnxruntime_over_torch"] for n, v in chosen.items()}
        },
        "devices": {"cpu": cpu},
    }


def _finished(path: Path, batch_sizes: tuple[int, ...]) -> dict[str, list[dict]]:
    """Rows of networks measured at every batch size under both runtimes in `path`."""
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("results", [])
    out: dict[str, list[dict]] = {}
    for name in dict.fromkeys(r["network"] for r in rows):
        mine = [r for r in rows if r["network"] == name]
        have = {(r["runtime"], r["batch_size"]) for r in mine}
        if all((rt, b) in have for rt in RUNTIMES for b in batch_sizes):
            out[name] = mine
    return out


def _log(row: NetworkTiming) -> None:
    print(
        f"{row.network:20s} {row.runtime:12s} batch {row.batch_size:3d}: "
        f"{row.items_per_s:8.3f} items/s  {row.flop_per_s / 1e9:7.1f} GFLOP/s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "cpu_runtimes.json")
    parser.add_argument("--defaults", type=Path, default=DEFAULTS_PATH)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the networks already measured in --out (same batch sizes) and add the rest",
    )
    args = parser.parse_args(argv)
    batch_sizes = parse_int_list(args.batch_sizes, "--batch-sizes")
    names = [n for n in args.networks.split(",") if n]
    results = {
        **provenance(),
        "settings": {
            "batch_sizes": list(batch_sizes),
            "repeats": args.repeats,
            "warmup": args.warmup,
            "runtimes": list(RUNTIMES),
            "torch_threads": torch.get_num_threads(),
            "weights": "random (fill rule); timing does not depend on the values",
        },
        "skipped": {
            n: "ONNX-only model file (no PyTorch version to compare)" for n in sorted(ONNX_ONLY)
        },
        "results": [],
    }
    done = _finished(args.out, batch_sizes) if args.resume else {}
    for name in names:
        if name in done:
            results["results"] += done[name]
            print(f"{name}: kept from {args.out}", flush=True)
            continue
        started = time.perf_counter()
        module = fill_module(networks.build(name))
        with tempfile.TemporaryDirectory(prefix="ghost-cpu-runtimes-") as tmp:
            rows = time_network(
                name,
                module,
                runtimes=RUNTIMES,
                batch_sizes=batch_sizes,
                device="cpu",
                warmup=args.warmup,
                repeats=args.repeats,
                workdir=Path(tmp),
                on_result=_log,
            )
        del module
        results["results"] += [r.to_dict() for r in rows]
        results["speedups"] = speedups(results["results"])
        results.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
        # Other processes on a shared machine slow both runtimes; record how busy it was.
        results.setdefault("load_average_1min_after", {})[name] = round(os.getloadavg()[0], 2)
        write_json_file(results, args.out)
    write_json_file(defaults_document(results), args.defaults)
    print(f"wrote {args.out} and {args.defaults}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
