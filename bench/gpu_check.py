"""Every GPU-only check and timing in one run: `python bench/gpu_check.py --out DIR`.

Each section runs in a process of its own under a time box, so a device fault, a hung
buffer pool or a long compile takes only its own section; the parent kills a section
that overruns its share ("timed out after N s", keeping what it had saved). In order of
value:

- probe: whether PyNvVideoCodec imports and why not, the fp16 matrix-product and
  device-copy ceilings, pinned transfer rates, microseconds per Numba launch
  (`gpu_probe.py`);
- generator: AEI-Net through the pipeline's exact path (`DeviceImageOps.swaps`, fp16
  autocast, CUDA graphs against eager), then fp16 weights against fp32, batch 1 to 64
  eager and replayed from a CUDA graph, and `torch.compile`;
- end_to_end: the CUDA backend on the 720p clip with ablations: x264 and a null sink,
  detection off, passthrough generator, NVDEC against upload with a pixel diff, CPU
  seconds per thread (`gpu_end_to_end.py`);
- kernels: each CUDA kernel against its CPU kernel on the clip's frames, with timings;
- onnx_runner: an SCRFD-sized ONNX graph through the PyTorch ONNX runner (the
  detector's runtime there) against ONNX Runtime on the CPU (`gpu_onnx_runner.py`);
- arcface: iresnet100 fp16 against fp32 and throughput;
- end_to_end_1080p: the clip upscaled to 1080p, if time is left.

The parent writes DIR/gpu_check.json (environment: driver, NVIDIA driver libraries,
package versions; every section's results), DIR/summary.txt (one line per section) and
DIR/gpu_check.log (the sections' output) after every section; videos go to a temporary
folder that is removed at the end. The clip (`.gpu/clip.mp4`, made by
`fetch_gpu_wheels.sh`) must exist: without it the check fails at once.

Imports `ghost_engine` as an installed distribution, like every other user of the
package: `gpu_check.sh` installs the project's wheel on the GPU machine first. On a CPU,
`--device cpu --simulate --tiny` runs every section small (Numba's CUDA simulator for
the kernels, the backend's emulated flavour, stand-in networks, a few frames): what the
tests run, so no line here meets a GPU untried except the CUDA-only calls themselves.
Exit status: 0 when every section ran ("ok"), 1 when one did not, 2 for bad arguments or
a missing clip.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

try:
    from ghost_engine.runtime import devices
except ModuleNotFoundError as exc:  # a bare checkout: say how to get the package
    sys.exit(
        f"gpu_check.py: {exc}; install the project first (bench/gpu_check.sh installs the "
        "wheel that bench/fetch_gpu_wheels.sh builds, or pip install -e .)"
    )
from gpu_common import (
    ARCFACE_GFLOP,
    Recorder,
    generator_module,
    max_diff,
    no_timer,
    past,
    rate,
    time_ms,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DEFAULT_CLIP = REPO / ".gpu" / "clip.mp4"
LOG_TAIL = 4000  # characters of a failed section's output kept in the JSON
# Each section's share of the run in seconds, in the order they run (by value); 270 in all.
# `--tiny` runs on a CPU, slower than the shares assume: each share is this many times larger.
TINY_SLOWER = 3
SECTION_SECONDS = {
    "probe": 20,
    "generator": 90,
    "end_to_end": 70,
    "kernels": 25,
    "onnx_runner": 20,
    "arcface": 15,
    "end_to_end_1080p": 30,
}


@dataclass(frozen=True)
class CheckConfig:
    """What to run and how big; `tiny` shrinks everything for CPU runs."""

    out: Path
    device: str = devices.CUDA
    simulate: bool = False
    tiny: bool = False
    video: Path = DEFAULT_CLIP
    scratch: Path | None = None  # the temporary folder for videos (made by the parent)
    frames: int = 16
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    section_seconds: dict = field(default_factory=lambda: dict(SECTION_SECONDS))
    # The whole run's limit (gpu_check.sh installs the wheels first and ends within 300 s);
    # a section that would start with less than `min_section_seconds` left is not run.
    total_seconds: float = 270.0
    min_section_seconds: float = 10.0


# ---------------------------------------------------------------- sections


def load_frames(cfg: CheckConfig) -> list:
    """RGB uint8 frames of the check's clip (OpenCV decode; PyAV is not needed)."""
    import cv2

    frames = []
    cap = cv2.VideoCapture(str(cfg.video))
    while len(frames) < cfg.frames:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise RuntimeError(f"OpenCV decoded no frames from {cfg.video}")
    if cfg.tiny:
        frames = [cv2.resize(f, (32, 24), interpolation=cv2.INTER_AREA) for f in frames[:2]]
    return frames


