"""A tiny HTTP control interface on 127.0.0.1 (standard library only).

    GET  /state    -> {"source": 0, "swap": true, "blur": 1.0, "quit": false, "live": {...}}
    POST /control  with a JSON object of changes, e.g. {"source": 1} or {"swap": false},
                   {"blur": 1.5}, {"quit": true} -> the new state; 400 with {"error": ...}
                   when a name or value is wrong.

It listens on the loopback interface only: anyone who can reach it can change the swap.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ghost_engine.errors import UserInputError
from ghost_engine.webcam.controls import LiveControls

_TYPES: dict[str, type | tuple[type, ...]] = {
    "source": int,
    "swap": bool,
    "blur": (int, float),
    "quit": bool,
}
_MAX_BODY = 4096


def parse_changes(body: bytes) -> dict:
    """The JSON object of a POST /control, type-checked; UserInputError when wrong."""
    try:
        changes = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"the body must be a JSON object: {exc}") from exc
    if not isinstance(changes, dict):
        raise UserInputError('the body must be a JSON object such as {"source": 1}')
    for name, value in changes.items():
        kind = _TYPES.get(name)
        if kind is None:
            raise UserInputError(f"unknown control {name!r}; use source, swap, blur, quit")
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise UserInputError(f"{name} has the wrong type: {value!r}")
    if "blur" in changes:
        changes["blur"] = float(changes["blur"])
    return changes


class ControlServer:
    """Serves `controls` on http://127.0.0.1:PORT in a daemon thread (`port=0`: any free
    port; read `.port`). `live` returns extra numbers for GET /state (frames/s...)."""

    def __init__(
        self,
        controls: LiveControls,
        port: int = 0,
        live: Callable[[], dict] | None = None,
    ) -> None:
        handler = _handler(controls, live or dict)
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise UserInputError(
                f"cannot listen on 127.0.0.1:{port} for live controls ({exc.strerror}); "
                "choose another --control-port or 0 for any free port"
            ) from exc
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webcam-controls", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _handler(controls: LiveControls, live: Callable[[], dict]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, payload: dict) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.rstrip("/") != "/state":
                self._reply(404, {"error": "unknown path; use GET /state or POST /control"})
                return
            self._reply(200, {**controls.snapshot().as_dict(), "live": live()})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") != "/control":
                self._reply(404, {"error": "unknown path; use GET /state or POST /control"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._reply(413, {"error": f"body larger than {_MAX_BODY} bytes"})
                return
            try:
                state = controls.update(**parse_changes(self.rfile.read(length)))
            except UserInputError as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, state.as_dict())

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            return  # no request lines on the console the live numbers print to

    return Handler
