"""The face-swap options shared by `run` and `webcam` reach SwapConfig unchanged."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from ghost_engine.commands.swap_options import SHARED_FIELDS, swap_config_fields, swap_options
from ghost_engine.face.swap_config import SwapConfig


def _parse(args: list[str]) -> SwapConfig:
    seen: dict = {}

    @click.command()
    @swap_options
    def probe(**opts) -> None:
        seen["config"] = SwapConfig(**swap_config_fields(opts))

    result = CliRunner().invoke(probe, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return seen["config"]


def test_defaults_are_swapconfig_defaults() -> None:
    parsed = _parse([])
    default = SwapConfig()
    for name in SHARED_FIELDS:
        assert getattr(parsed, name) == getattr(default, name), name


def test_enhance_flags_map_onto_config() -> None:
    cfg = _parse(["--enhance", "--enhance-mode", "official", "--enhance-blend", "0.25"])
    assert (cfg.enhance, cfg.enhance_mode, cfg.enhance_blend) == (True, "official", 0.25)
    assert _parse(["--enhance"]).enhance_mode == "per_face"


@pytest.mark.parametrize("command", ["run", "webcam"])
def test_both_commands_offer_every_shared_option(command: str) -> None:
    from ghost_engine.cli import cli

    help_text = CliRunner().invoke(cli, [command, "--help"]).output
    for name in SHARED_FIELDS:
        assert "--" + name.replace("_", "-") in help_text, name


def test_blend_out_of_range_is_a_usage_error() -> None:
    @click.command()
    @swap_options
    def probe(**opts) -> None:  # pragma: no cover - never reached
        pass

    result = CliRunner().invoke(probe, ["--enhance-blend", "1.5"])
    assert result.exit_code == 2
    assert "1.5 is not in the range 0.0<=x<=1.0" in result.output
