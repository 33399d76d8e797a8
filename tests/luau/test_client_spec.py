"""The plugin's Uplink follows the client state machine of `capture._client_spec`, the one
`stpe simulate` runs: for every (state, event) of `client_spec()`, the real Uplink, Transport
and Protocol run in a Luau VM are driven into the state, a fake HttpService answers the next
request with an answer `classify` maps to the event, and what the plugin does next (its
state, its next request, the wait before it, that request's body, the message shown) is
checked against the table's next state and action."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from capture._client_spec import BACKOFF_FACTOR, BACKOFF_INITIAL_S, classify, client_spec
from pipeline._client_spec_luau import render, target
from tests.luau._vm import load_modules, load_pluau, to_lua, to_python

MODULES = ["ClientSpec", "Errors", "Json", "Log", "Outbox", "Pacing", "Probes", "Protocol",
           "Text", "Transport", "Uplink"]
LATENCY = 0.01  # seconds a request takes
DT = 0.005  # seconds between the loop's calls of step()
FIRST, SECOND = "first-session", "second-session"

# A stand-in for HttpService and the wiring the Hub does. RequestAsync
# (create.roblox.com/docs/reference/engine/classes/HttpService#RequestAsync) yields until a
# response arrives and returns its dictionary (Success, StatusCode, StatusMessage, Headers,
# Body) for any status; when no response comes (connection refused, reset, timeout) it raises
# an HttpError instead. JSONDecode raises on text that is not JSON.
RIG = """
local M, answer, decode, now, wallMs, sink = ...
local http = {}
function http:RequestAsync(request)
    local reply = answer(request.Url, request.Body)
    if reply == nil then
        error("HttpError: ConnectFail", 2)
    end
    return { Success = reply.status >= 200 and reply.status < 300, StatusCode = reply.status,
        StatusMessage = "status " .. reply.status, Headers = {}, Body = reply.body }
end
function http:JSONDecode(text)
    return decode(text)
