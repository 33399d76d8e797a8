"""How a plugin talks to the receiver, as data: the states, how each answer is classified,
the transitions and the backoff.

Both clients follow this one table: `SimulatedPlugin` (and so `stpe simulate`) runs it
directly, and the Luau plugin's tests can load `client_spec()` (plain JSON-ready data) and
drive the plugin through every transition, so the two cannot drift apart.

States: ``hello`` (saying hello until a receiver answers), ``sending`` (posting batches in
seq order), ``stopped`` (final). Events are what one request's outcome is classified as
(`classify`). Actions name what the client does on a transition:

- ``adopt``: take the reply's session; on the first hello of a Play, number its samples
  from ``next_seq``; a later hello keeps the Play's own seq counter (it never goes back).
- ``settle``: forget the acknowledged samples; reset the backoff.
- ``backoff``: wait the current backoff, then double it (up to the maximum) and retry.
- ``outage``: remember when the receiver was last reachable (client clock, wall clock, the
  session and what it had stored), unless already remembered; say hello again at once. The
  next hello carries it as ``outage`` and the receiver records it in the new session.
- ``discard``: the batch was refused for good: forget it, count it, go on.
- ``report``: show the error message to the user and stop.
"""

from __future__ import annotations

from typing import Any, Literal

State = Literal["hello", "sending", "stopped"]
Event = Literal["ok", "unreachable", "retry", "unknown_session", "session_closed",
                "storage_failed", "refused"]
Action = Literal["adopt", "settle", "backoff", "outage", "discard", "report"]

BACKOFF_INITIAL_S = 0.05
BACKOFF_FACTOR = 2.0
BACKOFF_MAX_S = 2.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

TRANSITIONS: dict[tuple[State, Event], tuple[State, Action]] = {
    ("hello", "ok"): ("sending", "adopt"),
    ("hello", "unreachable"): ("hello", "backoff"),
    ("hello", "retry"): ("hello", "backoff"),
    ("hello", "session_closed"): ("hello", "backoff"),  # until a new recording starts
    ("hello", "unknown_session"): ("stopped", "report"),  # the session asked for is gone
    ("hello", "storage_failed"): ("stopped", "report"),
    ("hello", "refused"): ("stopped", "report"),
    ("sending", "ok"): ("sending", "settle"),
    ("sending", "unreachable"): ("hello", "outage"),  # a restarted receiver: join it
    ("sending", "retry"): ("sending", "backoff"),
    ("sending", "unknown_session"): ("hello", "outage"),
    ("sending", "session_closed"): ("hello", "outage"),
    ("sending", "storage_failed"): ("stopped", "report"),
    ("sending", "refused"): ("sending", "discard"),
}


def classify(status: int | None, code: str | None = None) -> Event:
    """The event for one request's outcome: `status` None when no HTTP answer came (refused
    connection, reset, timeout), else the status and the ErrorReply's `error.code`."""
    if status is None:
        return "unreachable"
    if status == 200:
        return "ok"
    if status == 507:
        return "storage_failed"
    if status == 404 and code == "unknown_session":
        return "unknown_session"
    if status == 409:
        return "session_closed"
    if status in RETRY_STATUSES:
        return "retry"
    return "refused"


def step(state: State, event: Event) -> tuple[State, Action]:
    """The next state and the action for `event` in `state`."""
    return TRANSITIONS[(state, event)]


def next_backoff(current_s: float) -> float:
    return min(current_s * BACKOFF_FACTOR, BACKOFF_MAX_S)


def client_spec() -> dict[str, Any]:
    """The whole spec as JSON-ready data (for the Luau plugin's tests)."""
    return {
        "backoff": {"initial_s": BACKOFF_INITIAL_S, "factor": BACKOFF_FACTOR,
                    "max_s": BACKOFF_MAX_S},
        "retry_statuses": sorted(RETRY_STATUSES),
        "transitions": [{"state": s, "event": e, "next": n, "action": a}
                        for (s, e), (n, a) in TRANSITIONS.items()],
    }
