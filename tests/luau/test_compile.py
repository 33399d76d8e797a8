"""Every Luau file of the plugin and of the test world compiles with the Luau compiler."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.luau._vm import load_pluau

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "luau" / "src").rglob("*.luau")) + sorted(
    (ROOT / "tests" / "luau").rglob("*.luau"))


def test_there_are_sources() -> None:
    names = {p.name for p in SOURCES}
    assert {"init.server.luau", "Schema.luau", "Sampler.luau", "Hub.luau"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_compiles(path: Path) -> None:
    pluau = load_pluau()
    compiler = pluau.Compiler(1, 1, 0, 0)
    bytecode = compiler.compile(path.read_text(encoding="utf-8"))
    assert len(bytecode) > 0
    assert bytecode[0] != 0  # version byte; 0 means the compiler returned an error blob


def test_compiler_reports_syntax_errors() -> None:
    pluau = load_pluau()
    with pytest.raises(RuntimeError, match="Expected"):
        pluau.Compiler(1, 1, 0, 0).compile("local x = ")
