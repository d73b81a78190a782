"""Every GPU-only check and timing in one run: `python bench/gpu_check.py --out DIR`.

Writes DIR/gpu_check.json and DIR/summary.txt. Sections are independent (an error is
recorded in the JSON and the next section runs) and time-boxed so the whole run ends
well under 8 minutes on one GPU:

- kernels: each CUDA kernel against its CPU kernel on real frames of nggyup.mp4 (decoded
  with OpenCV; PyAV is not needed), with timings;
- generator / arcface: fp16 against fp32 (relative error) and throughput at several
  batch sizes (faces/s, achieved TFLOP/s), channels_last, CUDA graphs where they capture;
- generator_graphs: the CUDA backend's generator step from CUDA graphs against eager;
- nvdec: PyNvVideoCodec decode throughput, or the reason it was skipped;
- onnx_runner: an SCRFD-sized ONNX graph through the PyTorch ONNX runner on the GPU
  (the detector's runtime there), against ONNX Runtime on the CPU;
- end_to_end: the CUDA backend on nggyup.mp4 and a 1080p copy (`gpu_end_to_end.py`).

Imports `ghost_engine` as an installed distribution, like every other user of the
package: `gpu_check.sh` installs the project's wheel (made by `fetch_gpu_wheels.sh`) on
the GPU machine first. CPU machines can run the logic with `--device cpu --simulate
--tiny` (kernels under Numba's CUDA simulator).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

try:
    from ghost_engine.runtime import devices
except ModuleNotFoundError as exc:  # a bare checkout: say how to get the package
    sys.exit(
        f"gpu_check.py: {exc}; install the project first (bench/gpu_check.sh installs the "
        "wheel that bench/fetch_gpu_wheels.sh builds, or pip install -e .)"
    )

GENERATOR_GFLOP = 62.0
ARCFACE_GFLOP = 24.0


@dataclass(frozen=True)
class CheckConfig:
    """What to run and how big; `tiny` shrinks everything for CPU runs."""

    out: Path
    device: str = devices.CUDA
    simulate: bool = False
    tiny: bool = False
    video: Path | None = None
    frames: int = 16
    batch_sizes: tuple[int, ...] = (1, 8, 32, 64)
    section_seconds: dict = field(
        default_factory=lambda: {
            "kernels": 60,
            "generator": 80,
            "generator_graphs": 30,
            "arcface": 30,
            "nvdec": 30,
            "onnx_runner": 25,
            "end_to_end": 130,
            "tensorrt": 30,
            "webcam": 30,
        }
    )
    # The whole run's limit (gpu_check.sh kills it at 470 s); a section that would start
    # with less than `min_section_seconds` left is recorded as skipped instead.
    total_seconds: float = 450.0
    min_section_seconds: float = 15.0


# ---------------------------------------------------------------- helpers


def _time_ms(fn: Callable[[], object], device: str, reps: int, deadline: float) -> float | None:
    """Median wall time of `fn` in milliseconds (after one warm-up), synchronised.

    `reps` 0 skips timing (simulator runs, where times mean nothing) and returns None.
    """
    if reps == 0:
        return None
    fn()
    devices.synchronize(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        devices.synchronize(device)
        times.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() > deadline:
            break
    times.sort()
    return round(times[len(times) // 2], 4)


def load_frames(cfg: CheckConfig) -> tuple[list, str]:
    """RGB uint8 frames of the check video (OpenCV decode), or synthetic ones."""
    import cv2
    import numpy as np

    frames = []
    source = "synthetic (video not found)"
    if cfg.video is not None and cfg.video.exists():
        cap = cv2.VideoCapture(str(cfg.video))
        while len(frames) < cfg.frames:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
        source = str(cfg.video)
    if not frames:
        rng = np.random.default_rng(0)
        base = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 3)
        frames = [np.roll(base, 7 * i, axis=1) for i in range(cfg.frames)]
    if cfg.tiny:
        frames = [cv2.resize(f, (32, 24), interpolation=cv2.INTER_AREA) for f in frames[:2]]
    return frames, source


def _diff(a, b) -> int:
    import numpy as np

    return int(np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64)).max())


# ---------------------------------------------------------------- sections


def check_kernels(cfg: CheckConfig, deadline: float) -> dict:
    """CUDA kernels against the CPU kernels on real frames; max differences and timings."""
    import numpy as np

    from ghost_engine.kernels import blend, blur, color, hull_fill, letterbox, morphology, warp
    from ghost_engine.kernels.cuda import blend as cblend
    from ghost_engine.kernels.cuda import color as ccolor
    from ghost_engine.kernels.cuda import letterbox as cletterbox
    from ghost_engine.kernels.cuda import mask_kernels as cmask
    from ghost_engine.kernels.cuda import warp as cwarp
    from ghost_engine.kernels.cuda.backend import device_arrays

    dev = device_arrays()
    sync = devices.CUDA if dev.name == "cupy" else devices.CPU
    reps = 0 if dev.name == "simulator" else 20
    frames, source = load_frames(cfg)
    h, w = frames[0].shape[:2]
    det, crop = (24, 12) if cfg.tiny else (640, 224)
    res: dict = {"backend": dev.name, "frames_from": source, "frame_size": [w, h]}
    diffs: dict = {}
    timings: dict = {}

    nv12 = [color.rgb_to_nv12(f) for f in frames]
    d_nv12 = [dev.to_device(x) for x in nv12]
    diffs["nv12_to_rgb"] = max(
        _diff(dev.to_host(ccolor.nv12_to_rgb(d)), color.nv12_to_rgb(x))
        for d, x in zip(d_nv12, nv12, strict=True)
    )
    timings["nv12_to_rgb_ms"] = _time_ms(
        lambda: ccolor.nv12_to_rgb(d_nv12[0]), sync, reps, deadline
    )

    batch = np.stack(frames[: min(8, len(frames))])
    d_batch = dev.to_device(batch)
    blob, _ = cletterbox.letterbox(d_batch, det)
    ref_blob, _ = letterbox.letterbox(batch, det)
    diffs["letterbox_levels"] = float(np.abs(dev.to_host(blob) - ref_blob).max() * 128)
    timings["letterbox_batch_ms"] = _time_ms(
        lambda: cletterbox.letterbox(d_batch, det), sync, reps, deadline
    )

    rng = np.random.default_rng(1)
    s = crop / (0.45 * min(h, w))
    mats = []
    for _ in range(8):
        a = np.deg2rad(rng.uniform(-20, 20))
        c, sn = s * np.cos(a), s * np.sin(a)
        cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
        mats.append(
            [[c, -sn, crop / 2 - (c * cx - sn * cy)], [sn, c, crop / 2 - (sn * cx + c * cy)]]
        )
    mats = np.array(mats)
    index = np.arange(8) % len(batch)
    crops = dev.to_host(cwarp.warp_affine_batch(d_batch, mats, crop, index))
    diffs["warp_affine_batch"] = _diff(crops, warp.warp_affine_batch(batch, mats, crop, index))
    timings["warp_affine_batch8_ms"] = _time_ms(
        lambda: cwarp.warp_affine_batch(d_batch, mats, crop, index), sync, reps, deadline
    )

    points = rng.integers(crop // 6, crop - crop // 6, (106, 2))
    erode, sx, sy = (3, 1.5, 1.0) if cfg.tiny else (15, 15.0, 10.0)
    mask_cpu = hull_fill.fill_hull(points, crop, crop)
    d_mask = cmask.fill_hull(points, crop, crop)
    diffs["fill_hull"] = _diff(dev.to_host(d_mask), mask_cpu)
    eroded_cpu = morphology.zero_border(morphology.erode_dilate(mask_cpu, erode), int(2 * sy))
    d_eroded = cmask.zero_border(cmask.erode_dilate(d_mask, erode), int(2 * sy))
    diffs["erode_zero_border"] = _diff(dev.to_host(d_eroded), eroded_cpu)
    blurred_cpu = blur.gaussian_blur(eroded_cpu, sx, sy)
    d_blurred = cmask.gaussian_blur(d_eroded, sx, sy)
    diffs["gaussian_blur"] = _diff(dev.to_host(d_blurred), blurred_cpu)

    def mask_chain():
        m = cmask.fill_hull(points, crop, crop)
        return cmask.gaussian_blur(
            cmask.zero_border(cmask.erode_dilate(m, erode), int(2 * sy)), sx, sy
        )

    timings["mask_chain_ms"] = _time_ms(mask_chain, sync, reps, deadline)

    frame = frames[0]
    d_frame = dev.to_device(frame.copy())
    d_swap = dev.to_device(crops[0])
    cblend.blend_inverse_warp(d_frame, d_swap, d_blurred, mats[0])
    expected = blend.blend_inverse_warp(frame.copy(), crops[0], blurred_cpu, mats[0])
    diffs["blend_inverse_warp"] = _diff(dev.to_host(d_frame), expected)
    timings["blend_ms"] = _time_ms(
        lambda: cblend.blend_inverse_warp(d_frame, d_swap, d_blurred, mats[0]), sync, reps, deadline
    )
    res["max_abs_diff"] = diffs
    res["within_one_level"] = all(v <= 1.0 + 1e-4 for v in diffs.values())
    res["timings"] = timings
    return res


def _network_bench(cfg: CheckConfig, deadline: float, name: str, gflop: float) -> dict:
    """fp32 vs reduced precision error and throughput of one registered network."""
    import torch

    from ghost_engine.networks import build
    from ghost_engine.networks.fill import fill_module

    device = devices.torch_device(cfg.device)
    gpu = devices.is_gpu(cfg.device)
    low = torch.float16 if gpu else torch.bfloat16
    net = fill_module(build(name)).to(device).eval().to(memory_format=torch.channels_last)
    size = 256 if name.startswith("G_") else 112

    def inputs(n: int, dtype: torch.dtype) -> tuple:
        g = torch.Generator().manual_seed(n)
        x = (torch.rand(n, 3, size, size, generator=g) * 2 - 1).to(device, dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        if name.startswith("G_"):
            z = torch.randn(n, 512, generator=g).to(device, dtype) * 10
            return (x, z)
        return (x,)

    def first(out):
        return out[0] if isinstance(out, tuple) else out

    res: dict = {"dtype_low": str(low).replace("torch.", ""), "input": size}
    with torch.inference_mode():
        ref = first(net(*inputs(1, torch.float32))).float()
        net_low = net.to(low)
        got = first(net_low(*inputs(1, low))).float()
        res["relative_error_low_vs_fp32"] = float((got - ref).norm() / ref.norm())
        sizes = (1,) if cfg.tiny else cfg.batch_sizes
        rows = {}
        for n in sizes:
            if time.monotonic() > deadline:
                rows[str(n)] = "skipped: section time box reached"
                continue
            x = inputs(n, low)
            ms = _time_ms(lambda x=x: net_low(*x), cfg.device, 1 if cfg.tiny else 10, deadline)
            fps = n / (ms / 1000)
            rows[str(n)] = {
                "ms": ms,
                "faces_per_s": round(fps, 1),
                "tflops": round(fps * gflop / 1000, 2),
            }
        res["throughput"] = rows
        if gpu and time.monotonic() < deadline:
            res["cuda_graph"] = _graph_bench(net_low, inputs(max(sizes), low), gflop, deadline)
    if gpu:
        res["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return res


def _graph_bench(net, x: tuple, gflop: float, deadline: float) -> dict:
    """The same forward replayed from a captured CUDA graph, if it captures."""
    import torch

    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                net(*x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            net(*x)
        ms = _time_ms(graph.replay, devices.CUDA, 20, deadline)
    except Exception as exc:  # noqa: BLE001 - recorded in the report, not hidden
        return {"error": f"{type(exc).__name__}: {exc}"}
    fps = x[0].shape[0] / (ms / 1000)
    return {
        "batch": x[0].shape[0],
        "ms": ms,
        "faces_per_s": round(fps, 1),
        "tflops": round(fps * gflop / 1000, 2),
    }


def check_generator(cfg: CheckConfig, deadline: float) -> dict:
    if cfg.tiny:  # 184 M parameters take minutes on a small CPU; the logic is arcface's
        return {"status": "skipped", "reason": "--tiny: the generator is too slow on a CPU"}
    return _network_bench(cfg, deadline, "G_unet_2blocks", GENERATOR_GFLOP)


def check_generator_graphs(cfg: CheckConfig, deadline: float) -> dict:
    """The CUDA backend's generator step (`DeviceImageOps.swaps`) replayed from CUDA
    graphs against eager: same pixels (uint8 levels), and ms per batch both ways."""
    if not devices.is_gpu(cfg.device):
        return {"status": "skipped", "reason": "CUDA graphs need a GPU"}
    import numpy as np
    import torch

    from ghost_engine.backend.cuda.context import device_context
    from ghost_engine.backend.cuda.device_ops import DeviceImageOps, DeviceOpsConfig
    from ghost_engine.backend.cuda.kernel_set import cuda_kernels
    from ghost_engine.face.generator import GeneratorRunner
    from ghost_engine.networks import build
    from ghost_engine.networks.fill import fill_module

    ctx = device_context()  # the GPU flavour
    generator = GeneratorRunner(fill_module(build("G_unet_2blocks")), cfg.device, batch_size=8)
    rng = np.random.default_rng(0)
    ops = {
        name: DeviceImageOps(ctx, cuda_kernels(), DeviceOpsConfig(cuda_graphs=graphs))
        for name, graphs in (("eager", False), ("graphs", True))
    }
    res: dict = {}
    for n in (1, 5, 8):
        crops = ctx.upload(rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8))
        z = rng.standard_normal((n, 512)).astype(np.float32) * 10
        out = {
            k: ctx.to_host(o.swaps(generator, None, crops, z, _no_timer)) for k, o in ops.items()
        }
        row = {"max_level_diff": _diff(out["eager"], out["graphs"])}
        for name, o in ops.items():
            row[f"{name}_ms"] = _time_ms(
                lambda o=o, c=crops, z=z: o.swaps(generator, None, c, z, _no_timer),
                cfg.device,
                10,
                deadline,
            )
        res[f"batch_{n}"] = row
        if time.monotonic() > deadline:
            break
    res["graphs"] = ops["graphs"].graph_summary()
    res["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return res


def _no_timer(step: str):
    from contextlib import nullcontext

    return nullcontext()


def check_arcface(cfg: CheckConfig, deadline: float) -> dict:
    if cfg.tiny:  # same code path, a network small enough for a CPU test
        return _network_bench(cfg, deadline, "arcface_iresnet18", ARCFACE_GFLOP * 18 / 100)
    return _network_bench(cfg, deadline, "arcface_iresnet100", ARCFACE_GFLOP)


def check_nvdec(cfg: CheckConfig, deadline: float) -> dict:
    """Decode the check video with NVDEC (PyNvVideoCodec), frames per second."""
    from ghost_engine.errors import OptionalDependencyError
    from ghost_engine.runtime.gpu_packages import require_nvcodec

    try:
        nvc = require_nvcodec()
    except OptionalDependencyError as exc:
        return {"status": "skipped", "reason": str(exc)}
    if cfg.video is None or not cfg.video.exists():
        return {"status": "skipped", "reason": f"video not found: {cfg.video}"}
    demuxer = nvc.CreateDemuxer(filename=str(cfg.video))
    decoder = nvc.CreateDecoder(gpuid=0, codec=demuxer.GetNvCodecId(), usedevicememory=True)
    t0 = time.perf_counter()
    count = 0
    for packet in demuxer:
        count += len(list(decoder.Decode(packet)))
        if time.monotonic() > deadline:
            break
    seconds = time.perf_counter() - t0
    return {"status": "ok", "frames": count, "frames_per_s": round(count / seconds, 1)}


def check_end_to_end(cfg: CheckConfig, deadline: float) -> dict:
    """The CUDA backend end to end (`gpu_end_to_end.py`): 720p and 1080p, frames/s,
    per-stage throughput, efficiency, GPU memory. CPU runs use the emulated flavour."""
    if cfg.video is None or not cfg.video.exists():
        return {"status": "skipped", "reason": f"video not found: {cfg.video}"}
    from gpu_end_to_end import check_end_to_end as run  # beside this script

    return run(cfg.video, cfg.out / "end_to_end", cfg.device, cfg.tiny, deadline)


def check_onnx_runner(cfg: CheckConfig, deadline: float) -> dict:
    """SCRFD-sized ONNX graph through the PyTorch ONNX runner (`gpu_onnx_runner.py`)."""
    from gpu_onnx_runner import check_onnx_runner as run  # beside this script

    return run(cfg.device, cfg.tiny, deadline, _time_ms)


def check_tensorrt(cfg: CheckConfig, deadline: float) -> dict:
    """TensorRT engines for ArcFace and the generator: build, reuse, parity, timing.

    Skipped with the reason where TensorRT is not installed (the H200 image has none).
    """
    from ghost_engine.errors import OptionalDependencyError
    from ghost_engine.export.tensorrt_env import import_tensorrt

    try:
        import_tensorrt()
    except OptionalDependencyError as exc:
        return {"status": "skipped", "reason": str(exc)}
    from ghost_engine.export.tensorrt_device_check import run_checks

    rows = run_checks(cfg.out / "tensorrt")
    ok = all(p["ok"] for r in rows for p in r["parity"])
    return {"status": "ok" if ok else "parity failed", "engines": rows}


def check_webcam(cfg: CheckConfig, deadline: float) -> dict:
    """Webcam-style run (file as camera, 720p): p99 latency and frames/s on the device.

    Needs PyAV and a detector on the GPU machine; otherwise the error is recorded.
    """
    from ghost_engine.measure.webcam_latency import measure_webcam_latency

    if cfg.video is None or not cfg.video.exists():
        return {"status": "skipped", "reason": f"video not found: {cfg.video}"}
    seconds = max(1.0, min(10.0, deadline - time.monotonic() - 20))
    return measure_webcam_latency(cfg.video, cfg.device, seconds)


SECTIONS: dict[str, Callable[[CheckConfig, float], dict]] = {
    "kernels": check_kernels,
    "generator": check_generator,
    "generator_graphs": check_generator_graphs,
    "arcface": check_arcface,
    "nvdec": check_nvdec,
    "onnx_runner": check_onnx_runner,
    "end_to_end": check_end_to_end,
    "tensorrt": check_tensorrt,
    "webcam": check_webcam,
}


def run_section(name: str, cfg: CheckConfig, until: float | None = None) -> dict:
    """One section with its time box (never past `until`); any error is recorded."""
    t0 = time.monotonic()
    deadline = t0 + cfg.section_seconds.get(name, 60)
    if until is not None:
        deadline = min(deadline, until)
    try:
        result = SECTIONS[name](cfg, deadline)
        result.setdefault("status", "ok")
    except Exception as exc:  # noqa: BLE001 - each section is independent by design
        result = {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
        }
    result["seconds"] = round(time.monotonic() - t0, 2)
    return result


def environment(cfg: CheckConfig) -> dict:
    env = {"python": platform.python_version(), "device": cfg.device, "simulate": cfg.simulate}
    try:
        import torch

        env["torch"] = torch.__version__
    except ImportError as exc:
        env["torch"] = f"missing: {exc}"
    gpu = devices.gpu_description()
    if gpu is not None:
        env["gpu"] = gpu["name"]
    env["packages"] = package_versions()
    return env


def package_versions() -> dict[str, str]:
    """Installed versions, read from metadata: importing PyNvVideoCodec needs a driver."""
    from importlib import metadata

    names = ("cupy-cuda13x", "cupy-cuda12x", "numba", "numba-cuda", "av", "PyNvVideoCodec")
    names += ("onnxruntime", "onnxruntime-gpu", "tensorrt", "opencv-python-headless")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def summary(report: dict) -> str:
    lines = [f"{'section':<12} {'status':<16} {'seconds':>8}  details"]
    for name, res in report["sections"].items():
        detail = ""
        if name == "kernels" and "max_abs_diff" in res:
            detail = f"within 1/255: {res['within_one_level']} {res['max_abs_diff']}"
        elif "throughput" in res:
            best = [v for v in res["throughput"].values() if isinstance(v, dict)]
            top = max(best, key=lambda v: v["faces_per_s"]) if best else {}
            detail = (
                f"rel.err {res['relative_error_low_vs_fp32']:.2e}, best "
                f"{top.get('faces_per_s')} faces/s ({top.get('tflops')} TFLOP/s)"
            )
        elif name == "end_to_end" and "720p" in res:
            detail = "; ".join(
                f"{clip} {r['encoded']['frames_per_s']} frames/s encoded, "
                f"{r['no_encode']['frames_per_s']} without encoding "
                f"(efficiency {r['no_encode']['efficiency']})"
                for clip, r in res.items()
                if isinstance(r, dict) and "encoded" in r
            )
        elif name == "onnx_runner" and "float32" in res:
            detail = f"{res['gflop_per_image']} GFLOP graph: onnxruntime (CPU) " + (
                f"{res['onnxruntime_cpu_ms']} ms; "
                + ", ".join(
                    f"{k} {v['batch_1_ms']} ms (graph {v.get('cuda_graph_batch_1_ms', '-')})"
                    for k, v in res.items()
                    if k in ("float32", "float16")
                )
            )
        elif "reason" in res or "error" in res:
            detail = res.get("reason") or res.get("error")
        elif "frames_per_s" in res:
            detail = f"{res['frames_per_s']} frames/s"
        lines.append(f"{name:<12} {res['status']:<16} {res['seconds']:>8}  {detail}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[CheckConfig, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json")
    p.add_argument("--device", choices=devices.DEVICES, default=devices.CUDA)
    p.add_argument("--simulate", action="store_true", help="CUDA kernels under Numba's simulator")
    p.add_argument("--tiny", action="store_true", help="tiny inputs, one repetition (CPU runs)")
    p.add_argument("--video", type=Path, default=None, help="default: shared media nggyup.mp4")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    p.add_argument("--total-seconds", type=float, default=450.0, help="limit for the whole run")
    args = vars(p.parse_args(argv))  # every option but --sections is a CheckConfig field
    sections = args.pop("sections").split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    return CheckConfig(**args), sections


def main(argv: list[str] | None = None) -> int:
    cfg, sections = parse_args(argv)
    if cfg.simulate:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before anything imports numba
    if cfg.video is None:
        from ghost_engine.shared_paths import media_dir

        cfg = replace(cfg, video=media_dir() / "videos" / "nggyup.mp4")
    started = time.monotonic()
    report = {"environment": environment(cfg), "sections": {}}
    cfg.out.mkdir(parents=True, exist_ok=True)
    for name in sections:
        left = cfg.total_seconds - (time.monotonic() - started)
        if left < cfg.min_section_seconds:
            result = {"status": "skipped", "reason": f"out of time ({left:.0f} s left)"}
            report["sections"][name] = {**result, "seconds": 0.0}
        else:
            report["sections"][name] = run_section(name, cfg, started + cfg.total_seconds)
        # Written after every section so a run killed by its time limit keeps what it had.
        report["total_seconds"] = round(time.monotonic() - started, 2)
        write_report(report, cfg.out)
        print(summary({"sections": {name: report["sections"][name]}}).splitlines()[1])
    print(summary(report))
    return 0


def write_report(report: dict, out: Path) -> None:
    """JSON and the summary table, replaced atomically so a kill never leaves half a file."""
    for name, text in (
        ("gpu_check.json", json.dumps(report, indent=2, default=str)),
        ("summary.txt", summary(report) + "\n"),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


if __name__ == "__main__":
    sys.exit(main())
