"""`stpe record --window TITLE`: the screen rectangle of a window found by its title.

Where it works: X11 (Linux), through `xdotool` (find the window) and `xwininfo` (its
position and size), both in scripts/install-system.sh. Elsewhere, and under Wayland, the
window cannot be found by title: the error says so and points to --region. The rectangle is
read once, at the start: move or resize the window and the recording keeps the old one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from capture import Region
from pipeline._errors import PipelineError

TIMEOUT_S = 10.0
_GEOMETRY = {"left": "Absolute upper-left X", "top": "Absolute upper-left Y",
             "width": "Width", "height": "Height"}


def _run(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PipelineError(f"{args[0]} failed: {exc}") from None
    return done.stdout


def _unsupported(why: str) -> PipelineError:
    return PipelineError(f"--window cannot find windows here: {why}. Pass the window's "
                         "rectangle with --region X,Y,W,H instead")


def window_region(title: str) -> Region:
    """The on-screen rectangle of the visible window whose title contains `title`."""
    if sys.platform in ("win32", "darwin"):
        raise _unsupported(f"it works on Linux with X11 only (this is {sys.platform})")
    if not os.environ.get("DISPLAY"):
        raise _unsupported("no X11 display (DISPLAY is unset)")
    missing = [tool for tool in ("xdotool", "xwininfo") if shutil.which(tool) is None]
    if missing:
        raise _unsupported(f"{' and '.join(missing)} not installed (Debian: apt-get install "
                           "xdotool x11-utils)")
    pattern = re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", title)  # literal, as an ERE
    ids = _run(["xdotool", "search", "--onlyvisible", "--name", pattern]).split()
    if not ids:
        raise PipelineError(f"no visible window's title contains {title!r}; check the "
                            "title (xdotool search --name TEXT lists matches) or use --region")
    regions = [_geometry(window) for window in ids]
    return max(regions, key=lambda r: r.width * r.height)  # a title bar's child is smaller


def _geometry(window: str) -> Region:
    text = _run(["xwininfo", "-id", window])
    values: dict[str, int] = {}
    for key, label in _GEOMETRY.items():
        found = re.search(rf"^\s*{re.escape(label)}:\s*(-?\d+)\s*$", text, re.MULTILINE)
        if found is None:
            raise PipelineError(f"xwininfo gave no {label!r} for window {window}")
        values[key] = int(found.group(1))
    if values["width"] <= 0 or values["height"] <= 0:
        raise PipelineError(f"window {window} has no area ({values['width']}x"
                            f"{values['height']})")
    return Region(**values)