def check_kernels(cfg: CheckConfig, deadline: float, rec: Recorder) -> dict:
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
    frames = load_frames(cfg)
    h, w = frames[0].shape[:2]
    det, crop = (24, 12) if cfg.tiny else (640, 224)
    res: dict = {"backend": dev.name, "frames_from": str(cfg.video), "frame_size": [w, h]}
    diffs: dict = {}
    timings: dict = {}

    nv12 = [color.rgb_to_nv12(f) for f in frames]
    d_nv12 = [dev.to_device(x) for x in nv12]
    diffs["nv12_to_rgb"] = max(
        max_diff(dev.to_host(ccolor.nv12_to_rgb(d)), color.nv12_to_rgb(x))
        for d, x in zip(d_nv12, nv12, strict=True)
    )
    timings["nv12_to_rgb_ms"] = time_ms(lambda: ccolor.nv12_to_rgb(d_nv12[0]), sync, reps, deadline)

    batch = np.stack(frames[: min(8, len(frames))])
    d_batch = dev.to_device(batch)
    blob, _ = cletterbox.letterbox(d_batch, det)
    ref_blob, _ = letterbox.letterbox(batch, det)
    diffs["letterbox_levels"] = float(np.abs(dev.to_host(blob) - ref_blob).max() * 128)
    timings["letterbox_batch_ms"] = time_ms(
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
    diffs["warp_affine_batch"] = max_diff(crops, warp.warp_affine_batch(batch, mats, crop, index))
    timings["warp_affine_batch8_ms"] = time_ms(
        lambda: cwarp.warp_affine_batch(d_batch, mats, crop, index), sync, reps, deadline
    )

    points = rng.integers(crop // 6, crop - crop // 6, (106, 2))
    erode, sx, sy = (3, 1.5, 1.0) if cfg.tiny else (15, 15.0, 10.0)
    mask_cpu = hull_fill.fill_hull(points, crop, crop)
    d_mask = cmask.fill_hull(points, crop, crop)
    diffs["fill_hull"] = max_diff(dev.to_host(d_mask), mask_cpu)
    eroded_cpu = morphology.zero_border(morphology.erode_dilate(mask_cpu, erode), int(2 * sy))
    d_eroded = cmask.zero_border(cmask.erode_dilate(d_mask, erode), int(2 * sy))
    diffs["erode_zero_border"] = max_diff(dev.to_host(d_eroded), eroded_cpu)
    blurred_cpu = blur.gaussian_blur(eroded_cpu, sx, sy)
    d_blurred = cmask.gaussian_blur(d_eroded, sx, sy)
    diffs["gaussian_blur"] = max_diff(dev.to_host(d_blurred), blurred_cpu)

    def mask_chain():
        m = cmask.fill_hull(points, crop, crop)
        return cmask.gaussian_blur(
            cmask.zero_border(cmask.erode_dilate(m, erode), int(2 * sy)), sx, sy
        )

    timings["mask_chain_ms"] = time_ms(mask_chain, sync, reps, deadline)

    frame = frames[0]
    d_frame = dev.to_device(frame.copy())
    d_swap = dev.to_device(crops[0])
    cblend.blend_inverse_warp(d_frame, d_swap, d_blurred, mats[0])
    expected = blend.blend_inverse_warp(frame.copy(), crops[0], blurred_cpu, mats[0])
    diffs["blend_inverse_warp"] = max_diff(dev.to_host(d_frame), expected)
    timings["blend_ms"] = time_ms(
        lambda: cblend.blend_inverse_warp(d_frame, d_swap, d_blurred, mats[0]), sync, reps, deadline
    )
    res["max_abs_diff"] = diffs
    res["within_one_level"] = all(v <= 1.0 + 1e-4 for v in diffs.values())
    res["timings"] = timings
    return res


def _network_bench(
    cfg: CheckConfig,
    deadline: float,
    rec: Recorder,
    net,
    size: int,
    gflop: float,
    *,
    identity: bool = False,
    compile_batch: int | None = None,
) -> dict:
    """fp32 against reduced precision, then eager and CUDA-graph throughput per batch
    size, and `torch.compile` at `compile_batch`; saved into `rec` as it goes. `identity`:
    the network also takes a (N, 512) identity (the generator)."""
    import torch

    device = devices.torch_device(cfg.device)
    gpu = devices.is_gpu(cfg.device)
    low = torch.float16 if gpu else torch.bfloat16
    net = net.to(device).eval().to(memory_format=torch.channels_last)

    def inputs(n: int, dtype: torch.dtype) -> tuple:
        g = torch.Generator().manual_seed(n)
        x = (torch.rand(n, 3, size, size, generator=g) * 2 - 1).to(device, dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        if identity:
            z = torch.randn(n, 512, generator=g).to(device, dtype) * 10
            return (x, z)
        return (x,)

    res = rec.data
    res.update({"dtype_low": str(low).replace("torch.", ""), "input": size})
    sizes = (1, 2) if cfg.tiny else cfg.batch_sizes
    reps = 1 if cfg.tiny else 10
    with torch.inference_mode():
        ref = _first(net(*inputs(1, torch.float32))).float()
        net_low = net.to(low)
        got = _first(net_low(*inputs(1, low))).float()
        res["relative_error_low_vs_fp32"] = float((got - ref).norm() / ref.norm())
        rec.save()
        eager, graphs = res.setdefault("throughput", {}), res.setdefault("cuda_graph", {})
        for n in sizes:
            if past(deadline, 5):
                eager[str(n)] = graphs[str(n)] = "not run: section time box reached"
                continue
            x = inputs(n, low)
            eager[str(n)] = rate(
                n, time_ms(lambda x=x: net_low(*x), cfg.device, reps, deadline), gflop
            )
            graphs[str(n)] = _graph_bench(net_low, x, gflop, cfg.device, reps, deadline)
            rec.save()
        if gpu:
            res["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if compile_batch is not None:
            res["torch_compile"] = {}
            _compile_bench(net_low, inputs(compile_batch, low), gflop, cfg, deadline, rec)
    return res


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _graph_bench(net, x: tuple, gflop: float, device: str, reps: int, deadline: float) -> dict:
    """The same forward replayed from a captured CUDA graph, if it captures. Off the GPU
    there is nothing to capture: the eager call is timed in its place ("captured": false)."""
    import torch

    gpu = devices.is_gpu(device)
    try:
        replay = lambda: net(*x)  # noqa: E731 - replaced by the graph's replay on a GPU
        if gpu:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    net(*x)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                net(*x)
            replay = graph.replay
        ms = time_ms(replay, device, 2 * reps, deadline)
    except Exception as exc:  # noqa: BLE001 - recorded in the report, not hidden
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"captured": gpu, **rate(int(x[0].shape[0]), ms, gflop)}


def _compile_bench(net, x: tuple, gflop: float, cfg: CheckConfig, deadline, rec) -> None:
    """`torch.compile` (inductor on a GPU, default mode then reduce-overhead, which
    replays CUDA graphs; aot_eager on a CPU): seconds to compile, ms per batch, and the
    largest difference from eager. Each mode is saved as it completes."""
    import torch

    gpu = devices.is_gpu(cfg.device)
    out = rec.data["torch_compile"]
    out["batch"] = int(x[0].shape[0])
    expected = _first(net(*x)).float()
    modes = ("default", "reduce-overhead") if gpu else ("default",)
    for mode in modes:
        if past(deadline, 10):
            out[mode] = "not run: section time box reached"
            continue
        try:
            torch._dynamo.reset()
            t0 = time.perf_counter()
            compiled = torch.compile(
                net,
                backend="inductor" if gpu else "aot_eager",
                mode=None if mode == "default" else mode,
                dynamic=False,
            )
            got = _first(compiled(*x)).float()
            devices.synchronize(cfg.device)
            row = {"compile_s": round(time.perf_counter() - t0, 2)}
            row["max_abs_diff_vs_eager"] = float((got - expected).abs().max())
            reps = 1 if cfg.tiny else 10
            row.update(
                rate(
                    out["batch"],
                    time_ms(lambda c=compiled: c(*x), cfg.device, reps, deadline),
                    gflop,
                )
            )
            out[mode] = row
        except Exception as exc:  # noqa: BLE001 - recorded; the eager figures stand
            out[mode] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
        rec.save()


def _pipeline_path(cfg: CheckConfig, module, deadline: float, rec: Recorder) -> dict:
    """The CUDA backend's generator step (`DeviceImageOps.swaps`: fp16 weights converted
    once, batches of 16, every batch bucket captured at the first call) replayed from CUDA
    graphs against eager: same pixels (uint8 levels), and ms per call both ways. Emulated
    (CPU twins, no graphs) off the GPU. The module is converted in place, so it gets a
    copy of the caller's."""
    import numpy as np
    import torch

    from ghost_engine.backend.cuda.context import device_context
    from ghost_engine.backend.cuda.device_ops import DeviceImageOps, DeviceOpsConfig
    from ghost_engine.backend.cuda.kernel_set import kernels_for
    from ghost_engine.face.generator import GeneratorRunner

    gpu = devices.is_gpu(cfg.device)
    flavour = "cuda" if gpu else "emulated"
    ctx = device_context(flavour)
    generator = GeneratorRunner(module, cfg.device, batch_size=16)
    rng = np.random.default_rng(0)
    ops = {
        name: DeviceImageOps(ctx, kernels_for(flavour), DeviceOpsConfig(cuda_graphs=graphs))
        for name, graphs in (("eager", False), ("graphs", True))
    }
    res = rec.data.setdefault("pipeline_path", {"flavour": flavour, "batch_size": 16})
    for n in (1, 3) if cfg.tiny else (1, 5, 8, 16, 32):
        if past(deadline, 5):
            res[f"batch_{n}"] = "not run: section time box reached"
            continue
        crops = ctx.upload(rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8))
        z = rng.standard_normal((n, 512)).astype(np.float32) * 10
        out = {k: ctx.to_host(o.swaps(generator, None, crops, z, no_timer)) for k, o in ops.items()}
        row: dict = {"max_level_diff": max_diff(out["eager"], out["graphs"])}
        for name, o in ops.items():
            ms = time_ms(
                lambda o=o, c=crops, z=z: o.swaps(generator, None, c, z, no_timer),
                cfg.device,
                1 if cfg.tiny else 10,
                deadline,
            )
            row[name] = rate(n, ms, 1.0)  # faces/s; TFLOP/s are the raw sweep's
            row[name].pop("tflops", None)
        res[f"batch_{n}"] = row
        rec.save()
    res["graphs"] = ops["graphs"].graph_summary()
    if gpu:
        res["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return res


def check_generator(cfg: CheckConfig, deadline: float, rec: Recorder) -> dict:
    """AEI-Net (a stand-in of its interface for `tiny`): the pipeline's path first (fp16
    weights), then the raw network: fp16 against fp32 error, eager, graphs, compile."""
    module, name, gflop = generator_module(cfg.tiny)
    rec.data.update({"network": name, "gflop_per_face": gflop})
    _pipeline_path(cfg, copy.deepcopy(module), deadline, rec)
    rec.save()
    compile_batch = 1 if cfg.tiny else 8
    return _network_bench(
        cfg, deadline, rec, module, 256, gflop, identity=True, compile_batch=compile_batch
    )


def check_arcface(cfg: CheckConfig, deadline: float, rec: Recorder) -> dict:
    """iresnet100 (iresnet18 for `tiny`, the same code path): fp16 error, throughput."""
    from ghost_engine.networks import build
    from ghost_engine.networks.fill import fill_module

    name = "arcface_iresnet18" if cfg.tiny else "arcface_iresnet100"
    rec.data["network"] = name
    gflop = ARCFACE_GFLOP * (18 / 100 if cfg.tiny else 1)
    return _network_bench(cfg, deadline, rec, fill_module(build(name)), 112, gflop)


def check_probe(cfg: CheckConfig, deadline: float, rec: Recorder) -> dict:
    from gpu_probe import check_probe as run  # beside this script

    return run(cfg, deadline, rec)


def check_end_to_end(cfg: CheckConfig, deadline: float, rec: Recorder) -> dict:
    from gpu_end_to_end import check_end_to_end as run  # beside this script

    return run(cfg.video, _scratch(cfg), cfg.device, cfg.tiny, deadline, rec)


def check_end_to_end_1080p(cfg: CheckConfig, deadline: float, rec: Recorder) -> dict:
    from gpu_end_to_end import check_end_to_end_1080p as run  # beside this script

    return run(cfg.video, _scratch(cfg), cfg.device, cfg.tiny, deadline, rec)


def check_onnx_runner(cfg: CheckConfig, deadline: float, rec: Recorder) -> dict:
    """SCRFD-sized ONNX graph through the PyTorch ONNX runner (`gpu_onnx_runner.py`)."""
    from gpu_onnx_runner import check_onnx_runner as run  # beside this script

    return run(cfg.device, cfg.tiny, deadline, time_ms)


def _scratch(cfg: CheckConfig) -> Path:
    if cfg.scratch is None:
        raise RuntimeError("this section writes videos and needs --scratch (the parent sets it)")
    return cfg.scratch


SECTIONS: dict[str, Callable[[CheckConfig, float, Recorder], dict]] = {
    "probe": check_probe,
    "generator": check_generator,
    "end_to_end": check_end_to_end,
    "kernels": check_kernels,
    "onnx_runner": check_onnx_runner,
    "arcface": check_arcface,
    "end_to_end_1080p": check_end_to_end_1080p,
}


# ---------------------------------------------------------------- one section, one process


def run_child(cfg: CheckConfig, name: str, result: Path, seconds: float) -> int:
    """In the section's own process: run it and leave its results in `result`."""
    rec = Recorder(result)
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    try:
        out = SECTIONS[name](cfg, deadline, rec)
        rec.data.update(out or {})
        rec.data.setdefault("status", "ok")
        code = 0
    except Exception as exc:  # noqa: BLE001 - recorded: the parent reports it, the run goes on
        rec.data.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=10),
        )
        code = 1
    rec.data["seconds_in_section"] = round(time.monotonic() - t0, 2)
    rec.data["finished"] = True
    rec.save()
    return code


def run_section(name: str, cfg: CheckConfig, share: float, log: Path) -> dict:
    """`name` in a new process (its own process group) with `share` seconds; the child
    aims to end `margin` seconds early, the parent kills it at `share`."""
    assert cfg.scratch is not None
    result = cfg.scratch / f"{name}.json"
    margin = max(3.0, 0.08 * share)
    args = [sys.executable, str(Path(__file__).resolve()), *_child_args(cfg)]
    args += ["--child", name, "--result", str(result), "--child-seconds", f"{share - margin:.1f}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if cfg.simulate:
        env["NUMBA_ENABLE_CUDASIM"] = "1"  # before the child imports numba
    t0 = time.monotonic()
    with open(log, "ab") as out:
        out.write(f"\n===== {name} (share {share:.0f} s)\n".encode())
        out.flush()
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, process_group=0
        )
        timed_out = False
        try:
            code = proc.wait(timeout=share)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the section and anything it started
            code = proc.wait()
        except BaseException:  # the parent is stopped (SIGTERM, Ctrl-C): the section too
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    seconds = round(time.monotonic() - t0, 2)
    data: dict = {}
    if result.exists():
        try:
            data = json.loads(result.read_text())
        except json.JSONDecodeError as exc:
            data = {"result_file": f"unreadable: {exc}"}
    if timed_out:
        data["status"] = f"timed out after {round(share, 1):g} s"
    elif not data.get("finished"):
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        data["status"] = "error"
        data.setdefault("error", f"the section's process ended without its result ({how})")
    if data.get("status") != "ok":
        data["output_tail"] = _tail(log, LOG_TAIL)
    data.pop("finished", None)
    data["seconds"] = seconds
    return data


def _child_args(cfg: CheckConfig) -> list[str]:
    args = ["--out", str(cfg.out), "--device", cfg.device, "--video", str(cfg.video)]
    args += ["--scratch", str(cfg.scratch)]
    return args + (["--simulate"] if cfg.simulate else []) + (["--tiny"] if cfg.tiny else [])


def _tail(path: Path, chars: int) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - chars))
        return f.read().decode(errors="replace")


