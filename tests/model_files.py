"""Model files of the published layouts, made by the test suite (no weights can be fetched).

The default face path (SCRFD -> ArcFace -> GHOST generator -> 2d106det -> mask -> paste)
needs five files. These are the real layouts with constructed weights:

- `scrfd_10g_bnkps.onnx`: SCRFD's input (1x3x640x640, RGB, `(x - 127.5) / 128`) and its
  9 outputs (scores, boxes, points for strides 8/16/32, 2 anchors per cell, as
  `(cells * 2, 1 | 4 | 10)`), behind a small backbone of fixed random convolutions. The
  final head convolutions have zero weights; their biases (plus a fixed per-position score
  bias, since a convolution's own bias cannot single out one place) give a high score at
  one anchor of stride 16 and a low one everywhere else, and box and point distances that
  decode (SCRFD's distance decoding) to the face dlib finds in nggyup.mp4 at 1.0-1.5 s.
  So every image "has" that one face, wherever the person is.
- `2d106det.onnx`: 2d106det's input (Nx3x192x192, raw RGB) and 212 outputs; the final
  fully connected layer has zero weights and a bias that decodes to one fixed face shape
  (68 points dlib found on a GHOST crop of the clip, carried onto 2d106det's indices).
- `glintr100.onnx`: glintr100's input (Nx3x112x112) and 512 outputs, fixed random weights.
- `G_unet_2blocks.pth` and `backbone.pth`: our AEINet and iresnet100 with the fill-rule
  weights of `ghost_engine.networks.fill`, saved as plain state dicts whose keys are the
  official ones (the golden manifests in ../shared/golden list them).

The ONNX graphs are small: only their layouts are SCRFD's, 2d106det's and glintr100's.
The ONNX builders follow `tests/test_face_scrfd.py`'s SCRFD-shaped graph (copied and
extended here, not imported, since that one feeds the heads random weights).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from ghost_engine import networks
from ghost_engine.face.scrfd import ScrfdConfig
from ghost_engine.networks.fill import filled_state_dict

CLIP = Path("videos") / "nggyup.mp4"  # under the media folder
CLIP_START_S, CLIP_END_S = 1.0, 1.5
# The face dlib's HOG detector finds in nggyup.mp4 (1280x720), median over the 15 frames
# of 1.0-1.5 s: box (x1, y1, x2, y2) and five points (eyes, nose, mouth corners).
FACE_BOX_720P = (595.0, 162.0, 701.0, 273.0)
FACE_POINTS_720P = ((622.0, 194.8), (669.8, 196.3), (650.0, 222.0), (621.0, 246.0), (667.0, 246.0))
CLIP_LETTERBOX_SCALE = 640 / 1280  # SCRFD's letterbox of a 1280x720 frame into 640x640

SCRFD_SIZE = 640
SCRFD_STRIDES = (8, 16, 32)
SCRFD_ANCHORS = 2
FACE_STRIDE = 16  # the stride whose anchor scores the face
HIGH_LOGIT, LOW_LOGIT = 8.0, -10.0  # sigmoid: 0.9997 at the face's anchor, 4.5e-5 elsewhere

# fmt: off
# 68 points dlib's shape predictor found on the 224 GHOST crop of nggyup.mp4 at 1.23 s.
SHAPE_68 = (
    (28, 99), (30, 120), (34, 141), (39, 160), (48, 179), (61, 196), (77, 210), (96, 220),
    (114, 221), (128, 215), (139, 201), (149, 187), (158, 170), (164, 153), (167, 136),
    (170, 119), (171, 101), (50, 93), (61, 86), (75, 83), (90, 85), (103, 89), (125, 90),
    (136, 86), (148, 85), (159, 87), (166, 93), (115, 102), (116, 114), (117, 126),
    (118, 138), (99, 147), (108, 149), (116, 151), (123, 148), (130, 146), (66, 103),
    (75, 101), (84, 100), (91, 104), (83, 106), (75, 105), (131, 104), (139, 101),
    (147, 101), (153, 104), (147, 106), (139, 106), (78, 173), (91, 167), (106, 164),
    (115, 166), (124, 164), (135, 166), (142, 171), (135, 187), (125, 195), (116, 197),
    (106, 196), (91, 189), (83, 174), (106, 169), (115, 170), (124, 169), (138, 172),
    (125, 186), (115, 188), (106, 187),
)
# dlib's point i is 2d106det's point _106_OF_68[i] (the correspondence the mask's 68-point
# layout mirrors: chin 8 -> 0, jaw ends 0 / 16 -> 1 / 17, brows, nose, eyes, mouth).
_106_OF_68 = (
    1, 10, 12, 14, 16, 3, 5, 7, 0, 23, 21, 19, 32, 30, 28, 26, 17,
    43, 48, 49, 51, 50, 102, 103, 104, 105, 101,
    72, 73, 74, 86, 78, 79, 80, 85, 84,
    35, 41, 42, 39, 37, 36, 89, 95, 96, 93, 91, 90,
    52, 64, 63, 71, 67, 68, 61, 58, 59, 53, 56, 55, 65, 66, 62, 70, 69, 57, 60, 54,
)
# The other 38 points of 2d106det lie between two placed points (jaw points between jaw
# points, eye points between eye corners and lids, nose sides between bridge and nostrils).
_BETWEEN = {
    9: (1, 10), 11: (10, 12), 13: (12, 14), 15: (14, 16), 2: (16, 3), 4: (3, 5), 6: (5, 7),
    8: (7, 0), 25: (17, 26), 27: (26, 28), 29: (28, 30), 31: (30, 32), 18: (32, 19),
    20: (19, 21), 22: (21, 23), 24: (23, 0),
    40: (41, 42), 38: (35, 39), 33: (37, 36), 34: (35, 36),
    94: (95, 96), 88: (89, 93), 87: (91, 90), 92: (93, 91),
    75: (74, 78), 76: (74, 79), 77: (73, 78), 81: (74, 84), 82: (74, 85), 83: (73, 84),
}
# the lower edge of each brow: under two upper brow points, 3 pixels down
_BELOW = {44: (43, 48), 45: (48, 49), 46: (49, 51), 47: (51, 50),
          97: (102, 103), 98: (103, 104), 99: (104, 105), 100: (105, 101)}
# fmt: on


def face_points_106() -> np.ndarray:
    """(106, 2) float32: the fixed face shape in 224-crop pixels, 2d106det's indices."""
    points = np.full((106, 2), np.nan)
    points[list(_106_OF_68)] = np.asarray(SHAPE_68, np.float64)
    for i, (a, b) in _BETWEEN.items():
        points[i] = (points[a] + points[b]) / 2
    for i, (a, b) in _BELOW.items():
        points[i] = (points[a] + points[b]) / 2 + (0.0, 3.0)
    if np.isnan(points).any():
        raise AssertionError("every 2d106det point must be placed")
    return points.astype(np.float32)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


