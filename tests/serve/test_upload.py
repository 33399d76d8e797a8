"""Imports over HTTP: a video plus state log, and a seed zip, become new sessions through a
job; bad uploads are 4xx JSON and leave nothing behind."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from capture import Session
from tests.alignment.test_import_seed import _zip, make_seed
from tests.serve._http import get_json


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]
              ) -> tuple[bytes, str]:
    """A multipart/form-data body (text fields first) and its Content-Type."""
    boundary = uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode()
    for name, (filename, data) in files.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(served, fields: dict[str, str], files: dict[str, tuple[str, bytes]]
           ) -> tuple[int, dict]:
    body, content_type = multipart(fields, files)
    return get_json(served.base, "/api/uploads", served.token, method="POST", body=body,
                    headers={"Content-Type": content_type, "Content-Length": str(len(body))})


def _wait(served, job_id: str) -> dict:
    for _ in range(900):
        _, body = get_json(served.base, "/api/jobs", served.token)
        (job,) = [j for j in body["jobs"] if j["id"] == job_id]
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError("the import job did not finish")


def _nothing_staged(root: Path) -> bool:
    uploads = root / ".stpe-serve" / "uploads"
    return not uploads.exists() or not any(uploads.iterdir())


def test_video_and_state_log_become_an_aligned_session(served, demo_sessions: Path) -> None:
    demo = demo_sessions / "demo"
    status, job = upload(served, {"kind": "video", "name": "from-obs", "offset_ms": "0"},
                         {"state": ("log.jsonl", (demo / "state.jsonl").read_bytes()),
                          "video": ("../../evil name.mkv", (demo / "video.mkv").read_bytes())})
    assert status == 201, job
    assert job["kind"] == "import" and job["output"] == "from-obs"
    done = _wait(served, job["id"])
    assert done["state"] == "done", done
    made = Session.open(demo_sessions / "from-obs")
    aligned = pq.read_table(made.path / "aligned.parquet")
    assert aligned.num_rows == len(Session.open(demo).read_frames())
    assert done["result"]["sessions"][0]["matched"] == aligned.num_rows
    assert _nothing_staged(demo_sessions)
    _, listing = get_json(served.base, "/api/sessions", served.token)
    assert "from-obs" in {s["id"] for s in listing["sessions"]}


def test_seed_zip_becomes_a_session(served, demo_sessions: Path, tmp_path: Path) -> None:
    stamps = make_seed(tmp_path / "seed", set(range(1, 13)))
    archive = _zip(tmp_path / "seed", tmp_path / "seed.zip")
    status, job = upload(served, {"kind": "seed", "name": "seed-1"},
                         {"seed": ("seed.zip", archive.read_bytes())})
    assert status == 201, job
    done = _wait(served, job["id"])
    assert done["state"] == "done", done
    assert done["result"]["frames"] == len(stamps)
    assert Session.open(demo_sessions / "seed-1").manifest.status == "complete"
    assert _nothing_staged(demo_sessions)


def test_a_failed_import_leaves_no_session(served, demo_sessions: Path) -> None:
    status, job = upload(served, {"kind": "video", "name": "broken"},
                         {"state": ("s.jsonl", b'{"not": "a sample"}\n'),
                          "video": ("v.mkv", (demo_sessions / "demo" / "video.mkv")
                                    .read_bytes())})
    assert status == 201
    failed = _wait(served, job["id"])
    assert failed["state"] == "failed" and failed["exit_code"] == 1
    assert "not a valid sample" in failed["error"]
    assert not (demo_sessions / "broken").exists() and _nothing_staged(demo_sessions)


VIDEO = b"\x1a\x45\xdf\xa3" + b"\0" * 100


@pytest.mark.parametrize(("fields", "files", "status", "code"), [
    ({"kind": "video", "name": "x"}, {"state": ("s", b"{}\n"), "video": ("v.mkv", b"hello")},
     415, "wrong_type"),
    ({"kind": "video", "name": "x"}, {"state": ("s", b"PK\x03\x04"), "video": ("v", VIDEO)},
     415, "wrong_type"),
    ({"kind": "seed", "name": "x"}, {"seed": ("s.zip", b"not a zip at all")}, 415,
     "wrong_type"),
    ({"kind": "video", "name": "../up"}, {"state": ("s", b"{}\n"), "video": ("v", VIDEO)},
     400, "bad_request"),
    ({"kind": "video", "name": ".hidden"}, {"state": ("s", b"{}\n"), "video": ("v", VIDEO)},
     400, "bad_request"),
    ({"kind": "video", "name": "demo"}, {"state": ("s", b"{}\n"), "video": ("v", VIDEO)},
     409, "exists"),
    ({"kind": "video", "name": "x"}, {"state": ("s", b"{}\n")}, 400, "bad_request"),
    ({"kind": "video", "name": "x"}, {"seed": ("s.zip", b"PK\x03\x04")}, 400, "bad_request"),
    ({"kind": "exe", "name": "x"}, {}, 400, "bad_request"),
    ({"kind": "video", "name": "x"}, {"state": ("s", b"{" + b" " * (1 << 20) + b"}\n"),
                                      "video": ("v", VIDEO)}, 413, "too_large"),
    ({"kind": "video", "name": "x"}, {"state": ("s", b""), "video": ("v", VIDEO)}, 400,
     "bad_request"),
])
def test_bad_uploads_are_refused_and_leave_nothing(served, demo_sessions: Path, fields,
                                                   files, status: int, code: str) -> None:
    got, answer = upload(served, fields, files)
    assert got == status, answer
    assert answer["error"]["code"] == code
    assert _nothing_staged(demo_sessions) and not (demo_sessions / "x").exists()


def test_oversized_files_are_refused(served, demo_sessions: Path, monkeypatch) -> None:
    monkeypatch.setattr("serve._upload.MAX_FILE_BYTES", 4 << 20)
    got, answer = upload(served, {"kind": "video", "name": "x"},
                         {"state": ("s", b"{}\n"), "video": ("v", VIDEO + b"\0" * (5 << 20))})
    assert got == 413 and answer["error"]["code"] == "too_large"
    assert _nothing_staged(demo_sessions)


def test_not_multipart_is_refused(served, demo_sessions: Path) -> None:
    got, answer = get_json(served.base, "/api/uploads", served.token, method="POST",
                           body=b"{}", headers={"Content-Type": "application/json",
                                                "Content-Length": "2"})
    assert got == 400 and answer["error"]["code"] == "bad_request"
    assert _nothing_staged(demo_sessions)


def test_a_truncated_upload_leaves_nothing(served, demo_sessions: Path) -> None:
    body, content_type = multipart({"kind": "video", "name": "cut"},
                                   {"state": ("s", b"{}\n" * 1000), "video": ("v", VIDEO)})
    url = urlsplit(served.base)
    with socket.create_connection((url.hostname, url.port)) as sock:
        head = (f"POST /api/uploads HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"X-STPE-Token: {served.token}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.5)
    for _ in range(50):
        if _nothing_staged(demo_sessions):
            break
        time.sleep(0.1)
    assert _nothing_staged(demo_sessions) and not (demo_sessions / "cut").exists()
    _, jobs = get_json(served.base, "/api/jobs", served.token)
    assert jobs["jobs"] == []
    assert json.dumps(jobs)
