"""The exporter registry and the one entry point, `export_sessions`.

Each format registers a function that writes a dataset folder from loaded sessions. The
entry point loads (and so checks) every session first, writes into a temporary folder
beside the target and renames it into place, so a failure leaves nothing behind.

Example:
    export_sessions([Path("sessions/s1")], "webdataset", Path("out/wds"))
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline._errors import PipelineError
from pipeline.export._card import write_card
from pipeline.export._source import ExportOptions, SessionData, load_session
from pipeline.export._splits import assign_splits, split_order
from pipeline.export._storage import Publisher, is_url

logger = logging.getLogger(__name__)

Exporter = Callable[[Sequence[SessionData], Path, ExportOptions], dict[str, Any]]
EXPORTERS: dict[str, Exporter] = {}


def register(name: str) -> Callable[[Exporter], Exporter]:
    """Decorator: make `fn` the exporter of format `name`."""
    def add(fn: Exporter) -> Exporter:
        EXPORTERS[name] = fn
        return fn
    return add


def _counter(progress: Callable[[int, int], None], total: int) -> Callable[[], None]:
    """A per-frame callback that reports every 64th frame and the last one."""
    done = 0

    def count() -> None:
        nonlocal done
        done += 1
        if done % 64 == 0 or done == total:
            progress(done, total)

    progress(0, total)
    return count


def _check_local(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PipelineError(f"{out} already exists and is not an empty folder; choose a new "
                            "--out or remove it")


def export_sessions(paths: Sequence[Path], fmt: str, out: Path | str,
                    options: ExportOptions | None = None,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Export labelled sessions to `out` (a folder, or an fsspec URL such as s3://bucket/x)
    in format `fmt`; returns the exporter's counts. `progress(done, total)` follows the
    frames read, over all the sessions."""
    options = options or ExportOptions()
    if fmt not in EXPORTERS:
        raise PipelineError(f"unknown export format {fmt!r}; expected one of "
                            f"{', '.join(sorted(EXPORTERS))}")
    if options.timecode not in ("keep", "mask", "crop"):
        raise PipelineError(f"unknown timecode handling {options.timecode!r}; expected "
                            "keep, mask or crop")
    if options.shard_mb <= 0 or (options.fps_cap is not None and options.fps_cap <= 0):
        raise PipelineError("--shard-size and --fps-cap must be positive")
    publisher = Publisher(out, Path(tempfile.mkdtemp(prefix="stpe-export-"))) \
        if is_url(out) else None
    try:
        if publisher is not None:
            publisher.check_empty()
        else:
            _check_local(Path(out))
        return _export(paths, fmt, out, options, progress, publisher)
    finally:
        if publisher is not None:
            shutil.rmtree(publisher.staging, ignore_errors=True)


def _export(paths: Sequence[Path], fmt: str, out: Path | str, options: ExportOptions,
            progress: Callable[[int, int], None] | None,
            publisher: Publisher | None) -> dict[str, Any]:
    if not paths:
        raise PipelineError("no sessions given; pass one or more session folders")
    if options.gop < 1:
        raise PipelineError("--gop must be at least 1")
    if options.timecode == "keep":
        logger.warning("--timecode keep: the timecode strip stays in the images; it encodes "
                       "the frame's sample number, which a model can learn as a shortcut")
    sessions = [load_session(p, options) for p in paths]
    names = [s.name for s in sessions]
    if len(set(names)) != len(names):
        raise PipelineError(f"the same session is given twice ({names}); pass each once")
    chosen = assign_splits(len(sessions), options.splits, options.seed)
    sessions = [replace(sessions[i], split=chosen[i])
                for i in split_order(chosen, [n for n, _ in options.splits])]
    if progress is not None:
        options = replace(options, on_image=_counter(
            progress, sum(s.count for s in sessions)))
    if publisher is not None:
        tmp = publisher.staging
        options = replace(options, on_file=publisher.send, open_remote=publisher.open)
    else:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    try:
        counts = EXPORTERS[fmt](sessions, tmp, options)
        write_card(tmp, fmt, sessions, counts, options,
                   sent=publisher.sent if publisher is not None else {})
        if publisher is not None:
            publisher.finish()
        else:
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if publisher is not None:
            publisher.abort()
        raise
    logger.info("exported %d sessions to %s (%s)", len(sessions), out, fmt)
    return counts
