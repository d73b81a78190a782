"""The detection budget: full-frame detection on cuts, sudden changes outside the tracked
faces, lost or new faces and every K frames, region searches between them that give the
full-frame faces, on both backends, resumable."""

from __future__ import annotations

import builtins
import dataclasses
import itertools
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from face_tiles import tile
from onnx import TensorProto, helper, numpy_helper

from ghost_engine.backend.cuda.context import device_context
from ghost_engine.backend.cuda.device_ops import DeviceImageOps
from ghost_engine.backend.cuda.frames import device_frame
from ghost_engine.backend.cuda.kernel_set import cpu_kernels
from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.errors import UserInputError
from ghost_engine.face import dlib_regions
from ghost_engine.face.analysis import AnalysisModels, AnalysisStage
from ghost_engine.face.detection_budget import (
    RegionPlan,
    SearchRegion,
    changed_outside,
    detect_in_regions,
    search_region,
)
from ghost_engine.face.photos import read_photo
from ghost_engine.face.scrfd import ScrfdDetector
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.types import Face, Frame
from ghost_engine.video.reader import read_frames

DLIB = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib")


def _nggyup(media: Path, count: int) -> list[np.ndarray]:
    clip = itertools.islice(read_frames(media / "videos" / "nggyup.mp4"), count)
    return [np.ascontiguousarray(f.image) for f in clip]


def _keys(item) -> list:
    """What the faces log says of a frame's faces: track ids and sources."""
    return [(f.track_id, item.sources.get(i)) for i, f in enumerate(item.faces)]


def _analyse(media: Path, frames: list[np.ndarray], every: int, refs: bool, batch: int = 8):
    faces = media / "faces"
    sources = [[faces / "beckham.jpg"]] + [[faces / "murakami.jpg"]] * refs
    targets = [faces / "elon_musk.jpg", faces / "mark.jpg"] if refs else []
    config = dataclasses.replace(DLIB, detect_every=every)
    analysis = build_swap_stage(config, sources, targets).analysis
    out = []
    for i in range(0, len(frames), batch):
        stop = min(i + batch, len(frames))
        out += analysis.process([Frame(j, frames[j]) for j in range(i, stop)])
    return out + analysis.flush(), analysis


def _assert_same_log(every: list, budget: list) -> float:
    """Same frames, track ids and sources, boxes and scores; the largest point gap."""
    assert [a.frame.index for a in every] == [b.frame.index for b in budget]
    worst = 0.0
    for a, b in zip(every, budget, strict=True):
        assert _keys(a) == _keys(b), f"frame {a.frame.index}"
        for fa, fb in zip(a.faces, b.faces, strict=True):
            np.testing.assert_allclose(fa.box, fb.box, atol=1.0)
            worst = max(worst, float(np.abs(fa.kps - fb.kps).max()))
    return worst


# -- dlib: the frame's own pyramid around a region ----------------------------------------


def test_numpy_pyramid_is_dlibs_bit_for_bit() -> None:
    """`pyramid_down<6>` reproduced: four-lane float32 blocks, double tail, truncation."""
    dlib = pytest.importorskip("dlib")
    pyr = dlib.pyramid_down(6)
    rng = np.random.default_rng(3)
    for h, w in ((97, 131), (64, 64), (333, 517), (720, 1280), (81, 70)):
        ours = theirs = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for _ in range(4):
            ours, theirs = dlib_regions.pyramid_down(ours), np.asarray(pyr(theirs))
            assert ours.shape == theirs.shape
            np.testing.assert_array_equal(ours, theirs)
    assert dlib_regions.pyramid_matches_dlib(dlib)


def test_a_region_of_a_level_is_computed_from_the_region_alone() -> None:
    dlib = pytest.importorskip("dlib")
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (300, 410, 3), dtype=np.uint8)
    whole = [image]
    for _ in range(3):
        whole.append(np.asarray(dlib.pyramid_down(6)(whole[-1])))
    sizes = [lvl.shape[:2] for lvl in whole]
    plan = dlib_regions.plan_levels(
        sizes, np.array([116.0, 56, 292, 232]), np.array([160.0, 100, 248, 188]), spread=1
    )
    assert plan is not None and [c.level for c in plan.crops] == [0, 1, 2]
    y0, y1, x0, x1 = plan.needed[0]
    planes = dlib_regions.region_levels(plan, image[y0:y1, x0:x1], sizes)
    for level, (rect, part) in enumerate(zip(plan.needed, planes, strict=True)):
        got = dlib_regions.from_planes(part)
        np.testing.assert_array_equal(got, whole[level][rect[0] : rect[1], rect[2] : rect[3]])
    assert all(c.rect[0] % 8 == 0 and c.rect[2] % 8 == 0 for c in plan.crops)


