"""SCRFD decoding against insightface's own `SCRFD` class on the same network outputs.

The network is a small ONNX graph generated here with SCRFD's output layout (9 outputs:
scores, boxes, points for strides 8/16/32, 2 anchors per cell), fed by pooled pixels
through fixed random 1x1 convolutions, so both decoders see identical, image-dependent
outputs with many overlapping candidates for NMS to resolve.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from conftest import require_module
from onnx import TensorProto, helper, numpy_helper

from ghost_engine.face.scrfd import ScrfdConfig, ScrfdDetector, nms

SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS = 2


def _scrfd_like_model(batch: int | str) -> bytes:
    rng = np.random.default_rng(7)
    nodes, inits, outputs = [], [], {"score": [], "bbox": [], "kps": []}
    for stride in STRIDES:
        pooled = f"pool{stride}"
        nodes.append(
            helper.make_node(
                "AveragePool",
                ["input.1"],
                [pooled],
                kernel_shape=[stride, stride],
                strides=[stride, stride],
            )
        )
        for kind, chans, act, scale in (
            ("score", 1, "Sigmoid", 4.0),
            ("bbox", 4, "Softplus", 2.0),
            ("kps", 10, None, 1.5),
        ):
            name = f"{kind}_{stride}"
            w = rng.standard_normal((ANCHORS * chans, 3, 1, 1)).astype(np.float32) * scale
            b = rng.standard_normal(ANCHORS * chans).astype(np.float32) * 0.5
            inits += [
                numpy_helper.from_array(w, f"w_{name}"),
                numpy_helper.from_array(b, f"b_{name}"),
            ]
            conv = f"conv_{name}"
            nodes.append(helper.make_node("Conv", [pooled, f"w_{name}", f"b_{name}"], [conv]))
            src = conv
            if act:
                nodes.append(helper.make_node(act, [conv], [f"act_{name}"]))
                src = f"act_{name}"
            # (B, A*C, h, w) -> (B, h, w, A*C) -> (B, h*w*A, C) (or (h*w*A, C) unbatched)
            nodes.append(helper.make_node("Transpose", [src], [f"t_{name}"], perm=[0, 2, 3, 1]))
            shape = [-1, chans] if batch == 1 else [0, -1, chans]
            inits.append(numpy_helper.from_array(np.array(shape, np.int64), f"s_{name}"))
            nodes.append(helper.make_node("Reshape", [f"t_{name}", f"s_{name}"], [name]))
            n = (SIZE // stride) ** 2 * ANCHORS
            out_shape = [n, chans] if batch == 1 else [batch, n, chans]
            outputs[kind].append(helper.make_tensor_value_info(name, TensorProto.FLOAT, out_shape))
    graph = helper.make_graph(
        nodes,
        "scrfd_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        outputs["score"] + outputs["bbox"] + outputs["kps"],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    imgs = []
    for h, w in ((480, 720), (900, 500), (640, 640)):
        base = rng.integers(0, 256, (h // 40 + 1, w // 40 + 1, 3)).astype(np.uint8)
        img = np.kron(base, np.ones((40, 40, 1), np.uint8))[:h, :w]
        imgs.append(np.ascontiguousarray(img))
    return imgs


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("scrfd") / "scrfd_like.onnx"
    path.write_bytes(_scrfd_like_model(1))
    return str(path)


def test_decoding_matches_insightface_box_for_box(model_file):
    # insightface is installed by .ci/run (with --no-deps), not by the test extras
    insight_scrfd = require_module("insightface.model_zoo.scrfd", "the SCRFD reference")
    session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    ref = insight_scrfd.SCRFD(model_file=model_file, session=session)
    ref.prepare(-1, nms_thresh=0.4, det_thresh=0.6, input_size=(SIZE, SIZE))
    ours = ScrfdDetector(session, ScrfdConfig(score_threshold=0.6, nms_threshold=0.4))
    images = _images()
    results = ours(images)
    total = 0
    for img, faces in zip(images, results, strict=True):
        # insightface takes BGR and swaps to RGB; ours takes RGB.
        det, kpss = ref.detect(np.ascontiguousarray(img[:, :, ::-1]), input_size=(SIZE, SIZE))
        assert len(faces) == len(det)
        assert len(det) >= 5  # enough boxes that NMS order matters
        np.testing.assert_allclose(np.stack([f.box for f in faces]), det[:, :4], rtol=0, atol=1e-3)
        np.testing.assert_allclose([f.score for f in faces], det[:, 4], rtol=0, atol=1e-6)
        np.testing.assert_allclose(np.stack([f.kps for f in faces]), kpss, rtol=0, atol=1e-3)
        total += len(det)
    assert total > 20


def test_batched_model_gives_the_same_faces(model_file, tmp_path):
    single = ScrfdDetector(
        onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    )
    path = tmp_path / "scrfd_batched.onnx"
    path.write_bytes(_scrfd_like_model("N"))
    batched = ScrfdDetector.from_file(path)
    assert batched.max_batch is None and single.max_batch == 1
    images = _images()
    for a, b in zip(single(images), batched(images), strict=True):
        assert len(a) == len(b) > 0
        np.testing.assert_allclose([f.box for f in a], [f.box for f in b], atol=1e-3)


def test_nms_against_a_hand_checked_case():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 4]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # box 1 overlaps box 0 with IoU (10*10)/(121+121-100)=0.70 (inclusive areas) -> dropped;
    # box 3 (best) overlaps box 0 with IoU 55/121 = 0.45 -> box 0 kept at 0.5, dropped at
    # 0.4, which then frees box 1 (IoU with box 3: 40/136 = 0.29).
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.4).tolist() == [3, 1, 2]


def test_blob_from_the_letterbox_kernel_gives_the_same_faces(model_file):
    """The CUDA backend letterboxes on the device (`kernels.letterbox`, proven equal to
    its CUDA twin) and hands SCRFD the blob: the faces must equal SCRFD's own path."""
    from ghost_engine.kernels.letterbox import letterbox

    detector = ScrfdDetector.from_file(model_file)
    images = _images()
    for image, expected in zip(images, detector(images), strict=True):
        blob, geo = letterbox(image, SIZE)
        got = detector.detect_blob(blob, [geo.scale])[0]
        assert len(got) == len(expected) > 0
        np.testing.assert_array_equal([f.box for f in got], [f.box for f in expected])
        np.testing.assert_array_equal([f.kps for f in got], [f.kps for f in expected])


