"""The receiver's limits on real sockets: connections, header and body times, bytes in
flight; aiohttp's own refusals as JSON; a client gone mid-body logged as one line."""

from __future__ import annotations

import gzip
import logging
import socket
import time

import orjson
import pytest

from capture import Limits, ReceiverThread, Session, SessionWriter
from capture._wire import ErrorReply
from tests.capture._rx import batch, post, request, snapshot


@pytest.fixture
def writer(tmp_path):
    with SessionWriter.create(tmp_path, "s") as session_writer:
        yield session_writer


def _raw(port: int, data: bytes, *, wait_s: float = 10.0) -> tuple[int, dict]:
    """Send raw bytes, read the whole answer (the receiver closes the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"application/json" in head.lower(), head
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def _header(length: int, path: str = "/v1/samples") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


@pytest.mark.parametrize(("raw", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
     431),
    (b"POST /v1/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n", 400),
])
def test_aiohttp_refusals_are_json_error_replies(writer, raw, status):
    with ReceiverThread(writer, port=0) as rx:
        before = snapshot(writer)
        got, body = _raw(rx.port, raw)
        assert snapshot(writer) == before
    assert got in (status, 400)
    assert ErrorReply.model_validate(body).error.code == "bad_http"


def test_a_client_gone_mid_body_is_one_log_line_and_nothing_written(writer, caplog):
    whole = orjson.dumps(batch("s", [0, 1, 2]))
    with ReceiverThread(writer, port=0) as rx:
        before = snapshot(writer)
        with caplog.at_level(logging.INFO, logger="capture"):
            with socket.create_connection(("127.0.0.1", rx.port)) as sock:
                sock.sendall(_header(len(whole)) + whole[: len(whole) // 2])
            deadline = time.monotonic() + 10
            while not caplog.records and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
        assert post(rx.port, "/v1/samples", batch("s", [0, 1, 2])).status == 200
    records = [r for r in caplog.records if r.name.startswith("capture")]
    assert len(records) == 1 and records[0].levelno == logging.INFO, records
    assert "client disconnected" in records[0].getMessage() and not records[0].exc_info
    assert snapshot(writer)["state.jsonl"] != before["state.jsonl"]  # the retry stored it


def test_a_silent_connection_is_closed_after_the_header_time(writer):
    with ReceiverThread(writer, port=0, limits=Limits(header_timeout_s=0.5)) as rx, \
            socket.create_connection(("127.0.0.1", rx.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/samples HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the receiver, without an answer
        waited = time.monotonic() - started
    assert 0.3 < waited < 5


def test_a_stalled_body_is_refused_after_the_body_time(writer):
    with ReceiverThread(writer, port=0, limits=Limits(body_timeout_s=0.5)) as rx:
        before = snapshot(writer)
        with socket.create_connection(("127.0.0.1", rx.port), timeout=10) as sock:
            sock.sendall(_header(10_000) + b'{"schema": ')
            answer = sock.recv(65536)
        assert snapshot(writer) == before
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert orjson.loads(body)["error"]["code"] == "body_timeout"


def test_bytes_in_flight_are_bounded(writer):
    limits = Limits(max_bytes_in_flight=300_000, body_timeout_s=5)
    with ReceiverThread(writer, port=0, limits=limits) as rx, \
            socket.create_connection(("127.0.0.1", rx.port), timeout=10) as slow:
        slow.sendall(_header(200_000) + b"{")  # holds 200 kB of the budget while it stalls
        time.sleep(0.3)
        refused = post(rx.port, "/v1/samples", b"{" + b" " * 150_000 + b"}")
        small = post(rx.port, "/v1/samples", batch("s", [0]))
    assert refused.status == 503 and refused.body["error"]["code"] == "busy"
    assert small.status == 200


def test_idle_connections_cannot_lock_out_health(writer):
    with ReceiverThread(writer, port=0, limits=Limits(max_connections=8)) as rx:
        idle = [socket.create_connection(("127.0.0.1", rx.port)) for _ in range(40)]
        try:
            health = request(rx.port, "GET", "/v1/health")
            open_ = list(idle)
            deadline = time.monotonic() + 10  # the receiver accepts a few at a time
            while len(open_) > 8 and time.monotonic() < deadline:
                open_ = [sock for sock in open_ if not _closed(sock)]
            closed = len(idle) - len(open_)
        finally:
            for sock in idle:
                sock.close()
    assert health.status == 200 and health.body["recording"] is True
    assert 40 - 8 <= closed < 40  # the oldest silent ones made room, the newest stay


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_every_slot_busy_is_a_json_503(writer):
    limits = Limits(max_connections=3, body_timeout_s=5)
    with ReceiverThread(writer, port=0, limits=limits) as rx:
        busy = [socket.create_connection(("127.0.0.1", rx.port)) for _ in range(3)]
        try:
            for sock in busy:
                sock.sendall(_header(1000) + b"{")  # each holds a request mid-body
            time.sleep(0.3)
            status, body = _raw(rx.port, b"")
        finally:
            for sock in busy:
                sock.close()
    assert status == 503 and body["error"]["code"] == "too_many_connections"


def test_a_gzip_body_that_states_a_small_size_but_decodes_large_is_stored(writer):
    samples = list(range(200))  # about 200 kB of JSON: more than is validated inline
    body = bytearray(gzip.compress(orjson.dumps(batch("s", samples))))
    body[-4:] = (100).to_bytes(4, "little")  # the trailer lies: "100 bytes"
    with ReceiverThread(writer, port=0) as rx:
        reply = post(rx.port, "/v1/samples", bytes(body),
                     headers={"Content-Encoding": "gzip"})
    # the size is checked while inflating, so a lying trailer is a bad gzip stream
    assert reply.status == 400 and reply.body["error"]["code"] == "bad_gzip"
    honest = gzip.compress(orjson.dumps(batch("s", samples)))
    with ReceiverThread(writer, port=0) as rx:
        ok = post(rx.port, "/v1/samples", honest, headers={"Content-Encoding": "gzip"})
    assert ok.status == 200 and ok.body["accepted"] == 200
    assert Session.open(writer.path).read_state().num_rows == 200