def test_the_one_level_detector_is_made_in_memory_without_files(monkeypatch) -> None:
    """No file is opened or made (a full disk cannot stop it): the detector's state is
    edited as bytes. Its layout is read from that state."""
    dlib = pytest.importorskip("dlib")
    detector = dlib.get_frontal_face_detector()

    def refused(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(builtins, "open", refused)
    monkeypatch.setattr(os, "open", refused)
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refused)
    one, layout = dlib_regions.one_level_detector(dlib, detector)
    monkeypatch.undo()
    assert layout.cell == 8 and layout.window == (80, 80) and layout.min_layer == (64, 64)
    assert layout.iou == pytest.approx(0.330082, abs=1e-6)
    assert layout.covered == pytest.approx(0.788571, abs=1e-6)
    # one level: a 200 px image holds no 80 px window's face at a lower level
    assert one.__getstate__() != detector.__getstate__()


@pytest.mark.slow
def test_region_search_gives_dlibs_full_frame_faces_with_no_writable_disk(
    media: Path, monkeypatch
) -> None:
    """The boxes, scores and points of a full-frame detection, from crops, with every
    way of writing a file refused while the detector is built and searches."""
    from ghost_engine.face.dlib_backend import DlibDetector

    frames = _nggyup(media, 24)[::6]
    detector = DlibDetector()
    full = [detector([f])[0] for f in frames]

    def refused(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refused)
    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    fresh = DlibDetector()  # the model files are read before the disk "fills"
    monkeypatch.setattr(builtins, "open", refused)
    monkeypatch.setattr(os, "open", refused)
    assert fresh.searches_regions
    searched = 0
    for i, (image, want) in enumerate(zip(frames, full, strict=True)):
        if not want:
            continue
        regions = [search_region(want[0].box + 3.0)]  # about the box of the frame before
        got = detect_in_regions(HostImageOps(), fresh, Frame(i, image), regions)
        assert got is not None and len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a.box, b.box)
            np.testing.assert_array_equal(a.kps, b.kps)
            assert a.score == b.score
        searched += 1
    assert searched >= 3


# -- the budget on real clips ----------------------------------------------------------------


@pytest.mark.slow
def test_budget_gives_the_faces_log_of_full_detection_on_nggyup(media: Path) -> None:
    """4 s (96 frames): the same track ids, sources, boxes and scores, points within
    1 px (equal), with most frames searched in regions."""
    frames = _nggyup(media, 96)
    every, plain = _analyse(media, frames, 1, refs=False)
    budget, stage = _analyse(media, frames, 10, refs=False)
    assert plain.budget is None and stage.budget is not None
    counts = stage.budget.counts
    assert counts["regions"] >= 70, counts
    assert _assert_same_log(every, budget) <= 1.0
    assert sum(len(a.faces) for a in every) >= 80


def _two_people(media: Path, count: int = 36) -> list[np.ndarray]:
    """Elon alone (0-5), Mark pasted in beside him from frame 6 (mid-shot, outside every
    tracked region), both drifting a few pixels a frame; Elon leaves at 28."""
    elon = tile(read_photo(media / "faces" / "elon_musk.jpg"), 220)
    mark = tile(read_photo(media / "faces" / "mark.jpg"), 220)
    frames = []
    for i in range(count):
        canvas = np.full((256, 512, 3), 60, np.uint8)
        dx = 3 * (i % 4)
        if i < 28:
            canvas[18:238, 14 + dx : 234 + dx] = elon
        if i >= 6:
            canvas[18:238, 276 - dx : 496 - dx] = mark
        frames.append(canvas)
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("refs", [False, True], ids=["first-face", "references"])
def test_a_face_pasted_in_mid_shot_is_found_on_the_same_frame(media: Path, refs: bool) -> None:
    frames = _two_people(media)
    every, _ = _analyse(media, frames, 1, refs)
    budget, stage = _analyse(media, frames, 10, refs)
    counts = stage.budget.counts
    assert [len(a.faces) for a in every] == [1] * 6 + [2] * 22 + [1] * 8
    assert [len(a.faces) for a in budget] == [len(a.faces) for a in every]
    assert counts["changed"] >= 1 and counts["regions"] >= 20, counts
    assert _assert_same_log(every, budget) <= 1.0


