"""GPU check of the TensorRT path: `python -m ghost_engine.export.tensorrt_device_check OUT_DIR`.

For ArcFace and the 2-block generator (fill-rule weights): export ONNX, build fp32 and
fp16 engines (strongly typed), check each engine against PyTorch at batch 1 and 5
through `TrtEngine` on a CUDA stream, time batch 8, and build again to show the engine
and timing cache are reused. Writes `OUT_DIR/export_gpu_check.json`. Needs a CUDA GPU,
torch with CUDA and the `tensorrt` extra; meant for the project's GPU check script.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from ghost_engine.errors import ExportError
from ghost_engine.export.exporter import ExportRequest, export_model
from ghost_engine.export.parity import random_inputs
from ghost_engine.export.profile import BatchProfile
from ghost_engine.export.specs import export_spec
from ghost_engine.runtime.devices import CUDA

MODELS = ("arcface_iresnet100", "G_unet_2blocks")
TIMED_BATCH = 8
TIMED_RUNS = 20


def _time_engine(engine_path: Path, model: str) -> float:
    """Milliseconds per batch of `TIMED_BATCH`, device-side (CUDA events)."""
    import torch

    from ghost_engine.runtime.tensorrt import TrtEngine

    engine = TrtEngine(engine_path)
    inputs = random_inputs(export_spec(model), TIMED_BATCH, 0)
    dev = {n: torch.from_numpy(inputs[n]).cuda() for n in engine.input_names}
    shapes = engine.output_shapes({n: tuple(t.shape) for n, t in dev.items()})
    outs = {n: torch.empty(shapes[n], device=CUDA) for n in engine.output_names}
    stream = torch.cuda.Stream()
    for _ in range(3):
        engine.run(dev, outs, stream.cuda_stream)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(stream)
    for _ in range(TIMED_RUNS):
        engine.run(dev, outs, stream.cuda_stream)
    end.record(stream)
    end.synchronize()
    return start.elapsed_time(end) / TIMED_RUNS


def run_checks(out_dir: Path) -> list[dict]:
    """Every model x precision: build, parity, timing, rebuild reuse."""
    rows = []
    for model in MODELS:
        for precision in ("fp32", "fp16"):
            req = ExportRequest(
                model=model,
                out_dir=out_dir,
                fmt="tensorrt",
                precision=precision,
                random_weights=True,
                profile=BatchProfile(1, 8, 16),
                check_batches=(1, 5),
            )
            t0 = time.perf_counter()
            result = export_model(req)
            build_s = time.perf_counter() - t0
            if result.engine is None:
                raise ExportError(f"{model} {precision}: the TensorRT export built no engine")
            engine = result.engine
            t0 = time.perf_counter()
            again = export_model(dataclasses.replace(req, check=False))
            rows.append(
                {
                    "model": model,
                    "precision": precision,
                    "engine": engine.name,
                    "export_and_build_s": round(build_s, 1),
                    "second_export_s": round(time.perf_counter() - t0, 1),
                    "engine_reused": again.engine == engine,
                    "parity": [
                        {"what": w, "batch": r.batch, "rel_error": r.rel_error, "ok": r.ok}
                        for w, r in result.parity
                    ],
                    f"ms_per_batch_{TIMED_BATCH}": round(_time_engine(engine, model), 3),
                }
            )
    return rows


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0] if argv else "export_gpu_check")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = run_checks(out_dir)
    (out_dir / "export_gpu_check.json").write_text(json.dumps(rows, indent=2))
    for row in rows:
        worst = max(p["rel_error"] for p in row["parity"])
        print(
            f"{row['model']:20s} {row['precision']}  worst rel error {worst:.2e}  "
            f"{row[f'ms_per_batch_{TIMED_BATCH}']:8.3f} ms/batch{TIMED_BATCH}  "
            f"reused={row['engine_reused']}"
        )
    return 0 if all(p["ok"] for r in rows for p in r["parity"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