@pytest.mark.parametrize("batch", [1, "N"])
def test_pytorch_onnx_runner_finds_the_same_faces_as_onnxruntime(batch, tmp_path):
    """On a GPU without onnxruntime-gpu, SCRFD runs through `OnnxTorchSession`."""
    from ghost_engine.runtime.onnx_torch import OnnxTorchSession

    path = tmp_path / "scrfd.onnx"
    path.write_bytes(_scrfd_like_model(batch))
    ours = ScrfdDetector(OnnxTorchSession(path))
    ref = ScrfdDetector.from_file(path)
    assert ours.max_batch == ref.max_batch
    images = _images()
    for a, b in zip(ours(images), ref(images), strict=True):
        assert len(a) == len(b) > 0
        a, b = _by_position(a), _by_position(b)  # equal scores may come in either order
        np.testing.assert_allclose([f.box for f in a], [f.box for f in b], atol=1e-3)
        np.testing.assert_allclose([f.score for f in a], [f.score for f in b], atol=1e-5)
        np.testing.assert_allclose([f.kps for f in a], [f.kps for f in b], atol=1e-3)


def _by_position(faces: list) -> list:
    return sorted(faces, key=lambda f: (round(float(f.box[0]), 2), round(float(f.box[1]), 2)))


def test_device_ops_hand_scrfd_one_torch_batch_and_find_the_same_faces(model_file):
    """The CUDA backend's detect step (emulated flavour): blobs stay torch tensors for a
    PyTorch-run session; the faces equal the host path's."""
    import torch

    from ghost_engine.backend.cuda.context import device_context
    from ghost_engine.backend.cuda.device_ops import DeviceImageOps
    from ghost_engine.backend.cuda.frames import device_frame
    from ghost_engine.backend.cuda.kernel_set import cpu_kernels
    from ghost_engine.runtime.onnx_torch import OnnxTorchSession

    class Recording(OnnxTorchSession):
        fed: list = []

        def run(self, output_names, feeds):
            self.fed.append(next(iter(feeds.values())))
            return super().run(output_names, feeds)

    ops = DeviceImageOps(device_context("emulated"), cpu_kernels())
    detector = ScrfdDetector(Recording(model_file))
    images = [img for img in _images() if img.shape == (480, 720, 3)] * 2
    frames = [device_frame(i, img, None, None) for i, img in enumerate(images)]
    got = ops.detect(detector, frames)
    expected = ScrfdDetector.from_file(model_file)(images)
    assert all(isinstance(x, torch.Tensor) for x in Recording.fed) and len(Recording.fed) == 2
    for a, b in zip(got, expected, strict=True):
        assert len(a) == len(b) > 0
        a, b = _by_position(a), _by_position(b)
        np.testing.assert_allclose([f.box for f in a], [f.box for f in b], atol=1e-3)


def test_a_frame_without_candidates_gives_no_faces(model_file):
    """Scores below the threshold at every level (a frame without faces): empty, no error."""
    from ghost_engine.face.scrfd import decode

    outputs = []
    for chans in (1, 4, 10):
        for stride in STRIDES:
            n = (SIZE // stride) ** 2 * ANCHORS
            outputs.append(np.full((n, chans), 0.1, np.float32))
    boxes, scores, points = decode(outputs, (SIZE, SIZE), 0.6, 0.4, 1.0)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and points.shape == (0, 5, 2)
    detector = ScrfdDetector.from_file(model_file, ScrfdConfig(score_threshold=1.01))
    assert detector(_images()) == [[], [], []]