@pytest.mark.slow
def test_two_clips_joined_mid_stream_give_the_faces_of_full_detection(media: Path) -> None:
    """nggyup.mp4 then the two-person clip (scaled to 1280x720): the join is a cut."""
    import cv2

    people = [cv2.resize(f, (1280, 640)) for f in _two_people(media, 16)]
    people = [np.pad(f, ((40, 40), (0, 0), (0, 0))) for f in people]
    frames = _nggyup(media, 16) + people
    every, _ = _analyse(media, frames, 1, refs=False)
    budget, stage = _analyse(media, frames, 10, refs=False)
    assert stage.budget.counts["shot"] >= 2
    assert _assert_same_log(every, budget) <= 1.0


# -- the policy, with a scripted detector ---------------------------------------------------


class ScriptedDetector:
    """Faces per frame from a script (frame index in pixel (0, 0)); a region search gives
    the scripted faces whose box lies inside a region's area, as the real ones do."""

    searches_regions = True

    def __init__(self, script: dict[int, list[tuple[float, float, float]]]) -> None:
        self.script = script
        self.calls: list[tuple[int, str]] = []

    def _faces(self, index: int) -> list[Face]:
        faces = []
        for x, y, size in self.script.get(index, []):
            kps = np.array([[0.25, 0.3], [0.75, 0.3], [0.5, 0.55], [0.3, 0.8], [0.7, 0.8]])
            faces.append(Face(box=[x, y, x + size, y + size], score=0.9, kps=[x, y] + kps * size))
        return faces

    def __call__(self, images):
        out = []
        for image in images:
            index = int(image[0, 0, 0])
            self.calls.append((index, "full"))
            out.append(self._faces(index))
        return out

    def plan_regions(self, frame_size, regions: list[SearchRegion]) -> RegionPlan:
        return RegionPlan(((0, 0, frame_size[0], frame_size[1]),), list(regions))

    def detect_crops(self, plan: RegionPlan, crops):
        index = int(crops[0][0, 0, 0])
        self.calls.append((index, "regions"))
        inside = []
        for face in self._faces(index):
            for region in plan.detail:
                a = region.area
                if face.box[0] >= a[0] and face.box[1] >= a[1] and face.box[2] <= a[2]:
                    if face.box[3] <= a[3]:
                        inside.append(face)
                        break
        return inside


def _still(count: int) -> list[np.ndarray]:
    frames = []
    for i in range(count):
        image = np.full((240, 320, 3), 90, np.uint8)
        image[0, 0, 0] = i  # the script's key; far too small a change to read as a cut
        frames.append(image)
    return frames


def _analysis(detector, every: int = 10) -> AnalysisStage:
    config = SwapConfig(
        generator="passthrough", all_faces=True, smoothing="none", detect_every=every
    )
    return AnalysisStage(config, AnalysisModels(detector, None), None, HostImageOps())


def _process(stage: AnalysisStage, frames: list[np.ndarray], start: int, stop: int) -> list:
    out = []
    for i in range(start, stop, 3):
        out += stage.process([Frame(j, frames[j]) for j in range(i, min(i + 3, stop))])
    return out + stage.flush()


def _walk(count: int, lost: frozenset[int] = frozenset(), entering: int | None = None) -> dict:
    """One face drifting right (gone on `lost` frames), a second one far away from
    frame `entering` on."""
    script = {}
    for i in range(count):
        script[i] = [] if i in lost else [(40.0 + i, 50.0, 40.0)]
        if entering is not None and i >= entering:
            script[i].append((250.0, 180.0, 40.0))
    return script


def _full(detector: ScriptedDetector) -> list[int]:
    return [i for i, kind in detector.calls if kind == "full"]


