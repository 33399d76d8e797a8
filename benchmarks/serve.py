"""`stpe serve` on a one-hour session: listing, opening and seeking in the player, timed
through the real server over HTTP, against a pandas scan of the same labels.parquet (what a
user would write: `pd.read_parquet` then pick the rows).

The session: the demo world's labels at 60 fps computed by the real chain (`stpe labels` on
`--real-frames` frames of demo state), repeated with frame numbers and times renumbered to
`--hours` of 60 fps frames (216,000 for one hour), written with the labels writer
(`pipeline.labels.write_labels`, so the file has the writer's schema, compression and row
groups), beside an aligned.parquet repeated the same way. No video is encoded: the MP4 made
for the browser on a session's first open is not part of these times.

  list   GET /api/sessions (the folder holds --sessions copies of the session)
  open   GET /api/sessions/<id>, /events and the first label window (200 frames)
  seek   GET /api/sessions/<id>/labels for 200 frames in the middle
  query  POST /api/search/state "airborne and camera turning faster than 30 deg/s" over all
         the sessions (first page of 100 and the total), against pandas reading the needed
         columns of every file and computing the camera's yaw rate with numpy; both
         answers are checked to be the same frames

`--video WxH` also encodes a video of that size with one frame per label row (slow: about a
minute for an hour at 64x36) and times the one-time copy into MP4 for the browser
(`serve._media.remux_mp4`) against `ffmpeg -c copy` on the same file.

Run: python benchmarks/serve.py [--hours 1] [--sessions 1] [--real-frames 3000] [--video 64x36]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import best_of

from capture import Session
from capture._video import VideoWriter
from pipeline.demo import build_sample
from pipeline.labels import Labels, compute_labels, write_labels
from serve import ServeContext, ServeThread
from serve._media import remux_mp4
from tests.pipeline.demo_session import VIEWPORT, demo_states
from tests.pipeline.session_kit import make_session

FPS = 60.0
WINDOW = 200


def _renumbered(table: pa.Table, copies: int, frames: int) -> pa.Table:
    """`table` repeated `copies` times with frame_index, seq, t and pts_us continuing."""
    parts = []
    for k in range(copies):
        part = table
        for name, step in (("frame_index", frames), ("seq", frames), ("t", frames / FPS),
                           ("pts_us", round(frames / FPS * 1e6))):
            if name in part.column_names:
                column = part.column(name)
                moved = pc.add(column, pa.scalar(step * k, column.type))
                part = part.set_column(part.column_names.index(name), name, moved)
        parts.append(part)
    return pa.concat_tables(parts).slice(0)


def build(root: Path, hours: float, real_frames: int) -> Path:
    states = demo_states(real_frames, every=1)
    samples = [build_sample(s, seq=i, client_t=10.0 + s.t, dt=1 / FPS,
                            wall_ms=1_700_000_000_000, viewport=VIEWPORT)
               for i, s in enumerate(states)]
    path = make_session(root, samples, list(range(real_frames)),
                        [i / FPS for i in range(real_frames)], size=VIEWPORT, name="hour")
    session = Session.open(path)
    labels = compute_labels(session)
    total = round(hours * 3600 * FPS)
    copies = -(-total // real_frames)
    table = _renumbered(labels.table, copies, real_frames).slice(0, total)
    events = [{**e, "start_frame": e["start_frame"] + k * real_frames,
               "end_frame": e["end_frame"] + k * real_frames,
               "start_t": e["start_t"] + k * real_frames / FPS,
               "end_t": e["end_t"] + k * real_frames / FPS}
              for k in range(copies) for e in labels.events
              if e["end_frame"] + k * real_frames < total]
    write_labels(session, Labels(table=table, events=events, summary=labels.summary))
    aligned = pq.read_table(path / "aligned.parquet")
    pq.write_table(_renumbered(aligned, copies, real_frames).slice(0, total),
                   path / "aligned.parquet")
    return path


QUERY = {"where": [{"field": "airborne", "op": "=", "value": True},
                   {"field": "cam_turn_rate", "op": ">", "value": 30}], "limit": 100}


def pandas_query(root: Path) -> list[tuple[str, int]]:
    """The query as a user would scan it: the needed columns of each file, the camera's yaw
    rate about world up (its camera-frame angular velocity rotated by T_cam_world), a mask."""
    found = []
    for folder in sorted(p for p in root.iterdir() if (p / "labels.parquet").is_file()):
        df = pd.read_parquet(folder / "labels.parquet", columns=[
            "frame_index", "grounded", "T_cam_world", "cam_angular_velocity"])
        t_cw = np.stack(df["T_cam_world"].to_numpy())
        omega = np.stack(df["cam_angular_velocity"].to_numpy())
        yaw = np.degrees(t_cw[:, 1] * omega[:, 0] + t_cw[:, 5] * omega[:, 1]
                         + t_cw[:, 9] * omega[:, 2])
        hit = df[(df["grounded"] == False) & (np.abs(yaw) > 30)]  # noqa: E712  (nulls)
        found += [(folder.name, int(f)) for f in hit["frame_index"]]
    return found


def remux_times(folder: Path, frames: int, size: str) -> None:
    """Encode `frames` frames at 60 fps into folder/video.mkv, then time both copies."""
    width, height = (int(v) for v in size.split("x"))
    image = np.zeros((height, width, 3), np.uint8)
    with VideoWriter(folder / "video.mkv", width, height, fps_hint=FPS,
                     preset="ultrafast") as out:
        for i in range(frames):
            image[:, :, 0] = i % 256
            out.write(image, round(i / FPS * 1000) * 1000)
    ours_s, _ = best_of(lambda: remux_mp4(folder / "video.mkv", folder / "ours.mp4"), 3)
    ffmpeg = ["ffmpeg", "-v", "error", "-y", "-i", str(folder / "video.mkv"), "-c", "copy",
              "-movflags", "+faststart", str(folder / "ffmpeg.mp4")]
    peer_s, _ = best_of(lambda: subprocess.run(ffmpeg, check=True), 3)
    print(f"mp4   {ours_s * 1e3:8.1f} ms   ffmpeg {peer_s * 1e3:8.1f} ms   "
          f"ratio {peer_s / ours_s:6.2f}x   ({frames} frames {size}, "
          f"{(folder / 'video.mkv').stat().st_size / 1e6:.1f} MB, once per session)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--real-frames", type=int, default=3000)
    parser.add_argument("--video", metavar="WxH", default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="stpe-serve-bench-"))
    try:
        start = time.perf_counter()
        path = build(root, args.hours, args.real_frames)
        for k in range(1, args.sessions):
            shutil.copytree(path, root / f"hour{k}")
        labels = path / "labels.parquet"
        rows = pq.read_metadata(labels).num_rows
        print(f"{rows} frames, labels.parquet {labels.stat().st_size / 1e6:.1f} MB, "
              f"{pq.read_metadata(labels).num_row_groups} row groups, {args.sessions} "
              f"session(s); built in {time.perf_counter() - start:.0f} s")
        middle = rows // 2

        with ServeThread(ServeContext.for_sessions(root)) as server:
            def get(path: str) -> object:
                req = urllib.request.Request(server.base_url + path,
                                             headers={"X-STPE-Token": server.token})
                with urllib.request.urlopen(req) as response:
                    return json.loads(response.read())

            def open_session() -> object:
                detail = get("/api/sessions/hour")
                get("/api/sessions/hour/events")
                return detail, get(f"/api/sessions/hour/labels?start=0&count={WINDOW}")

            def post(path: str, body: object) -> object:
                headers = {"X-STPE-Token": server.token, "Content-Type": "application/json"}
                req = urllib.request.Request(server.base_url + path,
                                             data=json.dumps(body).encode(), headers=headers)
                with urllib.request.urlopen(req) as response:
                    return json.loads(response.read())

            query_s, found = best_of(lambda: post("/api/search/state", QUERY), 3)
            list_s, listed = best_of(lambda: get("/api/sessions"))
            open_s, _ = best_of(open_session)
            seek_s, window = best_of(
                lambda: get(f"/api/sessions/hour/labels?start={middle}&count={WINDOW}"))

        def pandas_list() -> list[int]:
            return [len(pd.read_parquet(p / "labels.parquet", columns=["frame_index", "t"]))
                    for p in sorted(root.iterdir()) if (p / "labels.parquet").is_file()]

        def pandas_seek() -> pd.DataFrame:
            frame = pd.read_parquet(labels)
            return frame[(frame.frame_index >= middle) & (frame.frame_index < middle + WINDOW)]

        pandas_query_s, expected = best_of(lambda: pandas_query(root), 3)
        assert found["total"] == len(expected)
        assert [(r["session"], r["frame"]) for r in found["results"]] == expected[:100]
        pandas_list_s, _ = best_of(pandas_list, 3)
        pandas_seek_s, picked = best_of(pandas_seek, 3)
        assert len(listed["sessions"]) == args.sessions
        assert [r["frame_index"] for r in window["rows"]] == picked.frame_index.tolist()
        assert np.allclose([r["root_px"] for r in window["rows"]],
                           np.stack(picked.root_px.to_numpy()))
        print(f"list  {list_s * 1e3:8.1f} ms   pandas {pandas_list_s * 1e3:8.1f} ms   "
              f"ratio {pandas_list_s / list_s:6.1f}x")
        print(f"open  {open_s * 1e3:8.1f} ms   pandas {pandas_seek_s * 1e3:8.1f} ms   "
              f"ratio {pandas_seek_s / open_s:6.1f}x")
        print(f"seek  {seek_s * 1e3:8.1f} ms   pandas {pandas_seek_s * 1e3:8.1f} ms   "
              f"ratio {pandas_seek_s / seek_s:6.1f}x")
        print(f"query {query_s * 1e3:8.1f} ms   pandas {pandas_query_s * 1e3:8.1f} ms   "
              f"ratio {pandas_query_s / query_s:6.1f}x   ({found['total']} frames in "
              f"{args.sessions} session(s); target < 1000 ms)")
        total = list_s + open_s + seek_s
        print(f"list + open + seek {total * 1e3:.1f} ms (target < 1000 ms)")
        if args.video:
            remux_times(root, rows, args.video)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
