"""A run that lacks model files names all of them at once, with the command that fixes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghost_engine.backend.sessions import SessionOpener
from ghost_engine.errors import ModelMissingError
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.face_models import _LazyStore, build_models, required_models
from ghost_engine.store import ModelStore


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"generator": "passthrough", "detector": "dlib"}, []),
        ({"generator": "random", "detector": "dlib"}, []),
        ({"generator": "ghost", "detector": "dlib"}, ["G_unet_2blocks", "arcface_iresnet100"]),
        (
            {"generator": "ghost", "generator_blocks": 3, "detector": "scrfd", "enhance": True},
            ["scrfd_10g_bnkps", "G_unet_3blocks", "arcface_iresnet100", "sr_lipspade"],
        ),
        ({"generator": "passthrough", "recognizer": "glintr100"}, ["glintr100"]),
        ({"generator": "passthrough", "recognizer": "glintr100", "all_faces": True}, []),
    ],
)
def test_required_models(tmp_path: Path, fields: dict, expected: list[str]) -> None:
    config = SwapConfig(**fields)
    assert required_models(config, _LazyStore(config, ModelStore(tmp_path))) == expected


def test_missing_models_are_reported_together(tmp_path: Path) -> None:
    config = SwapConfig(generator="ghost", detector="dlib", enhance=True)
    with pytest.raises(ModelMissingError) as err:
        build_models(config, SessionOpener("cpu"), ModelStore(tmp_path))
    message = str(err.value)
    for name in ("G_unet_2blocks", "arcface_iresnet100", "sr_lipspade"):
        assert name in message
    assert "ghost-engine models download" in message


def test_download_fetches_the_published_detector_and_landmarks(tmp_path: Path) -> None:
    config = SwapConfig(generator="ghost", download=True)
    names = required_models(config, _LazyStore(config, ModelStore(tmp_path)))
    assert names == ["scrfd_10g_bnkps", "landmarks_2d106", "G_unet_2blocks", "arcface_iresnet100"]


def test_auto_detector_needs_scrfd_without_the_dlib_extra(tmp_path: Path, monkeypatch) -> None:
    from ghost_engine.pipeline import face_models as builder

    config = SwapConfig(generator="passthrough")
    store = _LazyStore(config, ModelStore(tmp_path))
    assert builder.detector_kind(config, store) == "dlib"
    monkeypatch.setattr(builder, "dlib_available", lambda: False)
    assert builder.detector_kind(config, store) == "scrfd"
    assert required_models(config, store) == ["scrfd_10g_bnkps"]
