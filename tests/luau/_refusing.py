"""A stand-in receiver on loopback that accepts hello and sync (echoing the probe id, as
docs/protocol.md says) but answers every batch with one error status: for the plugin's
handling of refused batches, which the real receiver only produces for bad data."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def refusing_receiver(status: int, message: str) -> Iterator[tuple[int, list[dict]]]:
    """(port, batches): every POST /v1/samples body is appended to `batches` and answered
    with `status` and an ErrorReply carrying `message`."""
    batches: list[dict] = []

    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/v1/hello":
                reply, code = {"session": "s", "receiver_version": "t", "protocol": 1,
                               "stored_through": -1, "next_seq": 0}, 200
            elif self.path == "/v1/sync":
                reply, code = {"t0": body["t0"], "t1_ns": 5, "t2_ns": 6,
                               "id": body.get("id")}, 200
            elif self.path == "/v1/samples":
                batches.append(body)
                reply, code = {"error": {"code": "refused", "message": message}}, status
            else:
                reply, code = {"session": "s", "stored_through": -1}, 200
            data = json.dumps(reply).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], batches
    finally:
        server.shutdown()
        server.server_close()
