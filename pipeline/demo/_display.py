"""Where the demo game is shown: a virtual X screen when there is none, and a window.

`VirtualDisplay` starts Xvfb on a display number it picks itself (-displayfd) and points
`DISPLAY` at it until closed; `GameWindow` is an OpenCV (Qt) window at the screen's top-left
corner whose client area is exactly the game's viewport.

Qt sometimes maps a window it then never paints (seen under CPU load on Xvfb, with no
window manager): the screen stays black whatever is shown. `GameWindow.open` therefore
reads the screen back and opens the window again until its first picture is really there.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import cv2
import numpy as np

from capture import RecorderError, Region
from capture._xvfb import Xvfb, start_xvfb
from pipeline._errors import PipelineError

logger = logging.getLogger(__name__)

WINDOW_TITLE = "STPE demo"
OPEN_ATTEMPTS = 5
PAINT_WAIT_S = 1.0  # how long one attempt waits for the window's first picture
PAINT_TOLERANCE = 8.0  # mean absolute difference (levels) between what is shown and seen


class VirtualDisplay:
    """Xvfb for as long as the context lasts; a no-op when a display is already set."""

    def __init__(self, width: int = 1024, height: int = 768, *, force: bool = False) -> None:
        self.width, self.height = width, height
        self._force = force
        self._server: Xvfb | None = None
        self._previous: str | None = None
        self.display: str | None = None

    def start(self) -> VirtualDisplay:
        if os.environ.get("DISPLAY") and not self._force:
            self.display = os.environ["DISPLAY"]
            return self
        try:
            self._server = start_xvfb(self.width, self.height)
        except RecorderError as exc:
            raise PipelineError(f"no DISPLAY is set and a virtual one cannot start: {exc}") \
                from None
        self._previous = os.environ.get("DISPLAY")
        self.display = self._server.display
        os.environ["DISPLAY"] = self.display
        logger.info("started Xvfb on %s", self.display)
        return self

    def close(self) -> None:
        """Stop Xvfb (if this object started it) and restore DISPLAY. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = self._previous
        server.stop()

    def __enter__(self) -> VirtualDisplay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class GameWindow:
    """An OpenCV window showing BGR frames of exactly `viewport` pixels."""

    def __init__(self, viewport: tuple[int, int], title: str = WINDOW_TITLE) -> None:
        self.viewport = viewport
        self.title = title
        self._open = False

    def open(self) -> GameWindow:
        """Open the window and wait until the screen shows what it draws."""
        modules = list(sys.modules)
        if "av" in modules and modules.index("av") < modules.index("cv2"):
            raise PipelineError("PyAV was imported before OpenCV in this process, so OpenCV's "
                                "window would never open (both bundle libxcb); open the window "
                                "in a process that imports cv2 first, as `stpe demo` does")
        card = np.full((self.viewport[1], self.viewport[0], 3), 96, np.uint8)
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            self._create()
            if self.shows(card):
                return self
            logger.warning("the window system did not paint the game window (attempt %d of "
                           "%d); opening it again", attempt, OPEN_ATTEMPTS)
            self.close()
        raise PipelineError(f"the window system never painted the game window on DISPLAY="
                            f"{os.environ.get('DISPLAY')} ({OPEN_ATTEMPTS} attempts); unset "
                            "DISPLAY to let the demo start its own Xvfb")

    def _create(self) -> None:
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise PipelineError(f"cannot open a window on DISPLAY={os.environ.get('DISPLAY')} "
                                f"({exc}); unset DISPLAY to let the demo start Xvfb") from None
        self._open = True
        cv2.moveWindow(self.title, 0, 0)

    def shows(self, image: np.ndarray, wait_s: float = PAINT_WAIT_S) -> bool:
        """Show `image` until the screen has it (True) or `wait_s` has passed (False: the
        window is covered, or the window system is not painting it)."""
        import mss

        deadline = time.monotonic() + wait_s
        with mss.MSS() as screen:
            while True:
                self.show(image)
                shot = np.asarray(screen.grab(self.region().model_dump()))[..., :3]
                if np.abs(shot.astype(np.int16) - image).mean() <= PAINT_TOLERANCE:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)

    def show(self, image: np.ndarray) -> None:
        """Put a frame on screen and let the window system paint it."""
        cv2.imshow(self.title, image)
        cv2.waitKey(1)

    def region(self) -> Region:
        """Where the frames appear on the screen (for the recorder)."""
        x, y, width, height = cv2.getWindowImageRect(self.title)
        if (width, height) != tuple(self.viewport):
            raise PipelineError(f"the game window shows {width}x{height} px, expected "
                                f"{self.viewport[0]}x{self.viewport[1]}; use a screen larger "
                                "than the viewport")
        return Region(left=x, top=y, width=width, height=height)

    def close(self) -> None:
        if self._open:
            self._open = False
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)

    def __enter__(self) -> GameWindow:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
