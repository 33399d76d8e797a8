"""The skip guard fails a strict run on a skip that is not allowed, and only then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, *, strict: bool, allowed: dict[str, str]) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        "from tests import skip_guard\n\n"
        "def pytest_configure(config):\n"
        f"    skip_guard.register(config, {allowed!r})\n")
    (tmp_path / "test_some.py").write_text(
        "import pytest\n\n"
        "def test_runs():\n    assert 1 + 1 == 2\n\n"
        "@pytest.mark.parametrize('n', [1, 2])\n"
        "def test_skips(n):\n    pytest.skip('no device here')\n\n"
        "@pytest.mark.xfail(reason='known')\n"
        "def test_xfails():\n    assert False\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STPE_STRICT_SKIPS": "1" if strict else "0"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_an_unlisted_skip_fails_a_strict_run_and_is_named(tmp_path):
    run = _run(tmp_path, strict=True, allowed={})
    assert run.returncode == 1, run.stdout
    assert "skips not in tests/skip_guard.py ALLOWED_SKIPS (fail the run)" in run.stdout
    assert "test_some.py::test_skips[1]: no device here" in run.stdout
    assert "test_xfails" not in run.stdout.split("ALLOWED_SKIPS")[1]  # xfail is no skip


def test_listed_skips_pass_and_a_lax_run_only_warns(tmp_path):
    allowed = _run(tmp_path, strict=True, allowed={"test_some.py::test_skips": "no device"})
    assert allowed.returncode == 0, allowed.stdout
    assert "ALLOWED_SKIPS" not in allowed.stdout
    lax = _run(tmp_path, strict=False, allowed={})
    assert lax.returncode == 0, lax.stdout
    assert "would fail with STPE_STRICT_SKIPS=1" in lax.stdout
