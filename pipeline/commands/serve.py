"""`stpe serve`: browse and play sessions in a local web app."""

from __future__ import annotations

import time
import webbrowser
from pathlib import Path

import click

from pipeline.commands._conventions import Output
from pipeline.commands.record import DEFAULT_PARENT

DEFAULT_PORT = 34874


@click.command("serve")
@click.option("--sessions", "sessions_dir", default=DEFAULT_PARENT,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              show_default=True, help="The folder of sessions to serve.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT,
              show_default=True, help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
def command(sessions_dir: Path, port: int, no_browser: bool) -> None:
    """Browse and play the sessions of a folder in a local web app, until Ctrl-C.

    It listens on 127.0.0.1 only; the address it prints carries a token made for this
    start, which the browser keeps in a cookie: share neither."""
    import duckdb  # noqa: F401  (the search runs on it: a missing extra stops here, exit 3)

    from serve import ServeContext, ServeThread

    output = Output.current()
    with ServeThread(ServeContext.for_sessions(sessions_dir), port=port) as server:
        output.console.print(f"serving {server.ctx.sessions_dir}")
        output.console.print(f"open: {server.url}")
        output.console.file.flush()
        output.result({"command": "serve", "sessions": str(server.ctx.sessions_dir),
                       "url": server.url, "port": server.port})
        if not no_browser:
            webbrowser.open(server.url)
        output.hint("press Ctrl-C to stop")
        while True:  # until Ctrl-C (KeyboardInterrupt), which stops the server on exit
            time.sleep(1)
