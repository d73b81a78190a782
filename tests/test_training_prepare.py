"""`train prepare` on a small identity tree built from the shared photos: what it drops,
that its crops are the engine's own alignment, and that it resumes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ghost_engine.face.dlib_backend import DlibDetector
from ghost_engine.face.geometry import align_face, generator_input
from ghost_engine.training.prepare import PrepareConfig, prepare_dataset, read_journal


@pytest.fixture(scope="module")
def tree(media, tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("prep") / "src"
    for person, name in (("beckham", "beckham.jpg"), ("musk", "elon_musk.jpg")):
        (src / person).mkdir(parents=True)
        img = cv2.imread(str(media / "faces" / name))
        cv2.imwrite(str(src / person / "full.png"), img)
        # 240 px on the shorter side: under the 250 px rule
        scale = 240 / min(img.shape[:2])
        cv2.imwrite(str(src / person / "small.png"), cv2.resize(img, None, fx=scale, fy=scale))
    (src / "nobody").mkdir()
    cv2.imwrite(str(src / "nobody" / "grey.png"), np.full((300, 320, 3), 128, np.uint8))
    (src / "nobody" / "broken.jpg").write_bytes(b"not an image")
    return src


@pytest.mark.slow
def test_prepare_drops_and_aligns_like_the_engine(tree, tmp_path):
    out = tmp_path / "out"
    report = prepare_dataset(tree, out, PrepareConfig(workers=1))
    assert report.kept == 2 and report.processed_now == 6
    assert report.dropped == {"too_small": 2, "no_face": 1, "unreadable": 1}
    dropped = {
        json.loads(x)["source"]: json.loads(x)["reason"]
        for x in (out / "dropped.jsonl").read_text().splitlines()
    }
    assert dropped["beckham/small.png"] == "too_small"
    assert dropped["nobody/grey.png"] == "no_face"
    assert dropped["nobody/broken.jpg"] == "unreadable"
    index = [json.loads(x) for x in (out / "index.jsonl").read_text().splitlines()]
    assert [r["source"] for r in index] == ["beckham/full.png", "musk/full.png"]
    summary = json.loads((out / "report.json").read_text())
    assert summary["kept"] == 2 and summary["identities"] == 2

    detector = DlibDetector()
    for record in index:
        image = cv2.cvtColor(cv2.imread(str(tree / record["source"])), cv2.COLOR_BGR2RGB)
        faces = detector.detect_one(image)
        largest = max(
            faces, key=lambda f: (f[0].box[2] - f[0].box[0]) * (f[0].box[3] - f[0].box[1])
        )
        expected = align_face(image, largest[0].kps).image
        stored = cv2.cvtColor(cv2.imread(str(out / record["crop224"])), cv2.COLOR_BGR2RGB)
        assert np.array_equal(stored, expected)
        stored256 = cv2.cvtColor(cv2.imread(str(out / record["crop256"])), cv2.COLOR_BGR2RGB)
        as_generator = (stored256.astype(np.float32) / 255 - 0.5) / 0.5
        np.testing.assert_allclose(
            as_generator.transpose(2, 0, 1), generator_input(expected[None])[0], atol=1e-6
        )


@pytest.mark.slow
def test_prepare_resumes_from_the_journal(tree, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # a journal from an interrupted run: one photo done, then a torn line
    first = {
        "source": "nobody/broken.jpg",
        "identity": "nobody",
        "status": "dropped",
        "reason": "unreadable",
    }
    (out / "journal.jsonl").write_text(json.dumps(first) + "\n" + '{"source": "musk/fu')
    report = prepare_dataset(tree, out, PrepareConfig(workers=2))
    assert report.processed_now == 5 and report.kept == 2
    assert len(read_journal(out)) == 6
    again = prepare_dataset(tree, out, PrepareConfig(workers=2))
    assert again.processed_now == 0 and again.kept == 2