class _Graph:
    """Nodes and weights of one ONNX graph under construction."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []

    def weight(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def ints(self, name: str, values: list[int]) -> str:
        self.inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def conv(self, name: str, x: str, w: np.ndarray, b: np.ndarray, **attrs) -> str:
        """A convolution with these weights (OIHW) and bias."""
        ins = [x, self.weight(f"{name}.weight", w), self.weight(f"{name}.bias", b)]
        return self.node("Conv", ins, name, **attrs)

    def random_conv(self, name: str, x: str, cin: int, cout: int, seed: int, **attrs) -> str:
        """A fixed random convolution and ReLU: the part whose weights do not matter."""
        k = attrs.get("kernel_shape", [1, 1])[0]
        w = _rng(seed).standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)
        b = 0.1 * _rng(seed + 1).standard_normal(cout)
        return self.node("Relu", [self.conv(name, x, w, b, **attrs)], f"{name}.relu")

    def model(self, name: str, inputs: list, outputs: list) -> bytes:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model.SerializeToString()


def scrfd_face_anchor(box_640: np.ndarray) -> tuple[int, int]:
    """(column, row) of the stride-16 cell whose first anchor scores the face: the cell
    whose centre is nearest the box centre."""
    cx, cy = (box_640[0] + box_640[2]) / 2, (box_640[1] + box_640[3]) / 2
    return int(round(cx / FACE_STRIDE)), int(round(cy / FACE_STRIDE))


def scrfd_onnx(box_640: np.ndarray, points_640: np.ndarray) -> bytes:
    """SCRFD-10G's layout whose only candidate is `box_640` with `points_640` (in
    letterboxed 640x640 input pixels)."""
    box_640, points_640 = np.asarray(box_640, np.float64), np.asarray(points_640, np.float64)
    g = _Graph()
    x = "input.1"
    col, row = scrfd_face_anchor(box_640)
    centre = np.array([col, row], np.float64) * FACE_STRIDE
    outputs: dict[str, list] = {"score": [], "bbox": [], "kps": []}
    for stride in SCRFD_STRIDES:
        side = SCRFD_SIZE // stride
        pool = {"kernel_shape": [stride, stride], "strides": [stride, stride]}
        pooled = g.node("AveragePool", [x], f"pool{stride}", **pool)
        feat = g.random_conv(f"backbone{stride}", pooled, 3, 8, seed=stride)
        face_here = stride == FACE_STRIDE
        if face_here:  # SCRFD's distances are in units of the stride
            box_dist = np.r_[centre - box_640[:2], box_640[2:] - centre] / stride
            kps_dist = (points_640 - centre).reshape(-1) / stride
        else:
            box_dist, kps_dist = np.ones(4), np.zeros(10)
        heads = (
            ("score", 1, np.array([LOW_LOGIT])),
            ("bbox", 4, box_dist),
            ("kps", 10, kps_dist),
        )
        for kind, chans, bias in heads:
            name = f"{kind}_{stride}"
            zero = np.zeros((SCRFD_ANCHORS * chans, 8, 3, 3))
            y = g.conv(f"{name}.head", feat, zero, np.tile(bias, SCRFD_ANCHORS), pads=[1] * 4)
            if kind == "score":
                if face_here:  # the per-position bias: high at the face's first anchor only
                    prior = np.zeros((1, SCRFD_ANCHORS, side, side))
                    prior[0, 0, row, col] = HIGH_LOGIT - LOW_LOGIT
                    y = g.node("Add", [y, g.weight(f"{name}.prior", prior)], f"{name}.logit")
                y = g.node("Sigmoid", [y], f"{name}.sigmoid")
            # (1, A*C, h, w) -> (1, h, w, A*C) -> (h*w*A, C), as SCRFD's exports end
            t = g.node("Transpose", [y], f"{name}.t", perm=[0, 2, 3, 1])
            g.node("Reshape", [t, g.ints(f"{name}.shape", [-1, chans])], name)
            cells = side * side * SCRFD_ANCHORS
            info = helper.make_tensor_value_info(name, TensorProto.FLOAT, [cells, chans])
            outputs[kind].append(info)
    inp = helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, SCRFD_SIZE, SCRFD_SIZE])
    return g.model("scrfd_10g_bnkps", [inp], outputs["score"] + outputs["bbox"] + outputs["kps"])


def clip_scrfd_onnx() -> bytes:
    """The SCRFD file for nggyup.mp4: its candidate is the clip's face, letterboxed."""
    box = np.asarray(FACE_BOX_720P) * CLIP_LETTERBOX_SCALE
    points = np.asarray(FACE_POINTS_720P) * CLIP_LETTERBOX_SCALE
    if ScrfdConfig().input_size != (SCRFD_SIZE, SCRFD_SIZE):
        raise AssertionError("the engine's SCRFD input size changed")
    return scrfd_onnx(box, points)


