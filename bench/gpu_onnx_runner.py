"""The PyTorch ONNX runner on the GPU: a detector-sized graph, timed and checked.

No SCRFD weights ship with the repository, so the graph is one of the same make and
about the same work: a ResNet-style backbone at strides 4 to 32, an FPN with nearest
upsampling, and per-stride heads with SCRFD's output layout (9 outputs), at 640x640.
It is exported with PyTorch's TorchScript exporter, run by `OnnxTorchSession` on the
device (fp32 and fp16, batch 1, eager and replayed from a CUDA graph),
and compared with ONNX Runtime on the CPU (the runtime it replaces).
Called by `gpu_check.py` (section `onnx_runner`).
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable

import numpy as np

from ghost_engine.runtime import devices


def _detector_shaped(width: int):
    import torch
    import torch.nn.functional as F
    from torch import nn

    def unit(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
        )

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.stem = nn.Sequential(unit(3, w, 2), unit(w, w, 1), nn.MaxPool2d(2))
            self.stages = nn.ModuleList(
                nn.Sequential(unit(a, b, 2), unit(b, b, 1), unit(b, b, 1))
                for a, b in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 4 * w))
            )
            self.lateral = nn.ModuleList(nn.Conv2d(c, w, 1) for c in (2 * w, 4 * w, 4 * w))
            self.heads = nn.ModuleList(
                nn.Sequential(unit(w, w, 1), nn.Conv2d(w, 2 * 15, 3, 1, 1)) for _ in range(3)
            )

        def forward(self, x: torch.Tensor) -> tuple:
            feats, y = [], self.stem(x)
            for stage in self.stages:
                y = stage(y)
                feats.append(y)
            p = [lat(f) for lat, f in zip(self.lateral, feats, strict=True)]
            p[1] = p[1] + F.interpolate(p[2], size=p[1].shape[2:], mode="nearest")
            p[0] = p[0] + F.interpolate(p[1], size=p[0].shape[2:], mode="nearest")
            outs: dict[str, list] = {"score": [], "box": [], "kps": []}
            for level, head in zip(p, self.heads, strict=True):
                h = head(level).permute(0, 2, 3, 1)
                outs["score"].append(torch.sigmoid(h[..., :2]).reshape(-1, 1))
                outs["box"].append(h[..., 2:10].reshape(-1, 4))
                outs["kps"].append(h[..., 10:].reshape(-1, 10))
            return (*outs["score"], *outs["box"], *outs["kps"])

    torch.manual_seed(0)
    return Net().eval()


def _landmark_shaped(width: int):
    """2d106det's make: depthwise-separable conv/BN/PReLU blocks, 192 in, 212 out."""
    import torch
    from torch import nn

    def block(cin: int, cout: int, stride: int) -> list:
        return [
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.PReLU(cin),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
        ]

    w = width
    layers = [nn.Conv2d(3, w, 3, 2, 1), nn.BatchNorm2d(w), nn.PReLU(w)]
    for cin, cout, stride in ((w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 4 * w, 1)):
        layers += block(cin, cout, stride)
    for cin, cout, stride in ((4 * w, 8 * w, 2), (8 * w, 8 * w, 1), (8 * w, 16 * w, 2)):
        layers += block(cin, cout, stride)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16 * w, 212)]
    torch.manual_seed(1)
    return nn.Sequential(*layers).eval()


def landmark_onnx(width: int = 48) -> tuple[bytes, float]:
    """(ONNX bytes, GFLOP per crop) of the landmark-shaped network (192x192 input,
    any batch)."""
    return _export(_landmark_shaped(width), 192, dynamic_batch=True)


def detector_onnx(width: int, size: int) -> tuple[bytes, float]:
    """(ONNX bytes, GFLOP per image at `size`) of the detector-shaped network."""
    return _export(_detector_shaped(width), size, dynamic_batch=False)


def _export(net, size: int, dynamic_batch: bool) -> tuple[bytes, float]:
    import torch

    x = torch.rand(1, 3, size, size)
    flops = 0

    def count(module, inputs, output):
        nonlocal flops
        k = module.weight[0].numel()  # cin/groups * kh * kw (or in_features)
        flops += 2 * k * output.numel()

    kinds = ("Conv2d", "Linear")
    hooks = [m.register_forward_hook(count) for m in net.modules() if type(m).__name__ in kinds]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x,),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["input.1"],
            dynamic_axes={"input.1": {0: "batch"}} if dynamic_batch else None,
        )
    return buffer.getvalue(), flops / 1e9


def check_onnx_runner(device: str, tiny: bool, deadline: float, time_ms: Callable) -> dict:
    """Times and differences as described in the module doc; `time_ms(fn, device, reps,
    deadline)` is gpu_check's timer (median ms after a warm-up, synchronised)."""
    import onnx
    import onnxruntime
    import torch

    from ghost_engine.runtime.onnx_torch import OnnxTorchSession

    gpu = devices.is_gpu(device)
    width, size = (8, 64) if tiny else (48, 640)
    data, gflop = detector_onnx(width, size)
    model = onnx.load_from_string(data)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    ort = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    ref = ort.run(None, {"input.1": x})
    res: dict = {"input": size, "gflop_per_image": round(gflop, 2), "nodes": len(model.graph.node)}

    reps = 1 if tiny else 20
    res["onnxruntime_cpu_ms"] = time_ms(
        lambda: ort.run(None, {"input.1": x}), devices.CPU, 1 if tiny else 5, deadline
    )
    for dtype in (torch.float32, torch.float16):
        if dtype == torch.float16 and not gpu:
            continue
        name = str(dtype).replace("torch.", "")
        session = OnnxTorchSession(model, device, dtype)
        xt = torch.from_numpy(x).to(device)
        got = session.run(None, {"input.1": xt})
        diff = max(float(np.abs(a - b).max()) for a, b in zip(got, ref, strict=True))
        row: dict = {"max_abs_diff_vs_onnxruntime": diff}
        row["batch_1_ms"] = time_ms(
            lambda s=session, t=xt: s.run_torch(None, {"input.1": t}), device, reps, deadline
        )
        if gpu and time.monotonic() < deadline:
            graphed = OnnxTorchSession(model, device, dtype, cuda_graphs=True)
            row.update(_graphed(graphed, xt, got, time_ms, reps, deadline))
        res[name] = row
    if gpu:
        res["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return res


def _graphed(session, x, eager: list, time_ms: Callable, reps: int, deadline: float) -> dict:
    """A session made with `cuda_graphs=True`: time, outputs against eager, and whether
    capture worked (the session falls back to eager where it does not)."""
    got = session.run(None, {"input.1": x})
    diff = max(float(np.abs(a - b).max()) for a, b in zip(got, eager, strict=True))
    ms = time_ms(lambda: session.run_torch(None, {"input.1": x}), devices.CUDA, reps, deadline)
    return {
        "cuda_graph_batch_1_ms": ms,
        "cuda_graph_max_abs_diff_vs_eager": diff,
        "cuda_graph_shapes": [list(map(list, k)) for k in session.graph_shapes],
        "cuda_graph_failure": session.graph_failure,
    }
