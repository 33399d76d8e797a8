"""Skips are listed, and in CI a skip that is not allowed fails the run.

A test that skips proves nothing, so a skip must be a decision: every test allowed to skip
is in `ALLOWED_SKIPS` with the reason. `pytest -ra` prints every skip; with
`STPE_STRICT_SKIPS=1` (set by `.ci/run`) any other skip, a test's or a whole module's, makes
the run fail and is named at the end of the report.
"""

from __future__ import annotations

import os

import pytest

# Test node ids (without parameters) that may skip, and why. Keep this list short.
ALLOWED_SKIPS: dict[str, str] = {
    # CI machines have no GPU; the test runs on a CUDA machine (`pip install '.[gpu]'`).
    "tests/pipeline/test_annotate_stages.py::test_embed_bf16_on_cuda": "needs a CUDA device",
    # Its mirror image: the clear error without a device cannot be produced on a CUDA machine.
    "tests/pipeline/test_annotate_stages.py::test_cuda_without_a_device_is_a_clear_error":
        "skips only where CUDA exists",
}

STRICT_ENV = "STPE_STRICT_SKIPS"


class SkipGuard:
    """A pytest plugin: collects skips and fails a strict run on any not in `allowed`."""

    def __init__(self, allowed: dict[str, str], *, strict: bool) -> None:
        self.allowed = allowed
        self.strict = strict
        self.unexpected: list[tuple[str, str]] = []

    def _record(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        test_id = report.nodeid.split("[", 1)[0]
        if test_id not in self.allowed:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            self.unexpected.append((report.nodeid, str(reason).removeprefix("Skipped: ")))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.strict and self.unexpected and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.unexpected:
            return
        verdict = "fail the run" if self.strict else f"would fail with {STRICT_ENV}=1"
        terminalreporter.section(f"skips not in tests/skip_guard.py ALLOWED_SKIPS ({verdict})")
        for nodeid, reason in self.unexpected:
            terminalreporter.line(f"{nodeid}: {reason}")


def register(config: pytest.Config, allowed: dict[str, str] = ALLOWED_SKIPS) -> None:
    """Register the guard; strict when `STPE_STRICT_SKIPS=1`."""
    strict = os.environ.get(STRICT_ENV) == "1"
    config.pluginmanager.register(SkipGuard(allowed, strict=strict), "stpe-skip-guard")
