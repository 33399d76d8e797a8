"""The plugin type-checks in strict mode against Roblox's engine API (plugin security).

`luau-lsp analyze` gets the Roblox API definitions and a Rojo-style sourcemap built from
`luau/src` (so `script.Parent.X` resolves to `luau/src/X.luau`). The binary is looked for at
`$STPE_LUAU_LSP`, else `../shared/tools/luau-lsp/luau-lsp` beside the checkout, with the
definitions file `globalTypes.PluginSecurity.d.luau` in the same folder. Without it the
tests skip, unless `STPE_REQUIRE_LUAU_LSP=1` (set by CI), where absence is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline._rbxmx import _script_kind

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "luau" / "src"
DEFINITIONS = "globalTypes.PluginSecurity.d.luau"
ERROR_LINE = re.compile(r"^(?P<file>\S+).*\((?P<line>\d+),(?P<col>\d+)\): (?P<kind>\w+Error): ",
                        re.MULTILINE)


def _tool() -> tuple[Path, Path]:
    binary = Path(os.environ.get("STPE_LUAU_LSP") or ROOT.parent / "shared" / "tools"
                  / "luau-lsp" / "luau-lsp")
    definitions = binary.parent / DEFINITIONS
    if binary.is_file() and os.access(binary, os.X_OK) and definitions.is_file():
        return binary, definitions
    reason = (f"luau-lsp not found: need an executable {binary} and {definitions} "
              "(set STPE_LUAU_LSP to the binary)")
    if os.environ.get("STPE_REQUIRE_LUAU_LSP") == "1":
        pytest.fail(reason + "; STPE_REQUIRE_LUAU_LSP=1 makes this a failure")
    pytest.skip(reason)


def _node(path: Path) -> dict[str, Any] | None:
    if path.is_dir():
        return {"name": path.name, "className": "Folder", "filePaths": [],
                "children": [n for p in sorted(path.iterdir()) if (n := _node(p))]}
    kind = _script_kind(path)
    if kind is None:
        return None
    return {"name": kind[1], "className": kind[0],
            "filePaths": [str(path.relative_to(ROOT))], "children": []}


def sourcemap(src: Path) -> dict[str, Any]:
    """The plugin's instance tree as Rojo writes it: entry Script, one child per module."""
    entry = src / "init.server.luau"
    children = [n for p in sorted(src.iterdir()) if p != entry and (n := _node(p))]
    return {"name": "STPE", "className": "Script",
            "filePaths": [str(entry.relative_to(ROOT))], "children": children}


def analyze(src: Path, tmp_path: Path) -> tuple[int, list[str], str]:
    """Runs the checker over every file of `src`: exit code, error lines, whole output."""
    binary, definitions = _tool()
    smap = tmp_path / "sourcemap.json"
    smap.write_text(json.dumps(sourcemap(src)))
    files = sorted(str(p.relative_to(ROOT)) for p in src.rglob("*.luau"))
    proc = subprocess.run([str(binary), "analyze", f"--definitions=@roblox={definitions}",
                           f"--sourcemap={smap}", *files], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    output = proc.stdout + proc.stderr
    errors = sorted({m.group(0) for m in ERROR_LINE.finditer(output)})
    return proc.returncode, errors, output


def test_every_module_is_strict() -> None:
    missing = [p.name for p in SRC.rglob("*.luau")
               if not p.read_text(encoding="utf-8").startswith("--!strict")]
    assert missing == []


def test_plugin_has_no_type_errors(tmp_path: Path) -> None:
    code, errors, output = analyze(SRC, tmp_path)
    assert errors == [], output
    assert code == 0, output


def test_checker_catches_misuse_of_the_roblox_api(tmp_path: Path) -> None:
    """The same run flags a wrong call into the Roblox API, so a clean run means something."""
    bad = ROOT / "luau" / f".typecheck-{os.getpid()}"
    bad.mkdir()
    try:
        (bad / "init.server.luau").write_text(
            '--!strict\nlocal Probe = require(script.Probe)\nprint(Probe)\n')
        (bad / "Probe.luau").write_text(
            '--!strict\nlocal part = Instance.new("Part")\n'
            "part.Sizee = Vector3.new(1, 1, 1)\n"
            'plugin:SetSetting("x", 1, 2)\nreturn part\n')
        code, errors, output = analyze(bad, tmp_path)
    finally:
        for p in bad.iterdir():
            p.unlink()
        bad.rmdir()
    assert code != 0, output
    lines = {(Path(m.split()[0]).name, m.split("(")[-1].split(",")[0]) for m in errors}
    assert lines >= {("Probe.luau", "3"), ("Probe.luau", "4")}, output
