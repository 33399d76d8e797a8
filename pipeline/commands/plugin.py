"""`stpe plugin build|install`: the Roblox Studio plugin as one .rbxmx file."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from pipeline._rbxmx import PLUGIN_FILE, build_plugin, install_plugin, studio_plugin_dir

console = Console(soft_wrap=True)


@click.group("plugin")
def command() -> None:
    """Build or install the Roblox Studio plugin."""


@command.command("build")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(PLUGIN_FILE), show_default=True, help="The .rbxmx file to write.")
def build(out: Path) -> None:
    """Build the plugin into one .rbxmx model file."""
    path = build_plugin(out)
    console.print(f"built {path} ({path.stat().st_size} bytes)")


@command.command("install")
@click.option("--dir", "target", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Studio's Plugins folder (default: the platform's; on Linux required "
                   "unless STPE_PLUGIN_DIR is set).")
def install(target: Path | None) -> None:
    """Build the plugin and copy it into Roblox Studio's plugins folder."""
    path = install_plugin(studio_plugin_dir(target))
    console.print(f"installed the STPE plugin at {path}; restart Studio (or reload plugins)")