_STEM = {"kernel_shape": [3, 3], "strides": [4, 4], "pads": [1, 1, 1, 1]}


def landmarks_onnx(points_224: np.ndarray) -> bytes:
    """2d106det's layout whose output decodes to `points_224` (106, 2) for every crop.

    2d106det's outputs are in (-1, 1) on its 192 input, which holds the 224 crop shrunk
    by 4/7 at offset 32: `raw = ((p + 56) / 1.75) / 96 - 1`.
    """
    raw = ((np.asarray(points_224, np.float64) + 56.0) / 1.75) / 96.0 - 1.0
    g = _Graph()
    feat = g.random_conv("conv1", "data", 3, 16, seed=106, **_STEM)
    pooled = g.node("Flatten", [g.node("GlobalAveragePool", [feat], "pool")], "flat")
    w = g.weight("fc1.weight", np.zeros((212, 16)))
    b = g.weight("fc1.bias", raw.reshape(-1))
    g.node("Gemm", [pooled, w, b], "fc1", transB=1)
    inp = helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 192, 192])
    out = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["N", 212])
    return g.model("2d106det", [inp], [out])


def glintr100_onnx() -> bytes:
    """glintr100's layout (112x112 in, 512 out) with fixed random weights."""
    g = _Graph()
    feat = g.random_conv("conv1", "input.1", 3, 16, seed=100, **_STEM)
    pooled = g.node("Flatten", [g.node("GlobalAveragePool", [feat], "pool")], "flat")
    w = g.weight("fc.weight", _rng(101).standard_normal((512, 16)) / 4.0)
    b = g.weight("fc.bias", 0.1 * _rng(102).standard_normal(512))
    g.node("Gemm", [pooled, w, b], "embedding", transB=1)
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 512])
    return g.model("glintr100", [inp], [out])