def test_full_detections_on_the_first_frame_every_k_and_when_a_face_is_lost() -> None:
    detector = ScriptedDetector(_walk(30, lost=frozenset({14, 15, 16})))
    stage = _analysis(detector)
    out = _process(stage, _still(30), 0, 30)
    # 0: the first frame; 10: every 10; 14, 15: the region lost its face (15 still
    # searched: the track was seen two frames before); 16, 17: nothing live; 27: every 10
    assert _full(detector) == [0, 10, 14, 15, 16, 17, 27]
    assert [i for i, kind in detector.calls if kind == "regions"][:3] == [1, 2, 3]
    assert [len(a.faces) for a in out] == [0 if i in (14, 15, 16) else 1 for i in range(30)]
    assert stage.budget is not None
    assert stage.budget.counts == {
        "regions": 23, "shot": 1, "no_tracks": 2, "changed": 0, "every": 2, "fallback": 2
    }  # fmt: skip


def test_one_of_two_faces_lost_sends_the_frame_to_full_detection() -> None:
    script = {i: [(40.0 + i, 50.0, 40.0)] + [(220.0, 150.0, 40.0)] * (i < 15) for i in range(20)}
    detector = ScriptedDetector(script)
    out = _process(_analysis(detector), _still(20), 0, 20)
    assert [len(a.faces) for a in out] == [2] * 15 + [1] * 5
    assert (15, "regions") in detector.calls and (15, "full") in detector.calls
    assert (16, "full") in detector.calls  # still live: the tracker could link it by overlap
    assert (17, "regions") in detector.calls and (17, "full") not in detector.calls


def test_after_a_cut_the_tracks_of_the_shot_before_are_not_searched() -> None:
    frames = _still(20)
    for image in frames[12:]:
        image[1:] = 220  # a new shot: the thumbnails differ by far more than the cut level
    script = {i: [(40.0 + i, 50.0, 40.0)] if i < 12 else [(200.0, 120.0, 40.0)] for i in range(20)}
    detector = ScriptedDetector(script)
    stage = _analysis(detector)
    out = _process(stage, frames, 0, 20)
    assert _full(detector) == [0, 10, 12]
    assert stage.budget is not None and stage.budget.counts["fallback"] == 0
    assert [len(a.faces) for a in out] == [1] * 20


def test_a_face_appearing_outside_every_region_is_found_on_that_frame() -> None:
    """Its pixels change a face-sized block of the thumbnail: a full-frame detection."""
    frames = _still(30)
    for image in frames[13:]:
        image[170:230, 240:300] = 230  # 60 px of a 320 px frame: 12x7 thumbnail cells
    script = _walk(30, entering=13)
    detector = ScriptedDetector(script)
    out = _process(_analysis(detector), frames, 0, 30)
    every = _process(_analysis(ScriptedDetector(script), every=1), frames, 0, 30)
    assert [len(a.faces) for a in out] == [len(a.faces) for a in every] == [1] * 13 + [2] * 17
    assert _full(detector) == [0, 10, 13, 23]


def test_a_face_that_leaves_no_trace_in_the_thumbnail_waits_for_the_next_full_detection() -> None:
    """The limit, stated: with no change to see, the face is found by the K-th frame."""
    script = _walk(30, entering=13)
    out = _process(_analysis(ScriptedDetector(script)), _still(30), 0, 30)
    assert [len(a.faces) for a in out] == [1] * 20 + [2] * 10


