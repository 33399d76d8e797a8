"""The list and the player in Chromium: what is drawn and shown is checked against the
session's files read here with pyarrow and PyAV, never through the server's code."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from capture import Session

pytestmark = pytest.mark.timeout(180)

# Centroid of the root marker: the solid magenta disc the overlay draws (canvas pixels).
ROOT_MARKER = """() => {
  const c = document.querySelector('#player canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let sx = 0, sy = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] > 200 && d[i + 1] < 60 && d[i + 2] > 200 && d[i + 3] > 200) {
      const p = i / 4;
      sx += (p % c.width) + 0.5; sy += Math.floor(p / c.width) + 0.5; n += 1;
    }
  }
  return n ? [sx / n, sy / n, n] : null;
}"""

# The video's current picture as PNG (base64), drawn at its own size.
VIDEO_PICTURE = """() => {
  const v = document.querySelector('#player video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext('2d').drawImage(v, 0, 0);
  return c.toDataURL('image/png').split(',')[1];
}"""


def _labels(folder):
    return {r["frame_index"]: r for r in pq.read_table(folder / "labels.parquet").to_pylist()}


def _shown_frame(page) -> int:
    return int(page.get_attribute("#player", "data-frame"))


def _wait_frame(page, frame: int) -> None:
    """Until frame `frame` is drawn and, the video being ready, on screen."""
    page.wait_for_selector(
        f"#player[data-frame='{frame}'][data-state='still'][data-video='ready']",
        timeout=30_000)


def _assert_root_drawn_at(page, row) -> None:
    found = page.evaluate(ROOT_MARKER)
    assert found is not None, f"no root marker drawn for frame {row['frame_index']}"
    x, y, _ = found
    assert abs(x - row["root_px"][0]) <= 1.0 and abs(y - row["root_px"][1]) <= 1.0, \
        (found, row["root_px"])


def _decoded_frames(folder) -> dict[int, np.ndarray]:
    return {f.index: f.image.astype(np.float32) for f in Session.open(folder).iter_frames()}


def _nearest_decoded(page, decoded) -> int:
    png = base64.b64decode(page.evaluate(VIDEO_PICTURE))
    shown = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR),
                         cv2.COLOR_BGR2RGB).astype(np.float32)
    errors = {i: float(np.abs(shown - img).mean()) for i, img in decoded.items()}
    return min(errors, key=errors.get)


def test_the_list_shows_the_sessions_and_opens_one(page, demo_sessions):
    page.wait_for_selector("tr[data-session='demo']")
    rows = page.locator("table.sessions tbody tr")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.session)")) == ["demo", "sim"]
    demo = page.locator("tr[data-session='demo']")
    frames = pq.read_metadata(demo_sessions / "demo" / "labels.parquet").num_rows
    assert demo.locator("td.frames").inner_text() == str(frames)
    assert f"labels ({frames})" in demo.locator("td.derived").inner_text()
    report = orjson.loads((demo_sessions / "sim" / "alignment.json").read_bytes())
    sim_alignment = page.locator("tr[data-session='sim'] td.alignment").inner_text()
    for method, count in report["methods"].items():
        assert f"{method} {count}" in sim_alignment
    demo.locator("a").click()
    _wait_frame(page, 0)
    assert page.url.endswith("#player/demo?frame=0")


def test_stepping_draws_each_frames_root_point_and_shows_its_picture(page, demo_sessions):
    folder = demo_sessions / "demo"
    labels, decoded = _labels(folder), _decoded_frames(folder)
    page.goto(page.url.split("#")[0] + "#player/demo?frame=3")
    _wait_frame(page, 3)
    _assert_root_drawn_at(page, labels[3])
    assert _nearest_decoded(page, decoded) == 3
    for expected, button in ((4, "1"), (5, "1"), (6, "1"), (5, "-1"), (4, "-1")):
        page.click(f"#player [data-step='{button}']")
        _wait_frame(page, expected)
        _assert_root_drawn_at(page, labels[expected])
        assert _nearest_decoded(page, decoded) == expected
        state = page.locator("#player dd[data-field='caption']").inner_text()
        assert state == labels[expected]["caption"]
    roots = {tuple(labels[f]["root_px"]) for f in (3, 4, 5, 6)}
    assert len(roots) > 1  # the steps above moved the marker, so a stale canvas fails


def test_an_event_on_the_timeline_seeks_to_its_first_frame(page, demo_sessions):
    folder = demo_sessions / "demo"
    labels, decoded = _labels(folder), _decoded_frames(folder)
    events = [orjson.loads(line) for line in
              (folder / "label_events.jsonl").read_bytes().splitlines()]
    (turn,) = [e for e in events if e["kind"] == "turn"]
    assert turn["start_frame"] > 0
    page.goto(page.url.split("#")[0] + "#player/demo")
    _wait_frame(page, 0)
    buttons = page.locator("#player .timeline button")
    assert buttons.count() == len(events)
    page.click("#player .timeline button[data-kind='turn']")
    _wait_frame(page, turn["start_frame"])
    _assert_root_drawn_at(page, labels[turn["start_frame"]])
    assert _nearest_decoded(page, decoded) == turn["start_frame"]
    assert page.url.endswith(f"?frame={turn['start_frame']}")


def test_playing_draws_the_frames_shown_and_pausing_settles_on_one(page, demo_sessions):
    folder = demo_sessions / "demo"
    labels, decoded = _labels(folder), _decoded_frames(folder)
    page.goto(page.url.split("#")[0] + "#player/demo?frame=2")
    _wait_frame(page, 2)
    page.evaluate("() => { document.querySelector('#player video').playbackRate = 0.1; }")
    page.click("#player [data-play]")
    page.wait_for_function("() => Number(document.querySelector('#player').dataset.frame) >= 6",
                           timeout=30_000)
    page.click("#player [data-play]")
    page.wait_for_selector("#player[data-state='still']")  # paused, and the seek done
    assert page.evaluate("() => document.querySelector('#player video').paused")
    frame = _shown_frame(page)
    assert frame >= 6
    _assert_root_drawn_at(page, labels[frame])
    assert _nearest_decoded(page, decoded) == frame


def test_a_session_without_labels_says_what_to_run(page):
    page.goto(page.url.split("#")[0] + "#player/sim")
    page.wait_for_selector("#error:not([hidden])")
    assert "run stpe labels" in page.inner_text("#error")


def test_a_link_to_a_frame_opens_the_player_on_it(page, served, demo_sessions):
    labels = _labels(demo_sessions / "demo")
    page.goto("about:blank")
    page.goto(f"{served.base}/#player/demo?frame=7")  # a fresh load, as a search result does
    _wait_frame(page, 7)
    _assert_root_drawn_at(page, labels[7])
    assert page.locator("#player dd[data-field='frame']").inner_text() == "7"


def test_a_session_without_video_still_draws_its_labels(page, served, demo_sessions):
    labels = _labels(demo_sessions / "demo")
    (demo_sessions / "demo" / "video.mkv").unlink()
    page.goto(f"{served.base}/#player/demo?frame=5")
    page.wait_for_selector("#player[data-frame='5'][data-state='still'][data-video='none']",
                           timeout=30_000)
    _assert_root_drawn_at(page, labels[5])
    box = page.locator("#player canvas").bounding_box()
    assert box["height"] > 0.5 * box["width"] * 180 / 320  # the stage keeps the frame's shape
