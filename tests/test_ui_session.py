"""The UI's work behind its controls, without a browser: who gets which source, the
settings, the one-line messages, the workspace, the models panel and a whole run."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from test_models_support import make_store, onnx_entry, serve, tiny_onnx

from ghost_engine import api
from ghost_engine.cli import main
from ghost_engine.errors import InputFileNotFoundError, RunInterrupted, UserInputError
from ghost_engine.pipeline.swap import make_config
from ghost_engine.ui.session import (
    Controls,
    DownloadWatch,
    UiSession,
    assigned,
    message,
    swap_config,
)
from ghost_engine.ui.workspace import Workspace
from ghost_engine.video.label import is_labelled

OFFLINE = make_config(generator="passthrough", detector="dlib", recognizer="dlib")


def test_assigned_keeps_people_with_sources_and_their_references_in_order() -> None:
    refs = [Path("r1.png"), Path("r2.png"), Path("r3.png")]
    people, chosen = assigned(refs, [["a.jpg"], [], ["b.jpg", "c.jpg"], [], []])
    assert people == [[Path("a.jpg")], [Path("b.jpg"), Path("c.jpg")]]
    assert chosen == [Path("r1.png"), Path("r3.png")]
    with pytest.raises(UserInputError, match="at least one person"):
        assigned(refs, [[], [], []])
    with pytest.raises(UserInputError, match="find the people"):
        assigned(refs[:1], [[], ["stale.jpg"]])  # a slot the current target does not have


def test_swap_config_takes_the_page_settings_over_the_server_defaults() -> None:
    page = Controls("adaptive", "ema", True, False, 3, 0.3)
    config = swap_config(OFFLINE, page)
    assert (config.mask_mode, config.smoothing, config.color_match) == ("adaptive", "ema", True)
    assert (config.generator_blocks, config.similarity_threshold) == (3, 0.3)
    assert (config.generator, config.detector) == ("passthrough", "dlib")  # kept
    assert Controls.of(config) == page
    with pytest.raises(UserInputError, match="mask"):
        swap_config(OFFLINE, Controls("blurry", "ema", True, False, 3, 0.3))


def test_messages_are_the_clis_one_line(tmp_path, capsys) -> None:
    missing = tmp_path / "gone\nname.mp4"
    with pytest.raises(SystemExit):
        main(["run", str(missing), "-s", str(missing), "-o", str(tmp_path / "o.mp4")])
    cli_line = capsys.readouterr().err.strip()
    with pytest.raises(InputFileNotFoundError) as err:
        api.check_inputs(missing, tmp_path / "o.mp4")
    assert message(err.value) == cli_line
    assert "\n" not in message(err.value)
    assert message(RunInterrupted("the run was cancelled")) == "the run was cancelled"
    odd = message(ZeroDivisionError("x\ny"))
    assert odd.startswith("error: unexpected ZeroDivisionError") and "\n" not in odd


def test_workspace_is_removed_whole_on_close(tmp_path) -> None:
    with Workspace(tmp_path / "ws") as ws:
        first, second = ws.new_folder(ws.runs), ws.new_folder(ws.runs)
        assert first != second and first.is_dir()
        (first / "out.mp4").write_bytes(b"x")
    assert not (tmp_path / "ws").exists()


def test_a_session_finds_the_person_and_runs_with_a_report(media, tmp_path) -> None:
    clip = media / "videos" / "dance.mp4"
    session = UiSession(OFFLINE, Workspace(tmp_path / "ws"), sample_frames=4)
    people = session.people(clip)
    assert len(people) == 1 and people[0].reference.is_file()
    assert people[0].reference.is_relative_to(tmp_path / "ws")
    seen: list[int] = []
    control = api.RunControl(on_progress=lambda done, total: seen.append(done))
    page = Controls.of(OFFLINE)
    result = session.run(
        clip, [p.reference for p in people], [[media / "faces" / "mark.jpg"]], page, control
    )
    report = json.loads(result.report_path.read_text())
    assert report["frames"] == 66 == seen[-1]
    assert report["frames_with_faces"] == 66
    with av.open(str(result.output)) as container:
        assert is_labelled(container.metadata)
    assert not session.cancel("")  # the run is over: nothing to cancel


def test_a_session_refuses_a_target_without_faces(tmp_path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 128, np.uint8))
    session = UiSession(OFFLINE, Workspace(tmp_path / "ws"))
    with pytest.raises(UserInputError, match="no face found in blank.png"):
        session.people(blank)


@pytest.fixture
def server():
    yield from serve()


def test_models_panel_lists_and_downloads_with_progress(server, tmp_path) -> None:
    data = tiny_onnx(pad_bytes=300_000)
    url = server.put("lm.onnx", data)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])])
    session = UiSession(OFFLINE, Workspace(tmp_path / "ws"), store=store)
    assert [(r.name, r.state) for r in session.models()] == [("lm", "missing")]
    watch = DownloadWatch()
    paths = session.download(["lm"], watch)
    assert paths["lm"].read_bytes() == data
    assert [r.state for r in session.models()] != ["missing"]
    assert "lm" in watch.text()
    with pytest.raises(UserInputError, match="choose the models"):
        session.download([], watch)


def test_download_watch_sums_the_files_under_way() -> None:
    watch = DownloadWatch()
    assert watch.fraction() is None
    watch.start("a", 100)
    watch.start("b", 300)
    watch.advance("a", 100)
    watch.advance("b", 100)
    assert watch.fraction() == pytest.approx(0.5)
    watch.finish("a", "installed")
    assert watch.fraction() == pytest.approx(1 / 3)
    assert watch.text().splitlines()[0] == "a: installed"