def test_change_outside_the_regions_is_a_face_sized_block_the_frame_before_cannot_explain() -> None:
    before = np.full((36, 64), 90.0, np.float32)
    region = search_region(np.array([100.0, 100, 300, 300]))  # cells 3-15 x 3-9 of 1280x720
    block = before.copy()
    block[20:24, 40:44] += 41  # 4x4 cells, far from the region
    assert changed_outside(before, block, (1280, 720), [region.area]) == pytest.approx(41)
    assert changed_outside(before, block - 2, (1280, 720), [region.area]) is None  # 39
    small = before.copy()
    small[20:23, 40:43] += 70  # 3x3 cells: the 4x4 blocks move by 39 at most
    assert changed_outside(before, small, (1280, 720), [region.area]) is None
    inside = before.copy()
    inside[4:8, 4:8] += 150  # a face moving inside its own region
    assert changed_outside(before, inside, (1280, 720), [region.area]) is None
    assert changed_outside(before, inside, (1280, 720), []) is not None
    # something bright moving by a cell (20 px at 720p) a frame is not a change; the same
    # moving by 3 cells is, and so is one appearing
    scene = np.full((36, 64), 60.0, np.float32)
    scene[10:16, 20:26] = 220
    assert changed_outside(scene, np.roll(scene, (1, 1), (0, 1)), (1280, 720), []) is None
    assert changed_outside(scene, np.roll(scene, 3, 1), (1280, 720), []) is not None
    arrived = scene.copy()
    arrived[20:26, 40:46] = 220
    assert changed_outside(scene, arrived, (1280, 720), []) == pytest.approx(160)


def test_a_face_a_region_finds_but_no_track_explains_sends_the_frame_to_full_detection() -> None:
    script = {i: [(40.0, 50.0, 40.0)] for i in range(12)}
    for i in range(6, 12):  # a small face entering inside the first one's region, beside it
        script[i].append((30.0, 40.0, 15.0))
    detector = ScriptedDetector(script)
    out = _process(_analysis(detector), _still(12), 0, 12)
    assert [len(a.faces) for a in out] == [1] * 6 + [2] * 6
    assert (6, "full") in detector.calls and (7, "regions") in detector.calls


def test_no_budget_with_every_1_or_a_detector_that_cannot_search_regions() -> None:
    detector = ScriptedDetector(_walk(9))
    assert _analysis(detector, every=1).budget is None
    detector.searches_regions = False
    stage = _analysis(detector)
    assert stage.budget is None
    _process(stage, _still(9), 0, 9)
    assert [kind for _, kind in detector.calls] == ["full"] * 9


def test_the_budget_resumes_where_it_was() -> None:
    """State taken between batches: a restored stage makes the same decisions."""
    frames, script = _still(40), _walk(40, lost=frozenset({17}))
    frames[22][100:160, 200:260] = 250  # a sudden change right after the resume point
    whole = ScriptedDetector(script)
    _process(_analysis(whole), frames, 0, 40)
    first = ScriptedDetector(script)
    stage = _analysis(first)
    for i in range(0, 21, 3):
        stage.process([Frame(j, frames[j]) for j in range(i, i + 3)])
    saved = stage.state()
    budget = saved["budget"]
    assert (budget["last_full"], budget["shot_start"], budget["previous"]["frame"]) == (17, 0, 20)
    resumed = ScriptedDetector(script)
    restored = _analysis(resumed)
    restored.restore(saved)
    _process(restored, frames, 21, 40)
    assert resumed.calls == [c for c in whole.calls if c[0] >= 21]
    assert (22, "full") in resumed.calls and (23, "full") in resumed.calls  # in, and out
    fresh = ScriptedDetector(script)
    _process(_analysis(fresh), frames, 21, 40)
    assert fresh.calls != resumed.calls  # without the state, other frames are detected whole


def test_a_state_without_the_budget_is_refused_by_a_stage_with_one() -> None:
    saved = _analysis(ScriptedDetector({}), every=1).state()
    with pytest.raises(ValueError, match="detection budget"):
        _analysis(ScriptedDetector({})).restore(saved)


# -- SCRFD: windows at the full-frame scale, on its anchor grid ------------------------------


