"""The detection budget: full-frame detection on cuts, lost or new faces and every K
frames, region searches between them that give the full-frame faces, on both backends."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from ghost_engine.backend.cuda.context import device_context
from ghost_engine.backend.cuda.device_ops import DeviceImageOps
from ghost_engine.backend.cuda.frames import device_frame
from ghost_engine.backend.cuda.kernel_set import cpu_kernels
from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.errors import UserInputError
from ghost_engine.face import dlib_regions
from ghost_engine.face.analysis import AnalysisModels, AnalysisStage
from ghost_engine.face.photos import read_photo
from ghost_engine.face.regions import RegionPlan, SearchRegion, search_region
from ghost_engine.face.scrfd import ScrfdDetector
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.types import Face, Frame
from ghost_engine.video.reader import read_frames

DLIB = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib")


def _nggyup(media: Path, count: int) -> list[np.ndarray]:
    clip = itertools.islice(read_frames(media / "videos" / "nggyup.mp4"), count)
    return [np.ascontiguousarray(f.image) for f in clip]


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


def test_detector_layout_is_read_from_its_serialized_form() -> None:
    dlib = pytest.importorskip("dlib")
    _, layout = dlib_regions.one_level_detector(dlib, dlib.get_frontal_face_detector())
    assert layout.cell == 8 and layout.window == (80, 80) and layout.min_layer == (64, 64)
    assert layout.iou == pytest.approx(0.330082, abs=1e-6)
    assert layout.covered == pytest.approx(0.788571, abs=1e-6)


def test_region_search_distrusts_a_better_box_at_a_cut_edge_or_an_unscanned_level() -> None:
    dlib = pytest.importorskip("dlib")
    search = dlib_regions.RegionSearch(dlib, dlib.get_frontal_face_detector())
    crops = tuple(dlib_regions.LevelCrop(j, (0, 300, 0, 300), (True,) * 4) for j in (1, 2, 3))
    region = dlib_regions.RegionLevels(crops, ((0, 300, 0, 300),), (100, 100, 200, 200), 2)
    sizes = ((720, 1280), (600, 1066), (500, 888), (416, 740), (346, 616))
    plan = dlib_regions.SearchPlan(sizes, (region,), whole=True)
    found = [dlib_regions.Candidate(1.0, (100, 100, 200, 200), 2, 0)]
    assert search.trusted(plan, found, [], [{1, 2, 3}])
    assert not search.trusted(plan, found, [], [{2, 3}])  # level 1 unseen: may hold better
    higher = [dlib_regions.Candidate(1.0, (100, 100, 200, 200), 3, 0)]
    assert not search.trusted(plan, higher, [], [{1, 2, 3}])  # level 4 unseen
    at_edge = dlib_regions.Candidate(1.5, (110, 100, 210, 200), 2, 0)
    assert not search.trusted(plan, found, [at_edge], [{1, 2, 3}])
    weaker = dlib_regions.Candidate(0.5, (110, 100, 210, 200), 2, 0)
    assert search.trusted(plan, found, [weaker], [{1, 2, 3}])


@pytest.mark.slow
def test_a_plain_crop_moves_dlib_boxes_and_the_region_search_does_not(media: Path) -> None:
    """What the brief asked to work out: HOG on a crop (even one at multiples of 8)
    samples another pyramid, so boxes move; the region search gives the frame's own."""
    from ghost_engine.face.dlib_backend import DlibDetector

    frames = _nggyup(media, 24)[::4]
    detector = DlibDetector()
    ops = HostImageOps()
    moved, same = 0, 0
    for i, image in enumerate(frames):
        full = detector([image])[0]
        if not full:
            continue
        box = full[0].box
        centre = (box[:2] + box[2:]) / 2
        x0, y0 = (np.maximum(centre - (box[2:] - box[:2]), 0) // 8 * 8).astype(int)
        x1, y1 = (centre + (box[2:] - box[:2])).astype(int)
        crop = detector([image[y0:y1, x0:x1]])[0]
        if crop:
            moved += int(np.abs(crop[0].box + [x0, y0, x0, y0] - box).max() > 1)
        regions = [search_region(box + 3.0)]  # a box from the frame before, about
        got = ops.detect_regions(detector, [Frame(i, image)], [regions])[0]
        assert got is not None and len(got) == len(full)
        for a, b in zip(got, full, strict=True):
            np.testing.assert_array_equal(a.box, b.box)
            np.testing.assert_array_equal(a.kps, b.kps)
            assert a.score == b.score
        same += 1
    assert same >= 5 and moved >= same - 1


@pytest.mark.slow
def test_region_search_after_max_side_shrinks_the_frame(media: Path) -> None:
    """`detect_max_side` (the webcam's 640): the search runs on the shrunk frame, as
    the full-frame detection does, and still gives its faces."""
    from ghost_engine.face.dlib_backend import DlibConfig, DlibDetector

    detector = DlibDetector(DlibConfig(max_side=640))
    found = 0
    for i, image in enumerate(_nggyup(media, 30)[::10]):
        full = detector([image])[0]
        if not full:
            continue
        plan = detector.plan_regions((1280, 720), [search_region(full[0].box)])
        assert plan is not None and plan.crops == ((0, 0, 1280, 720),)
        got = HostImageOps().detect_regions(
            detector, [Frame(i, image)], [[search_region(full[0].box)]]
        )
        assert got[0] is not None
        assert [(f.box.tolist(), f.score, f.kps.tolist()) for f in got[0]] == [
            (f.box.tolist(), f.score, f.kps.tolist()) for f in full
        ]
        found += 1
    assert found >= 2


@pytest.mark.slow
def test_budget_gives_the_faces_of_full_detection_on_nggyup(media: Path) -> None:
    """120 frames: the same track ids, sources, boxes and scores, points within 1 px
    (they are equal), with most frames searched in regions."""
    frames = _nggyup(media, 120)

    def run(every: int) -> tuple[list, dict]:
        config = dataclasses.replace(DLIB, full_detect_every=every)
        analysis = build_swap_stage(config, [[media / "faces" / "mark.jpg"]]).analysis
        out = []
        for i in range(0, len(frames), 8):
            out += analysis.process([Frame(j, frames[j]) for j in range(i, min(i + 8, 120))])
        return out + analysis.flush(), analysis.detections

    every, every_counts = run(1)
    budget, counts = run(10)
    assert every_counts == {"full": 120, "regions": 0, "fallback": 0}
    assert counts["regions"] >= 90, counts
    assert [a.index for a in budget] == list(range(120))
    worst = 0.0
    for a, b in zip(every, budget, strict=True):
        assert [(f.track_id, a.sources.get(i)) for i, f in enumerate(a.faces)] == [
            (f.track_id, b.sources.get(i)) for i, f in enumerate(b.faces)
        ]
        for fa, fb in zip(a.faces, b.faces, strict=True):
            np.testing.assert_array_equal(fa.box, fb.box)
            assert fa.score == fb.score
            worst = max(worst, float(np.abs(fa.kps - fb.kps).max()))
    assert worst <= 1.0
    assert sum(len(a.faces) for a in every) >= 100


def _tile(photo: np.ndarray, size: int = 260) -> np.ndarray:
    h, w = photo.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return cv2.resize(
        photo[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA
    )


@pytest.fixture(scope="module")
def two_people(media: Path) -> list[np.ndarray]:
    """24 frames: Elon alone (0-3), Mark alone (4-9), both (10-23), drifting a little."""
    elon = _tile(read_photo(media / "faces" / "elon_musk.jpg"))
    mark = _tile(read_photo(media / "faces" / "mark.jpg"))
    frames = []
    for i in range(24):
        canvas = np.full((300, 600, 3), 40, np.uint8)
        dx = 2 * (i % 6)
        if i < 4 or i >= 10:
            canvas[20:280, 20 + dx : 280 + dx] = elon
        if i >= 4:
            canvas[20:280, 320 - dx : 580 - dx] = mark
        frames.append(canvas)
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("references", [False, True])
def test_budget_gives_the_output_of_full_detection_on_two_people(
    media: Path, two_people: list[np.ndarray], references: bool
) -> None:
    refs = [media / "faces" / "elon_musk.jpg", media / "faces" / "mark.jpg"] if references else []
    sources = [[media / "faces" / "beckham.jpg"]] + [[media / "faces" / "murakami.jpg"]] * (
        references
    )

    def run(every: int) -> tuple[list[Frame], dict]:
        stage = build_swap_stage(dataclasses.replace(DLIB, full_detect_every=every), sources, refs)
        out = []
        for i in range(0, 24, 4):
            out += stage.process([Frame(j, two_people[j].copy()) for j in range(i, i + 4)])
        return out + stage.flush(), stage.analysis.detections

    every, _ = run(1)
    budget, counts = run(10)
    assert counts["regions"] >= 15, counts
    for a, b in zip(every, budget, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
        assert [(f["track_id"], f["source"]) for f in a.meta["faces"]] == [
            (f["track_id"], f["source"]) for f in b.meta["faces"]
        ]
        for fa, fb in zip(a.meta["faces"], b.meta["faces"], strict=True):
            assert np.abs(fa["kps"] - fb["kps"]).max() <= 1.0
    assert sum(len(f.meta["faces"]) for f in every) == 4 + 6 + 2 * 14


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
        return RegionPlan(((0, 0, frame_size[0], frame_size[1]),), None, list(regions))

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
        generator="passthrough", all_faces=True, smoothing="none", full_detect_every=every
    )
    return AnalysisStage(config, AnalysisModels(detector, None), None, HostImageOps())


def _process(stage: AnalysisStage, frames: list[np.ndarray], start: int, stop: int) -> list:
    out = []
    for i in range(start, stop, 3):
        out += stage.process([Frame(j, frames[j]) for j in range(i, min(i + 3, stop))])
    return out + stage.flush()


def _walk(count: int, lost: set[int] = frozenset(), entering: int | None = None) -> dict:
    """One face drifting right (gone on `lost` frames), a second one far away from
    frame `entering` on."""
    script = {}
    for i in range(count):
        script[i] = [] if i in lost else [(40.0 + i, 50.0, 40.0)]
        if entering is not None and i >= entering:
            script[i].append((250.0, 180.0, 40.0))
    return script


def test_full_detections_on_the_first_frame_every_k_and_when_a_face_is_lost() -> None:
    detector = ScriptedDetector(_walk(30, lost={14, 15, 16}))
    stage = _analysis(detector)
    out = _process(stage, _still(30), 0, 30)
    full = [i for i, kind in detector.calls if kind == "full"]
    # 0: the first frame; 10: every 10; 14, 15: the region lost its face (15 still
    # searched: the track was seen two frames before); 16, 17: nothing live; 27: every 10
    assert full == [0, 10, 14, 15, 16, 17, 27]
    assert [i for i, kind in detector.calls if kind == "regions"][:3] == [1, 2, 3]
    assert [len(a.faces) for a in out] == [0 if i in (14, 15, 16) else 1 for i in range(30)]
    assert stage.detections == {"full": 7, "regions": 23, "fallback": 2}


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
    assert [i for i, kind in detector.calls if kind == "full"] == [0, 10, 12]
    assert stage.detections["fallback"] == 0  # 13 searches the new face only
    assert [len(a.faces) for a in out] == [1] * 20


def test_a_face_entering_outside_every_region_is_found_by_the_next_full_detection() -> None:
    script = _walk(30, entering=13)
    budget = ScriptedDetector(script)
    out = _process(_analysis(budget), _still(30), 0, 30)
    every = _process(_analysis(ScriptedDetector(script), every=1), _still(30), 0, 30)
    counts = [len(a.faces) for a in out]
    assert counts == [1] * 20 + [2] * 10  # found at frame 20, the next full detection
    assert [len(a.faces) for a in every] == [1] * 13 + [2] * 17
    for a, b in zip(out[20:], every[20:], strict=True):
        assert [f.track_id for f in a.faces] == [f.track_id for f in b.faces]


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
    """State taken between batches: a restored stage detects the same frames whole."""
    frames, script = _still(40), _walk(40, lost={17})
    whole = ScriptedDetector(script)
    stage = _analysis(whole)
    _process(stage, frames, 0, 40)
    first = ScriptedDetector(script)
    stage = _analysis(first)
    for i in range(0, 21, 3):
        stage.process([Frame(j, frames[j]) for j in range(i, i + 3)])
    saved = stage.state()
    assert saved["budget"] == {"every": 10, "last_full": 17, "shot_start": 0}
    resumed = ScriptedDetector(script)
    restored = _analysis(resumed)
    restored.restore(saved)
    _process(restored, frames, 21, 40)
    assert resumed.calls == [c for c in whole.calls if c[0] >= 21]
    fresh = ScriptedDetector(script)
    _process(_analysis(fresh), frames, 21, 40)
    assert fresh.calls != resumed.calls  # without the state, other frames are detected whole


# -- SCRFD: windows at the full-frame scale, on its anchor grid ------------------------------


def _dynamic_scrfd(path: Path) -> Path:
    """An SCRFD-like graph (9 outputs, strides 8/16/32, 2 anchors) with a dynamic input
    size: scores rise with the red channel, so a red blob gives one peak of candidates;
    each output reads only its own pooled cell, so aligned windows see the same cells."""
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
    assert plan is not None and plan.side == 320
    for (x0, y0, x1, y1), region in zip(plan.crops, regions, strict=True):
        assert (x1 - x0, y1 - y0) == (640, 640)  # 320 input pixels at the frame's 0.5
        assert x0 % 64 == 0 and y0 % 64 == 0  # 32 input pixels: the coarsest stride
        a = region.area
        assert x0 <= a[0] and y0 <= a[1] and x1 >= a[2] and y1 >= a[3]
    too_big = search_region(np.array([100.0, 100, 550, 550]))  # 675 px: past a window
    assert scrfd.plan_regions((1280, 720), [too_big]) is None


def test_scrfd_region_search_gives_the_full_frame_faces(scrfd: ScrfdDetector) -> None:
    image = _blobs([(700, 300), (200, 600)])
    full = scrfd([image])[0]
    assert len(full) >= 6
    frame = Frame(0, image)
    for peak in (full[0], next(f for f in full if f.box[0] < 400)):
        got = HostImageOps().detect_regions(scrfd, [frame], [[search_region(peak.box)]])[0]
        assert got is not None
        want = _near(full, peak.box)
        assert len(got) == len(want) >= 3
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            np.testing.assert_allclose(a.kps, b.kps, atol=1e-3)
            assert a.score == pytest.approx(b.score, abs=1e-6)


def test_scrfd_with_a_fixed_input_size_does_not_search_regions(tmp_path: Path) -> None:
    model = onnx.load(str(_dynamic_scrfd(tmp_path / "d.onnx")))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = 640, 640
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    detector = ScrfdDetector.from_file(tmp_path / "fixed.onnx")
    assert not detector.dynamic_size and not detector.searches_regions
    region = search_region(np.array([660.0, 260, 715, 315]))
    assert HostImageOps().detect_regions(detector, [Frame(0, _blobs([]))], [[region]]) == [None]


# -- the CUDA backend's image ops (emulated flavour) ------------------------------------------


def _device_ops() -> DeviceImageOps:
    return DeviceImageOps(device_context("emulated"), cpu_kernels())


def _same_faces(a: list[Face] | None, b: list[Face] | None) -> None:
    assert a is not None and b is not None and len(a) == len(b) > 0
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_array_equal(fa.box, fb.box)
        np.testing.assert_array_equal(fa.kps, fb.kps)
        assert fa.score == fb.score


def test_device_ops_search_scrfd_regions_as_the_host_ops(scrfd: ScrfdDetector) -> None:
    image = _blobs([(700, 300), (200, 600)])
    regions = [
        [search_region(np.array([660.0, 260, 715, 315]))],
        [search_region(np.array([170.0, 570, 230, 630]))],
    ]
    host = HostImageOps().detect_regions(scrfd, [Frame(0, image)] * 2, regions)
    frames = [device_frame(i, image.copy(), None, None) for i in range(2)]
    device = _device_ops().detect_regions(scrfd, frames, regions)
    for a, b in zip(host, device, strict=True):
        _same_faces(a, b)


@pytest.mark.slow
def test_device_ops_search_dlib_regions_as_the_host_ops(media: Path) -> None:
    from ghost_engine.face.dlib_backend import DlibDetector

    detector = DlibDetector()
    frames = _nggyup(media, 12)[::6]
    regions = [[search_region(detector([f])[0][0].box)] for f in frames]
    host = HostImageOps().detect_regions(
        detector, [Frame(i, f) for i, f in enumerate(frames)], regions
    )
    on_device = [device_frame(i, f.copy(), None, None) for i, f in enumerate(frames)]
    device = _device_ops().detect_regions(detector, on_device, regions)
    for a, b in zip(host, device, strict=True):
        _same_faces(a, b)


# -- the setting ----------------------------------------------------------------------------


def test_full_detect_every_is_validated_and_offered() -> None:
    with pytest.raises(UserInputError) as err:
        SwapConfig(full_detect_every=0)
    assert err.value.option == "--full-detect-every"
    from ghost_engine.cli import cli

    help_text = CliRunner().invoke(cli, ["run", "--help"]).output
    assert "--full-detect-every" in help_text
    result = CliRunner().invoke(cli, ["run", "x.mp4", "-s", "y.jpg", "--full-detect-every", "0"])
    assert result.exit_code == 2 and "--full-detect-every" in result.output
