"""The screen to grab: an mss connection to the display, and the rectangle to record on it."""

from __future__ import annotations

import os
import sys
from typing import Any

from capture._errors import RecorderError
from capture._layout import Region


def open_screen() -> Any:
    """An mss screen grabber; a clear RecorderError when there is no display."""
    import mss

    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise RecorderError("no X display: $DISPLAY is not set; run inside a desktop session, "
                            "or start a virtual screen with Xvfb (`Xvfb :99 &` then "
                            "DISPLAY=:99)")
    try:
        return mss.MSS()
    except Exception as exc:  # mss reports a failed connection with several exception types
        raise RecorderError(f"cannot connect to the display {os.environ.get('DISPLAY')!r} "
                            f"({exc}); is the X server (or Xvfb) running?") from None


def resolve_region(monitors: list[dict[str, int]], monitor: int | None,
                   region: Region | None) -> Region:
    """The screen rectangle to grab: `region` if given (checked against the whole screen,
    `monitors[0]`), else monitor `monitor` (0 = every monitor together)."""
    if region is not None:
        screen = monitors[0]
        right, bottom = screen["left"] + screen["width"], screen["top"] + screen["height"]
        if (region.left < screen["left"] or region.top < screen["top"]
                or region.left + region.width > right or region.top + region.height > bottom):
            raise RecorderError(
                f"region {region.width}x{region.height} at ({region.left},{region.top}) is not "
                f"inside the screen ({screen['width']}x{screen['height']} at "
                f"({screen['left']},{screen['top']})); choose a region within it")
        return region
    index = 1 if monitor is None else monitor
    if not 0 <= index < len(monitors):
        raise RecorderError(f"monitor {index} does not exist; this display has monitors "
                            f"1..{len(monitors) - 1} (0 = all of them together)")
    m = monitors[index]
    return Region(left=m["left"], top=m["top"], width=m["width"], height=m["height"])