def _dynamic_scrfd(path: Path) -> Path:
    """An SCRFD-like graph (9 outputs, strides 8/16/32, 2 anchors) with a dynamic input
    size and fixed random head weights: scores rise with the red channel, so a red blob
    gives one peak of candidates; each output reads only its own pooled cell."""
    rng = np.random.default_rng(0)
    nodes, inits, outs = [], [], {"score": [], "bbox": [], "kps": []}
    for stride in (8, 16, 32):
        pooled = f"pool{stride}"
        nodes.append(
            helper.make_node(
                "AveragePool",
                ["input.1"],
                [pooled],
                kernel_shape=[stride] * 2,
                strides=[stride] * 2,
            )
        )
        for kind, chans, act in (
            ("score", 1, "Sigmoid"),
            ("bbox", 4, "Softplus"),
            ("kps", 10, None),
        ):
            name = f"{kind}_{stride}"
            w = np.zeros((2 * chans, 3, 1, 1), np.float32)
            b = np.full(2 * chans, 1.5, np.float32)
            if kind == "score":
                w[:, 0] = 6.0
                b = np.array([-4.0, -4.5], np.float32)
            elif kind == "kps":
                w = rng.standard_normal((20, 3, 1, 1)).astype(np.float32) * 0.3
                b = rng.standard_normal(20).astype(np.float32) * 0.5
            inits += [
                numpy_helper.from_array(w, f"w_{name}"),
                numpy_helper.from_array(b, f"b_{name}"),
            ]
            nodes.append(
                helper.make_node("Conv", [pooled, f"w_{name}", f"b_{name}"], [f"c_{name}"])
            )
            src = f"c_{name}"
            if act:
                nodes.append(helper.make_node(act, [src], [f"a_{name}"]))
                src = f"a_{name}"
            nodes.append(helper.make_node("Transpose", [src], [f"t_{name}"], perm=[0, 2, 3, 1]))
            inits.append(numpy_helper.from_array(np.array([-1, chans], np.int64), f"s_{name}"))
            nodes.append(helper.make_node("Reshape", [f"t_{name}", f"s_{name}"], [name]))
            outs[kind].append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"n{stride}", chans])
            )
    graph = helper.make_graph(
        nodes,
        "scrfd_dynamic",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
        outs["score"] + outs["bbox"] + outs["kps"],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def _blobs(centres: list[tuple[int, int]], size: tuple[int, int] = (720, 1280)) -> np.ndarray:
    image = np.full((*size, 3), 60, np.uint8)
    yy, xx = np.mgrid[: size[0], : size[1]]
    for cx, cy in centres:
        red = (255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 50.0**2))).astype(np.uint8)
        image[..., 0] = np.maximum(image[..., 0], red)
    return image


@pytest.fixture(scope="module")
def scrfd(tmp_path_factory) -> ScrfdDetector:
    return ScrfdDetector.from_file(_dynamic_scrfd(tmp_path_factory.mktemp("scrfd") / "d.onnx"))


def _near(faces: list[Face], box: np.ndarray, reach: float = 150.0) -> list[Face]:
    centre = (box[:2] + box[2:]) / 2
    return [f for f in faces if np.abs((f.box[:2] + f.box[2:]) / 2 - centre).max() < reach]


def test_scrfd_windows_sit_on_the_full_frame_anchor_grid(scrfd: ScrfdDetector) -> None:
    assert scrfd.dynamic_size and scrfd.searches_regions
    regions = [
        search_region(np.array([660.0, 260, 715, 315])),
        search_region(np.array([160.0, 560, 220, 620])),
    ]
    plan = scrfd.plan_regions((1280, 720), regions)
    assert plan is not None and plan.detail[2:] == (320, 640)  # input side, window
    for (x0, y0, x1, y1), region in zip(plan.crops, regions, strict=True):
        assert x1 - x0 == 640 and y1 - y0 <= 640  # 320 input pixels at the frame's 0.5
        assert x0 % 64 == 0 and y0 % 64 == 0  # 32 input pixels: the coarsest stride
        a = region.area
        assert x0 <= a[0] and y0 <= a[1] and x1 >= a[2] and y1 >= a[3]
    too_big = search_region(np.array([100.0, 100, 550, 550]))  # 675 px: past a window
    assert scrfd.plan_regions((1280, 720), [too_big]) is None


@pytest.mark.parametrize("where", ["host", "emulated-cuda"])
def test_scrfd_region_search_gives_the_full_frame_faces(scrfd: ScrfdDetector, where: str) -> None:
    image = _blobs([(700, 300), (200, 600)])
    full = scrfd([image])[0]
    assert len(full) >= 6
    if where == "host":
        ops, frame = HostImageOps(), Frame(0, image)
    else:
        ops, frame = _device_ops(), device_frame(0, image.copy(), None, None)
    for peak in (full[0], next(f for f in full if f.box[0] < 400)):
        got = detect_in_regions(ops, scrfd, frame, [search_region(peak.box)])
        assert got is not None
        want = _near(full, peak.box)
        assert len(got) == len(want) >= 3
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            np.testing.assert_allclose(a.kps, b.kps, atol=1e-3)
            assert a.score == pytest.approx(b.score, abs=1e-6)


