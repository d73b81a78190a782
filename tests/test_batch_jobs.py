"""`ghost-engine batch`: five jobs, one with a source photo that has no face: four
outputs, the bad job's error in the report, exit code 1; and the job lists' forms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import require_module
from parallel_clip import make_clip

from ghost_engine.errors import UserInputError
from ghost_engine.parallel.batch import read_jobs

KNOWN = {"--source", "--codec", "--generator", "--overwrite", "--target-face"}


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.slow
def test_five_jobs_one_without_a_face_in_its_source(media, tmp_path):
    clip = make_clip(media, tmp_path / "two.mp4")
    blank = tmp_path / "blank.png"
    av_image = av.VideoFrame.from_ndarray(np.full((200, 200, 3), 128, np.uint8), format="rgb24")
    av_image.to_image().save(blank)
    beckham = str(media / "faces" / "beckham.jpg")
    jobs = tmp_path / "jobs.jsonl"
    lines = [{"target": "two.mp4", "output": f"out{i}.mkv", "source": beckham} for i in range(5)]
    lines[2]["source"] = "blank.png"  # relative to the job file
    lines[4]["codec"] = "ffv1"
    jobs.write_text("# five jobs\n" + "".join(json.dumps(line) + "\n" for line in lines))
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "ghost_engine", "batch", str(jobs), "--jobs", "2"]
    argv += ["--report", str(report), "--", "--generator", "passthrough", "--codec", "h264"]
    argv += ["--detector", "dlib", "--recognizer", "dlib", "--models-dir", str(tmp_path / "m")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "1 of 5 job(s) failed (first: job 3" in last and "no face" in last.lower()
    data = json.loads(report.read_text())
    assert (data["jobs"], data["succeeded"], data["failed"]) == (5, 4, 1)
    results = data["results"]
    assert [r["job"] for r in results] == [1, 2, 3, 4, 5]
    for r in results:
        assert Path(r["output"]) == tmp_path / f"out{r['job'] - 1}.mkv"
        assert r["seconds"] > 0 and r["worker"]
        if r["job"] == 3:
            assert r["status"] == "failed" and r["attempts"] == 1  # a user's error: no retry
            assert "blank.png" in r["error"] and "(exit code 2)" in r["error"]
            assert not Path(r["output"]).exists()
        else:
            assert r["status"] == "ok" and r["attempts"] == 1 and r["error"] is None
            assert _frame_count(Path(r["output"])) == 12
    with av.open(str(tmp_path / "out4.mkv")) as container:  # the job's own option won
        assert container.streams.video[0].codec_context.name == "ffv1"
    with av.open(str(tmp_path / "out0.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    assert clip.is_file()


def test_a_toml_list_and_a_folder_give_jobs(tmp_path):
    toml = tmp_path / "jobs.toml"
    toml.write_text(
        '[[job]]\ntarget = "a.mp4"\noutput = "/abs/a_out.mp4"\nsource = ["x.jpg", "y.jpg"]\n'
        'overwrite = true\n\n[[job]]\ntarget = "b.mp4"\noutput = "b_out.mp4"\noverwrite = false\n'
    )
    first, second = read_jobs(toml, KNOWN)
    assert first.target == tmp_path / "a.mp4" and first.output == Path("/abs/a_out.mp4")
    sources = ["--source", str(tmp_path / "x.jpg"), "--source", str(tmp_path / "y.jpg")]
    assert first.args == ("-o", "/abs/a_out.mp4", *sources, "--overwrite")
    assert second.args == ("-o", str(tmp_path / "b_out.mp4"))
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("b.mov", "a.mp4", "notes.txt"):
        (folder / name).write_text("")
    jobs = read_jobs(folder, KNOWN, output_dir=tmp_path / "out", name_rule="{stem}-swap.mkv")
    assert [(j.target.name, j.output) for j in jobs] == [
        ("a.mp4", tmp_path / "out" / "a-swap.mkv"),
        ("b.mov", tmp_path / "out" / "b-swap.mkv"),
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"target": "a.mp4"}\n', "has no 'output'"),
        ('{"target": "a.mp4", "output": "o.mp4", "colour": "red"}\n', "option 'colour'"),
        ("not json\n", "line 1 of"),
        ('{"target": "a.mp4", "output": "o.mp4"}\n{"target": "b.mp4", "output": "o.mp4"}\n',
         "jobs 1 and 2"),
        ("", "has no jobs"),
    ],
)  # fmt: skip
def test_a_bad_job_list_is_refused_before_anything_runs(tmp_path, text, words):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(text)
    with pytest.raises(UserInputError, match=words) as info:
        read_jobs(jobs, KNOWN)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_jobs_run_as_ray_tasks_on_a_local_cluster(media, tmp_path):
    ray = require_module("ray", "the Ray scheduler needs the ray extra")
    make_clip(media, tmp_path / "two.mp4")
    blank = tmp_path / "blank.png"
    av_image = av.VideoFrame.from_ndarray(np.full((200, 200, 3), 128, np.uint8), format="rgb24")
    av_image.to_image().save(blank)
    jobs = tmp_path / "jobs.toml"
    beckham = media / "faces" / "beckham.jpg"
    jobs.write_text(
        f'[[job]]\ntarget = "two.mp4"\noutput = "a.mkv"\nsource = "{beckham}"\n\n'
        '[[job]]\ntarget = "two.mp4"\noutput = "b.mkv"\nsource = "blank.png"\n'
    )
    context = ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20)
    try:
        report = tmp_path / "report.json"
        argv = [sys.executable, "-m", "ghost_engine", "batch", str(jobs), "--jobs", "2"]
        argv += ["--ray", context.address_info["gcs_address"], "--report", str(report)]
        argv += ["--", "--generator", "passthrough", "--detector", "dlib", "--recognizer"]
        argv += ["dlib", "--codec", "ffv1", "--models-dir", str(tmp_path / "m")]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    finally:
        ray.shutdown()
    assert done.returncode == 1, done.stderr
    first, second = json.loads(report.read_text())["results"]
    assert first["status"] == "ok" and _frame_count(tmp_path / "a.mkv") == 12
    assert second["status"] == "failed" and "blank.png" in second["error"]
    assert second["attempts"] == 1 and not (tmp_path / "b.mkv").exists()
    assert "pid" in first["worker"]  # the Ray worker that ran it