end
local outbox = M.Outbox.new(1000, 1000000)
local uplink = M.Uplink.new({
    transport = M.Transport.new(http, { port = 34873, gzip = false }),
    outbox = outbox,
    log = M.Log.new(sink, now),
    now = now,
    wallMs = wallMs,
    rate = 1000, -- the request budget is not under test here
})
return uplink, outbox
"""

# one answer per event, found through classify so the table decides which status stands
# for which event (a status it maps to no event fails the test that needs it)
CANDIDATES: list[tuple[int | None, str | None]] = [
    (None, None), (200, None), (507, "storage_failed"), (404, "unknown_session"),
    (409, "session_closed"), (503, "busy"), (422, "invalid_samplebatch")]


def _answer_for(event: str) -> tuple[int | None, str | None]:
    for status, code in CANDIDATES:
        if classify(status, code) == event:
            return status, code
    pytest.fail(f"no answer in CANDIDATES is classified as {event!r}: add one")


@dataclass
class Request:
    start: float
    end: float
    path: str
    body: dict[str, Any]
    answer: tuple[int | None, str | None]


@dataclass
class Rig:
    """The Uplink in a bare Luau VM with a clock the test moves and a scripted receiver:
    normal answers, except the queued `overrides` for a path, used in order."""

    t: float = 100.0
    requests: list[Request] = field(default_factory=list)
    overrides: dict[str, list[tuple[int | None, str | None]]] = field(default_factory=dict)
    logs: list[tuple[str, str]] = field(default_factory=list)
    session: str = FIRST
    stored_through: int = -1

    def __post_init__(self) -> None:
        self.lua = load_pluau().Lua()
        lua = self.lua
        modules = load_modules(lua, MODULES)

        def fn(callback: Any) -> Any:
            return lua.create_function(lambda _lua, args: [callback(*args)])

        rig = lua.load_chunk(RIG, name="=rig")
        self.uplink, self.outbox = rig(
            modules, fn(self._answer), fn(lambda text: to_lua(lua, json.loads(str(text)))),
            fn(lambda: self.t), fn(lambda: 1_700_000_000_000 + self.t * 1000),
            fn(lambda level, message: self.logs.append((str(level), str(message)))))

    def _reply(self, path: str, body: dict[str, Any], status: int | None,
               code: str | None) -> dict[str, Any] | None:
        if status is None:
            return None
        if status != 200:
            return {"status": status, "body": json.dumps(
                {"error": {"code": code, "message": f"the test answers {status} {code}"}})}
        if path == "/v1/hello":
            reply = {"session": self.session, "receiver_version": "t", "protocol": 1,
                     "stored_through": -1, "next_seq": 7}
        elif path == "/v1/sync":
            reply = {"t0": body["t0"], "t1_ns": 5, "t2_ns": 6, "id": body["id"]}
        elif path == "/v1/samples":
            if body["samples"]:
                self.stored_through = body["samples"][-1]["seq"]
            reply = {"session": body["session"], "stored_through": self.stored_through,
                     "accepted": len(body["samples"]), "duplicates": 0}
        else:
            reply = {"session": body["session"], "stored_through": self.stored_through}
        return {"status": 200, "body": json.dumps(reply)}

    def _answer(self, url: Any, text: Any) -> Any:
        path = "/" + str(url).split("/", 3)[3]
        body = json.loads(str(text))
        queued = self.overrides.get(path)
        status, code = queued.pop(0) if queued else (200, None)
        start = self.t
        self.t += LATENCY  # the request takes time; the answer comes after it
        self.requests.append(Request(start, self.t, path, body, (status, code)))
        return to_lua(self.lua, self._reply(path, body, status, code))

    def call(self, name: str, *args: Any) -> Any:
        return self.uplink.get(name)(self.uplink, *[to_lua(self.lua, a) for a in args])

    def push(self, first: int, last: int) -> None:
        push = self.outbox.get("push")
        for seq in range(first, last + 1):
            push(self.outbox, seq, json.dumps({"seq": seq}))

    def status(self) -> dict[str, Any]:
        return to_python(self.uplink.get("status"))

    def run(self, seconds: float, until: Any = None) -> None:
        """Calls step() every DT for `seconds`, or until `until()` is true after a step."""
        end = self.t + seconds
        while self.t < end:
            self.t += DT
            self.call("step")
            if until is not None and until():
                return

    def after(self, request: Request, path: str | None = None) -> list[Request]:
        later = self.requests[self.requests.index(request) + 1:]
        return [r for r in later if path is None or r.path == path]

    def last(self, path: str) -> Request:
        return [r for r in self.requests if r.path == path][-1]


def _start(rig: Rig) -> None:
    rig.call("start", {"placeId": 1, "placeName": "P", "viewport": [800, 600], "play": "p1"})


def _into(state: str, answer: tuple[int | None, str | None]) -> tuple[Rig, Request]:
    """A rig whose next request in `state` gets `answer`, run until it got it: in hello the
    first hello; in sending the second batch (seqs 5..9; the first, 0..4, is stored)."""
    rig = Rig()
    rig.push(0, 4)
    if state == "hello":
        rig.overrides["/v1/hello"] = [answer]
        _start(rig)
        rig.run(1.0, until=lambda: bool(rig.requests))
        return rig, rig.requests[0]
    assert state == "sending", f"no way into state {state!r}: teach _into"
    _start(rig)
    # hello, the opening burst of clock probes and the first batch
    rig.run(2.0, until=lambda: rig.stored_through == 4 and sum(
        r.path == "/v1/sync" for r in rig.requests) == 5)
    assert rig.status()["state"] == "sending" and rig.status()["session"] == FIRST
    rig.push(5, 9)
    rig.overrides["/v1/samples"] = [answer]
    count = len(rig.requests)
    rig.run(1.0, until=lambda: any(r.path == "/v1/samples" for r in rig.requests[count:]))
    trigger = rig.last("/v1/samples")
    assert trigger.answer == answer and trigger.body["seq_first"] == 5
    return rig, trigger


def _seqs(request: Request) -> list[int]:
    return [s["seq"] for s in request.body["samples"]]


def _check_adopt(rig: Rig, trigger: Request) -> None:
    rig.run(1.0)
    assert to_python(rig.uplink.get("nextSeq")) == 7  # the reply's next_seq, for the Hub
    assert "outage" not in trigger.body
    nxt = rig.after(trigger)[0]
    assert nxt.path in ("/v1/sync", "/v1/samples") and nxt.body["session"] == FIRST
    first_batch = rig.after(trigger, "/v1/samples")[0]
    assert first_batch.body["seq_first"] == 0 and first_batch.body["session"] == FIRST


def _check_settle(rig: Rig, trigger: Request) -> None:
    rig.push(10, 14)
    rig.run(1.0)
    batches = rig.after(trigger, "/v1/samples")
    assert batches and _seqs(batches[0]) == [10, 11, 12, 13, 14]  # 5..9 never sent again
    assert all(min(_seqs(b), default=10) >= 10 for b in batches)
    assert rig.status()["sent"] == 15 and rig.status()["storedThrough"] == 14


def _check_discard(rig: Rig, trigger: Request) -> None:
    rig.push(10, 14)
    rig.run(1.0)
    nxt = rig.after(trigger, "/v1/samples")[0]
    assert nxt.start - trigger.end < BACKOFF_INITIAL_S  # no wait: the queue goes on
    assert _seqs(nxt) == [10, 11, 12, 13, 14]  # the refused batch is never resent ...
    assert nxt.body["dropped"] == [{"first": 5, "last": 9}]  # ... but reported as dropped
    assert rig.status()["rejected"] == 5
    assert any("the test answers" in m and "5 samples (seq 5..9)" in m for _, m in rig.logs)


def _check_backoff(rig: Rig, trigger: Request) -> None:
    # the same request again after the backoff; a second failure doubles the wait
    rig.overrides[trigger.path] = [trigger.answer]
    rig.run(1.0)
    again = rig.after(trigger, trigger.path)
    assert len(again) >= 2
    gaps = [again[0].start - trigger.end, again[1].start - again[0].end]
    for gap, wait in zip(gaps, [BACKOFF_INITIAL_S, BACKOFF_INITIAL_S * BACKOFF_FACTOR],
                         strict=True):
        assert wait - 1e-9 <= gap < wait + DT + 1e-9
    assert not [r for r in rig.after(trigger) if r.start < again[0].start]  # nothing between
    if trigger.path == "/v1/samples":
        for retry in again[:2]:
            assert _seqs(retry) == _seqs(trigger) and retry.body["session"] == FIRST
            assert retry.body["sent_client"] > trigger.body["sent_client"]
    else:
        assert all(r.path == "/v1/hello" for r in again[:2])


def _check_outage(rig: Rig, trigger: Request) -> None:
    # hello at once, carrying the outage; a failed hello keeps it; an answered one joins the
    # new session, resends what was not stored, and forgets it
    rig.session = SECOND
    rig.overrides["/v1/hello"] = [(None, None)]
    rig.run(1.0, until=lambda: len(rig.after(trigger, "/v1/samples")) >= 1)
    hellos = rig.after(trigger, "/v1/hello")
    assert rig.after(trigger)[0] is hellos[0]
    assert hellos[0].start - trigger.end < DT + 1e-9  # at once, no backoff
    expected = {"since_client": pytest.approx(trigger.end),
                "since_wall_ms": int(1_700_000_000_000 + trigger.end * 1000),
                "session": FIRST, "stored_through": 4}
    assert hellos[0].body["outage"] == expected
    assert hellos[1].body["outage"] == expected  # remembered once, not moved
    assert hellos[1].start - hellos[0].end >= BACKOFF_INITIAL_S - 1e-9
    assert hellos[1].body["client_clock"] == pytest.approx(hellos[1].start)  # now, not the start
    resent = rig.after(hellos[1], "/v1/samples")[0]
    assert resent.body["session"] == SECOND and _seqs(resent) == [5, 6, 7, 8, 9]
    # lose the second session too: the new outage names it, not the first
    rig.overrides["/v1/samples"] = [(None, None)]
    rig.push(10, 12)
    rig.run(1.0, until=lambda: len(rig.after(resent, "/v1/hello")) >= 1)
    outage = rig.after(resent, "/v1/hello")[0].body["outage"]
    assert outage["session"] == SECOND and outage["stored_through"] == 9


def _check_report(rig: Rig, trigger: Request) -> None:
    rig.run(3.0)
    assert rig.after(trigger) == []  # nothing more is sent
    status = rig.status()
    assert status["state"] == "stopped" and status["connected"] is False
    shown = [m for level, m in rig.logs if level == "warn" and "the test answers" in m]
    assert len(shown) == 1 and status["lastError"] == shown[0]
    assert f"HTTP {trigger.answer[0]}" in shown[0]
    rig.push(10, 14)
    rig.call("stop", 14)
    rig.run(1.0)
    assert rig.after(trigger) == []  # not even a bye


CHECKS = {"adopt": _check_adopt, "settle": _check_settle, "discard": _check_discard,
          "backoff": _check_backoff, "outage": _check_outage, "report": _check_report}
TRANSITIONS = client_spec()["transitions"]


@pytest.mark.parametrize("row", TRANSITIONS, ids=[f"{t['state']}-{t['event']}"
                                                   for t in TRANSITIONS])
def test_the_plugin_follows_every_transition(row: dict[str, str]) -> None:
    answer = _answer_for(row["event"])
    rig, trigger = _into(row["state"], answer)
    assert rig.status()["state"] == row["next"]
    check = CHECKS.get(row["action"])
    assert check is not None, f"no check for action {row['action']!r}: add one"
    check(rig, trigger)


def test_answers_are_classified_as_the_spec_does() -> None:
    lua = load_pluau().Lua()
    luau_classify = load_modules(lua, MODULES).get("Protocol").get("classify")
    codes = [None, "unknown_session", "not_found", "session_closed", "storage_failed", "busy"]
    for status in [None, *range(100, 600)]:
        for code in codes:
            got = to_python(luau_classify(status, code)[0])
            assert got == classify(status, code), (status, code)


def test_the_generated_module_is_current() -> None:
    assert target().read_text() == render(), (
        "luau/src/ClientSpec.luau differs from capture/_client_spec.py: "
        "run `python -m pipeline._client_spec_luau`")
