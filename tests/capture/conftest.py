"""Fixtures for capture tests: a virtual X screen (Xvfb) shared by the session."""

from __future__ import annotations

import pytest

from tests.capture._x11 import Painter, start_xvfb

SCREEN = (320, 240)


@pytest.fixture(scope="session")
def xvfb():
    try:
        server = start_xvfb(*SCREEN)
    except FileNotFoundError as exc:
        pytest.skip(f"screen recorder tests need Xvfb: {exc}")
    yield server
    server.stop()


@pytest.fixture
def display(xvfb, monkeypatch):
    """DISPLAY set to the virtual screen for one test; yields a painter for it."""
    monkeypatch.setenv("DISPLAY", xvfb.display)
    with Painter(xvfb.display) as painter:
        yield painter
