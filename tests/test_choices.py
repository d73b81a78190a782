"""The CLI offers exactly the values the configs accept (both read `ghost_engine.choices`),
and the modules that still keep their own copy of a list agree with it."""

from __future__ import annotations

import click
import pytest

from ghost_engine import choices
from ghost_engine.cli import cli


def _choices(command: list[str]) -> dict[str, tuple]:
    """Flag -> offered values of every Choice option of a (sub)command."""
    group = cli
    ctx = click.Context(cli)
    for name in command:
        group = group.get_command(ctx, name)
    return {
        p.opts[-1]: tuple(p.type.choices) for p in group.params if isinstance(p.type, click.Choice)
    }


@pytest.mark.parametrize("command", [["run"], ["webcam"]])
def test_swap_options_offer_the_choices(command: list[str]) -> None:
    offered = _choices(command)
    assert offered["--generator"] == choices.GENERATORS
    assert offered["--detector"] == choices.DETECTORS
    assert offered["--recognizer"] == choices.RECOGNIZERS
    assert offered["--mask-mode"] == choices.MASK_MODES
    assert offered["--runtime"] == choices.RUNTIMES
    assert offered["--device"] == choices.DEVICES
    assert offered["--enhance-mode"] == choices.ENHANCE_MODE_FLAGS


def test_command_specific_choices() -> None:
    assert _choices(["run"])["--smoothing"] == choices.SMOOTHING
    assert _choices(["run"])["--codec"] == choices.CODECS
    assert _choices(["webcam"])["--smoothing"] == choices.CAUSAL_SMOOTHING
    bench = _choices(["bench"])
    assert (bench["--device"], bench["--pipeline-runtime"]) == (choices.DEVICES, choices.RUNTIMES)
    export = _choices(["export"])
    assert export["--format"] == choices.EXPORT_FORMATS
    assert export["--precision"] == choices.EXPORT_PRECISIONS
    assert export["--bn-mode"] == choices.SR_BN_MODES
    assert export["--typing"] == choices.TRT_TYPINGS


def test_enhance_mode_spellings_round_trip() -> None:
    assert choices.ENHANCE_MODE_FLAGS == ("per-face", "official")
    for mode in choices.ENHANCE_MODES:
        assert choices.enhance_mode_from_flag(choices.enhance_mode_flag(mode)) == mode


def test_devices_are_the_runtime_devices() -> None:
    from ghost_engine.runtime import devices

    assert choices.DEVICES is devices.DEVICES
    assert choices.TRAIN_DEVICES is devices.TRAIN_DEVICES


def test_lists_kept_elsewhere_agree() -> None:
    """Modules outside the CLI that still spell a list out must match the choices."""
    from ghost_engine.export.parity import TOLERANCE
    from ghost_engine.measure import bench_config
    from ghost_engine.networks.lipspade import BN_MODES
    from ghost_engine.webcam.live_stage import CAUSAL_SMOOTHING
    from ghost_engine.webcam.sinks import STREAM_FORMATS

    assert tuple(bench_config.DEVICES) == choices.DEVICES
    assert tuple(bench_config.RUNTIMES) == choices.BENCH_RUNTIMES
    assert tuple(BN_MODES) == choices.SR_BN_MODES
    assert tuple(TOLERANCE) == choices.EXPORT_PRECISIONS  # a parity limit for each
    assert tuple(CAUSAL_SMOOTHING) == choices.CAUSAL_SMOOTHING
    assert tuple(STREAM_FORMATS) == choices.STREAM_SCHEMES
