"""The search routes over HTTP on loopback: answers checked against pandas over the label
files, refusals as 400 JSON, thumbnails against the session's own decoded frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from capture import Session
from tests.serve._http import get_json, request
from tests.serve.search_kit import turning_session, yaw_rate_at


@pytest.fixture(scope="module")
def _turning(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("turning")
    turning_session(root, "turns", start_t=2.0, video=True)
    return root / "turns"


@pytest.fixture
def sessions(_turning: Path, demo_sessions: Path) -> Path:
    """The demo session and a session whose camera turns at known rates."""
    shutil.copytree(_turning, demo_sessions / "turns")
    return demo_sessions


def _labels(root: Path) -> pd.DataFrame:
    parts = []
    for name in ("demo", "turns"):
        df = pq.read_table(root / name / "labels.parquet").to_pandas()
        df["session"] = name
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def _post(served, path: str, body: object) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return get_json(served.base, path, served.token, method="POST", body=data,
                    headers={"Content-Type": "application/json",
                             "Content-Length": str(len(data))})


def test_state_query_answers_with_thumbnails(sessions: Path, served) -> None:
    df = _labels(sessions)
    turns = df["session"] == "turns"
    rate = df["frame_index"].map(yaw_rate_at).where(turns, np.nan)
    expected = df[turns & ~df["grounded"] & (rate.abs() > 30)]
    want = sorted(zip(expected["session"], expected["frame_index"], strict=True))
    assert want
    status, body = _post(served, "/api/search/state", {"where": [
        {"field": "airborne", "op": "=", "value": True},
        {"field": "cam_turn_rate", "op": ">", "value": 30}], "limit": 500})
    assert status == 200, body
    assert [(r["session"], r["frame"]) for r in body["results"]] == want
    assert body["total"] == len(want)
    first = body["results"][0]
    assert first["thumb"] == f"/media/turns/thumbs/{first['frame']}.jpg"


def test_no_filter_pages_over_both_sessions(sessions: Path, served) -> None:
    df = _labels(sessions)
    status, body = _post(served, "/api/search/state", {"where": [], "limit": 5, "offset": 3})
    assert status == 200 and body["total"] == len(df)
    ordered = df.sort_values(["session", "frame_index"])
    assert [(r["session"], r["frame"]) for r in body["results"]] == \
        list(zip(ordered["session"], ordered["frame_index"], strict=True))[3:8]


@pytest.mark.parametrize(("body", "code", "fragment"), [
    ({"where": [{"field": "nope", "op": "=", "value": 1}]}, "bad_filter", "unknown field"),
    ({"where": [{"field": "speed", "op": "=", "value": "1; DROP TABLE x"}]}, "bad_filter",
     "is not a number"),
    ({"where": [{"field": "speed\"--", "op": ">", "value": 1}]}, "bad_filter", "unknown field"),
    ({"where": [{"field": "speed", "op": "~", "value": 1}]}, "bad_request", "where.0.op"),
    ({"where": "speed > 1"}, "bad_request", "where"),
    (b"{\"where\": [", "bad_request", "body"),
    (b"\xff\xfe", "bad_request", "body"),
])
def test_hostile_filters_are_400_json(sessions: Path, served, body, code: str,
                                      fragment: str) -> None:
    status, answer = _post(served, "/api/search/state", body)
    assert status == 400
    assert answer["error"]["code"] == code and fragment in answer["error"]["message"]


def test_fields_list_the_derived_quantities(sessions: Path, served) -> None:
    status, body = get_json(served.base, "/api/search/fields", served.token)
    assert status == 200
    fields = {f["name"]: f for f in body["fields"]}
    assert fields["cam_turn_rate"]["unit"] == "deg/s" and "between" in fields["speed"]["ops"]
    assert fields["airborne"]["ops"] == ["=", "!="] and "K" not in fields


def test_caption_query(sessions: Path, served) -> None:
    df = _labels(sessions)
    hits = df[df["caption"].str.lower().str.contains("camera turns right")]
    want = sorted(zip(hits["session"], hits["frame_index"], strict=True))
    assert want
    status, body = _post(served, "/api/search/caption", {"text": "Camera Turns RIGHT",
                                                         "limit": 500})
    assert status == 200
    assert [(r["session"], r["frame"]) for r in body["results"]] == want
    status, body = _post(served, "/api/search/caption", {"text": ""})
    assert status == 400


def test_thumbnail_is_the_frame(sessions: Path, served) -> None:
    frame = 7
    status, headers, body = request(served.base, f"/media/demo/thumbs/{frame}.jpg",
                                    token=served.token)
    assert status == 200 and headers["content-type"] == "image/jpeg"
    got = cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR),
                       cv2.COLOR_BGR2RGB)
    truth = next(f.image for f in Session.open(sessions / "demo").iter_frames()
                 if f.index == frame)
    other = next(f.image for f in Session.open(sessions / "demo").iter_frames()
                 if f.index == frame + 3)
    assert got.shape == truth.shape
    error = np.abs(got.astype(float) - truth).mean()
    assert error < 4.0 and error < np.abs(got.astype(float) - other).mean() / 2
    assert (sessions / ".stpe-serve" / "thumbs" / "demo" / f"{frame}.jpg").is_file()


@pytest.mark.parametrize("path", [
    "/media/../thumbs/1.jpg", "/media/..%2fdemo/thumbs/1.jpg", "/media/demo/thumbs/..%2f1.jpg",
    "/media/%2e%2e/thumbs/1.jpg", "/media/demo/thumbs/-1.jpg", "/media/demo/thumbs/999.jpg",
    "/media/demo/thumbs/1e3.jpg", "/media/.stpe-serve/thumbs/1.jpg",
    "/media/demo%2f..%2fdemo/thumbs/1.jpg", "/media/nope/thumbs/1.jpg",
])
def test_thumbnail_traversal_is_refused(sessions: Path, served, path: str) -> None:
    status, _, body = request(served.base, path, token=served.token)
    assert status == 404, (path, body)
    assert json.loads(body)["error"]["code"] in ("not_found", "not found")


def test_search_needs_the_token(sessions: Path, served) -> None:
    status, _, _ = request(served.base, "/media/demo/thumbs/1.jpg")
    assert status == 403
    status, _, _ = request(served.base, "/api/search/state", method="POST", body=b"{}",
                           headers={"Content-Length": "2"})
    assert status == 403


def test_similar_frames(sessions: Path, served) -> None:
    status, body = _post(served, "/api/search/similar", {"session": "demo", "frame": 0})
    assert status == 200 and body["results"] == []
    assert "no embeddings in these sessions" in body["message"]
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    vectors = {"demo": rng.normal(size=(4, 8)), "turns": rng.normal(size=(3, 8))}
    for name, matrix in vectors.items():
        shard = sessions / name / "annotations" / "embed" / "shard-00000.safetensors"
        shard.parent.mkdir(parents=True)
        save_file({"frame_index": np.arange(len(matrix), dtype=np.int64) * 2,
                   "cls": matrix.astype(np.float16)}, str(shard))
    query = vectors["demo"][1].astype(np.float16).astype(float)
    scored = []
    for name, matrix in vectors.items():
        for row, vec in enumerate(matrix.astype(np.float16).astype(float)):
            scored.append((-vec @ query / np.linalg.norm(vec) / np.linalg.norm(query),
                           name, 2 * row))
    want = [(n, f) for _, n, f in sorted(scored)][:5]
    status, body = _post(served, "/api/search/similar", {"session": "demo", "frame": 2,
                                                         "limit": 5})
    assert status == 200
    assert [(r["session"], r["frame"]) for r in body["results"]] == want
    assert body["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    status, body = _post(served, "/api/search/similar", {"session": "../demo", "frame": 2})
    assert status == 404
