"""Engine errors carry what they are about as fields (path, option, value, allowed), set
at the real raise sites, and the CLI still prints each as one line with its exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghost_engine.choices import CODECS, DETECTORS, DEVICES
from ghost_engine.cli import main
from ghost_engine.errors import (
    CheckpointError,
    DownloadError,
    ExportError,
    GhostEngineError,
    InputFileNotFoundError,
    ModelIntegrityError,
    ModelMissingError,
    OptionalDependencyError,
    OutputError,
    UnsafeArchiveError,
    UserInputError,
)
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.store import DownloadConfig, ModelStore
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.media import detect_kind
from ghost_engine.video.output import check_output_path


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code), capsys.readouterr().err.strip()


def _one_line(err: str) -> None:
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UserInputError, 2),
        (InputFileNotFoundError, 2),
        (OutputError, 3),
        (CheckpointError, 4),
        (UnsafeArchiveError, 4),
        (ModelMissingError, 5),
        (DownloadError, 5),
        (OptionalDependencyError, 6),
        (ExportError, 7),
    ],
)
def test_exit_codes_are_unchanged(error: type[GhostEngineError], code: int) -> None:
    assert error.exit_code == code


def test_unset_fields_are_left_out() -> None:
    exc = UserInputError("bad", option="--x", value=0)
    assert exc.fields() == {"option": "--x", "value": 0}
    assert str(exc) == "bad" and isinstance(exc, ValueError)


def test_missing_target_names_the_path(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(InputFileNotFoundError) as info:
        detect_kind(missing)
    assert info.value.path == str(missing)
    assert isinstance(info.value, FileNotFoundError)
    code, err = _cli(["run", str(missing), "-s", "x.jpg", "-o", str(tmp_path / "o.mp4")], capsys)
    assert code == 2 and f"target file not found: {missing}" in err
    _one_line(err)


def test_output_folder_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as info:
        check_output_path(tmp_path / "missing" / "out.mp4")
    assert info.value.path == str(tmp_path / "missing")


def test_bad_swap_option_names_flag_value_and_choices() -> None:
    with pytest.raises(UserInputError) as info:
        SwapConfig(detector="yolo")
    exc = info.value
    assert (exc.option, exc.value, exc.allowed) == ("--detector", "yolo", DETECTORS)
    assert str(exc) == "detector must be one of auto, scrfd, dlib; got 'yolo'"


def test_swap_config_errors_are_still_value_errors() -> None:
    """Callers that catch ValueError (the pipeline's make_config) keep working."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        SwapConfig(enhance_blend=2.0)


def test_engine_without_cuda_names_the_device(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as info:
        SwapConfig(generator_engine=tmp_path / "G.engine", device="cpu")
    assert (info.value.option, info.value.value) == ("--device", "cpu")
    assert set(info.value.allowed) <= set(DEVICES)


def test_bad_codec_names_the_choices() -> None:
    with pytest.raises(UserInputError) as info:
        EncodeSettings(codec="mpeg2").resolve()
    assert (info.value.option, info.value.value, info.value.allowed) == ("--codec", "mpeg2", CODECS)


def test_bad_download_setting_names_its_flag() -> None:
    with pytest.raises(UserInputError) as info:
        DownloadConfig(jobs=0)
    assert (info.value.option, info.value.value) == ("--jobs", 0)


def test_unknown_model_names_value_and_known_models(tmp_path: Path, capsys) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(UserInputError) as info:
        store.entry("G_unet_9blocks")
    assert info.value.value == "G_unet_9blocks"
    assert "G_unet_2blocks" in info.value.allowed
    assert list(info.value.allowed) == sorted(store.manifest.entries)
    code, err = _cli(["models", "path", "G_unet_9blocks", "--models-dir", str(tmp_path)], capsys)
    assert code == 2 and "unknown model 'G_unet_9blocks'" in err
    _one_line(err)


def test_unknown_pack_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as info:
        ModelStore(tmp_path).manifest.pack("everything")
    assert (info.value.option, info.value.value) == ("--pack", "everything")
    assert "default" in info.value.allowed


def test_missing_model_names_the_folder(tmp_path: Path, capsys) -> None:
    with pytest.raises(ModelMissingError) as info:
        ModelStore(tmp_path).path("G_unet_2blocks")
    assert info.value.path == str(tmp_path)
    code, err = _cli(["models", "path", "G_unet_2blocks", "--models-dir", str(tmp_path)], capsys)
    assert code == 5 and "ghost-engine models download" in err
    _one_line(err)


def test_corrupt_model_names_the_file(tmp_path: Path) -> None:
    exc = ModelIntegrityError("arcface", str(tmp_path / "a.pth"), "0" * 64, "1" * 64, "manifest")
    assert exc.path == str(tmp_path / "a.pth") and exc.exit_code == 4


def test_bad_time_names_the_flag(tmp_path: Path, capsys) -> None:
    from ghost_engine.commands.run import parse_time

    with pytest.raises(UserInputError) as info:
        parse_time("abc", "--start")
    assert (info.value.option, info.value.value) == ("--start", "abc")
    argv = ["run", "x.mp4", "-s", "x.jpg", "-o", str(tmp_path / "o.mp4"), "--start", "abc"]
    code, err = _cli(argv, capsys)
    assert code == 2 and "cannot read time 'abc'" in err
    _one_line(err)
