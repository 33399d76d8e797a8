"""The `stpe` command: subcommands are discovered in `pipeline.commands` and imported only
when run, so `stpe record` starts without loading the label or model stacks."""

from __future__ import annotations

import importlib
import logging
import pkgutil

import click
from rich.console import Console
from rich.logging import RichHandler

from alignment._errors import AlignmentError
from capture import CaptureError, tool_version
from pipeline import commands
from pipeline._errors import PipelineError

console = Console(stderr=True)


def _command_names() -> list[str]:
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(commands.__path__)
                  if not m.name.startswith("_"))


class LazyGroup(click.Group):
    """A group whose subcommands are modules of `pipeline.commands`, imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return _command_names()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _command_names():
            return None
        module = importlib.import_module(f"pipeline.commands.{cmd_name.replace('-', '_')}")
        return module.command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(tool_version(), prog_name="stpe")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Record game play with the exact state behind every frame; align, label, export."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])


def main() -> None:
    """Entry point: library errors print one clear line and exit with their code."""
    try:
        cli.main(prog_name="stpe", standalone_mode=False)
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        console.print("aborted")
        raise SystemExit(130) from None
    except (CaptureError, AlignmentError, PipelineError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(exc.exit_code) from None
