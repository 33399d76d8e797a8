"""`stpe serve` as a user runs it: the printed URL lets a client in, Ctrl-C stops it, bad
options and a taken port are clear errors, and serving writes nothing into a session."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.serve._http import request


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if ".stpe-serve" not in p.parts}


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--no-browser", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@contextlib.contextmanager
def _serving(*args: str) -> Iterator[subprocess.Popen]:
    """`stpe serve` running; the block ends it with Ctrl-C (SIGINT) and waits, and the
    process is killed and its pipes closed whatever happened."""
    process = _serve(*args)
    try:
        yield process
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()


def test_the_printed_url_logs_in_and_ctrl_c_stops_it(demo_sessions):
    before = _files(demo_sessions)
    with _serving("--sessions", str(demo_sessions), "--port", "0") as process:
        while not (line := process.stdout.readline()).startswith(b"open: "):
            assert line, process.stderr.read().decode()
        url = line.decode().split(" ", 1)[1].strip()
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.path == "/"
        token = parse_qs(parts.query)["token"][0]
        base = f"http://{parts.netloc}"
        status, head, _ = request(base, f"/?{parts.query}")
        assert status == 303
        cookie = head["set-cookie"].split(";")[0]
        status, _, body = request(base, "/api/sessions", headers={"Cookie": cookie})
        assert status == 200 and {"demo", "sim"} <= {s["id"] for s in
                                                     json.loads(body)["sessions"]}
        status, _, _ = request(base, "/media/demo/video", token=token)
        assert status == 200
    assert process.returncode == 130
    assert _files(demo_sessions) == before


def test_a_taken_port_is_a_clear_error(demo_sessions):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _serve("--sessions", str(demo_sessions), "--port", str(port))
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in err.decode()
    assert "--port" in err.decode()


def test_a_missing_sessions_folder_is_a_usage_error(tmp_path):
    process = _serve("--sessions", str(tmp_path / "nowhere"))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "does not exist" in err.decode()


def test_json_gives_the_address_as_one_document(demo_sessions):
    text = b""
    with _serving("--sessions", str(demo_sessions), "--port", "0", "--json") as process:
        while True:
            line = process.stdout.readline()
            assert line, process.stderr.read().decode()
            text += line
            if line.rstrip() == b"}":
                break
        document = json.loads(text)
    assert document["command"] == "serve"
    assert document["sessions"] == str(demo_sessions.resolve())
    url = urlsplit(document["url"])
    assert (url.scheme, url.hostname, url.port, url.path) == \
        ("http", "127.0.0.1", document["port"], "/")
    assert len(parse_qs(url.query)["token"][0]) >= 32  # secrets.token_urlsafe(24)