# ---------------------------------------------------------------- the report


def commit() -> str:
    """The commit the installed wheel was built from (`.gpu/commit.txt`, written by
    `fetch_gpu_wheels.sh`), else this checkout's."""
    written = DEFAULT_CLIP.parent / "commit.txt"
    if written.exists():
        return written.read_text().strip()
    from ghost_engine.measure.machine import git_commit

    return git_commit(REPO)


def summary(report: dict) -> str:
    lines = [f"{'section':<17} {'status':<22} {'seconds':>8}  details"]
    for name, res in report["sections"].items():
        lines.append(
            f"{name:<17} {str(res.get('status')):<22} {res.get('seconds', 0):>8}  "
            f"{_details(name, res)}"
        )
    return "\n".join(lines)


def _details(name: str, res: dict) -> str:
    """The section's headline figures, or its error; never raises on partial results."""
    try:
        if res.get("status") != "ok" and res.get("error"):
            return str(res["error"]).splitlines()[0][:200]
        if name == "probe":
            gemm = res.get("gemm_tflops", {})
            nvc = res.get("nvcodec", {})
            return (
                f"gemm {gemm.get('float16', gemm.get('float32'))} TFLOP/s, copy "
                f"{res.get('device_copy', {}).get('gb_per_s')} GB/s, numba launch "
                f"{_launch_us(res.get('numba_launch', {}))} us, "
                f"PyNvVideoCodec {nvc.get('package_import')}"
            )
        if name in ("generator", "arcface"):
            best = [v for v in res.get("cuda_graph", {}).values() if isinstance(v, dict)]
            best = [v for v in best if "faces_per_s" in v]
            top = max(best, key=lambda v: v["faces_per_s"]) if best else {}
            return (
                f"rel.err {res.get('relative_error_low_vs_fp32', float('nan')):.2e}, best "
                f"{top.get('faces_per_s')} faces/s ({top.get('tflops')} TFLOP/s)"
            )
        if name.startswith("end_to_end"):
            full = res.get("full", {})
            return (
                f"{full.get('x264', {}).get('frames_per_s')} frames/s with x264, "
                f"{full.get('null_sink', {}).get('frames_per_s')} into a null sink "
                f"(decode {full.get('decode')})"
            )
        if name == "kernels":
            return f"within 1/255: {res.get('within_one_level')} {res.get('max_abs_diff')}"
        if name == "onnx_runner":
            rows = {k: v for k, v in res.items() if k in ("float32", "float16")}
            return f"{res.get('gflop_per_image')} GFLOP graph: " + ", ".join(
                f"{k} {v.get('batch_1_ms')} ms" for k, v in rows.items()
            )
    except (AttributeError, TypeError, ValueError) as exc:
        return f"(no summary: {exc})"
    return ""


