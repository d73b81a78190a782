"""A wall-clock limit for one file's download, enforced on its sockets.

A socket timeout only bounds the silence between two packets, so a server that sends one
byte every half second holds a download forever. A `Deadline` watches every connection
opened through its `opener()` and, when the time is up, shuts those sockets down from a
timer thread: a read blocked in the middle of a drip (or of the headers) returns at once,
and `expired` tells the reader why.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.request
from typing import Any


class Deadline:
    """`seconds` from now, every watched socket is shut down. Use as a context manager."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def expired(self) -> bool:
        """True once the time is up (whether or not the timer thread has run yet)."""
        return self._fired or time.monotonic() >= self._ends

    def remaining_s(self) -> float:
        """Seconds left (0 when expired)."""
        return max(0.0, self._ends - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down when the deadline passes (at once if it already has)."""
        with self._lock:
            if not self._fired:
                self._sockets.append(sock)
                return
        _shut(sock)

    def opener(self) -> urllib.request.OpenerDirector:
        """A urllib opener (redirects, proxies and all) whose connections are watched."""
        return urllib.request.build_opener(_WatchedHTTP(self), _WatchedHTTPS(self))

    def close(self) -> None:
        """Stop the timer; call when the file is done, however it ended."""
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:
            self._fired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket method works on the descriptor, also under a TLS wrapper, and
    # wakes a thread blocked reading it.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to stop


def _watched(base: type[http.client.HTTPConnection], deadline: Deadline) -> Any:
    class Watched(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _WatchedHTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._connection = _watched(http.client.HTTPConnection, deadline)

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)


class _WatchedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline) -> None:
        self._tls = ssl.create_default_context()  # what a plain urlopen verifies against
        super().__init__(context=self._tls)
        self._connection = _watched(http.client.HTTPSConnection, deadline)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req, context=self._tls)
