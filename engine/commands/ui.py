"""`ghost-engine ui`: the preview UI in the browser (needs the `ghost-engine[ui]` extra).

The face-swap flags are those of `run` and set the page's starting values (and what the
page does not offer, such as the detector or the device). The server binds 127.0.0.1
unless --host says otherwise and makes a public link only with --share.
"""

from __future__ import annotations

import click

from ghost_engine.choices import SMOOTHING
from ghost_engine.commands.common import (
    WholeNumber,
    choice_option,
    count_option,
    log_to_stderr,
    max_pixels_option,
    shown,
)
from ghost_engine.commands.swap_options import swap_config_fields, swap_options


@click.command("ui")
@shown("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0: every network).")
@shown("--port", kind=WholeNumber(0, 65535), default=7860, help="Port; 0 takes a free one.")
@click.option("--share", is_flag=True, help="Also make a public link through Gradio's relay.")
@swap_options
@choice_option("--smoothing", SMOOTHING, "window")
@count_option("--sample-frames", 12, "Frames searched for the people of a target.", high=1000)
@max_pixels_option
def ui(**opts) -> None:
    """Serve the face-swap UI in the browser until Ctrl-C.

    Uploads and outputs live in a temporary folder that is removed when the server stops;
    download what you want to keep from the page.
    """
    from ghost_engine.pipeline.swap import make_config
    from ghost_engine.ui.server import UiServer, UiSettings

    log_to_stderr()
    defaults = make_config(**swap_config_fields(opts), smoothing=opts["smoothing"])
    settings = UiSettings(
        host=opts["host"],
        port=opts["port"],
        share=opts["share"],
        max_pixels=opts["max_pixels"],
        sample_frames=opts["sample_frames"],
    )
    with UiServer(settings, defaults) as server:
        click.echo(f"serving the UI at {server.url}", err=True)
        if server.share_url:
            click.echo(f"public link (anyone with it can use this machine): {server.share_url}")
        server.wait()
