"""The server's boundary over plain HTTP: foreign Host and Origin, the token, and path
traversal in every route that reads a file; every refusal is a JSON ErrorReply."""

from __future__ import annotations

import json
import os
import shutil
from urllib.parse import urlsplit

import pytest

from tests.serve._http import request

# Every route that reads a file of a session, with {id} where the session id goes.
FILE_ROUTES = ("/media/{id}/video", "/api/sessions/{id}/video", "/api/sessions/{id}",
               "/api/sessions/{id}/labels?start=0&count=5", "/api/sessions/{id}/events")
API_ROUTES = ("/api/sessions", *(r.format(id="demo") for r in FILE_ROUTES))


def _error(status: int, headers: dict, body: bytes) -> dict:
    assert headers["content-type"].startswith("application/json"), (status, body[:200])
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "path"} and error["message"]
    return error


def _port(served) -> int:
    return urlsplit(served.base).port


@pytest.mark.parametrize("path", API_ROUTES)
def test_every_api_and_media_route_answers_with_the_token(served, path):
    status, _, body = request(served.base, path, token=served.token)
    assert status in (200, 206), body[:300]


@pytest.mark.parametrize("path", API_ROUTES)
@pytest.mark.parametrize("given", [None, "", "wrong", "x" * 5000])
def test_a_missing_or_wrong_token_is_refused(served, path, given):
    headers = {} if given is None else {"X-STPE-Token": given}
    status, head, body = request(served.base, path, headers=headers)
    assert status == 403
    assert _error(status, head, body)["code"] == "token_refused"


@pytest.mark.parametrize("path", ["/%61pi/sessions", "/api/%73essions", "/media/%64emo/video",
                                  "/api/sessions/demo%2Fvideo", "/static/../api/sessions",
                                  "/api/./sessions"])
def test_encoded_or_dotted_spellings_of_a_guarded_route_need_the_token(served, path):
    status, head, body = request(served.base, path)
    assert status in (403, 404), (path, status)
    _error(status, head, body)
    assert b"sessions\":" not in body and b"ftyp" not in body


def test_a_wrong_cookie_is_refused_and_the_right_one_accepted(served):
    status, head, body = request(served.base, "/api/sessions",
                                 headers={"Cookie": "stpe_token=wrong"})
    assert status == 403 and _error(status, head, body)["code"] == "token_refused"
    status, _, _ = request(served.base, "/api/sessions",
                           headers={"Cookie": f"stpe_token={served.token}"})
    assert status == 200


def test_the_printed_url_sets_a_strict_httponly_cookie_and_a_wrong_one_sets_none(served):
    status, head, _ = request(served.base, f"/?token={served.token}")
    assert status == 303 and head["location"] == "/"
    cookie = head["set-cookie"]
    assert cookie.startswith(f"stpe_token={served.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, head, body = request(served.base, "/?token=guess")
    assert status == 403 and "set-cookie" not in head
    assert _error(status, head, body)["code"] == "token_refused"
    # the token is accepted from the page URL only, never by an API route's query
    status, head, body = request(served.base, f"/api/sessions?token={served.token}")
    assert status == 403


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1",
                                  "127.0.0.1:1", "localhost:{other}", "127.0.0.1.nip.io:{port}",
                                  "[::1]:{port}", "", "127.0.0.1:{port}@evil.example"])
@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/sessions",
                                  "/media/demo/video"])
def test_a_foreign_host_is_refused(served, host, path):
    port = _port(served)
    value = host.format(port=port, other=port + 1)
    status, head, body = request(served.base, path, token=served.token,
                                 headers={"Host": value})
    assert status == 403, value
    assert _error(status, head, body)["code"] == "host_refused"


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_this_servers_own_names_are_accepted(served, host):
    value = host.format(port=_port(served))
    status, _, _ = request(served.base, "/api/sessions", token=served.token,
                           headers={"Host": value})
    assert status == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null",
                                    "http://127.0.0.1:{other}", "https://127.0.0.1:{port}",
                                    "http://localhost.evil.example:{port}",
                                    "http://127.0.0.1:{port}.evil.example"])
