"""Load pluau's native Luau VM module directly (its package `__init__` needs Python 3.12),
and convert values between Python and Luau."""

from __future__ import annotations

import glob
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pipeline._rbxmx import luau_source_dir


def load_pluau() -> ModuleType:
    """The `_pluau` extension module, or skip when pluau is not installed."""
    if "_pluau" in sys.modules:
        return sys.modules["_pluau"]
    spec = importlib.util.find_spec("pluau")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pluau is not installed: pip install 'stpe[test]'")
    found = []
    for folder in spec.submodule_search_locations:
        for pattern in ("_pluau*.so", "_pluau*.pyd"):
            found += glob.glob(str(Path(folder) / pattern))
    if not found:
        pytest.skip("pluau has no native _pluau module on this platform")
    native = importlib.util.spec_from_file_location("_pluau", found[0])
    module = importlib.util.module_from_spec(native)
    native.loader.exec_module(module)
    sys.modules["_pluau"] = module
    return module


# `script.Parent.X` and `require` for modules that only require each other
_LOADER = """
local sources = ...
local folder, cache = {}, {}
local function require(node)
    if cache[node] == nil then
        local fn = assert(loadstring(node.source, "=" .. node.name))
        setfenv(fn, setmetatable({ script = node, require = require }, { __index = getfenv(0) }))
        cache[node] = fn()
    end
    return cache[node]
end
for name, source in sources do
    folder[name] = { name = name, source = source, Parent = folder }
end
local modules = {}
for name in sources do
    modules[name] = require(folder[name])
end
return modules
"""


def load_modules(lua: Any, names: list[str]) -> Any:
    """The plugin's modules `names` (from luau/src), loaded in `lua` without a Roblox world:
    a table of name -> module. They may only require each other."""
    sources = lua.create_table()
    for name in names:
        sources.set(name, (luau_source_dir() / f"{name}.luau").read_text())
    return lua.load_chunk(_LOADER, name="=loader")(sources)[0]


def to_python(value: Any, depth: int = 0) -> Any:
    """A Luau value as plain Python: tables with keys 1..n become lists, others dicts."""
    pluau = load_pluau()
    if depth > 64:
        raise ValueError("table nesting deeper than 64")
    if isinstance(value, pluau.String):
        return value.as_bytes().decode("utf-8")
    if isinstance(value, pluau.Table):
        items = {to_python(k, depth + 1): to_python(v, depth + 1) for k, v in value}
        if items and all(isinstance(k, int) for k in items) and sorted(items) == list(
                range(1, len(items) + 1)):
            return [items[i] for i in range(1, len(items) + 1)]
        return items
    return value


def to_lua(lua: Any, value: Any) -> Any:
    """Plain Python (dict, list, str, numbers, bool, None) as a Luau value."""
    if isinstance(value, dict):
        table = lua.create_table()
        for k, v in value.items():
            table.set(to_lua(lua, k), to_lua(lua, v))
        return table
    if isinstance(value, list | tuple):
        table = lua.create_table()
        for v in value:
            table.raw_push(to_lua(lua, v))
        return table
    return value
