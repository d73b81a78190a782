"""`train prepare`: a VGGFace2-style tree (one folder per identity) -> aligned training crops.

Each photo whose shorter side is at least `min_side` (250) gets its largest face detected
(dlib HOG, offline), aligned with the engine's own GHOST crop (`face.geometry.align_face`,
so training and inference see identical crops) and stored as the 224 crop (the identity
encoder's input) and the 256 resize the generator takes (bilinear, as at inference).

Output (a plain folder tree that streams from any number of loader workers):
  crops/<identity>/<stem>.224.png, crops/<identity>/<stem>.256.png
  journal.jsonl   one line per processed photo, appended as results arrive (resume point)
  index.jsonl     the kept faces, sorted; what `PairDataset` reads
  dropped.jsonl   the dropped photos with the reason; report.json: counts per reason

Crops are written atomically before their journal line, so a journal entry always has its
files; a rerun skips every photo already in the journal.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ghost_engine.errors import InputFileNotFoundError, UserInputError
from ghost_engine.face.geometry import CROP_SIZE, GENERATOR_SIZE, align_face

if TYPE_CHECKING:  # dlib loads only when photos need detecting
    from ghost_engine.face.dlib_backend import DlibDetector

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
INDEX_NAME = "index.jsonl"
JOURNAL_NAME = "journal.jsonl"
DROPPED_NAME = "dropped.jsonl"
REPORT_NAME = "report.json"


@dataclass(frozen=True)
class PrepareConfig:
    """`aligned`: inputs are already GHOST 224 crops (no detection, no size rule).
    `upsample`/`max_side`: dlib HOG settings (see `DlibConfig`)."""

    min_side: int = 250
    workers: int = 4
    aligned: bool = False
    upsample: int = 0
    max_side: int | None = 1024


@dataclass(frozen=True)
class PrepareReport:
    """What a run did: totals over the whole journal and how many were new this time."""

    kept: int
    dropped: dict[str, int]
    processed_now: int
    out_dir: Path


def list_photos(src: Path) -> list[str]:
    """Relative paths of every image under the identity folders of `src`, sorted."""
    if not src.is_dir():
        raise InputFileNotFoundError(f"source folder not found: {src}")
    photos = [
        p.relative_to(src).as_posix()
        for p in src.glob("*/*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not photos:
        raise UserInputError(
            f"no images in {src}/<identity>/: expected one folder per person with photos"
        )
    return sorted(photos)


def _write_png_atomic(path: Path, rgb: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {tmp}")
    os.replace(tmp, path)


def store_size_crop(crop224: np.ndarray) -> np.ndarray:
    """The 256 crop the generator takes: cv2 bilinear resize, as `generator_input` does."""
    size = (GENERATOR_SIZE, GENERATOR_SIZE)
    return cv2.resize(crop224, size, interpolation=cv2.INTER_LINEAR)


class _Worker:
    """Processes one photo; holds its own detector (dlib objects are per process)."""

    def __init__(self, src: Path, out: Path, config: PrepareConfig) -> None:
        self.src, self.out, self.config = src, out, config
        self.detector: DlibDetector | None = None
        if not config.aligned:
            from ghost_engine.face.dlib_backend import DlibConfig, DlibDetector

            self.detector = DlibDetector(DlibConfig(config.upsample, config.max_side))

    def _face(self, image: np.ndarray) -> tuple[np.ndarray, dict] | None:
        if self.config.aligned:
            crop = image
            if crop.shape[:2] != (CROP_SIZE, CROP_SIZE):
                crop = cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
            return crop, {}
        assert self.detector is not None  # made in __init__ for unaligned photos
        found = self.detector.detect_one(image)
        if not found:
            return None
        face = max(
            (f for f, _ in found), key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])
        )
        aligned = align_face(image, face.kps, CROP_SIZE)
        meta = {"box": face.box.tolist(), "kps": face.kps.tolist(), "template": aligned.template}
        return aligned.image, meta

    def __call__(self, rel: str) -> dict:
        record: dict = {"source": rel, "identity": rel.split("/")[0]}
        bgr = cv2.imread(str(self.src / rel), cv2.IMREAD_COLOR)
        if bgr is None:
            return {**record, "status": "dropped", "reason": "unreadable"}
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        short = min(image.shape[:2])
        if not self.config.aligned and short < self.config.min_side:
            return {**record, "status": "dropped", "reason": "too_small", "short_side": short}
        result = self._face(image)
        if result is None:
            return {**record, "status": "dropped", "reason": "no_face"}
        crop, meta = result
        stem = Path(rel).with_suffix("").as_posix()
        rel224, rel256 = f"crops/{stem}.224.png", f"crops/{stem}.256.png"
        (self.out / rel224).parent.mkdir(parents=True, exist_ok=True)
        _write_png_atomic(self.out / rel224, crop)
        _write_png_atomic(self.out / rel256, store_size_crop(crop))
        return {**record, "status": "kept", "crop224": rel224, "crop256": rel256, **meta}


_WORKER: _Worker | None = None


def _init_worker(src: Path, out: Path, config: PrepareConfig) -> None:
    global _WORKER
    _WORKER = _Worker(src, out, config)


def _run_worker(rel: str) -> dict:
    if _WORKER is None:
        raise RuntimeError("prepare worker used before initialisation")
    return _WORKER(rel)


def read_journal(out: Path) -> dict[str, dict]:
    """Records already processed, by source path. A torn last line (a crash mid-write) is
    cut from the file, so that photo is processed again and appends stay line-aligned."""
    path = out / JOURNAL_NAME
    done: dict[str, dict] = {}
    if not path.is_file():
        return done
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    torn = False
    for i, line in enumerate(lines):
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                torn = True
                break
            raise UserInputError(
                f"{path}:{i + 1} is corrupt; delete the journal to start over"
            ) from None
        done[item["source"]] = item
    if torn or (text and not text.endswith("\n")):
        _write_atomic(path, "".join(json.dumps(r) + "\n" for r in done.values()))
    return done


def _results(todo: list[str], src: Path, out: Path, config: PrepareConfig) -> Iterable[dict]:
    if config.workers <= 1 or len(todo) <= 1:
        worker = _Worker(src, out, config)
        yield from (worker(rel) for rel in todo)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(config.workers, initializer=_init_worker, initargs=(src, out, config)) as pool:
        yield from pool.imap_unordered(_run_worker, todo, chunksize=4)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _finish(out: Path, done: dict[str, dict]) -> tuple[int, dict[str, int]]:
    records = [done[k] for k in sorted(done)]
    kept = [r for r in records if r["status"] == "kept"]
    dropped = [r for r in records if r["status"] == "dropped"]
    index_lines = [
        json.dumps({k: r[k] for k in ("identity", "crop224", "crop256", "source")}) for r in kept
    ]
    _write_atomic(out / INDEX_NAME, "".join(line + "\n" for line in index_lines))
    _write_atomic(out / DROPPED_NAME, "".join(json.dumps(r) + "\n" for r in dropped))
    reasons = dict(Counter(r["reason"] for r in dropped))
    summary = {
        "kept": len(kept),
        "dropped": reasons,
        "identities": len({r["identity"] for r in kept}),
    }
    _write_atomic(out / REPORT_NAME, json.dumps(summary, indent=2) + "\n")
    return len(kept), reasons


def prepare_dataset(
    src: str | Path,
    out: str | Path,
    config: PrepareConfig = PrepareConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> PrepareReport:
    """Prepare (or resume preparing) `src` into `out`; see the module note for the layout."""
    src, out = Path(src), Path(out)
    photos = list_photos(src)
    out.mkdir(parents=True, exist_ok=True)
    done = read_journal(out)
    todo = [p for p in photos if p not in done]
    with (out / JOURNAL_NAME).open("a", encoding="utf-8") as journal:
        for n, record in enumerate(_results(todo, src, out, config), 1):
            journal.write(json.dumps(record) + "\n")
            journal.flush()
            done[record["source"]] = record
            if progress is not None:
                progress(n, len(todo))
    kept, reasons = _finish(out, done)
    return PrepareReport(kept=kept, dropped=reasons, processed_now=len(todo), out_dir=out)
