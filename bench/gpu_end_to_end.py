"""The GPU check's end-to-end sections: the CUDA backend on the clip, with ablations.

`check_end_to_end` (720p, the clip itself) measures each run over the whole clip after a
warm-up (Numba compiles the kernels, cuDNN picks algorithms, graphs are captured):

- `x264`: `run_video` as `ghost-engine run --device cuda` does it (x264 in its own
  thread, segments, muxing, audio copy);
- `null_sink`: the same stages into a null sink: the GPU pipeline's own throughput;
- `detection_off`: detections replayed for free (the SCRFD-sized graph not run);
- `passthrough_generator`: the crops pasted back unchanged (no generator);
- `upload_decode`: PyAV decoding plus pinned uploads instead of NVDEC;
- `decode`: each frame source alone (NVDEC and upload), frames/s, and the pixel
  difference between their frames (the NV12 kernel against PyAV's conversion).

Each run records frames/s, each step's own frames/s (from the pipeline's statistics),
efficiency (frames/s over the slowest step's) and the CPU seconds of every thread
(sampled from /proc every 20 ms, in clock ticks of 10 ms: the pipeline's named threads,
the rest grouped as native).
`check_end_to_end_1080p` runs `x264` and `null_sink` on a 1080p upscale of the clip
(made in the scratch folder, x264 CRF 16).

The face work is real except detection and landmarks, which are replayed from a dlib
recording of the same clip (`replay_faces.py`): the GPU machine has no detector weights
and no dlib. Their cost is paid all the same: every batch of frames goes through the
backend's real detect step with an SCRFD-sized graph (`gpu_onnx_runner.py`, 11 GFLOP at
640, random weights, a score threshold nothing passes) on the PyTorch ONNX runner, and
every landmark call runs a 2d106det-sized graph on the same crops. The generator is
AEI-Net at full size with fill-rule weights (the right cost; faces are meaningless),
fp16 on the GPU. `tiny` (CPU tests) runs the emulated flavour with the stand-in
generator and small stand-in graphs on a 320x180 copy of the clip's first frames.
Videos are written to the scratch folder only.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gpu_common import Recorder, generator_module, past

from ghost_engine.runtime import devices

BENCH = Path(__file__).resolve().parent
RECORDING = BENCH / "data" / "nggyup_faces.npz"
RECORDED_WIDTH = 1280  # the recording's frame width (nggyup.mp4 is 1280x720)
TINY_SIZE = (320, 180)
TINY_SECONDS = 0.4


def make_scaled(
    source: Path, out: Path, size: tuple[int, int], deadline: float, end_s: float | None = None
) -> Path:
    """`source` resized to `size` (bilinear), H.264 (x264 ultrafast, CRF 16), up to `end_s`."""
    import av
    import cv2

    with av.open(str(source)) as inp, av.open(str(out), "w") as dst:
        stream_in = inp.streams.video[0]
        stream = dst.add_stream("libx264", rate=stream_in.average_rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "16"}
        for frame in inp.decode(stream_in):
            if end_s is not None and frame.time is not None and frame.time >= end_s:
                break
            big = cv2.resize(frame.to_ndarray(format="rgb24"), size)
            dst.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="rgb24")))
            if time.monotonic() > deadline:
                break
        dst.mux(stream.encode(None))
    return out


@dataclass
class Models:
    """What every run shares (built once per section): the generator and the stand-in
    graphs that pay detection's and landmarks' cost."""

    generator: Any  # GeneratorRunner
    passthrough: Any  # GeneratorRunner without a module
    det_cost: Any  # ScrfdDetector on the ONNX runner
    lm_cost: Any  # Landmarks106 on the ONNX runner
    recording: dict
    name: str


def build_models(device: str, tiny: bool, batch: int) -> Models:
    import onnx
    from gpu_onnx_runner import detector_onnx, landmark_onnx
    from replay_faces import load

    from ghost_engine.face.generator import GeneratorRunner
    from ghost_engine.face.landmarks106 import Landmarks106
    from ghost_engine.face.scrfd import ScrfdConfig, ScrfdDetector
    from ghost_engine.runtime.onnx_torch import OnnxTorchSession

    module, name, _ = generator_module(tiny)
    det_graph, _ = detector_onnx(4 if tiny else 48, 640)
    lm_graph, _ = landmark_onnx(8 if tiny else 48)
    return Models(
        generator=GeneratorRunner(module, device, batch),
        passthrough=GeneratorRunner(None, device, batch),
        det_cost=ScrfdDetector(
            OnnxTorchSession(onnx.load_from_string(det_graph), device),
            ScrfdConfig(score_threshold=1.01),
        ),
        lm_cost=Landmarks106(OnnxTorchSession(onnx.load_from_string(lm_graph), device)),
        recording=load(RECORDING),
        name=name,
    )


def _stage(models: Models, device: str, batch: int, scale: float, *, generator: bool, detect: bool):
    import torch
    from replay_faces import ReplayDetector, ReplayLandmarks

    from ghost_engine.backend.host_ops import HostImageOps
    from ghost_engine.face.swap_config import SwapConfig
    from ghost_engine.pipeline.face_models import FaceModels
    from ghost_engine.pipeline.swap import assemble_stage

    config = SwapConfig(generator="random", all_faces=True, device=device, batch_size=batch)
    face_models = FaceModels(
        detector=ReplayDetector(models.recording, scale),
        recognizer=None,
        id_encoder=None,
        generator=models.generator if generator else models.passthrough,
        landmarks=ReplayLandmarks(models.recording, cost=models.lm_cost),
    )
    seed = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(1, 512, generator=seed))
    stage = assemble_stage(config, face_models, z.numpy(), None, HostImageOps())
    if detect:  # the backend's own detect step (device letterbox, one batch, runner, decode)
        face_models.detector.cost = lambda frames: stage.analysis.ops.detect(
            models.det_cost, frames
        )
    return stage


class ThreadCpu:
    """CPU seconds per thread over a block, sampled from /proc/self/task every `period`
    seconds (a thread's last < `period` seconds before it ends can be missed)."""

    def __init__(self, period: float = 0.02) -> None:
        self.period = period
        self._tick = os.sysconf("SC_CLK_TCK")
        self._base: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ghost-bench-cpu", daemon=True)

    def _sample(self) -> dict[int, tuple[str, float]]:
        names = {t.native_id: t.name for t in threading.enumerate()}
        out = {}
        for tid_text in os.listdir("/proc/self/task"):
            tid = int(tid_text)
            try:
                stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            except OSError:
                continue  # ended between listing and reading
            fields = stat[stat.rindex(")") + 2 :].split()
            seconds = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            out[tid] = (names.get(tid) or f"native:{comm}", seconds)
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self._last.update(self._sample())

    def __enter__(self) -> ThreadCpu:
        self._base = {tid: s for tid, (_, s) in self._sample().items()}
        self._started = time.perf_counter()
        self._cpu0 = time.process_time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._last.update(self._sample())
        self.wall_s = time.perf_counter() - self._started
        self.process_cpu_s = time.process_time() - self._cpu0

    def summary(self) -> dict:
        by_name: dict[str, float] = {}
        for tid, (name, seconds) in self._last.items():
            if name == "ghost-bench-cpu":
                continue
            by_name[name] = by_name.get(name, 0.0) + seconds - self._base.get(tid, 0.0)
        rows = {k: round(v, 3) for k, v in sorted(by_name.items(), key=lambda kv: -kv[1])}
        return {
            "process_cpu_s": round(self.process_cpu_s, 3),
            "cores_busy": round(self.process_cpu_s / self.wall_s, 2) if self.wall_s else None,
            "by_thread_s": {k: v for k, v in rows.items() if v > 0.0005},
        }


def _gpu_memory(device: str) -> dict:
    if not devices.is_gpu(device):
        return {}
    import torch

    out = {"torch_max_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3)}
    try:
        import cupy

        out["cupy_pool_total_gib"] = round(cupy.get_default_memory_pool().total_bytes() / 2**30, 3)
    except ImportError:
        pass
    return out


def _rates(frames: int, steps: dict[str, float], wall_s: float) -> dict:
    per_stage = {k: round(frames / v, 1) for k, v in steps.items() if v > 0}
    fps = frames / wall_s if wall_s > 0 else 0.0
    slowest = min(per_stage.values()) if per_stage else 0.0
    return {
        "frames": frames,
        "wall_s": round(wall_s, 3),
        "frames_per_s": round(fps, 1),
        "stage_frames_per_s": per_stage,
        "slowest_stage": min(per_stage, key=per_stage.get) if per_stage else None,  # type: ignore[arg-type]
        "efficiency": round(fps / slowest, 3) if slowest else None,
    }


class Clip:
    """One clip and the settings every run on it shares."""

    def __init__(self, path: Path, scratch: Path, device: str, tiny: bool, scale: float) -> None:
        from ghost_engine.pipeline.runner import PipelineConfig

        self.path, self.scratch, self.device, self.tiny, self.scale = (
            path,
            scratch,
            device,
            tiny,
            scale,
        )
        self.batch = 4 if tiny else 16
        self.pipeline = PipelineConfig(batch_size=self.batch)
        self.flavour = "cuda" if devices.is_gpu(device) else "emulated"
        self.warmup_s = 0.1 if tiny else 0.5

    def job(self, name: str, end_s: float | None) -> Any:
        from ghost_engine.pipeline.progress import ProgressConfig
        from ghost_engine.pipeline.video_job import VideoJob
        from ghost_engine.video.encode import EncodeSettings
        from ghost_engine.video.mux import TimeRange

        return VideoJob(
            target=self.path,
            output=self.scratch / f"{self.path.stem}_{name}.mp4",
            encode=EncodeSettings(codec="h264", preset="veryfast"),
            time_range=TimeRange(0.0, end_s),
            pipeline=self.pipeline,
            progress=ProgressConfig(mode="quiet"),
        )

    def run(
        self,
        name: str,
        models: Models,
        sinks: tuple[str, ...],
        *,
        generator: bool = True,
        detect: bool = True,
        nvdec: bool = True,
    ) -> dict:
        """Warm-up, then one whole-clip pass per sink ("x264": `run_video`; "null_sink")."""
        from ghost_engine.backend.cuda.pipeline import DeviceBackendConfig, DeviceVideoRun
        from ghost_engine.pipeline.report import RunReport
        from ghost_engine.pipeline.runner import run_pipeline
        from ghost_engine.pipeline.video_job import run_video

        stage = _stage(
            models, self.device, self.batch, self.scale, generator=generator, detect=detect
        )
        backend = DeviceBackendConfig(flavour=self.flavour, prefer_nvdec=nvdec)
        run = DeviceVideoRun(None, self.pipeline, backend, stage=stage, encoder_pix_fmt="yuv420p")
        out: dict[str, Any] = {}
        with run as (stages, read):
            t0 = time.perf_counter()
            blank = RunReport("video", "", "", [])
            run_video(self.job(f"{name}_warmup", self.warmup_s), stages, blank, read, run.stop)
            out["warmup_s"] = round(time.perf_counter() - t0, 2)
            for sink in sinks:
                before = stage.timings()
                with ThreadCpu() as cpu:
                    if sink == "x264":
                        report = run_video(
                            self.job(f"{name}_x264", None),
                            stages,
                            RunReport("video", "", "", []),
                            read,
                            run.stop,
                        )
                        rates = _rates(report.frames, report.stage_seconds, report.wall_s)
                    else:
                        stats = run_pipeline(
                            read(self.path), stages, lambda f: None, self.pipeline, stop=run.stop
                        )
                        steps = {k: v.seconds for k, v in stats.steps.items() if k != "encode"}
                        rates = _rates(stats.steps["decode"].frames, steps, stats.wall_s)
                rates["swap_seconds"] = {
                    k: round(v - before.get(k, 0.0), 4) for k, v in stage.timings().items()
                }
                rates["cpu"] = cpu.summary()
                out[sink] = rates
        out["decode"] = run.decode_backend
        out["decode_fallback_reason"] = run.decode_reason
        summary = run.summary()
        out["encoder_input"] = summary["encoder_input"]
        out["generator_cuda_graphs"] = summary["generator_cuda_graphs"]
        return out

    def decode_only(self, frames_compared: int) -> dict:
        """Each frame source alone over the clip, and NVDEC's frames against PyAV's."""
        from ghost_engine.backend.cuda.context import device_context
        from ghost_engine.backend.cuda.decode import open_device_source

        ctx = device_context(self.flavour)
        out: dict[str, Any] = {}
        for label, prefer in (("nvdec", True), ("upload", False)):
            with open_device_source(self.path, ctx, 4, prefer_nvdec=prefer) as source:
                t0 = time.perf_counter()
                count = 0
                for frame in source:
                    frame.release()
                    count += 1
                ctx.synchronize()
                seconds = time.perf_counter() - t0
                out[label] = {
                    "backend": source.backend,
                    "reason": source.reason,
                    "frames": count,
                    "frames_per_s": round(count / seconds, 1) if seconds else None,
                }
        with (
            open_device_source(self.path, ctx, 4, prefer_nvdec=True) as a,
            open_device_source(self.path, ctx, 4, prefer_nvdec=False) as b,
        ):
            diffs, over = [], 0
            pixels = 0
            for k, (fa, fb) in enumerate(zip(a, b, strict=False)):
                if k >= frames_compared:
                    fa.release()
                    fb.release()
                    break
                ha = ctx.to_host(fa.image).astype(np.int16)
                hb = ctx.to_host(fb.image).astype(np.int16)
                fa.release()
                fb.release()
                d = np.abs(ha - hb)
                diffs.append((int(d.max()), float(d.mean())))
                over += int((d > 2).sum())
                pixels += d.size
            out["pixel_diff"] = {
                "sources": [a.backend, b.backend],
                "frames": len(diffs),
                "max_levels": max(m for m, _ in diffs),
                "mean_levels": round(sum(x for _, x in diffs) / len(diffs), 4),
                "share_over_2_levels": round(over / pixels, 6),
            }
        return out


def _clip_for(
    video: Path, scratch: Path, tiny: bool, size: tuple[int, int] | None, deadline: float
) -> Path:
    """The clip itself, or a resized copy in `scratch` (1080p; tiny runs: small)."""
    if size is None and not tiny:
        return video
    if tiny:
        w, h = TINY_SIZE
        size = (w, h) if size is None else (int(w * 1.5), int(h * 1.5))
        return make_scaled(
            video, scratch / f"clip_{size[0]}x{size[1]}.mp4", size, deadline, TINY_SECONDS
        )
    return make_scaled(video, scratch / f"clip_{size[0]}x{size[1]}.mp4", size, deadline)


def _header(models: Models, clip: Clip) -> dict:
    return {
        "clip": clip.path.name,
        "batch_size": clip.batch,
        "flavour": clip.flavour,
        "detection": "replayed from a dlib recording; cost paid by an SCRFD-sized graph",
        "landmarks": "replayed 68-point recording; cost paid by a 2d106det-sized graph",
        "generator": f"{models.name}" + (", fp16" if clip.flavour == "cuda" else ""),
    }


def check_end_to_end(
    video: Path, scratch: Path, device: str, tiny: bool, deadline: float, rec: Recorder
) -> dict:
    """720p: every ablation (module doc), each saved as it completes."""
    path = _clip_for(video, scratch, tiny, None, deadline)
    scale = (TINY_SIZE[0] if tiny else RECORDED_WIDTH) / RECORDED_WIDTH
    clip = Clip(path, scratch, device, tiny, scale)
    models = build_models(device, tiny, clip.batch)
    res = rec.data
    res.update(_header(models, clip))
    runs = (
        ("full", {}, ("x264", "null_sink")),
        ("detection_off", {"detect": False}, ("null_sink",)),
        ("passthrough_generator", {"generator": False}, ("null_sink",)),
        ("upload_decode", {"nvdec": False}, ("null_sink",)),
    )
    for name, options, sinks in runs:
        if past(deadline, 5):
            res[name] = "not run: section time box reached"
            continue
        res[name] = clip.run(name, models, sinks, **options)
        rec.save()
    if not past(deadline, 3):
        res["decode_only"] = clip.decode_only(8 if tiny else 60)
    res["gpu_memory"] = _gpu_memory(device)
    return res


def check_end_to_end_1080p(
    video: Path, scratch: Path, device: str, tiny: bool, deadline: float, rec: Recorder
) -> dict:
    """The clip upscaled to 1080p: the whole path with x264 and into a null sink."""
    path = _clip_for(video, scratch, tiny, (1920, 1080), deadline)
    width = int(TINY_SIZE[0] * 1.5) if tiny else 1920
    clip = Clip(path, scratch, device, tiny, width / RECORDED_WIDTH)
    models = build_models(device, tiny, clip.batch)
    res = rec.data
    res.update(_header(models, clip))
    res["full"] = clip.run("full", models, ("x264", "null_sink"))
    res["gpu_memory"] = _gpu_memory(device)
    return res
