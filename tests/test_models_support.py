"""Test helpers for the model manager: a loopback HTTP server and tiny model files.

The server serves bytes made in the test, honours `Range: bytes=N-`, records every
request, and can misbehave on purpose (cut a response short, answer late, 404).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ghost_engine.store import DownloadConfig, ModelStore, Progress, load_manifest

FAST = DownloadConfig(retries=2, backoff_s=0.01, backoff_max_s=0.02, timeout_s=2.0, jobs=3)


@dataclass
class Seen:
    path: str
    range: str | None


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    cut_once: dict[str, int] = field(default_factory=dict)  # path -> bytes sent, first GET
    delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        st = self.state
        with st.lock:
            st.seen.append(Seen(self.path, self.headers.get("Range")))
            st.active += 1
            st.max_active = max(st.max_active, st.active)
        try:
            if st.delay_s:
                time.sleep(st.delay_s)
            self._answer(st)
        finally:
            with st.lock:
                st.active -= 1

    def _answer(self, st: ServerState) -> None:
        body = st.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        cut = st.cut_once.pop(self.path, None)
        if cut is not None:
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (timeouts under test) are expected, not test noise."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class LoopbackServer:
    """An HTTP server on a free loopback port, answering with `handler` in a thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ModelServer(LoopbackServer):
    """A loopback-only HTTP server on a free port."""

    def __init__(self) -> None:
        self.state = ServerState()
        super().__init__(type("Handler", (_Handler,), {"state": self.state}))

    @property
    def base(self) -> str:
        return self.url("files")

    def put(self, name: str, data: bytes) -> str:
        self.state.files[f"/files/{name}"] = data
        return f"{self.base}/{name}"

    def ranges(self, name: str) -> list[str | None]:
        return [s.range for s in self.state.seen if s.path == f"/files/{name}"]


def serve(make: Callable[[], LoopbackServer] = ModelServer) -> Iterator[Any]:
    """Body of each test module's server fixture: a server (a ModelServer unless `make`
    says otherwise), closed afterwards."""
    srv = make()
    try:
        yield srv
    finally:
        srv.close()


def tiny_onnx(
    *,
    in_name: str = "data",
    out_name: str = "fc1",
    size: int = 192,
    out_dim: int = 212,
    pad_bytes: int = 0,
    seed: int = 0,
) -> bytes:
    """A valid ONNX graph (pool -> flatten -> matmul) with the given signature.

    `pad_bytes` adds an unused initializer so the file is big enough to cut in half.
    """
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((3, out_dim)).astype(np.float32), "w")
    inits = [weight]
    if pad_bytes:
        pad = rng.standard_normal(pad_bytes // 4).astype(np.float32)
        inits.append(numpy_helper.from_array(pad, "pad"))
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", [in_name], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], [out_name]),
        ],
        "tiny",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", out_dim])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


LANDMARK_SIGNATURE = {
    "inputs": [{"name": "data", "rank": 4, "dims": {"1": 3, "2": 192, "3": 192}}],
    "outputs": [{"name": "fc1", "rank": [2], "dims": {"-1": 212}}],
}


def onnx_entry(name: str, file: str, urls: list[str], **extra: object) -> dict:
    entry = {
        "name": name,
        "role": "test landmark model",
        "file": file,
        "kind": "onnx",
        "urls": urls,
        "licence": "test",
        "size": None,
        "sha256": None,
        "signature": LANDMARK_SIGNATURE,
    }
    entry.update(extra)
    return entry


def pth_entry(name: str, file: str, urls: list[str], network: str = "arcface_iresnet18") -> dict:
    return {
        "name": name,
        "role": "test ArcFace",
        "file": file,
        "kind": "pth",
        "network": network,
        "urls": urls,
        "licence": "test",
    }


def write_manifest(path: Path, entries: list[dict], packs: dict | None = None) -> Path:
    path.write_text(json.dumps({"format": 1, "packs": packs or {}, "models": entries}))
    return path


def make_store(tmp_path: Path, entries: list[dict], config: DownloadConfig = FAST) -> ModelStore:
    """A store in `tmp_path/cache` over a test manifest, quiet progress, no mirror."""
    manifest = write_manifest(tmp_path / "manifest.json", entries)
    return ModelStore(
        tmp_path / "cache",
        manifest=load_manifest(manifest),
        manifest_path=manifest,
        config=config,
        base_url="",
        progress=Progress(io.StringIO()),
    )
