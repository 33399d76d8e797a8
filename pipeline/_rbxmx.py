"""Build the Luau plugin in `luau/src` into one Roblox XML model (.rbxmx) and install it.

The tree mirrors the folder, as Rojo does: `init.server.luau` at the top is the plugin's
Script (named STPE), `X.luau` a ModuleScript, `X.server.luau` a Script, `X.client.luau` a
LocalScript, a folder with `init.luau` that folder's ModuleScript, any other folder a
Folder. The output is reproducible: children sorted by name, referents numbered in tree
order, no timestamps, so the same sources always give the same bytes.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from pipeline._errors import PipelineError

PLUGIN_NAME = "STPE"
PLUGIN_FILE = "STPE.rbxmx"
ENV_PLUGIN_DIR = "STPE_PLUGIN_DIR"
_SUFFIXES = ((".server.luau", "Script"), (".client.luau", "LocalScript"), (".luau", "ModuleScript"))


@dataclass(frozen=True)
class Node:
    """One instance of the model: its class, name, source (scripts) and children."""

    class_name: str
    name: str
    source: str | None = None
    children: tuple[Node, ...] = field(default_factory=tuple)


def luau_source_dir() -> Path:
    """`luau/src` beside the packages (a repo checkout or an editable install)."""
    src = Path(__file__).resolve().parent.parent / "luau" / "src"
    if not (src / "init.server.luau").is_file():
        raise PipelineError(f"the plugin sources are missing: expected {src}/init.server.luau; "
                            "run stpe from a checkout of the repository (pip install -e .)")
    return src


def _script_kind(path: Path) -> tuple[str, str] | None:
    for suffix, class_name in _SUFFIXES:
        if path.name.endswith(suffix):
            return class_name, path.name[: -len(suffix)]
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path} is not UTF-8 text ({exc}); save it as UTF-8") from None


def _children(folder: Path, skip: Path | None = None) -> tuple[Node, ...]:
    nodes = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path == skip or path.name.startswith("."):
            continue
        if path.is_dir():
            nodes.append(_folder_node(path))
        elif (kind := _script_kind(path)) is not None:
            nodes.append(Node(kind[0], kind[1], _read(path)))
    return tuple(nodes)


def _folder_node(folder: Path) -> Node:
    init = next((folder / f"init{s}" for s, _ in _SUFFIXES if (folder / f"init{s}").is_file()),
                None)
    if init is None:
        return Node("Folder", folder.name, None, _children(folder))
    class_name, _ = _script_kind(init) or ("ModuleScript", "")
    return Node(class_name, folder.name, _read(init), _children(folder, skip=init))


def plugin_tree(src: Path) -> Node:
    """The instance tree of the plugin whose entry is `src/init.server.luau`."""
    entry = src / "init.server.luau"
    if not entry.is_file():
        raise PipelineError(f"{entry} is missing: the plugin needs its entry Script there")
    return Node("Script", PLUGIN_NAME, _read(entry), _children(src, skip=entry))


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _write(node: Node, depth: int, counter: list[int], out: list[str]) -> None:
    pad = "\t" * depth
    referent = f"RBX{counter[0]:04d}"
    counter[0] += 1
    out.append(f'{pad}<Item class="{node.class_name}" referent="{referent}">')
    out.append(f"{pad}\t<Properties>")
    out.append(f'{pad}\t\t<string name="Name">{escape(node.name)}</string>')
    if node.source is not None:
        out.append(f'{pad}\t\t<ProtectedString name="Source">{_cdata(node.source)}'
                   "</ProtectedString>")
    out.append(f"{pad}\t</Properties>")
    for child in node.children:
        _write(child, depth + 1, counter, out)
    out.append(f"{pad}</Item>")


def render_rbxmx(root: Node) -> bytes:
    """The Roblox XML model (version 4) of `root`, byte-for-byte reproducible."""
    out = ['<roblox xmlns:xmime="http://www.w3.org/2005/05/xmlmime" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:noNamespaceSchemaLocation="http://www.roblox.com/roblox.xsd" version="4">']
    _write(root, 1, [0], out)
    out.append("</roblox>")
    return ("\n".join(out) + "\n").encode("utf-8")


def build_plugin(out: Path, src: Path | None = None) -> Path:
    """Write the plugin model to `out` (atomically) and return its path."""
    out = Path(out)
    if out.is_dir():
        raise PipelineError(f"{out} is a folder; pass the .rbxmx file to write, "
                            f"e.g. {out / PLUGIN_FILE}")
    data = render_rbxmx(plugin_tree(src or luau_source_dir()))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out


def studio_plugin_dir(explicit: Path | None = None, platform: str | None = None) -> Path:
    """Where Studio loads local plugins: `explicit`, else $STPE_PLUGIN_DIR, else the
    platform's folder (Windows %LOCALAPPDATA%\\Roblox\\Plugins, macOS
    ~/Documents/Roblox/Plugins); Linux has no Studio, so it needs one of the first two."""
    if explicit is not None:
        return Path(explicit)
    if env := os.environ.get(ENV_PLUGIN_DIR):
        return Path(env)
    platform = platform or sys.platform
    if platform.startswith("win"):
        local = os.environ.get("LOCALAPPDATA")
        if not local:
            raise PipelineError("LOCALAPPDATA is not set, so the Studio plugins folder is unknown; "
                                f"pass --dir or set {ENV_PLUGIN_DIR}")
        return Path(local) / "Roblox" / "Plugins"
    if platform == "darwin":
        return Path.home() / "Documents" / "Roblox" / "Plugins"
    raise PipelineError(f"Roblox Studio has no plugins folder on {platform}; pass --dir FOLDER "
                        f"or set {ENV_PLUGIN_DIR} to the Plugins folder of the machine that "
                        "runs Studio")


def install_plugin(target_dir: Path, src: Path | None = None) -> Path:
    """Build the plugin and copy it into `target_dir` (created if missing)."""
    target_dir = Path(target_dir)
    if target_dir.exists() and not target_dir.is_dir():
        raise PipelineError(f"{target_dir} is a file, not a folder; pass the Plugins folder")
    target_dir.mkdir(parents=True, exist_ok=True)
    built = build_plugin(target_dir / (PLUGIN_FILE + ".build"), src)
    final = target_dir / PLUGIN_FILE
    shutil.move(built, final)
    return final
