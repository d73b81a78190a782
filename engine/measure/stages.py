"""Each pipeline stage timed alone on the benchmark's frames, with the engine's own code.

A stage's unit of work is what the pipeline hands it: the decoder and the encoder a pass
over all benchmark frames, the detector one pipeline batch of frames, the recogniser and
the generator one batch of face crops, and landmarks, mask and paste-back one face at a
time, as the face stage calls them. Face throughputs are turned into frames per second
with the faces found per frame, so every stage is on the same scale.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ghost_engine.face.geometry import align_face
from ghost_engine.face.mask import LAYOUTS, cheek_offset, face_mask, ghost_params
from ghost_engine.face.paste import paste_back
from ghost_engine.measure.bench_config import STAGES, BenchConfig
from ghost_engine.measure.stats import Measurement, measure
from ghost_engine.measure.workload import Workload, encoding, first_frames

_UNITS = dict(STAGES)


@dataclass(frozen=True)
class StageResult:
    """One stage measured alone."""

    name: str
    unit: str  # "frames" or "faces"
    implementation: str
    measurement: Measurement
    frames_per_s: float

    @property
    def cpu_s_per_frame(self) -> float | None:
        """Process CPU seconds (all cores) this stage spends per frame."""
        cpu = self.measurement.cpu_median_s
        if cpu is None:
            return None
        return cpu / self.measurement.items * (self.measurement.per_s / self.frames_per_s)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "unit": self.unit,
            "implementation": self.implementation,
            "per_s": round(self.measurement.per_s, 4),
            "frames_per_s": round(self.frames_per_s, 4),
            "cpu_s_per_frame": None
            if self.cpu_s_per_frame is None
            else round(self.cpu_s_per_frame, 5),
            "measurement": self.measurement.to_dict(),
        }


def _result(name: str, impl: str, m: Measurement, faces_per_frame: float) -> StageResult:
    unit = _UNITS[name]
    fps = m.per_s if unit == "frames" else m.per_s / faces_per_frame
    return StageResult(name, unit, impl, m, fps)


def encode_pass(work: Workload, folder: Path) -> Callable[[], None]:
    """Encode every benchmark frame into a fresh file with `run`'s default settings."""

    def run() -> None:
        with encoding(work.info, folder / "bench.mp4") as encoder:
            for frame in work.frames:
                encoder.encode(frame)

    return run


class _FaceSteps:
    """The face stage's per-face steps after the generator, on prepared swaps."""

    def __init__(self, work: Workload, swaps: np.ndarray) -> None:
        self.work = work
        self.swaps = swaps
        self.layout = LAYOUTS[work.models.landmarks.layout]
        lm = work.models.landmarks
        self.swap_lm = [lm(s[None])[0] for s in swaps]
        target_lm = lm(work.jobs[0].crop.image[None])[0]
        self.params = ghost_params(cheek_offset(self.swap_lm[0], target_lm, self.layout))
        self.masks = [face_mask(p, self.params, self.layout) for p in self.swap_lm]
        # Paste into scratch copies: the benchmark's frames stay untouched.
        self.canvas = {j.frame_index: work.frames[j.frame_index].image.copy() for j in work.jobs}

    def landmarks(self) -> None:
        for swap in self.swaps:
            self.work.models.landmarks(swap[None])

    def mask(self) -> None:
        for points in self.swap_lm:
            face_mask(points, self.params, self.layout)

    def paste(self) -> None:
        jobs = self.work.jobs[: len(self.swaps)]
        for job, swap, mask in zip(jobs, self.swaps, self.masks, strict=True):
            paste_back(self.canvas[job.frame_index], swap, mask, job.crop.matrix)


def measure_stages(work: Workload, config: BenchConfig) -> list[StageResult]:
    """Every stage of `STAGES`, in pipeline order."""
    timed = partial(measure, warmup=config.warmup, repeats=config.repeats)
    models, jobs, ratio = work.models, work.jobs, work.faces_per_frame
    impl = work.implementations()
    batch = config.pipeline_batch
    images = [f.image for f in work.frames[:batch]]
    crops, points = work.crops[:batch], work.crop_points[:batch]
    z = work.z_ids(len(crops))
    by_index = {f.index: f.image for f in work.frames}
    n = len(work.frames)

    def decode() -> None:
        for _ in first_frames(work.info.path, n):
            pass

    def align() -> None:
        for job in jobs:
            align_face(by_index[job.frame_index], job.face.kps)

    results = [
        _result("decode", "PyAV", timed(decode, items=n), ratio),
        _result(
            "detect",
            impl["detect"],
            timed(lambda: models.detector(images), items=len(images)),
            ratio,
        ),
        _result("align", "align_face", timed(align, items=len(jobs)), ratio),
    ]
    recognizer, enhancer = models.recognizer, work.enhancer
    if recognizer is not None:
        m = timed(lambda: recognizer.embed(crops, points), items=len(crops))
        results.append(_result("identity", impl["identity"], m, ratio))
    swaps: list[np.ndarray] = []

    def generate() -> None:
        swaps[:] = [models.generator(crops, z)]

    m = timed(generate, items=len(crops))
    results.append(_result("generator", impl["generator"], m, ratio))
    if enhancer is not None:
        batches = models.generator.generate(crops, z)

        def enhance() -> None:
            for b in batches:
                enhancer(b)

        m = timed(enhance, items=len(crops))
        results.append(_result("enhance", f"LIP-SPADE {enhancer.mode}", m, ratio))
    steps = _FaceSteps(work, swaps[0])
    for name, fn in (("landmarks", steps.landmarks), ("mask", steps.mask)):
        impl_name = impl["landmarks"] if name == "landmarks" else "face_mask"
        results.append(_result(name, impl_name, timed(fn, items=len(crops)), ratio))
    results.append(_result("paste", "paste_back", timed(steps.paste, items=len(crops)), ratio))
    with tempfile.TemporaryDirectory(prefix="ghost-bench-") as folder:
        m = timed(encode_pass(work, Path(folder)), items=n)
    results.append(_result("encode", "PyAV libx264 crf 18", m, ratio))
    return results
