"""The Gradio page of `ghost-engine ui`: target, people, settings, preview, run, models.

Each control calls `UiSession` (plain Python on `ghost_engine.api`); every failure shows
as one line in the page's message box, never a traceback. The people are shown in
`MAX_PEOPLE` slots (thumbnail and source photos), filled by "Find people".
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ghost_engine import api
from ghost_engine.choices import GENERATOR_BLOCKS, MASK_MODES, SMOOTHING
from ghost_engine.errors import RunInterrupted, UserInputError
from ghost_engine.ui.session import Controls, DownloadWatch, UiSession, message

MAX_PEOPLE = 6
_POLL_S = 0.25  # how often a running swap or download updates the page
_LABEL = "Every output is labelled as synthetic media in its metadata, as the CLI's are."


def _note(text: str, kind: str = "info") -> str:
    """A message for the page's message boxes (escaped: file names are text, not HTML)."""
    return f'<p class="ge-{kind}">{html.escape(text)}</p>' if text else ""


def _paths(value: Any) -> list[Path]:
    """The paths of a File component's value (None, one path or a list)."""
    if not value:
        return []
    values = value if isinstance(value, list) else [value]
    return [Path(str(getattr(v, "name", v))) for v in values]


def _target(value: Any) -> Path:
    paths = _paths(value)
    if not paths:
        raise UserInputError("upload a target video or image first", option="TARGET")
    return paths[0]


