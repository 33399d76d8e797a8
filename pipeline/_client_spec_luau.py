"""The client state machine of `capture._client_spec` as a Luau module for the plugin, so the
table is written once: `luau/src/ClientSpec.luau` is this module's output, committed, and a
test fails when it differs from `render()`. Regenerate with
``python -m pipeline._client_spec_luau``.
"""

from __future__ import annotations

import typing
from pathlib import Path

from capture import _client_spec as spec
from pipeline._rbxmx import luau_source_dir

COMMAND = "python -m pipeline._client_spec_luau"


def _number(value: float) -> str:
    return repr(float(value)).removesuffix(".0")


def _union(kind: object) -> str:
    return " | ".join(f'"{v}"' for v in typing.get_args(kind))


def render() -> str:
    """The source of ClientSpec.luau for the current `client_spec()`."""
    data = spec.client_spec()
    backoff = data["backoff"]
    rows: dict[str, list[str]] = {}
    for t in data["transitions"]:
        rows.setdefault(t["state"], []).append(
            f'\t\t{t["event"]} = {{ next = "{t["next"]}", action = "{t["action"]}" }},')
    table = "\n".join(f"\t{state} = {{\n" + "\n".join(lines) + "\n\t},"
                      for state, lines in rows.items())
    retry = ", ".join(f"[{s}] = true" for s in data["retry_statuses"])
    delays = ", ".join(f"{name} = {_number(backoff[key])}"
                       for name, key in (("initial", "initial_s"), ("factor", "factor"),
                                         ("max", "max_s")))
    return f"""--!strict
--[[
	GENERATED from capture/_client_spec.py by `{COMMAND}`: do not edit.

	How the plugin talks to the receiver (docs/protocol.md, "Plugin behaviour expected by
	the receiver"): `transitions[state][event]` is the next state and the action for one
	request's outcome, classified by Protocol.classify. `stpe simulate` runs the same table.
]]

export type State = {_union(spec.State)}
export type Event = {_union(spec.Event)}
export type Action = {_union(spec.Action)}
export type Transition = {{ next: State, action: Action }}

local transitions: {{ [string]: {{ [string]: Transition }} }} = {{
{table}
}}

local ClientSpec = {{
	backoff = table.freeze({{ {delays} }}),
	retryStatuses = table.freeze({{ {retry} }}) :: {{ [number]: boolean }},
	transitions = transitions,
}}

for _, row in transitions do
	for _, transition in row do
		table.freeze(transition)
	end
	table.freeze(row)
end
table.freeze(transitions)

return table.freeze(ClientSpec)
"""


def target() -> Path:
    return luau_source_dir() / "ClientSpec.luau"


if __name__ == "__main__":
    target().write_text(render())
