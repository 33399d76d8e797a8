"""The plugin's pure modules in a bare Luau VM: no Roblox globals beyond the language."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.luau._vm import load_modules, load_pluau

SPECS = Path(__file__).resolve().parent / "specs" / "pure.spec.luau"
PURE = ["ClientSpec", "Errors", "Json", "Outbox", "Pacing", "Probes", "Protocol", "Text",
        "Timecode"]


def _specs() -> tuple[object, list[str], object]:
    """The spec table, its sorted names and the VM (which must outlive the table)."""
    pluau = load_pluau()
    lua = pluau.Lua()
    modules = load_modules(lua, PURE)
    specs = lua.load_chunk(SPECS.read_text(), name="=pure.spec")()[0](modules)[0]
    return specs, sorted(str(k) for k, _ in specs), lua


NAMES = [
    "errors_classify_and_format", "hello_reply_gives_next_seq_for_a_new_play",
    "json_null_escapes_and_order", "names_are_cut_on_a_utf8_character_boundary",
    "outbox_bounded_with_ranges", "pacing_bucket_and_backoff", "probes_keep_consistent_replies",
    "protocol_mismatch_prints_both_versions", "timecode_golden_values",
    "timecode_grid_and_rejections", "timecode_modes",
]


def test_every_spec_is_listed() -> None:
    assert _specs()[1] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_spec(name: str) -> None:
    specs, _, _lua = _specs()
    specs.get(name)()


def test_decode_called_from_python_refuses_an_all_black_row() -> None:
    pluau = load_pluau()
    lua = pluau.Lua()
    check = lua.load_chunk("local t = ...; return t.Timecode.decode", name="=probe")
    modules = load_modules(lua, PURE)
    decode = check(modules)[0]
    row = lua.create_table()
    for _ in range(38):
        row.raw_push(0)
    assert decode(row) == [None]
