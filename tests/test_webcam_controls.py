"""Latest-frame slot, live control state and the HTTP control interface (loopback)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from ghost_engine.errors import UserInputError
from ghost_engine.webcam.control_server import ControlServer, parse_changes
from ghost_engine.webcam.controls import BLUR_MAX, BLUR_MIN, LiveControls
from ghost_engine.webcam.slot import LatestSlot, SlotClosed


def test_slot_latest_wins_and_counts():
    slot = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.take() == 4
    slot.put(5)
    slot.put(6)
    c = slot.counts()
    assert (c.captured, c.overwritten, c.taken, c.left) == (7, 5, 1, 1)
    assert c.dropped == 6
    slot.close()
    assert slot.take() == 6  # still delivered after close
    with pytest.raises(SlotClosed):
        slot.take()
    with pytest.raises(SlotClosed):
        slot.put(7)
    with pytest.raises(TimeoutError):
        LatestSlot().take(timeout=0.01)


def test_slot_threaded_consumer_never_gets_stale_items():
    """A fast producer and a slow consumer: every item taken is the newest put so far,
    items come out increasing, and taken + dropped == captured."""
    slot = LatestSlot()
    newest = [-1]
    lock = threading.Lock()

    def produce():
        for i in range(300):
            with lock:  # put and record atomically, as seen by the consumer
                slot.put(i)
                newest[0] = i
            time.sleep(0.0005)
        slot.close()

    thread = threading.Thread(target=produce)
    thread.start()
    got = []
    while True:
        time.sleep(0.003)
        with lock:
            try:
                item = slot.take(timeout=0)
            except TimeoutError:
                continue
            except SlotClosed:
                break
            assert item == newest[0]
        got.append(item)
    thread.join()
    assert got == sorted(got) and len(set(got)) == len(got)
    c = slot.counts()
    assert c.captured == 300
    assert c.taken == len(got)
    assert c.dropped == 300 - len(got)
    assert len(got) < 300  # the consumer was slower: some frames were dropped


def test_controls_keys_and_validation():
    ctl = LiveControls(3)
    assert ctl.handle_key(ord("2")) and ctl.snapshot().source == 1
    assert not ctl.handle_key(ord("4"))  # only 3 sources
    assert ctl.snapshot().source == 1
    assert ctl.handle_key(ord("s")) and ctl.snapshot().swap is False
    assert ctl.handle_key(ord("]")) and ctl.snapshot().blur == pytest.approx(1.25)
    for _ in range(20):
        ctl.handle_key(ord("["))
    assert ctl.snapshot().blur == pytest.approx(BLUR_MIN)
    for _ in range(40):
        ctl.handle_key(ord("]"))
    assert ctl.snapshot().blur == pytest.approx(BLUR_MAX)
    assert not ctl.handle_key(-1)
    with pytest.raises(UserInputError, match="choose 0 to 2"):
        ctl.update(source=3)
    with pytest.raises(UserInputError, match="unknown control"):
        ctl.update(colour=1)
    assert ctl.snapshot().source == 1  # a refused change changes nothing
    assert ctl.handle_key(27) and ctl.snapshot().quit


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"source": 1}', {"source": 1}),
        (b'{"swap": false, "blur": 2}', {"swap": False, "blur": 2.0}),
        (b"", {}),
        (b'{"source": true}', UserInputError),
        (b'{"swap": 1}', UserInputError),
        (b'{"volume": 3}', UserInputError),
        (b"[1]", UserInputError),
        (b"{not json", UserInputError),
    ],
)
def test_parse_changes(body, expected):
    if isinstance(expected, dict):
        assert parse_changes(body) == expected
    else:
        with pytest.raises(expected):
            parse_changes(body)


def _post(url: str, payload: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=payload, method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_server_over_loopback():
    ctl = LiveControls(2)
    with ControlServer(ctl, 0, live=lambda: {"fps": 12.5}) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "/state", timeout=5) as resp:
            state = json.loads(resp.read())
        assert state == {
            "source": 0,
            "swap": True,
            "blur": 1.0,
            "quit": False,
            "live": {"fps": 12.5},
        }
        code, body = _post(server.url + "/control", b'{"source": 1, "blur": 1.5}')
        assert code == 200 and body["source"] == 1 and body["blur"] == 1.5
        assert ctl.snapshot().source == 1 and ctl.snapshot().blur == 1.5
        code, body = _post(server.url + "/control", b'{"source": 5}')
        assert code == 400 and "choose 0 to 1" in body["error"]
        assert ctl.snapshot().source == 1
        code, body = _post(server.url + "/nothing", b"{}")
        assert code == 404
        code, body = _post(server.url + "/control", b'{"quit": true}')
        assert code == 200 and ctl.snapshot().quit
