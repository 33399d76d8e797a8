"""`stpe plugin build|install`: the Roblox Studio plugin as one .rbxmx file."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline._rbxmx import PLUGIN_FILE, build_plugin, install_plugin, studio_plugin_dir
from pipeline.commands._conventions import Output, replacing


@click.group("plugin")
def command() -> None:
    """Build or install the Roblox Studio plugin."""


@command.command("build")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(PLUGIN_FILE), show_default=True, help="The .rbxmx file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
def build(out: Path, overwrite: bool) -> None:
    """Build the plugin into one .rbxmx model file."""
    output = Output.current()
    with replacing(out, overwrite):
        path = build_plugin(out)
    size = path.stat().st_size
    output.console.print(f"built {path} ({size} bytes)")
    output.result({"command": "plugin build", "path": str(path), "bytes": size})
    output.hint("stpe plugin install (or copy the file into Studio's Plugins folder)")


@command.command("install")
@click.option("--dir", "target", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Studio's Plugins folder (default: the platform's; on Linux required "
                   "unless STPE_PLUGIN_DIR is set).")
def install(target: Path | None) -> None:
    """Build the plugin and copy it into Roblox Studio's plugins folder (replacing an older
    STPE plugin there)."""
    output = Output.current()
    path = install_plugin(studio_plugin_dir(target))
    output.console.print(f"installed the STPE plugin at {path}; restart Studio (or reload "
                         "plugins)")
    output.result({"command": "plugin install", "path": str(path)})
    output.hint("stpe record, then press Record on the STPE toolbar in Studio and Play")