def fill_rule_checkpoint(network: str, path: Path) -> Path:
    """`network` with fill-rule weights, saved as a plain state dict (official keys)."""
    torch.save(filled_state_dict(networks.build(network)), path)
    return path


# manifest name -> file name (the published one)
MODEL_FILES = {
    "scrfd_10g_bnkps": "scrfd_10g_bnkps.onnx",
    "landmarks_2d106": "2d106det.onnx",
    "glintr100": "glintr100.onnx",
    "G_unet_2blocks": "G_unet_2blocks.pth",
    "arcface_iresnet100": "backbone.pth",
}
DEFAULT_MODELS = ("scrfd_10g_bnkps", "arcface_iresnet100", "G_unet_2blocks", "landmarks_2d106")


def write_model_files(folder: Path) -> dict[str, Path]:
    """Write every file of `MODEL_FILES` into `folder`; model name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "scrfd_10g_bnkps": clip_scrfd_onnx,
        "landmarks_2d106": lambda: landmarks_onnx(face_points_106()),
        "glintr100": glintr100_onnx,
    }
    paths = {}
    for name, file in MODEL_FILES.items():
        path = folder / file
        if name in made:
            path.write_bytes(made[name]())
        else:
            fill_rule_checkpoint(name, path)
        paths[name] = path
    return paths


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_own_manifest(files: dict[str, Path], path: Path) -> Path:
    """The packaged manifest with `files`' entries stating these files' own sizes and
    hashes (a self-hosted manifest: the published hashes do not apply to them)."""
    packaged = resources.files("ghost_engine").joinpath("data/models.json").read_text("utf-8")
    raw = json.loads(packaged)
    for entry in raw["models"]:
        if entry["name"] in files:
            made = files[entry["name"]]
            entry.update(
                size=made.stat().st_size,
                sha256=sha256(made),
                urls=[],
                source="made by the ghost-engine test suite (real layout, constructed weights)",
            )
            entry.pop("archive", None)  # a self-hosted file, not a member of buffalo_l.zip
    path.write_text(json.dumps(raw, indent=2) + "\n", "utf-8")
    return path


# the ONNX files of `MODEL_FILES`: a store of these alone runs SCRFD, glintr100 and
# 2d106det beside the passthrough generator (small and quick to make)
ONNX_MODELS = ("scrfd_10g_bnkps", "landmarks_2d106", "glintr100")


def write_onnx_model_files(folder: Path) -> dict[str, Path]:
    """Write the files of `ONNX_MODELS` into `folder`; model name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "scrfd_10g_bnkps": clip_scrfd_onnx,
        "landmarks_2d106": lambda: landmarks_onnx(face_points_106()),
        "glintr100": glintr100_onnx,
    }
    paths = {}
    for name in ONNX_MODELS:
        paths[name] = folder / MODEL_FILES[name]
        paths[name].write_bytes(made[name]())
    return paths
