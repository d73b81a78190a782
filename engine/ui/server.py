"""Start and stop the UI server: safe defaults, one workspace removed at exit.

The server binds 127.0.0.1 unless told otherwise (`host`), makes no public link unless
asked (`share`), keeps the browser's uploads and every output in one temporary folder
(`Workspace`) that goes when the server stops, and runs one swap at a time (the rest
wait in Gradio's queue).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ghost_engine.errors import OptionalDependencyError, UserInputError
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.ui.session import UiSession
from ghost_engine.ui.workspace import Workspace
from ghost_engine.video.pixels import DEFAULT_MAX_PIXELS

_log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 7860
_UPLOAD_ENV = "GRADIO_TEMP_DIR"  # where Gradio keeps uploads and served files


@dataclass(frozen=True)
class UiSettings:
    """How the server listens and what it allows; `port` 0 takes any free port."""

    host: str = LOCALHOST
    port: int = DEFAULT_PORT
    share: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    sample_frames: int = 12
    workspace: Path | None = None  # default: a new temporary folder

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UserInputError(
                f"--port must be 0 to 65535, got {self.port}", option="--port", value=self.port
            )


class UiServer:
    """A running UI server (`start`); `close` stops it and removes its workspace."""

    def __init__(self, settings: UiSettings, defaults: SwapConfig) -> None:
        gr = _gradio()
        from ghost_engine.ui.app import build_app

        self.settings = settings
        self.workspace = Workspace(settings.workspace)
        self._previous_env = os.environ.get(_UPLOAD_ENV)
        os.environ[_UPLOAD_ENV] = str(self.workspace.uploads)
        session = UiSession(
            defaults,
            self.workspace,
            max_pixels=settings.max_pixels,
            sample_frames=settings.sample_frames,
        )
        self.app = build_app(session)
        self.app.queue(default_concurrency_limit=1)
        port = settings.port or _free_port(settings.host)
        try:
            _, self.url, self.share_url = self.app.launch(
                server_name=settings.host,
                server_port=port,
                share=settings.share,
                prevent_thread_lock=True,
                allowed_paths=[str(self.workspace.root)],
                quiet=True,
                ssr_mode=False,
                mcp_server=False,
                show_error=False,
            )
        except (OSError, ValueError) as exc:
            self.close()
            raise UserInputError(
                f"cannot serve the UI on {settings.host}:{port}: {exc}; choose another --port",
                option="--port",
                value=port,
            ) from exc
        self._gr = gr

    def wait(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        self.app.block_thread()

    def close(self) -> None:
        app = getattr(self, "app", None)
        if app is not None:
            try:
                app.close()
            except Exception as exc:  # already stopped: nothing left to close
                _log.debug("closing the UI server: %s", exc)
        if self._previous_env is None:
            os.environ.pop(_UPLOAD_ENV, None)
        else:
            os.environ[_UPLOAD_ENV] = self._previous_env
        self.workspace.close()

    def __enter__(self) -> UiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gradio():
    try:
        import gradio
    except ImportError as exc:
        raise OptionalDependencyError(
            f"the browser UI needs Gradio ({exc}); install it with: pip install 'ghost-engine[ui]'"
        ) from exc
    return gradio


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
