"""`stpe plugin build|install`: one reproducible .rbxmx whose tree and sources mirror luau/src."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline._errors import PipelineError
from pipeline._rbxmx import (
    build_plugin,
    install_plugin,
    luau_source_dir,
    plugin_tree,
    render_rbxmx,
    studio_plugin_dir,
)
from pipeline.cli import cli

SRC = Path(__file__).resolve().parents[2] / "luau" / "src"


def _items(element: ET.Element) -> list[ET.Element]:
    return element.findall("Item")


def _prop(item: ET.Element, tag: str, name: str) -> str:
    found = item.find(f"Properties/{tag}[@name='{name}']")
    return "" if found is None or found.text is None else found.text


def test_build_tree_and_sources_equal_luau_src(tmp_path: Path) -> None:
    out = build_plugin(tmp_path / "STPE.rbxmx")
    root = ET.parse(out).getroot()
    assert root.tag == "roblox" and root.get("version") == "4"
    (script,) = _items(root)
    assert script.get("class") == "Script"
    assert _prop(script, "string", "Name") == "STPE"
    assert _prop(script, "ProtectedString", "Source") == (SRC / "init.server.luau").read_text()
    modules = {_prop(i, "string", "Name"): i for i in _items(script)}
    expected = sorted(p.name.removesuffix(".luau") for p in SRC.glob("*.luau")
                      if p.name != "init.server.luau")
    assert sorted(modules) == expected
    assert list(modules) == expected  # children written in sorted order
    for name, item in modules.items():
        assert item.get("class") == "ModuleScript"
        assert _prop(item, "ProtectedString", "Source") == (SRC / f"{name}.luau").read_text()
    referents = [i.get("referent") for i in root.iter("Item")]
    assert len(set(referents)) == len(referents) == len(expected) + 1


def test_build_is_reproducible(tmp_path: Path) -> None:
    a = build_plugin(tmp_path / "a.rbxmx").read_bytes()
    b = build_plugin(tmp_path / "b.rbxmx").read_bytes()
    assert a == b


def test_folders_init_and_cdata_terminator(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "Net" / "Codec").mkdir(parents=True)
    (src / "init.server.luau").write_text("require(script.Net)\n")
    (src / "Net" / "init.luau").write_text("return { s = [[a]]..']]>' }\n")
    (src / "Net" / "Http.luau").write_text("return 1\n")
    (src / "Net" / "Codec" / "Gzip.luau").write_text("return 2\n")
    (src / "Hud.client.luau").write_text("print('hud')\n")
    (src / "notes.txt").write_text("ignored\n")
    root = ET.fromstring(render_rbxmx(plugin_tree(src)))
    (script,) = _items(root)
    children = {_prop(i, "string", "Name"): i for i in _items(script)}
    assert {n: i.get("class") for n, i in children.items()} == {
        "Hud": "LocalScript", "Net": "ModuleScript"}
    net = children["Net"]
    assert _prop(net, "ProtectedString", "Source") == "return { s = [[a]]..']]>' }\n"
    grand = {_prop(i, "string", "Name"): i.get("class") for i in _items(net)}
    assert grand == {"Codec": "Folder", "Http": "ModuleScript"}
    (gzip,) = _items(_items(net)[0])
    assert _prop(gzip, "ProtectedString", "Source") == "return 2\n"


def test_missing_entry_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"init\.server\.luau is missing"):
        plugin_tree(tmp_path)
    (tmp_path / "init.server.luau").write_text("return 1\n")
    (tmp_path / "Bad.luau").write_bytes(b"\xff\xfe return")
    with pytest.raises(PipelineError, match="not UTF-8"):
        build_plugin(tmp_path / "out" / "x.rbxmx", tmp_path)
    assert not (tmp_path / "out" / "x.rbxmx").exists()


def test_source_dir_found_from_the_package() -> None:
    assert luau_source_dir() == SRC


def test_cli_build(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "p.rbxmx"
    result = CliRunner().invoke(cli, ["plugin", "build", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "built" in result.output and out.read_bytes() == render_rbxmx(plugin_tree(SRC))


def test_cli_install_into_dir_creates_it(tmp_path: Path) -> None:
    target = tmp_path / "Roblox" / "Plugins"
    result = CliRunner().invoke(cli, ["plugin", "install", "--dir", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "STPE.rbxmx").read_bytes() == render_rbxmx(plugin_tree(SRC))
    assert sorted(p.name for p in target.iterdir()) == ["STPE.rbxmx"]
    assert "installed" in result.output and "STPE.rbxmx" in result.output


def test_install_dir_from_env_and_platforms(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STPE_PLUGIN_DIR", raising=False)
    with pytest.raises(PipelineError, match="--dir FOLDER or set STPE_PLUGIN_DIR"):
        studio_plugin_dir(platform="linux")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "AppData"))
    assert studio_plugin_dir(platform="win32") == tmp_path / "AppData" / "Roblox" / "Plugins"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert studio_plugin_dir(platform="darwin") == tmp_path / "Documents" / "Roblox" / "Plugins"
    monkeypatch.setenv("STPE_PLUGIN_DIR", str(tmp_path / "env"))
    assert studio_plugin_dir(platform="linux") == tmp_path / "env"
    assert studio_plugin_dir(tmp_path / "flag", platform="linux") == tmp_path / "flag"


def test_install_refuses_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "Plugins"
    target.write_text("not a folder")
    with pytest.raises(PipelineError, match="is a file"):
        install_plugin(target)
    assert target.read_text() == "not a folder"


def test_cli_install_on_linux_without_dir_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STPE_PLUGIN_DIR", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    result = CliRunner().invoke(cli, ["plugin", "install"])
    assert result.exit_code != 0
    assert isinstance(result.exception, PipelineError)
    assert "STPE_PLUGIN_DIR" in str(result.exception)


def test_build_into_a_folder_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["plugin", "build", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output
    with pytest.raises(PipelineError, match=r"is a folder; pass the \.rbxmx file"):
        build_plugin(tmp_path)
    assert list(tmp_path.iterdir()) == []
