"""The `stpe` command: subcommands are discovered in `pipeline.commands` and imported only
when run, so `stpe record` starts without loading the label or model stacks.

Exit codes: 0 done; 1 the work failed (bad session, failed step); 2 usage (unknown option,
missing or wrong path); 3 an optional extra is not installed; 130 interrupted (Ctrl-C)."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Sequence

import click
from rich.logging import RichHandler
from rich.markup import escape

from alignment._errors import AlignmentError
from capture import CaptureError, tool_version
from pipeline import commands
from pipeline._errors import MissingExtraError, PipelineError, missing_extra
from pipeline.commands._conventions import (
    Output,
    common_options,
    configure_logging,
    echo_json_error,
    make_console,
    with_common_options,
)

console = make_console(stderr=True)

EXIT_FAILED, EXIT_MISSING_EXTRA, EXIT_INTERRUPTED = 1, 3, 130  # usage errors: click, 2


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
        return with_common_options(module.command)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(tool_version(), prog_name="stpe")
def cli() -> None:
    """Record game play with the exact state behind every frame; align, label, export.

    -v, -q and --json work before or after the command. Exit codes: 0 done, 1 failed,
    2 usage, 3 missing extra, 130 interrupted."""
    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=console, show_path=False))
    configure_logging(Output.current())


cli.params.extend(common_options())


def _fail(message: str, code: int, out: Output) -> SystemExit:
    console.print(f"[red]error:[/red] {escape(message)}")
    if out.json:
        echo_json_error(message, code)
    return SystemExit(code)


def _show_click_error(exc: click.ClickException) -> None:
    """Click's usage and error lines, the message wrapped to the terminal like ours."""
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        help_option = ctx.help_option_names[0] if ctx.help_option_names else "--help"
        console.print(escape(ctx.get_usage()))
        console.print(f"Try '{escape(ctx.command_path)} {help_option}' for help.\n")
    console.print(f"[red]error:[/red] {escape(exc.format_message())}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: errors print one clear line (no traceback) and exit with their code."""
    out = Output()
    try:
        code = cli.main(args=None if argv is None else list(argv), prog_name="stpe",
                        standalone_mode=False, obj=out)
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        _show_click_error(exc)
        if out.json:
            echo_json_error(exc.format_message(), exc.exit_code)
        raise SystemExit(exc.exit_code) from None
    except (click.Abort, KeyboardInterrupt):
        console.print("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except MissingExtraError as exc:
        raise _fail(str(exc), EXIT_MISSING_EXTRA, out) from None
    except (CaptureError, AlignmentError, PipelineError) as exc:
        raise _fail(str(exc), getattr(exc, "exit_code", EXIT_FAILED), out) from None
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc.name or "")
        if extra is None:
            raise
        raise _fail(str(extra), EXIT_MISSING_EXTRA, out) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