def test_scrfd_budget_on_a_moving_blob_gives_the_full_frame_faces(scrfd: ScrfdDetector) -> None:
    """The analysis stage end to end with SCRFD: regions on most frames, same faces."""
    frames = [_blobs([(300 + 6 * i, 300 + 2 * i)]) for i in range(16)]
    config = SwapConfig(generator="passthrough", all_faces=True, smoothing="none")

    def run(every: int) -> tuple[list, AnalysisStage]:
        cfg = dataclasses.replace(config, detect_every=every)
        stage = AnalysisStage(cfg, AnalysisModels(scrfd, None), None, HostImageOps())
        out = []
        for i in range(0, 16, 4):
            out += stage.process([Frame(j, frames[j]) for j in range(i, i + 4)])
        return out + stage.flush(), stage

    every, _ = run(1)
    budget, stage = run(10)
    assert stage.budget is not None and stage.budget.counts["regions"] >= 10
    for a, b in zip(every, budget, strict=True):
        assert [f.track_id for f in a.faces] == [f.track_id for f in b.faces]
        for fa, fb in zip(a.faces, b.faces, strict=True):
            np.testing.assert_allclose(fa.kps, fb.kps, atol=1e-3)


def test_scrfd_with_a_fixed_input_size_does_not_search_regions(tmp_path: Path) -> None:
    model = onnx.load(str(_dynamic_scrfd(tmp_path / "d.onnx")))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = 640, 640
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    detector = ScrfdDetector.from_file(tmp_path / "fixed.onnx")
    assert not detector.dynamic_size and not detector.searches_regions
    region = search_region(np.array([660.0, 260, 715, 315]))
    assert detect_in_regions(HostImageOps(), detector, Frame(0, _blobs([])), [region]) is None


# -- the CUDA backend's image ops (emulated flavour) ------------------------------------------


def _device_ops() -> DeviceImageOps:
    return DeviceImageOps(device_context("emulated"), cpu_kernels())


@pytest.mark.slow
def test_the_budget_on_the_emulated_cuda_backend_gives_the_host_faces(media: Path) -> None:
    """The analysis stage on device frames (emulated CUDA ops) with dlib: the same faces,
    ids and decisions as on the host, with and without the budget."""
    frames = _two_people(media, 16)
    config = dataclasses.replace(DLIB, all_faces=True, recognizer="dlib")

    def run(ops, every: int, on_device: bool) -> tuple[list, dict | None]:
        stage = build_swap_stage(
            dataclasses.replace(config, detect_every=every),
            [[media / "faces" / "beckham.jpg"]],
            ops=ops,
        ).analysis
        out = []
        for i in range(0, 16, 4):
            batch = [
                device_frame(j, frames[j].copy(), None, None) if on_device else Frame(j, frames[j])
                for j in range(i, i + 4)
            ]
            out += stage.process(batch)
        out += stage.flush()
        return out, None if stage.budget is None else stage.budget.counts

    host, host_counts = run(HostImageOps(), 10, False)
    device, device_counts = run(_device_ops(), 10, True)
    device_full, _ = run(_device_ops(), 1, True)
    assert host_counts == device_counts and device_counts["regions"] >= 8
    assert _assert_same_log(host, device) == 0.0
    assert _assert_same_log(device_full, device) <= 1.0


# -- the setting ----------------------------------------------------------------------------


def test_detect_every_is_validated_and_offered() -> None:
    with pytest.raises(UserInputError) as err:
        SwapConfig(detect_every=0)
    assert err.value.option == "--detect-every"
    with pytest.raises(UserInputError) as err:
        SwapConfig(detect_change_threshold=0.0)
    assert err.value.option == "--detect-change-threshold"
    from ghost_engine.cli import cli

    help_text = CliRunner().invoke(cli, ["run", "--help"]).output
    assert "--detect-every" in help_text
    result = CliRunner().invoke(cli, ["run", "x.mp4", "-s", "y.jpg", "--detect-every", "0"])
    assert result.exit_code == 2 and "--detect-every" in result.output