def build_app(session: UiSession) -> gr.Blocks:
    """The page for `session`; launch it with `ghost_engine.ui.server`."""
    start = Controls.of(session.defaults)
    with gr.Blocks(title="ghost-engine", analytics_enabled=False) as app:
        gr.Markdown(f"## ghost-engine: face swap preview\n{_LABEL}")
        references = gr.State([])
        with gr.Tab("Swap"):
            with gr.Row():
                target = gr.File(label="Target video or image", elem_id="target")
                find = gr.Button("Find people", elem_id="find-people", scale=0)
            status = gr.HTML(elem_id="status")
            columns, thumbs, photos = [], [], []
            with gr.Row():
                for i in range(MAX_PEOPLE):
                    with gr.Column(visible=False, min_width=180) as column:
                        thumbs.append(
                            gr.Image(
                                label=f"person {i + 1}",
                                interactive=False,
                                height=180,
                                elem_id=f"person-{i + 1}",
                            )
                        )
                        photos.append(
                            gr.File(
                                label=f"source photo(s) for person {i + 1}",
                                file_count="multiple",
                                elem_id=f"sources-{i + 1}",
                            )
                        )
                    columns.append(column)
            with gr.Accordion("Settings", open=True):
                with gr.Row():
                    mask_mode = gr.Radio(list(MASK_MODES), value=start.mask_mode, label="Mask")
                    smoothing = gr.Dropdown(
                        list(SMOOTHING), value=start.smoothing, label="Smoothing"
                    )
                    blocks = gr.Dropdown(
                        list(GENERATOR_BLOCKS),
                        value=start.generator_blocks,
                        label="Generator blocks",
                    )
                with gr.Row():
                    color_match = gr.Checkbox(value=start.color_match, label="Colour match")
                    enhance = gr.Checkbox(value=start.enhance, label="Enhance (LIP-SPADE)")
                    threshold = gr.Slider(
                        -1.0,
                        1.0,
                        value=start.similarity_threshold,
                        step=0.01,
                        label="Similarity threshold",
                    )
            controls = [mask_mode, smoothing, color_match, enhance, blocks, threshold]
            with gr.Row():
                time_s = gr.Number(
                    value=0.0, minimum=0.0, label="Preview at (seconds)", elem_id="preview-time"
                )
                preview = gr.Button("Preview", elem_id="preview", scale=0)
            with gr.Row():
                before = gr.Image(label="Before", interactive=False, elem_id="before")
                after = gr.Image(label="After (synthetic)", interactive=False, elem_id="after")
            with gr.Row():
                run = gr.Button("Run", variant="primary", elem_id="run")
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            run_status = gr.HTML(elem_id="run-status")
            with gr.Row():
                output = gr.File(label="Output", interactive=False, elem_id="output")
                report = gr.File(label="Report (JSON)", interactive=False, elem_id="report")
        with gr.Tab("Models"):
            table = gr.Dataframe(
                headers=["model", "state", "size (MB)", "licence", "role"],
                interactive=False,
                elem_id="models",
            )
            with gr.Row():
                wanted = gr.Dropdown([], multiselect=True, label="Missing models to download")
                refresh = gr.Button("Refresh", scale=0)
                download = gr.Button("Download", elem_id="download", scale=0)
            download_status = gr.Textbox(label="Downloads", interactive=False, lines=4)

        def find_people(target_value: Any, *values: Any) -> list[Any]:
            hidden = [gr.update(visible=False)] * MAX_PEOPLE
            try:
                found = session.people(_target(target_value), Controls(*values))
            except (Exception, RunInterrupted) as exc:
                return [_note(message(exc), "error"), [], *hidden, *[None] * (2 * MAX_PEOPLE)]
            shown = found[:MAX_PEOPLE]
            more = len(found) - len(shown)
            text = f"{len(found)} person(s) found; add source photos under those to replace"
            if more:
                text += f" (the {more} seen least are not shown)"
            visible = [gr.update(visible=i < len(shown)) for i in range(MAX_PEOPLE)]
            images = [p.thumbnail for p in shown] + [None] * (MAX_PEOPLE - len(shown))
            thumbs_out = [
                gr.update(value=img, label=shown[i].label if i < len(shown) else None)
                for i, img in enumerate(images)
            ]
            refs = [str(p.reference) for p in shown]
            return [_note(text), refs, *visible, *thumbs_out, *[None] * MAX_PEOPLE]

        def make_preview(target_value: Any, refs: list[str], *values: Any) -> list[Any]:
            sources = [_paths(v) for v in values[:MAX_PEOPLE]]
            chosen, seconds = Controls(*values[MAX_PEOPLE:-1]), values[-1] or 0.0
            try:
                shot = session.preview(_target(target_value), _refs(refs), sources, chosen, seconds)
            except (Exception, RunInterrupted) as exc:
                return [None, None, _note(message(exc), "error")]
            text = (
                f"preview of frame {shot.frame_index} ({shot.time_s:.2f} s): "
                f"{shot.faces_swapped} face(s) swapped"
            )
            return [shot.before, shot.after, _note(text)]

        def run_swap(
            given: dict[Any, Any],
            request: gr.Request,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio injects its bar)
        ) -> Iterator[list[Any]]:
            # a set of inputs arrives as one dict, so Gradio can add the request after it
            target_value, refs = given[target], given[references]
            sources = [_paths(given[p]) for p in photos]
            chosen = Controls(*(given[c] for c in controls))
            counts = [0, 0]

            def on_progress(done: int, total: int) -> None:
                counts[:] = [done, total]

            control = api.RunControl(on_progress=on_progress)
            result: dict[str, Any] = {}

            def work() -> None:
                try:
                    result["done"] = session.run(
                        _target(target_value),
                        _refs(refs),
                        sources,
                        chosen,
                        control,
                        key=_key(request),
                    )
                except (Exception, RunInterrupted) as exc:
                    result["error"] = exc

            worker = threading.Thread(target=work, name="ui-run", daemon=True)
            worker.start()
            yield [_note("starting: loading models"), None, None]
            while worker.is_alive():
                worker.join(_POLL_S)
                done, total = counts
                if total:
                    progress((done, total), desc="frames", unit="frames")
                    yield [_note(f"running: {done}/{total} frames"), None, None]
            if "error" in result:
                kind = "info" if isinstance(result["error"], RunInterrupted) else "error"
                yield [_note(message(result["error"]), kind), None, None]
                return
            finished = result["done"]
            rep = finished.report
            text = (
                f"wrote {finished.output.name}: {rep.frames} frame(s), "
                f"{rep.frames_with_faces} with faces swapped, {rep.wall_s:.1f} s"
            )
            yield [_note(text, "done"), str(finished.output), str(finished.report_path)]

        def cancel_run(request: gr.Request) -> str:
            if session.cancel(_key(request)):
                return _note("cancelling: the run stops at its next frames")
            return _note("no run of this page is under way")

        def list_models() -> list[Any]:
            try:
                rows = session.models()
            except (Exception, RunInterrupted) as exc:
                return [gr.update(), gr.update(), message(exc)]
            data = [[r.name, r.state, r.size_mb, r.licence, r.role] for r in rows]
            missing = [r.name for r in rows if r.state == "missing"]
            return [data, gr.update(choices=missing, value=[]), ""]

        def download_models(
            names: list[str],
            progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio injects its bar)
        ) -> Iterator:
            watch = DownloadWatch()
            result: dict[str, Any] = {}

            def work() -> None:
                try:
                    result["done"] = session.download(names or [], watch)
                except (Exception, RunInterrupted) as exc:
                    result["error"] = exc

            worker = threading.Thread(target=work, name="ui-download", daemon=True)
            worker.start()
            while worker.is_alive():
                worker.join(_POLL_S)
                fraction = watch.fraction()
                if fraction is not None:
                    progress(fraction, desc="downloading")
                yield [gr.update(), gr.update(), watch.text()]
            text = watch.text()
            if "error" in result:
                text = "\n".join(filter(None, [text, message(result["error"])]))
            rows = list_models()
            yield [rows[0], rows[1], text or "downloaded"]

        people_out = [status, references, *columns, *thumbs, *photos]
        find.click(find_people, [target, *controls], people_out, concurrency_id="analysis")
        preview.click(
            make_preview,
            [target, references, *photos, *controls, time_s],
            [before, after, status],
            concurrency_id="analysis",
        )
        run.click(
            run_swap,
            {target, references, *photos, *controls},
            [run_status, output, report],
            concurrency_id="run",
            concurrency_limit=1,
        )
        cancel.click(cancel_run, None, run_status, queue=False)
        models_out = [table, wanted, download_status]
        app.load(list_models, None, models_out)
        refresh.click(list_models, None, models_out)
        download.click(download_models, wanted, models_out, concurrency_id="download")
    return app


def _refs(refs: list[str]) -> list[Path]:
    return [Path(r) for r in refs or []]


def _key(request: gr.Request | None) -> str:
    """The browser session a request came from (cancel finds its run by it)."""
    return str(getattr(request, "session_hash", "") or "")