def _launch_us(row: dict) -> object:
    return next((v for k, v in row.items() if k.endswith("_us")), None)


def write_report(report: dict, out: Path) -> None:
    """JSON and the summary table, replaced atomically so a kill never leaves half a file."""
    for name, text in (
        ("gpu_check.json", json.dumps(report, indent=2, default=str)),
        ("summary.txt", summary(report) + "\n"),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> tuple[CheckConfig, list[str], argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json")
    p.add_argument("--device", choices=devices.DEVICES, default=devices.CUDA)
    p.add_argument("--simulate", action="store_true", help="CUDA kernels under Numba's simulator")
    p.add_argument("--tiny", action="store_true", help="tiny inputs, one repetition (CPU runs)")
    p.add_argument("--video", type=Path, default=DEFAULT_CLIP, help=f"default: {DEFAULT_CLIP}")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    p.add_argument("--total-seconds", type=float, default=270.0, help="limit for the whole run")
    p.add_argument(
        "--section-seconds",
        action="append",
        default=[],
        metavar="NAME=S",
        help="a section's share of the run in seconds (repeatable)",
    )
    # a section's own process (run_section starts it)
    p.add_argument("--scratch", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child", choices=list(SECTIONS), default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    shares = dict(SECTION_SECONDS)
    for item in args.section_seconds:
        name, _, seconds = item.partition("=")
        if name not in SECTIONS or not seconds.replace(".", "", 1).isdigit():
            p.error(f"--section-seconds takes NAME=SECONDS with NAME one of {', '.join(SECTIONS)}")
        shares[name] = float(seconds)
    cfg = CheckConfig(
        out=args.out,
        device=args.device,
        simulate=args.simulate,
        tiny=args.tiny,
        video=args.video,
        scratch=args.scratch,
        section_seconds=shares,
        total_seconds=args.total_seconds,
    )
    return cfg, sections, args


def main(argv: list[str] | None = None) -> int:
    cfg, sections, args = parse_args(argv)
    if args.child:
        if args.result is None:
            print("gpu_check.py: --child needs --result", file=sys.stderr)
            return 2
        return run_child(cfg, args.child, args.result, args.child_seconds)
    if not cfg.video.is_file():
        print(
            f"gpu_check.py: the clip {cfg.video} is missing; make it with "
            "`bash bench/fetch_gpu_wheels.sh` where the shared media is, and carry .gpu/",
            file=sys.stderr,
        )
        return 2
    from gpu_probe import environment

    started = time.monotonic()
    cfg.out.mkdir(parents=True, exist_ok=True)
    log = cfg.out / "gpu_check.log"
    log.write_text("")
    report: dict = {
        "environment": environment(cfg.device, cfg.simulate, commit()),
        "config": {k: str(v) for k, v in asdict(cfg).items() if k not in ("out", "scratch")},
        "sections": {},
    }
    report["environment"]["clip"] = {"path": str(cfg.video), "bytes": cfg.video.stat().st_size}
    cfg = replace(cfg, scratch=Path(tempfile.mkdtemp(prefix="ghost-gpu-check-")))
    write_report(report, cfg.out)  # the environment, before any section can hang
    # `timeout` stops the run with SIGTERM: end the running section and keep the report
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        for name in sections:
            left = cfg.total_seconds - (time.monotonic() - started)
            share = min(float(cfg.section_seconds[name]) * (TINY_SLOWER if cfg.tiny else 1), left)
            if left < cfg.min_section_seconds:
                result = {"status": f"not run: out of time ({left:.0f} s left)", "seconds": 0.0}
            else:
                try:
                    result = run_section(name, cfg, share, log)
                except BaseException:
                    report["sections"][name] = {"status": "interrupted: the run was stopped"}
                    write_report(report, cfg.out)
                    raise
            report["sections"][name] = result
            # Written after every section so a run killed by its time limit keeps what it had.
            report["total_seconds"] = round(time.monotonic() - started, 2)
            write_report(report, cfg.out)
            print(summary({"sections": {name: result}}).splitlines()[1], flush=True)
    finally:
        shutil.rmtree(cfg.scratch, ignore_errors=True)
    print(summary(report))
    return 0 if all(r.get("status") == "ok" for r in report["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
