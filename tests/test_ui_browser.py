"""`ghost-engine ui` in a real browser: headless Chromium (the distribution's, driven by
Playwright) uploads a clip and a photo, gives the photo to the person found, previews a
frame, runs with the passthrough generator and downloads the output; a bad upload shows
the engine's one-line message and the server goes on serving.

Screenshots of each step go to a pytest temporary folder (its path is printed).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from conftest import require_module, skip_or_fail

from ghost_engine import api
from ghost_engine.pipeline.swap import make_config
from ghost_engine.ui.session import message
from ghost_engine.video.label import is_labelled

pytestmark = pytest.mark.slow

OFFLINE = make_config(generator="passthrough", detector="dlib", recognizer="dlib")
WAIT_MS = 90_000  # the longest one step may take on a loaded 2-core machine


@pytest.fixture(scope="module")
def server() -> Iterator:
    require_module("gradio", "the browser UI needs the ui extra")
    from ghost_engine.ui.server import UiServer, UiSettings

    with UiServer(UiSettings(port=0, sample_frames=4), OFFLINE) as running:
        yield running
    assert not running.workspace.root.exists()  # uploads and outputs gone with the server


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = require_module("playwright.sync_api", "the browser tests drive Chromium")
    chromium = shutil.which("chromium")
    if chromium is None:
        skip_or_fail("no chromium on PATH (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ui-screenshots")
    print(f"\nUI screenshots: {folder}")
    return folder


@pytest.fixture
def page(browser, server) -> Iterator:
    opened = browser.new_page(viewport={"width": 1280, "height": 1400})
    opened.set_default_timeout(WAIT_MS)
    opened.goto(server.url)
    opened.wait_for_selector("#target input[type=file]", state="attached")
    try:
        yield opened
    finally:
        opened.close()


def _upload(page, component: str, path: Path) -> None:
    """Put `path` into a File component and wait until the page shows it uploaded (the
    name may be drawn in pieces, "mark" and ".jpg", so the text is read without spaces)."""
    page.locator(f"#{component} input[type=file]").set_input_files(str(path))
    page.wait_for_function(
        "([id, name]) => (document.getElementById(id)?.textContent ?? '')"
        ".replace(/\\s+/g, '').includes(name)",
        arg=[component, path.name],
    )


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_upload_assign_preview_run_and_download(page, media, shots, tmp_path) -> None:
    clip, photo = media / "videos" / "dance.mp4", media / "faces" / "mark.jpg"
    _upload(page, "target", clip)
    page.screenshot(path=str(shots / "1-target.png"), full_page=True)

    page.click("#find-people")
    page.locator("#person-1 img").wait_for()
    assert "1 person(s) found" in page.inner_text("#status")
    assert not page.locator("#person-2").is_visible()
    _upload(page, "sources-1", photo)
    page.screenshot(path=str(shots / "2-people.png"), full_page=True)

    page.fill("#preview-time input", "1")
    page.click("#preview")
    page.locator("#after img").wait_for()
    page.locator("#status").get_by_text("preview of frame 25").wait_for()
    assert "1 face(s) swapped" in page.inner_text("#status")
    page.screenshot(path=str(shots / "3-preview.png"), full_page=True)

    page.click("#run")
    link = page.locator("#output a[download]")
    link.wait_for()
    assert "66 frame(s), 66 with faces swapped" in page.inner_text("#run-status")
    page.screenshot(path=str(shots / "4-done.png"), full_page=True)
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "dance-swapped.mp4"
    assert _frames(saved) == _frames(clip) == 66
    with av.open(str(saved)) as container:
        assert is_labelled(container.metadata)
    assert page.locator("#report a[download]").get_attribute("download") == "dance-swapped.json"


def test_a_bad_upload_shows_the_engines_line_and_the_server_goes_on(
    page, server, media, shots, tmp_path
) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    with pytest.raises(Exception) as local:
        api.find_people(fake, config=OFFLINE)
    # the engine's line for the same file, where the server keeps its copy of the upload
    uploads = re.escape(str(server.workspace.uploads)) + r"/[^ ]+/notes\.mp4"
    expected = re.escape(message(local.value)).replace(re.escape(str(fake)), uploads)

    _upload(page, "target", fake)
    page.click("#find-people")
    error = page.locator("#status .ge-error")
    error.wait_for()
    page.screenshot(path=str(shots / "5-bad-upload.png"), full_page=True)
    assert re.fullmatch(expected, error.inner_text().strip())
    assert "Traceback" not in page.content()

    page.locator("#target button[aria-label=Clear]").click()
    _upload(page, "target", media / "videos" / "dance.mp4")
    page.click("#find-people")
    page.locator("#status").get_by_text("1 person(s) found").wait_for()


def test_runs_from_two_pages_take_turns(browser, server, media, monkeypatch) -> None:
    """One swap at a time per server: a second page's run waits in the queue."""
    from ghost_engine.errors import RunInterrupted
    from ghost_engine.ui.session import UiSession

    spans: list[tuple[float, float]] = []

    def slow_run(self, *args, **kwargs):
        began = time.monotonic()
        time.sleep(1.5)
        spans.append((began, time.monotonic()))
        raise RunInterrupted("the run was cancelled; no output was written")

    monkeypatch.setattr(UiSession, "run", slow_run)
    pages = [browser.new_page() for _ in range(2)]
    try:
        for one in pages:
            one.set_default_timeout(WAIT_MS)
            one.goto(server.url)
            one.wait_for_selector("#target input[type=file]", state="attached")
            _upload(one, "target", media / "faces" / "mark.jpg")
        for one in pages:
            one.click("#run")
        for one in pages:
            one.locator("#run-status").get_by_text("the run was cancelled").wait_for()
    finally:
        for one in pages:
            one.close()
    assert len(spans) == 2
    first, second = sorted(spans)
    assert second[0] >= first[1]  # the second began after the first ended


def test_cancel_stops_a_run_and_offers_nothing(page, server, media, shots) -> None:
    _upload(page, "target", media / "videos" / "nggyup.mp4")
    page.click("#find-people")
    page.locator("#person-1 img").wait_for()
    _upload(page, "sources-1", media / "faces" / "mark.jpg")
    page.click("#run")
    page.locator("#run-status").get_by_text("running:").wait_for()
    page.click("#cancel")
    page.locator("#run-status").get_by_text("the run was cancelled").wait_for()
    page.screenshot(path=str(shots / "6-cancelled.png"), full_page=True)
    assert page.locator("#output a[download]").count() == 0
    assert not list(server.workspace.root.rglob("nggyup-swapped*"))  # no output, no report
