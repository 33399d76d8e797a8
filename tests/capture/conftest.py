"""Fixtures for capture tests: a virtual X screen (Xvfb) shared by the session."""

from __future__ import annotations

import pytest

from capture import RecorderError
from capture._xvfb import start_xvfb
from tests.capture._x11 import Painter

SCREEN = (320, 240)


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
