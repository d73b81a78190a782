"""`ghost-engine ui` as users start it: local address only by default, a page served,
and the temporary workspace gone once the server is stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import require_module

from ghost_engine.errors import UserInputError

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_settings_default_to_localhost_without_a_public_link() -> None:
    require_module("gradio", "the browser UI needs the ui extra")
    from ghost_engine.ui.server import UiSettings

    settings = UiSettings()
    assert (settings.host, settings.share) == ("127.0.0.1", False)
    with pytest.raises(UserInputError, match="--port"):
        UiSettings(port=70000)


def test_the_command_serves_on_localhost_and_removes_its_workspace_on_exit(tmp_path) -> None:
    require_module("gradio", "the browser UI needs the ui extra")
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(temp), "GRADIO_ANALYTICS_ENABLED": "False"}
    args = ["--port", str(port), "--generator", "passthrough", "--detector", "dlib"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ghost_engine", "ui", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert line.strip() == f"serving the UI at http://127.0.0.1:{port}/", line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200
            assert "ghost-engine" in response.read().decode()
        workspaces = list(temp.glob("ghost-ui-*"))
        assert len(workspaces) == 1 and (workspaces[0] / "uploads").is_dir()
        (workspaces[0] / "uploads" / "left-over.mp4").write_bytes(b"x")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode in (0, 130), proc.stderr.read() if proc.stderr else ""
    assert list(temp.glob("ghost-ui-*")) == []


def test_a_busy_port_is_one_line_and_leaves_no_workspace(tmp_path) -> None:
    require_module("gradio", "the browser UI needs the ui extra")
    temp = tmp_path / "tmp"
    temp.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "ghost_engine", "ui", "--port", str(port)],
            capture_output=True,
            text=True,
            env={**os.environ, "TMPDIR": str(temp)},
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot serve the UI on 127.0.0.1:")
    assert list(Path(temp).glob("ghost-ui-*")) == []
    assert time.monotonic() - started < 120


def test_without_gradio_the_command_says_which_extra_to_install(monkeypatch, capsys) -> None:
    from ghost_engine.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now fails
    with pytest.raises(SystemExit) as exit_info:
        main(["ui", "--port", "0"])
    assert exit_info.value.code == 6  # OptionalDependencyError
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'ghost-engine[ui]'" in lines[0]
