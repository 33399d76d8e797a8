"""Fixtures for capture tests: a virtual X screen (Xvfb) shared by the session, and the
`spawn` start method (the default on Windows and macOS, where Studio runs) for every test."""

from __future__ import annotations

import multiprocessing

import pytest

from capture import RecorderError
from capture._xvfb import start_xvfb
from tests.capture._x11 import Painter

SCREEN = (320, 240)


@pytest.fixture(autouse=True)
def spawn_only():
    """Run each capture test with `spawn`, so nothing in capture may rely on fork."""
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)
    yield
    multiprocessing.set_start_method(previous, force=True)


@pytest.fixture(scope="session")
def xvfb():
    try:
        server = start_xvfb(*SCREEN)
    except RecorderError as exc:
        pytest.skip(f"screen recorder tests need Xvfb: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def painter(xvfb):
    """One X connection that paints the virtual screen, shared by every test."""
    with Painter(xvfb.display) as session_painter:
        yield session_painter


@pytest.fixture
def display(xvfb, painter, monkeypatch):
    """DISPLAY set to the virtual screen for one test; yields the painter for it."""
    monkeypatch.setenv("DISPLAY", xvfb.display)
    return painter
