"""What every `stpe` command shares: -v/-q/--json, where output goes, session arguments.

    -v / -q / --json   accepted before or after the subcommand; added to every command by
                       the group, so a command body only asks `Output.current()`
    stdout             the command's result: human lines, or with --json one JSON document
    stderr             progress, warnings, errors and next-step hints; with
                       STPE_PROGRESS=json set, progress as JSON lines (`_progress.py`)
    SESSIONS           each a session folder or a folder of sessions (expanded, sorted)
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, ProgressColumn

from capture._layout import MANIFEST
from pipeline.commands._progress import JsonLinesProgress, json_progress_wanted

F = TypeVar("F", bound=Callable[..., Any])
_META = "stpe.output"


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """A console that wraps to the terminal's width, and never inserts line breaks into
    text that goes to a pipe or a file (paths stay whole for scripts)."""
    console = Console(stderr=stderr, quiet=quiet, highlight=False)
    console.soft_wrap = not console.is_terminal
    return console


@dataclass
class Output:
    """The output settings of one invocation, gathered from the group and the command."""

    verbose: int = 0
    quiet: bool = False
    json: bool = False
    _emitted: list[str] = field(default_factory=list)

    @staticmethod
    def current() -> Output:
        """The settings of the running command (defaults outside a click context)."""
        ctx = click.get_current_context(silent=True)
        if ctx is None:
            return Output()
        root = ctx.find_root()
        if isinstance(root.obj, Output):  # given by `main`, which reports errors with it
            return root.obj
        return root.meta.setdefault(_META, Output())

    @property
    def console(self) -> Console:
        """Human result lines: stdout, or stderr under --json; nothing under -q."""
        return make_console(stderr=self.json, quiet=self.quiet)

    @property
    def err(self) -> Console:
        """Progress, warnings and hints (stderr); progress and hints respect -q."""
        return make_console(stderr=True)

    def warn(self, message: str) -> None:
        """A warning line on stderr (shown under -q too); `message` is plain text."""
        self.err.print(f"[yellow]warning:[/yellow] {escape(message)}")

    def hint(self, message: str) -> None:
        """The next step, on stderr; plain text; left out under -q and --json."""
        if not (self.quiet or self.json):
            self.err.print(f"[dim]next:[/dim] {escape(message)}")

    def result(self, document: dict[str, Any]) -> None:
        """The command's figures as one JSON document on stdout (only under --json)."""
        if self.json:
            if self._emitted:
                raise RuntimeError("a command printed two JSON documents")
            text = orjson.dumps(document, default=_plain,
                                option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
                                | orjson.OPT_SERIALIZE_NUMPY).decode()
            self._emitted.append(text)
            click.echo(text)

    @property
    def progress_console(self) -> Console:
        """A stderr console for rich progress bars and spinners, silent under -q."""
        return make_console(stderr=True, quiet=self.quiet)

    def progress_bar(self, *columns: str | ProgressColumn, transient: bool = True
                     ) -> Progress:
        """A progress bar on the progress console; JSON lines on stderr instead when the
        environment sets STPE_PROGRESS=json (see `_progress.py`)."""
        if json_progress_wanted():
            return JsonLinesProgress(*columns, console=make_console(stderr=True, quiet=True))
        return Progress(*columns, console=self.progress_console, transient=transient)


