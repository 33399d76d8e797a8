"""Test helpers: a receiver on a fresh session and a plain HTTP client for it."""

from __future__ import annotations

import gzip
import http.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from capture import SessionWriter
from capture._layout import EVENTS, MANIFEST, STATE, SYNC
from tests.conftest import make_sample

LOGS = (MANIFEST, STATE, SYNC, EVENTS)

# any JSON value, nested a little: what a hostile or broken client may put in a field
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Reply:
    """One request on a fresh connection (so a refused body never poisons the next one)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, orjson.loads(data) if data else {},
                     {k.lower(): v for k, v in response.getheaders()})
    finally:
        conn.close()


def post(port: int, path: str, payload: Any, *, token: str | None = None, gzipped: bool = False,
         headers: dict[str, str] | None = None) -> Reply:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    all_headers = {"Content-Type": "application/json"}
    if gzipped:
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    if token is not None:
        all_headers["X-STPE-Token"] = token
    all_headers.update(headers or {})
    return request(port, "POST", path, body, all_headers)


def hello(session: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": "stpe.hello/1", "plugin_version": "0.1.0",
                            "place_id": 42, "place_name": "Test Place",
                            "datamodel": "simulated", "viewport": [1280.0, 720.0],
                            "client_clock": 12.5, "wall_ms": 1_700_000_000_000}
    if session is not None:
        body["session"] = session
    return body


def batch(session: str, seqs: list[int], **fields: Any) -> dict[str, Any]:
    return {"schema": "stpe.sample/1", "session": session, "seq_first": seqs[0] if seqs else 0,
            "samples": [make_sample(s, s / 60) for s in seqs], "sent_client": 100.0,
            "sent_wall_ms": 1_700_000_000_000, **fields}


def snapshot(writer: SessionWriter) -> dict[str, bytes]:
    """The bytes of every log of the session (absent files as b"")."""
    root = Path(writer.path)
    return {name: (root / name).read_bytes() if (root / name).exists() else b""
            for name in LOGS}
