"""`build_engine`'s control flow against a stand-in for the TensorRT module.

TensorRT cannot be installed here, so this checks only our side: which flags and
profile shapes are asked for, where the engine and timing cache go, that a current
engine is reused and a changed ONNX rebuilt. The real build runs in
`ghost_engine.export.tensorrt_device_check` on a GPU.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ghost_engine.errors import ExportError
from ghost_engine.export.profile import BatchProfile
from ghost_engine.export.specs import export_spec
from ghost_engine.export.tensorrt_build import TrtBuildConfig, build_engine
from ghost_engine.export.tensorrt_env import GpuIdentity

GPU = GpuIdentity("NVIDIA H200", (9, 0))


class _Recorder:
    """Minimal TensorRT surface used by `build_engine`; records what it is asked."""

    __version__ = "10.13.3.9"

    def __init__(self, input_shapes, parse_ok=True):
        self.calls = {"builds": 0, "flags": [], "shapes": {}, "network_flags": None}
        self.input_shapes = input_shapes
        self.parse_ok = parse_ok
        self.NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=5)
        self.BuilderFlag = SimpleNamespace(FP16="FP16", BF16="BF16")
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
        self.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda s, level: None})
        rec = self

        class Network:
            num_inputs = len(input_shapes)

            def get_input(self, i):
                name, shape = list(rec.input_shapes.items())[i]
                return SimpleNamespace(name=name, shape=shape)

        class Parser:
            num_errors = 1

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                rec.calls["parsed"] = path
                return rec.parse_ok

            def get_error(self, i):
                return "Unsupported op Foo"

        class Cache:
            def __init__(self, blob):
                rec.calls["cache_in"] = bytes(blob)

            def serialize(self):
                return b"timings"

        class Config:
            def set_memory_pool_limit(self, pool, size):
                rec.calls["workspace"] = size

            def set_flag(self, flag):
                rec.calls["flags"].append(flag)

            def add_optimization_profile(self, profile):
                pass

            def create_timing_cache(self, blob):
                return Cache(blob)

            def set_timing_cache(self, cache, ignore_mismatch):
                rec.calls["ignore_mismatch"] = ignore_mismatch

        class Profile:
            def set_shape(self, name, lo, opt, hi):
                rec.calls["shapes"][name] = (lo, opt, hi)

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                rec.calls["network_flags"] = flags
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                rec.calls["builds"] += 1
                return b"plan"

        self.Builder = Builder
        self.OnnxParser = Parser


def _build(tmp_path, trt, sha="abc", **cfg):
    onnx_path = tmp_path / "G_unet_2blocks.fp16.onnx"
    onnx_path.write_bytes(b"onnx")
    config = TrtBuildConfig(profile=BatchProfile(1, 8, 32), **cfg)
    return build_engine(
        onnx_path,
        tmp_path,
        spec=export_spec("G_unet_2blocks"),
        config=config,
        onnx_sha256=sha,
        gpu=GPU,
        trt=trt,
    )


def test_strong_build_profiles_cache_and_reuse(tmp_path):
    trt = _Recorder({"target": (-1, 3, 256, 256), "z_id": (-1, 512)})
    engine = _build(tmp_path, trt)
    assert engine.name == "G_unet_2blocks.fp16.b1-8-32.nvidia-h200.sm90.trt10.13.3.9.engine"
    assert engine.read_bytes() == b"plan"
    assert trt.calls["network_flags"] == 1 << 5  # strongly typed
    assert trt.calls["flags"] == []  # precision comes from the ONNX
    assert trt.calls["shapes"] == {
        "target": ((1, 3, 256, 256), (8, 3, 256, 256), (32, 3, 256, 256)),
        "z_id": ((1, 512), (8, 512), (32, 512)),
    }
    assert trt.calls["cache_in"] == b"" and trt.calls["ignore_mismatch"] is False
    cache = tmp_path / "timing.nvidia-h200.sm90.trt10.13.3.9.cache"
    assert cache.read_bytes() == b"timings"
    assert json.loads(engine.with_name(engine.name + ".json").read_text())["onnx_sha256"] == "abc"

    assert _build(tmp_path, trt) == engine and trt.calls["builds"] == 1  # reused
    _build(tmp_path, trt, sha="changed")  # another ONNX: rebuilt, cache read back in
    assert trt.calls["builds"] == 2 and trt.calls["cache_in"] == b"timings"
    _build(tmp_path, trt, force=True)
    assert trt.calls["builds"] == 3


def test_weak_typing_uses_builder_flag_and_fixed_batch_graph(tmp_path):
    trt = _Recorder({"target": (1, 3, 256, 256), "z_id": (1, 512)})
    engine = _build(tmp_path, trt, precision="bf16", typing="weak")
    assert trt.calls["flags"] == ["BF16"] and trt.calls["network_flags"] == 0
    assert ".b1-1-1." in engine.name  # the graph's fixed batch pins the profile


def test_parse_errors_are_reported(tmp_path):
    trt = _Recorder({"target": (-1, 3, 256, 256)}, parse_ok=False)
    with pytest.raises(ExportError, match="Unsupported op Foo"):
        _build(tmp_path, trt)


def test_weak_flag_missing_in_tensorrt_11(tmp_path):
    trt = _Recorder({"target": (-1, 3, 256, 256), "z_id": (-1, 512)})
    trt.BuilderFlag = SimpleNamespace()  # TensorRT 11 removed the precision flags
    with pytest.raises(ExportError, match="strong typing"):
        _build(tmp_path, trt, precision="fp16", typing="weak")