def _plain(value: Any) -> Any:
    """JSON for what orjson does not know: paths, pydantic models, numpy scalars."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path | tuple | set | frozenset):
        return str(value) if isinstance(value, Path) else list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def configure_logging(out: Output) -> None:
    """Root log level from -v (warnings by default; -q keeps warnings and errors)."""
    level = logging.WARNING if out.quiet else \
        [logging.WARNING, logging.INFO, logging.DEBUG][min(out.verbose, 2)]
    logging.getLogger().setLevel(level)


def _verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value:
        out = Output.current()
        out.verbose += value
        configure_logging(out)


def _flag(name: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            setattr(Output.current(), name, True)
            configure_logging(Output.current())
    return callback


def common_options() -> list[click.Option]:
    """-v, -q and --json, as options that only set `Output.current()`."""
    return [
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_verbose,
                     help="More log output (-vv for debug)."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False,
                     callback=_flag("quiet"), help="Only warnings and errors."),
        click.Option(["--json"], is_flag=True, expose_value=False, callback=_flag("json"),
                     help="Print the result as one JSON document on stdout."),
    ]


def with_common_options(command: click.Command) -> click.Command:
    """Give `command` (and a group's subcommands) the shared options, once."""
    names = {n for p in command.params for n in p.opts}
    if "--json" not in names:
        command.params.extend(common_options())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_common_options(sub)
    return command


def sessions_in(folder: Path) -> list[Path]:
    """The sessions directly inside `folder`, sorted by name."""
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []
    return [p for p in children if (p / MANIFEST).is_file()]


def _not_a_session(path: Path) -> str:
    """Why `path` is neither a session nor a folder of sessions, naming sessions deeper."""
    deeper = sorted({m.parent for depth in ("*/*", "*/*/*")
                     for m in path.glob(f"{depth}/{MANIFEST}")})
    message = f"{path} is not a session ({MANIFEST} is missing) and holds no sessions"
    if deeper:
        shown = ", ".join(str(p) for p in deeper[:5]) + (", ..." if len(deeper) > 5 else "")
        message += f"; sessions further down: {shown}"
    return message


def expand_sessions(values: tuple[Path, ...], param: click.Parameter | None = None
                    ) -> list[Path]:
    """Each path a session, or a folder whose sessions are taken in order (usage error if
    neither)."""
    found: list[Path] = []
    for path in values:
        inside = [] if (path / MANIFEST).is_file() else sessions_in(path)
        if not inside and not (path / MANIFEST).is_file():
            raise click.BadParameter(_not_a_session(path), param=param)
        for session in inside or [path]:
            if session.resolve() not in {p.resolve() for p in found}:
                found.append(session)
    return found


def _expand(ctx: click.Context, param: click.Parameter, values: tuple[Path, ...]) -> list[Path]:
    return expand_sessions(values, param)


def sessions_argument(name: str = "sessions") -> Callable[[F], F]:
    """SESSIONS...: session folders or folders of sessions, expanded to a list of sessions."""
    return click.argument(name, nargs=-1, required=True, callback=_expand,
                          type=click.Path(exists=True, file_okay=False, path_type=Path))


def session_words(sessions: list[Path]) -> str:
    """Sessions as a next-step hint names them: up to three paths, else SESSIONS..."""
    return " ".join(str(p) for p in sessions) if 0 < len(sessions) < 4 else "SESSIONS..."


def one_session(sessions: list[Path], option: str) -> Path:
    """The single session an option such as --out applies to; a clear usage error if not."""
    if len(sessions) != 1:
        names = ", ".join(str(p) for p in sessions[:6]) + (", ..." if len(sessions) > 6 else "")
        raise click.UsageError(f"{option} applies to one session, got {len(sessions)}: {names}; "
                               f"pass one of them")
    return sessions[0]


@contextmanager
def replacing(out: Path | None, overwrite: bool) -> Iterator[None]:
    """Around a command that creates `out`: an existing, non-empty `out` is a usage error
    unless `overwrite`; then it is moved aside, and deleted only once the command succeeded
    (restored if it failed or was interrupted). Sessions are never replaced."""
    taken = out is not None and out.exists() and (not out.is_dir() or any(out.iterdir()))
    if out is None or not taken:
        yield
        return
    if not overwrite:
        raise click.UsageError(f"{out} already exists; pass --overwrite to replace it, or "
                               "choose another --out")
    if out.is_dir() and ((out / MANIFEST).is_file() or sessions_in(out)):
        raise click.UsageError(f"{out} is or holds recorded sessions; it is never replaced")
    aside = out.with_name(f".{out.name}.replaced")
    if aside.is_dir():
        shutil.rmtree(aside)
    aside.unlink(missing_ok=True)
    os.replace(out, aside)
    try:
        yield
    except BaseException:
        if out.is_dir():
            shutil.rmtree(out)
        out.unlink(missing_ok=True)
        os.replace(aside, out)
        raise
    if aside.is_dir():
        shutil.rmtree(aside)
    else:
        aside.unlink()


def echo_json_error(message: str, code: int) -> None:
    """Under --json, a failure is a JSON document too (stdout), besides the stderr line."""
    sys.stdout.write(orjson.dumps({"error": message, "exit_code": code},
                                  option=orjson.OPT_INDENT_2).decode() + "\n")