@pytest.mark.parametrize("path", ["/", "/api/sessions", "/media/demo/video"])
def test_a_foreign_origin_is_refused(served, origin, path):
    port = _port(served)
    value = origin.format(port=port, other=port + 1)
    status, head, body = request(served.base, path, token=served.token,
                                 headers={"Origin": value})
    assert status == 403, value
    assert _error(status, head, body)["code"] == "origin_refused"


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_request_from_another_site_is_refused(served, site):
    status, head, body = request(served.base, "/api/sessions", token=served.token,
                                 headers={"Sec-Fetch-Site": site})
    assert status == 403 and _error(status, head, body)["code"] == "origin_refused"


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}"])
def test_the_servers_own_origin_is_accepted(served, origin):
    status, _, _ = request(served.base, "/api/sessions", token=served.token,
                           headers={"Origin": origin.format(port=_port(served)),
                                    "Sec-Fetch-Site": "same-origin"})
    assert status == 200


TRAVERSALS = ["..", "%2e%2e", "%2E%2E", ".", "..%2f..%2fetc", "..%5c..%5cetc",
              "%2fetc", "%2Fetc%2Fpasswd", "C:%5cWindows", "demo%2f..%2f..", ".stpe-serve",
              "%00", "demo%00", "nosuchsession"]


@pytest.mark.parametrize("route", FILE_ROUTES)
@pytest.mark.parametrize("session_id", TRAVERSALS)
def test_traversal_in_the_session_id_is_refused(served, route, session_id):
    status, head, body = request(served.base, route.format(id=session_id),
                                 token=served.token)
    assert status in (400, 404), (session_id, status, body[:200])
    _error(status, head, body)


@pytest.mark.parametrize("path", ["/media/../../../etc/passwd", "/media/demo/../../x",
                                  "/api/sessions/../../etc/passwd",
                                  "/static/../_app.py", "/static/%2e%2e/_app.py",
                                  "/static/..%2f_app.py", "/static//etc/passwd"])
def test_raw_dot_segments_never_leave_their_folder(served, path):
    status, head, body = request(served.base, path, token=served.token)
    assert status in (400, 403, 404), (path, status, body[:200])
    _error(status, head, body)
    assert b"import" not in body and b"root:" not in body


@pytest.mark.parametrize("route", FILE_ROUTES)
def test_a_real_session_beside_the_folder_cannot_be_reached(served, demo_sessions, route):
    beside = demo_sessions.parent / "beside"
    if not beside.exists():
        shutil.copytree(demo_sessions / "demo", beside)
    for session_id in ("..%2fbeside", "%2e%2e%2fbeside", "..%5cbeside",
                       "%2F" + str(beside).lstrip("/").replace("/", "%2F")):
        status, head, body = request(served.base, route.format(id=session_id),
                                     token=served.token)
        assert status in (400, 404), (session_id, status, body[:200])
        _error(status, head, body)


def test_a_session_linked_from_outside_the_folder_is_refused(served, demo_sessions, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(demo_sessions / "demo", outside / "demo")
    os.symlink(outside / "demo", demo_sessions / "linked")
    for route in FILE_ROUTES:
        status, head, body = request(served.base, route.format(id="linked"),
                                     token=served.token)
        assert status == 404, (route, status)
        _error(status, head, body)
    status, _, body = request(served.base, "/api/sessions", token=served.token)
    assert status == 200 and "linked" not in {s["id"] for s in json.loads(body)["sessions"]}


@pytest.mark.parametrize(("name", "route"), [
    ("video.mkv", "/media/demo/video"), ("video.mkv", "/api/sessions/demo/video"),
    ("labels.parquet", "/api/sessions/demo/labels?start=0&count=5"),
    ("aligned.parquet", "/api/sessions/demo/labels?start=0&count=5")])
def test_a_session_file_linked_out_of_its_session_is_refused(served, demo_sessions, tmp_path,
                                                              name, route):
    target = demo_sessions / "demo" / name
    moved = tmp_path / name
    shutil.move(target, moved)
    os.symlink(moved, target)
    status, head, body = request(served.base, route, token=served.token)
    assert status == 404, (status, body[:200])
    assert name in _error(status, head, body)["message"]
    assert not (served.ctx.work_dir / "media" / "demo" / "video.mp4").exists()


def test_an_unknown_api_route_is_a_json_404(served):
    status, head, body = request(served.base, "/api/nothing", token=served.token)
    assert status == 404 and _error(status, head, body)["code"] == "not_found"
