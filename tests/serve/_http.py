"""Plain HTTP calls to a served app (urllib: no browser), returning status, headers, body."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


def request(base: str, path: str, *, token: str | None = None, method: str = "GET",
            headers: dict[str, str] | None = None, body: bytes | None = None
            ) -> tuple[int, dict[str, str], bytes]:
    """One request sent as given: `path` goes on the request line unnormalised, so `..` and
    `%2e%2e` reach the server exactly as a hostile client would send them."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    sent = {"Host": url.netloc, **(headers or {})}
    if token is not None:
        sent["X-STPE-Token"] = token
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in sent.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        conn.close()


def get_json(base: str, path: str, token: str | None, **options: Any) -> tuple[int, Any]:
    status, headers, body = request(base, path, token=token, **options)
    assert headers.get("content-type", "").startswith("application/json"), (status, body)
    return status, json.loads(body)
