"""`ghost-engine ui`: a preview UI in the browser (the optional `ghost-engine[ui]` extra).

`workspace` holds the server's temporary files, `session` the work behind each button
(plain Python on `ghost_engine.api`, testable without a browser), `app` lays out the
Gradio page on it and `server` starts and stops it. Only `app` and `server` import
Gradio, so the rest of the engine never needs it.
"""
