"""Fixtures of the `stpe serve` tests: sessions made by the project's own chain, the app on
loopback in a thread, and a headless Chromium (Debian's, never a downloaded one)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_sample
from tests.pipeline.demo_session import labelled_demo_session
from tests.pipeline.session_kit import make_simulated_session

CHROMIUM = "/usr/bin/chromium"
DEMO_FRAMES = 24


@dataclass(frozen=True)
class Served:
    """A running server: its base URL (no token), its token, and the URL that logs in."""

    base: str
    token: str
    ctx: object

    @property
    def login(self) -> str:
        return f"{self.base}/?token={self.token}"


@pytest.fixture(scope="session")
def _demo_sessions_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per run: `demo`, a labelled demo session (real video, aligned and labels
    tables), and `sim`, a simulated capture aligned by `stpe align`'s clock fit (an
    alignment.json, no labels)."""
    root = tmp_path_factory.mktemp("serve-sessions")
    labelled_demo_session(root, DEMO_FRAMES)
    make_simulated_session(root, make_sample, duration_s=1.0, name="sim")
    return root


@pytest.fixture
def demo_sessions(_demo_sessions_template: Path, tmp_path: Path) -> Path:
    """A fresh sessions folder holding the sessions `demo` and `sim`."""
    root = tmp_path / "sessions"
    shutil.copytree(_demo_sessions_template, root, symlinks=True)
    return root


@pytest.fixture
def served(demo_sessions: Path) -> Iterator[Served]:
    """`stpe serve`'s app on 127.0.0.1, a free port, over `demo_sessions`."""
    from serve import ServeContext, ServeThread

    ctx = ServeContext.for_sessions(demo_sessions)
    with ServeThread(ctx, port=0) as server:
        yield Served(base=server.base_url, token=server.token, ctx=ctx)


@pytest.fixture(scope="module")
def _browser() -> Iterator[object]:
    """Chromium for one test module (Playwright's loop lives no longer than the module)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing; run scripts/install-system.sh")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"],
                                    headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(_browser, served: Served) -> Iterator[object]:
    """A fresh browser page (own cookies), logged in to `served` through its printed URL."""
    context = _browser.new_context()
    page = context.new_page()
    page.goto(served.login)
    yield page
    context.close()
