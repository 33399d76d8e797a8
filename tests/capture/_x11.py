"""A painter that changes what is on a (virtual) X screen, for tests and benchmarks
(libX11 through ctypes, no extra dependency)."""

from __future__ import annotations

import ctypes
import ctypes.util
import time


def _libx11() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XDefaultRootWindow.restype = ctypes.c_ulong
    lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    lib.XDefaultGC.restype = ctypes.c_void_p
    lib.XDefaultGC.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.XSetWindowBackground.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    lib.XClearWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    lib.XSetForeground.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong]
    lib.XFillRectangle.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                                   ctypes.c_int, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
    lib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return lib


def _pixel(rgb: tuple[int, int, int]) -> int:
    return (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]


class Painter:
    """Paints the root window of an X display; every call returns once the server has
    drawn it (XSync), so the caller's timestamps bracket the change on screen."""

    def __init__(self, display: str) -> None:
        self._x = _libx11()
        for attempt in range(5):  # a loaded machine's X server can be slow to accept
            self._display = self._x.XOpenDisplay(display.encode())
            if self._display:
                break
            time.sleep(0.2 * (attempt + 1))
        else:
            raise RuntimeError(f"cannot open X display {display}")
        self._root = self._x.XDefaultRootWindow(self._display)
        self._gc = self._x.XDefaultGC(self._display, 0)

    def fill(self, rgb: tuple[int, int, int]) -> None:
        """Fill the whole screen with one colour."""
        self._x.XSetWindowBackground(self._display, self._root, _pixel(rgb))
        self._x.XClearWindow(self._display, self._root)
        self._x.XSync(self._display, 0)

    def rect(self, x: int, y: int, width: int, height: int, rgb: tuple[int, int, int]) -> None:
        self._x.XSetForeground(self._display, self._gc, _pixel(rgb))
        self._x.XFillRectangle(self._display, self._root, self._gc, x, y, width, height)
        self._x.XSync(self._display, 0)

    def close(self) -> None:
        if self._display:
            self._x.XCloseDisplay(self._display)
            self._display = None

    def __enter__(self) -> Painter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def paint_schedule(painter: Painter, colours: list[tuple[int, int, int]],
                   hold_s: float) -> list[tuple[int, int, tuple[int, int, int]]]:
    """Show each colour for `hold_s`; returns (before_ns, after_ns, colour) per change, on
    time.perf_counter_ns, the recorder's clock."""
    log = []
    t0 = time.perf_counter()
    for i, colour in enumerate(colours):
        time.sleep(max(0.0, t0 + i * hold_s - time.perf_counter()))
        before = time.perf_counter_ns()
        painter.fill(colour)
        log.append((before, time.perf_counter_ns(), colour))
    return log
