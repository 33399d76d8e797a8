"""The client state machine spec: complete, and classifying answers as docs/protocol.md says."""

from __future__ import annotations

import json
import typing

import pytest

from capture import _client_spec as spec


def test_every_state_answers_every_event():
    events = typing.get_args(spec.Event)
    for state in ("hello", "sending"):
        for event in events:
            following, action = spec.step(state, event)
            assert following in typing.get_args(spec.State)
            assert action in typing.get_args(spec.Action)


@pytest.mark.parametrize(("status", "code", "event"), [
    (None, None, "unreachable"), (200, None, "ok"), (507, "storage_failed", "storage_failed"),
    (404, "unknown_session", "unknown_session"), (404, "not_found", "refused"),
    (409, "session_closed", "session_closed"), (408, "body_timeout", "retry"),
    (429, None, "retry"), (500, "internal_error", "retry"), (503, "busy", "retry"),
    (504, None, "retry"), (400, "invalid_json", "refused"), (413, "body_too_large", "refused"),
    (422, "invalid_samplebatch", "refused"), (401, "token_refused", "refused"),
])
def test_answers_are_classified_as_documented(status, code, event):
    assert spec.classify(status, code) == event


def test_the_documented_table():
    # docs/protocol.md, "Plugin behaviour expected by the receiver"
    assert spec.step("sending", "unreachable") == ("hello", "outage")
    assert spec.step("sending", "unknown_session") == ("hello", "outage")
    assert spec.step("sending", "storage_failed") == ("stopped", "report")
    assert spec.step("sending", "refused") == ("sending", "discard")
    assert spec.step("hello", "unreachable") == ("hello", "backoff")
    assert spec.step("hello", "refused") == ("stopped", "report")
    backoffs = [spec.BACKOFF_INITIAL_S]
    while backoffs[-1] < spec.BACKOFF_MAX_S:
        backoffs.append(spec.next_backoff(backoffs[-1]))
    assert backoffs == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]


def test_the_spec_travels_as_json():
    data = json.loads(json.dumps(spec.client_spec()))
    table = {(t["state"], t["event"]): (t["next"], t["action"]) for t in data["transitions"]}
    assert table == spec.TRANSITIONS
    assert data["backoff"] == {"initial_s": 0.05, "factor": 2.0, "max_s": 2.0}
